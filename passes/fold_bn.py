"""Inference batchnorm folding: a batchnorm right after a conv or linear becomes part of it.

At inference a batchnorm is an affine map per channel, y = (x - mean) · s + beta with
s = gamma / sqrt(var + eps), so after a layer that is linear in its weights it folds
into them: W' = W · s (per output channel), b' = (b - mean) · s + beta.

A pair folds when:

  - the batchnorm uses running statistics (`track_running_stats`; otherwise it
    normalises with the batch's own statistics even at inference);
  - its input is a conv, a conv_transpose with groups = 1 (whose weight has the
    output channels on its second axis, which groups would interleave) or a
    linear, which owns its weights (has a module path), and whose value only the
    batchnorm reads (not an output either), so nothing else sees the unfolded value;
  - the batchnorm normalises the layer's output-channel axis (its `axis`, or the
    second axis by default, is the axis the layer maps to);
  - both sit in the same block instance (same `scope`), so the class that code
    generation emits for that block holds both layers and can fold the weights.

`fold_batchnorm` keeps every node where it is (ids unchanged: code generation's
traces refer to values by id): the layer gets a bias (`bias=true` and a `bias`
parameter) and the attribute `folded_bn = {path, eps}` saying which batchnorm's
statistics its weights take, and the batchnorm becomes an `identity` at the same
module path, with `folded_into` naming the layer and no parameters. The
state_dict therefore loses the batchnorm's entries and gains the layer's bias.
`drop_folded` then removes those identities (and their modules), for costs.

>>> import archc
>>> g = archc.loads('block B() { in x: [b = 1, c = 3, h = 8, w = 8]\\n'
...                 ' conv1 = conv(x, c -> 8, k = 3, bias = false)\\n bn1 = batchnorm(conv1)\\n'
...                 ' out relu(bn1) }').check().graph
>>> f = fold_batchnorm(g)
>>> f.node(1).attrs.folded_bn, f.node(2).op.value, f.node(2).attrs.folded_into
({'path': 'bn1', 'eps': 1e-05}, 'identity', 'conv1')
>>> list(f.state_dict()), [n.op.value for n in drop_folded(f)]
(['conv1.weight', 'conv1.bias'], ['input', 'conv', 'relu'])
"""

from __future__ import annotations

import dataclasses

from archc.ir.graph import Graph, Node, Op
from archc.ir.rewrite import Forward, drop_module, rewrite
from archc.passes.base import graph_pass, prop
from archc.shapes.types import ParamSpec, TensorType

FOLDS_INTO = frozenset({Op.CONV, Op.CONV_T, Op.LINEAR})


def out_axis(layer: Node) -> str:
    """The axis a conv or linear writes (its `map`: axis -> size, renamed or not)."""
    axis, _, rename = layer.attrs["map"]
    return str(rename or axis)


def foldable(g: Graph) -> dict[int, int]:
    """batchnorm id -> the id of the layer it folds into, for every pair the rule above allows.

    >>> import archc
    >>> foldable(archc.loads('block B() { in x: [b = 1, c = 4]\\n y = linear(x, c -> 8)\\n'
    ...                      ' bn = batchnorm(y)\\n out bn }').check().graph)
    {2: 1}
    """
    users: dict[int, list[int]] = {}
    for n in g:
        for i in n.inputs:
            users.setdefault(i, []).append(n.id)
    outputs = set(g.outputs)
    pairs: dict[int, int] = {}
    for bn in g:
        if bn.op is not Op.BATCHNORM or not bn.attrs.get("track_running_stats") or bn.path is None:
            continue
        layer = g.node(bn.inputs[0])
        if (layer.op not in FOLDS_INTO or layer.path is None or layer.scope != bn.scope
                or users.get(layer.id) != [bn.id] or layer.id in outputs or layer.attrs.get("folded_bn") is not None):
            continue
        if layer.op is Op.CONV_T and layer.attrs.get("groups", 1) != 1:
            continue
        x = layer.type
        if not isinstance(x, TensorType) or x != bn.type:
            continue
        if (bn.attrs.get("axis") or x.names[1]) != out_axis(layer):
            continue
        pairs[bn.id] = layer.id
    return pairs


@prop("bn-folded", "no batchnorm is left that could fold into the layer before it")
def _bn_folded(g: Graph) -> bool:
    return not foldable(g)


@graph_pass("fold_batchnorm", requires=("linted",), ensures=("linted", "bn-folded"))
def fold_batchnorm(g: Graph) -> Graph:
    """Fold every foldable inference batchnorm into the conv or linear before it (ids unchanged)."""
    pairs = foldable(g)
    into = {layer: bn for bn, layer in pairs.items()}

    def fold(n: Node) -> Node:
        if n.id in into:
            bn = g.node(into[n.id])
            params = n.params
            if not any(p.name == "bias" for p in params):
                params = params + (ParamSpec("bias", (n.tensor_type.size(out_axis(n)),)),)
            attrs = n.attrs.replace(bias=True, folded_bn={"path": bn.path, "eps": float(bn.attrs["eps"])})
            return dataclasses.replace(n, attrs=attrs, params=params)
        if n.id in pairs:
            return dataclasses.replace(n, op=Op.IDENTITY, attrs={"folded_into": g.node(pairs[n.id]).path},
                                       params=())
        return n
    out = rewrite(g, fold)
    for bn in pairs:
        path = g.node(bn).path
        if path in out.modules:
            out.modules[path] = dataclasses.replace(out.modules[path], name=Op.IDENTITY.value)
    return out


@graph_pass("drop_folded", requires=("linted",), ensures=("linted",))
def drop_folded(g: Graph) -> Graph:
    """Remove the identities `fold_batchnorm` left (and their modules): what costs should count."""
    gone = [n for n in g if n.op is Op.IDENTITY and n.attrs.get("folded_into") is not None]
    out = rewrite(g, lambda n: Forward(n.inputs[0]) if n in gone else n)
    for n in gone:
        if n.path is not None and not any(m.path == n.path for m in out):
            drop_module(out, n.path)
    return out
