"""`roll`: shift a tensor cyclically along named axes (a shifted-window transformer's cyclic shift).

`roll(x, shift = -3, over = [h, w])` moves every element 3 places back along `h`
and along `w`, wrapping round; the type is unchanged. One shift for every axis
or one per axis; a shift may be negative or larger than the axis.

>>> import archc
>>> m = archc.loads('block B() { in x: [n = 1, h = 4, w = 4]\\n out roll(x, shift = [1, -1], over = [h, w]) }')
>>> g = m.check().graph
>>> str(g.node(g.outputs[0]).type), m.flops().flops
('[n=1, h=4, w=4]', 0)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from archc.ops import costs as C
from archc.ops import glyphs as G
from archc.ops import rules as R
from archc.ops import saves as Sv
from archc.ops import torch_lowering as T
from archc.ops.facets import Expr, Glyph, LowerCtx, ShapeCtx, TorchLowering
from archc.ops.registry import Attrs, OpDef, Trait, arg, define
from archc.shapes.types import ParamSpec, TensorType, Type


@dataclasses.dataclass(frozen=True, kw_only=True)
class RollAttrs(Attrs):
    shift: Any = arg("ints")  # one shift, or one per axis of `over`; may be negative
    over: tuple[str, ...] = arg("axes")


def _shape(ctx: ShapeCtx, ins: list[TensorType], a: RollAttrs) -> tuple[Type, tuple[ParamSpec, ...], RollAttrs]:
    (x,) = ins
    R.distinct_axes(x, a.over)
    R.per_axis(a.shift, len(a.over), "shift")
    return x, (), a


def _forward(a: RollAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    shifts = [ctx.size(s) for s in R.per_axis(a.shift, len(a.over), "shift")]  # literals, or read off shapes
    shift = shifts[0] if len(shifts) == 1 else f"({', '.join(shifts)})"
    return Expr(f"torch.roll({args[0].text}, {shift}, {T.dim_lit(T.dims(ins[0], a.over))})")


define(OpDef(
    key="ROLL", name="roll", attrs=RollAttrs, tensors=1, traits=frozenset({Trait.MOVEMENT}),
    shape=_shape, cost=C.free, torch=TorchLowering(forward=_forward),
    glyph=Glyph("bar", "roll", G.SHAPE),
    doc="shifts cyclically along the `over` axes by `shift` (one, or one per axis)", saves=Sv.nothing))
