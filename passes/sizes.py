"""Constant folding of size arithmetic: give the free sizes values and make the graph concrete.

A graph checked with `--symbolic` carries sizes such as `⌊(H - 1)/2⌋ + 1` in
its types, attributes (a conv's padding, a linear's output size) and parameter
shapes. `bind_sizes` puts values in for the free sizes (those given, else the
defaults recorded in `Graph.sizes`, which `--set` changes) and lets the size
arithmetic fold: every type, attribute and parameter shape that depended only
on them becomes an int. Size math goes through `archc.shapes.sizes` only.

>>> import archc
>>> src = 'size H = 8\\nblock B() { in x: [b = 1, c = 2, h = H, w = 4]\\n out maxpool(x, k = 2) }'
>>> g = archc.loads(src).check(symbolic=True).graph
>>> str(g.node(1).type), str(bind_sizes(g).node(1).type), str(bind_sizes(g, {"H": 16}).node(1).type)
('[b=1, c=2, h=⌊H/2⌋, w=2]', '[b=1, c=2, h=4, w=2]', '[b=1, c=2, h=8, w=2]')
"""

from __future__ import annotations

import dataclasses

from archc.ir.graph import Graph, Node
from archc.ir.rewrite import rewrite
from archc.passes.base import graph_pass, prop
from archc.shapes import sizes as S
from archc.shapes.types import TensorType, TupleType, Type


def _type(t: Type, values: dict[str, int]) -> Type:
    if isinstance(t, TupleType):
        return TupleType(tuple(_tensor(x, values) for x in t.items))
    return _tensor(t, values)


def _tensor(t: TensorType, values: dict[str, int]) -> TensorType:
    return dataclasses.replace(t, axes=tuple(dataclasses.replace(a, size=S.subs(a.size, values)) for a in t.axes))


def _concrete_type(t: Type) -> bool:
    items = t.items if isinstance(t, TupleType) else (t,)
    return all(S.is_concrete(a.size) for x in items for a in x.axes)


@prop("concrete", "every axis size and parameter shape is an integer")
def is_concrete(g: Graph) -> bool:
    """Whether every size in the graph's types and parameter shapes is an integer.

    >>> import archc
    >>> is_concrete(archc.loads('block B() { in x: [c = 4]\\n out relu(x) }').check().graph)
    True
    """
    return all(_concrete_type(n.type) and all(S.is_concrete(d) for p in n.params for d in p.shape) for n in g)


@graph_pass("bind_sizes", requires=("linted",), ensures=("linted",))
def bind_sizes(g: Graph, values: dict[str, int] | None = None) -> Graph:
    """Substitute values for free sizes (`values`, then the graph's defaults) everywhere; concrete
    when every free size gets one."""
    given = {k: v for k, v in g.sizes.items() if v is not None}
    given.update(values or {})

    def bind(n: Node) -> Node:
        return dataclasses.replace(
            n, type=_type(n.type, given), attrs=S.subs_all(n.attrs, given),
            params=tuple(dataclasses.replace(p, shape=tuple(S.subs(d, given) for d in p.shape)) for p in n.params))
    out = rewrite(g, bind)
    out.sizes = {k: given.get(k, v) for k, v in g.sizes.items()}
    return out
