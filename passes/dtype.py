"""Cast a graph to another floating-point dtype, as `model.to(torch.bfloat16)` casts a module.

Every floating-point value and state_dict entry (inputs, activations, weights,
float buffers such as batchnorm's running statistics) takes the new dtype;
integer, boolean and complex tensors keep theirs (an embedding's ids, a
relative-position index, batchnorm's `num_batches_tracked`). Shapes, FLOPs and
the state_dict's keys do not change; every byte count does. `archc flops
--dtype bf16` and a file's `dtype bf16` declaration run this pass.

>>> import archc
>>> g = archc.loads('block B() { in x: [n = 2, c = 4]\\n y = batchnorm(x)\\n out y }').check().graph
>>> h = cast_floats(g, "bf16")
>>> str(h.node(1).type), [(p.name, p.dtype) for p in h.node(1).params][-2:], h.dtype
('bf16[n=2, c=4]', [('running_var', 'bf16'), ('num_batches_tracked', 'i64')], 'bf16')
"""

from __future__ import annotations

import dataclasses

from archc.ir.graph import Graph, Node
from archc.ir.rewrite import rewrite
from archc.passes.base import graph_pass
from archc.shapes.types import DTYPES, ParamSpec, TensorType, TupleType, Type


def _cast(dtype: str, to: str) -> str:
    return to if DTYPES[dtype].is_float else dtype


def _type(t: Type, to: str) -> Type:
    if isinstance(t, TupleType):
        return TupleType(tuple(dataclasses.replace(x, dtype=_cast(x.dtype, to)) for x in t.items))
    assert isinstance(t, TensorType)
    return dataclasses.replace(t, dtype=_cast(t.dtype, to))


def _spec(p: ParamSpec, to: str) -> ParamSpec:
    return dataclasses.replace(p, dtype=_cast(p.dtype, to))


@graph_pass("cast_floats", requires=("linted",), ensures=("linted",))
def cast_floats(g: Graph, dtype: str = "f32") -> Graph:
    """Every floating-point type and state entry of `g` in `dtype` (a floating-point dtype)."""
    if dtype not in DTYPES or not DTYPES[dtype].is_float:
        raise ValueError(f"cast_floats casts to a floating-point dtype, not {dtype!r}")

    def cast(n: Node) -> Node:
        return dataclasses.replace(n, type=_type(n.type, dtype), params=tuple(_spec(p, dtype) for p in n.params))
    out = rewrite(g, cast)
    out.dtype = dtype
    return out
