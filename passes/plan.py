"""The fusion planner: Graph -> Plan (ir/plan.py), the kernels the Triton target runs.

Rules, in graph order. A *fused* group has a head (the op that needs a kernel
of its own kind) and a chain of pointwise ops after it, its epilogue, each
reading the value the one before computed (used by nothing else and no
output) and keeping its iteration space; side inputs of any shape that
broadcasts along named axes are read from memory.

  kind       head                                        what fuses
  input      an input, `param` or `buffer`               (already in memory)
  pointwise  the first pointwise op of a chain            the chain
  norm       layernorm, rmsnorm, softmax                 a pointwise prologue + epilogue
  matmul     linear; a 1x1 stride-1 unpadded conv        epilogue (bias, BN, activation, residual)
  window     a depthwise conv; max/avg pooling           epilogue; after a depthwise conv, a layernorm
                                                         or rmsnorm over its channels and its epilogue
  attention  attention                                   epilogue
  mha        multihead_attention (features last)         epilogue (the output projection's)
  flash      einsum(q, k) -> scale/mask/bias -> softmax    epilogue
             -> einsum(p, v): attention written out
  reduce     mean, sum, amax                             -
  view       rearrange, flatten, expand, split, ...      - (a view of a value in memory)
  <op>       anything else (conv 3x3, concat, ...)       - (one torch call)

Pointwise ops are the ones with a Triton expression (`OpDef.triton`) and an
inference batchnorm with running statistics (a per-channel scale and shift: the
"folding" of a batchnorm into the conv before it, done at run time in the
conv's epilogue, so the state_dict keeps its keys). Only floating tensors
(f32, f16, bf16) fuse. Relabelling views (identity, rename, and dropout or
drop_path at inference) and rearranges that only reorder axes pass through a chain: a kernel
aligns every tensor it reads to its iteration axes by name, so a permutation costs nothing. A reduction over a prologue
computes the prologue once per element it loads.

The groups are put in an order where each reads only values of groups before
it (a topological order of the groups, earliest first node first); the values
crossing group boundaries, plus the outputs, are the ones written to memory.

>>> import archc
>>> g = archc.loads('block B() { in x: [c = 4]\\n a = relu(x)\\n out sigmoid(a) * a }').check().graph
>>> [(gr.kind, gr.nodes) for gr in plan(g).groups]
[('input', (0,)), ('pointwise', (1,)), ('pointwise', (2, 3))]
"""

from __future__ import annotations

import heapq
from typing import Any

from archc.ir.graph import Graph, Node
from archc.ir.plan import Group, Plan, crossing
from archc.ops.registry import Op, Trait
from archc.shapes import sizes as S
from archc.shapes.types import TensorType

FLOATS = frozenset({"f32", "f16", "bf16"})
FUSED = frozenset({"pointwise", "norm", "matmul", "window", "attention", "mha", "flash"})
_RELABEL = ("IDENTITY", "RENAME", "DROPOUT", "DROP_PATH")
_NORMS = ("LAYERNORM", "RMSNORM", "SOFTMAX")
_REDUCE = ("MEAN", "SUM", "AMAX")


def plan(g: Graph) -> Plan:
    """Group the nodes of `g` into kernels by the rules above (a valid plan: `lint_plan` finds nothing).

    >>> import archc
    >>> g = archc.loads('block B() { in x: [b = 1, c = 4]\\n y = linear(x, c -> 8)\\n out relu(y) }').check().graph
    >>> [(gr.name, gr.kind, gr.nodes) for gr in plan(g).groups]
    [('x', 'input', (0,)), ('y', 'matmul', (1, 2))]
    """
    users: dict[int, set[int]] = {}
    for n in g:
        for i in n.inputs:
            users.setdefault(i, set()).add(n.id)
    outputs = set(g.outputs)
    members: list[list[int]] = []
    kinds: list[str] = []
    heads: list[Node] = []
    tails: list[int] = []  # the value a fused group computes last (its result); -1 for others
    group_of: dict[int, int] = {}

    def start(n: Node, kind: str) -> None:
        group_of[n.id] = len(members)
        members.append([n.id])
        kinds.append(kind)
        heads.append(n)
        tails.append(n.id if kind in FUSED else -1)

    def join(n: Node, k: int) -> None:
        group_of[n.id] = k
        members[k].append(n.id)
        tails[k] = n.id

    def open_chain(n: Node, kinds_ok: frozenset[str]) -> int | None:
        """The group whose result `n` may extend: a fused group of one of `kinds_ok` whose last value
        is an input of `n` that only `n` reads, that is no output, with `n`'s iteration space."""
        for i in n.inputs:
            k = group_of[i]
            if (kinds[k] in kinds_ok and tails[k] == i and users.get(i) == {n.id} and i not in outputs
                    and same_space(g.node(i), n)):
                return k
        return None

    flash = flash_patterns(g, users, outputs)
    for n in g:
        key = n.op.key
        if n.id in flash:  # einsum -> score ops -> softmax -> einsum: one flash-attention kernel
            if flash[n.id] == n.id:
                start(n, "flash")
            else:
                join(n, group_of[flash[n.id]])
        elif n.op.has(Trait.SOURCE) and n.op in (Op.INPUT, Op.PARAM, Op.BUFFER):
            start(n, "input")
        elif (key in _RELABEL or permutes(g, n)) and floating(g, n):
            k = open_chain(n, FUSED)
            if k is None:
                start(n, "view")
            else:
                join(n, k)
        elif n.op.has(Trait.VIEW):
            start(n, "view")
        elif pointwise(g, n):
            k = open_chain(n, FUSED)
            if k is None:
                start(n, "pointwise")
            else:
                join(n, k)
        elif key in _NORMS and floating(g, n):
            k = open_chain(n, frozenset({"pointwise", "window"}))
            if k is not None and kinds[k] == "window" and not norms_channels(g, heads[k], n, members[k]):
                k = None
            if k is None:
                start(n, "norm")
            elif kinds[k] == "window":  # a depthwise conv's channels are whole in its kernel: normalise there
                join(n, k)
            else:  # the pointwise chain before it becomes its prologue
                join(n, k)
                kinds[k] = "norm"
        elif matmul(g, n):
            start(n, "matmul")
        elif window(g, n):
            start(n, "window")
        elif n.op is Op.ATTENTION and floating(g, n):
            start(n, "attention")
        elif n.op is Op.MHA and floating(g, n) and mha(g, n):
            start(n, "mha")
        elif key in _REDUCE and floating(g, n):
            start(n, "reduce")
        else:
            start(n, n.op.value)
    order = _order(g, members, group_of)
    groups = [Group(name, tuple(members[k]), kinds[k]) for k, name in zip(order, _names([heads[k] for k in order]))]
    return Plan(g, groups, frozenset(crossing(g, groups)))


def floating(g: Graph, n: Node) -> bool:
    """`n` and its inputs are floating tensors a kernel computes in (f32, f16, bf16)."""
    ts = [n.type] + [g.node(i).type for i in n.inputs]
    return all(isinstance(t, TensorType) and t.dtype in FLOATS for t in ts)


def pointwise(g: Graph, n: Node) -> bool:
    """An op a fused kernel computes per element: a Triton expression, or an inference batchnorm."""
    if not floating(g, n):
        return False
    if n.op is Op.BATCHNORM:
        return bool(n.attrs.track_running_stats)
    if n.op is Op.SCALE and n.attrs.size is not None:  # `x / L`: a size known at run time only, a torch op
        return False
    return n.op.has(Trait.POINTWISE) and n.op.triton is not None


def same_space(a: Node, b: Node) -> bool:
    """`b` iterates over the elements of `a`: the same axes by name and size in any order (a permutation),
    or the same sizes in the same order (a rename)."""
    ta, tb = a.type, b.type
    if not (isinstance(ta, TensorType) and isinstance(tb, TensorType) and len(ta.axes) == len(tb.axes)):
        return False
    if set(ta.names) == set(tb.names):
        return all(S.equal(ta.size(x.name), x.size) for x in tb.axes)
    return all(S.equal(x.size, y.size) for x, y in zip(ta.axes, tb.axes))


def permutes(g: Graph, n: Node) -> bool:
    """A rearrange that only reorders axes (no merge, split or new axis): in a kernel, a relabelling."""
    if n.op is not Op.REARRANGE or len(n.inputs) != 1:
        return False
    t, x = n.type, g.node(n.inputs[0]).type
    return (isinstance(t, TensorType) and isinstance(x, TensorType) and sorted(t.names) == sorted(x.names)
            and len(set(t.names)) == len(t.names) and all(S.equal(x.size(a.name), a.size) for a in t.axes))


def _ones(xs: Any) -> bool:
    return all(S.equal(x, 1) for x in xs)


def matmul(g: Graph, n: Node) -> bool:
    """A linear, or a conv that is a matmul over channels (1x1 kernel, stride 1, no padding, one group)."""
    if not floating(g, n):
        return False
    if n.op is Op.LINEAR:
        return True
    a = n.attrs
    return bool(n.op is Op.CONV and S.equal(a.groups, 1) and _ones(a.kernel) and _ones(a.strides)
                and all(S.equal(p, 0) for pair in a.pads for p in pair))


def norms_channels(g: Graph, conv: Node, n: Node, members: list[int]) -> bool:
    """`n` (a layernorm or rmsnorm) normalises exactly the channel axis of the depthwise conv heading a window
    group that has no norm yet (the ConvNeXt block: depthwise conv, to channels-last, layernorm)."""
    if conv.op is not Op.CONV or n.op is Op.SOFTMAX or any(g.node(i).op.key in _NORMS for i in members):
        return False
    t = n.type
    if not isinstance(t, TensorType):
        return False
    over = n.attrs.over or (t.names[-1],)
    return tuple(over) == ((conv.attrs.map[2] or conv.attrs.map[0]),)


def window(g: Graph, n: Node) -> bool:
    """A window kernel computes it: a depthwise conv (one input channel per group), or max/avg pooling
    (not ceil mode)."""
    if not floating(g, n):
        return False
    a = n.attrs
    if n.op not in (Op.CONV, Op.MAXPOOL, Op.AVGPOOL) or len(a.spatial) > 3:
        return False
    numbers = [*a.kernel, *a.strides, *(a.dilations or ()), *(p for pair in a.pads for p in pair)]
    if not all(S.is_concrete(v) for v in numbers):  # the window is unrolled: its taps must be numbers
        return False
    if n.op is Op.CONV:
        x = g.node(n.inputs[0]).type
        return bool(isinstance(x, TensorType) and S.equal(a.groups, x.size(a.map[0])) and not S.equal(a.groups, 1))
    return not a.ceil
    return False


def mha(g: Graph, n: Node) -> bool:
    """multihead_attention that the Triton target runs as kernels: features last, 2 or 3 axes, q, k and v
    with the same axes, a whole number of heads."""
    t = n.type
    ins = [g.node(i).type for i in n.inputs]
    chan = n.attrs.chan or (t.names[-1] if isinstance(t, TensorType) else None)
    return bool(isinstance(t, TensorType) and t.names[-1] == chan and len(t.axes) in (2, 3)
                and all(isinstance(x, TensorType) and x.names == t.names for x in ins)
                and S.is_concrete(n.attrs.heads))


_SCORE_OPS = ("SCALE", "MASKED_FILL", "ADD", "SUB", "MUL")


def contracted(g: Graph, n: Node) -> list[str]:
    """The axes a two-operand einsum sums out (in its inputs, not in its output)."""
    t = n.type
    if not isinstance(t, TensorType):
        return []
    names = [a for i in n.inputs for a in getattr(g.node(i).type, "names", ())]
    return sorted({a for a in names if a not in t.names})


def flash_patterns(g: Graph, users: dict[int, set[int]], outputs: set[int]) -> dict[int, int]:
    """Attention written out: `einsum(q, k)` summing one axis d, then single-use score ops (scale,
    masked_fill, a bias add or product), then softmax over the key axis j, then `einsum(p, v)` summing j,
    v with one axis e of its own. Every node of each match -> the first einsum's id."""
    out: dict[int, int] = {}

    def single(i: int, by: int) -> bool:
        return users.get(i) == {by} and i not in outputs

    for n in g:
        if n.op is not Op.EINSUM or len(n.inputs) != 2 or not floating(g, n):
            continue
        keys = contracted(g, n)
        p = next((g.node(i) for i in n.inputs if g.node(i).op is Op.SOFTMAX and [g.node(i).attrs.axis] == keys),
                 None)
        if p is None or not single(p.id, n.id) or n.inputs[0] == n.inputs[1]:
            continue
        j = keys[0]
        chain: list[int] = []
        x = g.node(p.inputs[0])
        while x.op.key in _SCORE_OPS and single(x.id, (chain[-1] if chain else p.id)):
            full = [i for i in x.inputs if same_space(g.node(i), x)]
            if not full or (x.op is not Op.MASKED_FILL and not floating(g, x)):
                break
            chain.append(x.id)
            x = g.node(full[0])
        e1 = x
        if (e1.op is not Op.EINSUM or len(e1.inputs) != 2 or not floating(g, e1) or len(contracted(g, e1)) != 1
                or not single(e1.id, chain[-1] if chain else p.id) or e1.inputs[0] == e1.inputs[1]):
            continue
        q, k = (g.node(i).type for i in e1.inputs)
        v = g.node(next(i for i in n.inputs if i != p.id)).type
        s, o = e1.type, n.type
        if not (isinstance(q, TensorType) and isinstance(k, TensorType) and isinstance(v, TensorType)
                and isinstance(s, TensorType) and isinstance(o, TensorType)):
            continue
        d = contracted(g, e1)[0]
        batch = [a for a in s.names if a != j and a in k.names]
        own = [a for a in v.names if a not in s.names]
        ok = (j in k.names and j not in q.names and j in s.names and len(own) == 1
              and sorted(o.names) == sorted([a for a in s.names if a != j] + own)
              and sorted(q.names) == sorted([a for a in s.names if a != j] + [d])
              and sorted(k.names) == sorted(batch + [j, d]) and sorted(v.names) == sorted(batch + [j] + own)
              and len([a for a in s.names if a not in k.names]) == 1)
        if ok:
            for i in [e1.id, *reversed(chain), p.id, n.id]:
                out[i] = e1.id
    return out


def _order(g: Graph, members: list[list[int]], group_of: dict[int, int]) -> list[int]:
    """The groups in a topological order of their dependencies, the earliest first node first."""
    needs: list[set[int]] = [set() for _ in members]
    for k, ids in enumerate(members):
        for i in ids:
            needs[k].update(group_of[s] for s in g.node(i).inputs if group_of[s] != k)
    waiting = [len(n) for n in needs]
    feeds: list[list[int]] = [[] for _ in members]
    for k, ns in enumerate(needs):
        for d in ns:
            feeds[d].append(k)
    ready = [(members[k][0], k) for k in range(len(members)) if not waiting[k]]
    heapq.heapify(ready)
    out: list[int] = []
    while ready:
        _, k = heapq.heappop(ready)
        out.append(k)
        for u in feeds[k]:
            waiting[u] -= 1
            if not waiting[u]:
                heapq.heappush(ready, (members[u][0], u))
    if len(out) != len(members):
        raise AssertionError("the planner made groups that depend on each other")
    return out


def _names(heads: list[Node]) -> list[str]:
    """A name per group from its first node: the user's name, the layer's path, or op_id; unique."""
    out: list[str] = []
    seen: set[str] = set()
    for n in heads:
        name = n.label or n.path or f"{n.op.value}_{n.id}"
        if name in seen:
            name = f"{name}_{n.id}"
        seen.add(name)
        out.append(name)
    return out


def head(plan_: Plan, group: Group) -> Node:
    """The node that gives a group its kind (its first node that is not part of a prologue)."""
    g = plan_.graph
    nodes = [g.node(i) for i in group.nodes]
    if group.kind == "norm":
        return next(n for n in nodes if n.op.key in _NORMS)
    return nodes[0]


__all__ = ["plan", "head", "floating", "pointwise", "matmul", "window", "same_space", "FUSED"]
