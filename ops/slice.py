"""`slice`: part of a named axis, as Python's `start:stop:step` (the lowest modes of a spectrum, a crop).

`slice(x, over = h, start = 0, stop = 4)` keeps positions 0 to 3 of `h`;
`start = -4` counts from the end, as in Python (`x[..., -4:]`); `stop` left out
is the end, `step` (at least 1) strides. Unlike Python, a slice that runs past the
end of the axis is an error at the argument, not silently shorter: the size of
the result is known when the file is checked. A view: no data moves, no cost.

>>> import archc
>>> m = archc.loads('block B() { in x: [c = 2, h = 10]\\n out slice(x, over = h, start = -4, step = 2) }')
>>> g = m.check().graph
>>> str(g.node(g.outputs[0]).type), m.torch_source().splitlines()[-1].split("  #")[0].strip()
('[c=2, h=2]', 'return x[:, -4::2]')
"""

from __future__ import annotations

import dataclasses
from typing import Any

from archc.ops import costs as C
from archc.ops import glyphs as G
from archc.ops import rules as R
from archc.ops import saves as Sv
from archc.ops import torch_lowering as T
from archc.ops.facets import Expr, Glyph, LowerCtx, SaveCtx, Saved, ShapeCtx, TorchLowering
from archc.ops.registry import Attrs, OpDef, Trait, arg, define
from archc.shapes import sizes as S
from archc.shapes.sizes import Size
from archc.shapes.types import Axis, ParamSpec, TensorType, Type


@dataclasses.dataclass(frozen=True, kw_only=True)
class SliceAttrs(Attrs):
    over: str = arg("axis")
    start: Any = arg("ints", 0)  # a size, or a negative whole number counted from the end
    stop: Any = arg("ints", None)  # None: the end
    step: Any = arg("ints", 1)
    keep: bool = arg("bool", True)  # false: one position, and the axis goes (`x[h = 3]`)


def _bound(v: Any, n: Size) -> Size:
    """A start or stop as a position from 0 to n (a negative whole number counts from the end)."""
    if isinstance(v, int) and not isinstance(v, bool) and v < 0:
        return S.add(n, v)
    return v


def _shape(ctx: ShapeCtx, ins: list[TensorType], a: SliceAttrs) -> tuple[Type, tuple[ParamSpec, ...], SliceAttrs]:
    (x,) = ins
    R.axis_of(x, a.over, "over")
    for name in ("start", "stop", "step"):
        if isinstance(getattr(a, name), (list, tuple)):
            raise R.fail(f"{name} is one whole number (slice acts on one axis)", name, "arg")
    n = x.size(a.over)
    if S.is_concrete(a.step) and int(a.step) < 1:
        raise R.fail(f"step must be at least 1, not {a.step}", "step", "value")
    start = _bound(a.start, n)
    stop = n if a.stop is None else _bound(a.stop, n)
    if not a.keep and all(S.is_concrete(v) for v in (n, start)) and not 0 <= int(start) < int(n):
        raise R.fail(f"position {a.start} is outside '{a.over}' (its length is {n})", "start", "value")
    if all(S.is_concrete(v) for v in (n, start, stop)):  # say it plainly when the numbers are known
        if int(start) < 0:
            raise R.fail(f"start {a.start} is before the start of '{a.over}' (its length is {n})", "start", "value")
        if int(stop) > int(n):
            raise R.fail(f"stop {a.stop} is past the end of '{a.over}' (its length is {n})", "stop", "value")
        if int(stop) <= int(start):
            raise R.fail(f"the slice {a.start}:{a.stop} of '{a.over}' is empty", "stop", "value")
    ctx.require_positive(S.add(start, 1), f"1 + the slice's start within '{a.over}'", "start")
    ctx.require_positive(S.add(S.add(n, 1), S.mul(-1, stop)),
                         f"1 + the room between the slice's stop and the end of '{a.over}' ({S.fmt(n)})", "stop")
    ctx.require_positive(S.add(stop, S.mul(-1, start)), f"the slice's length along '{a.over}'", "stop")
    size = S.ceildiv(S.add(stop, S.mul(-1, start)), a.step)
    if not a.keep:
        if not (S.is_concrete(size) and int(size) == 1):
            raise R.fail(f"keep = false drops '{a.over}', so the slice must be one position, not {S.fmt(size)}",
                         "keep", "value")
        return TensorType(tuple(ax for ax in x.axes if ax.name != a.over), x.dtype), (), a
    axes = tuple(Axis(ax.name, size) if ax.name == a.over else ax for ax in x.axes)
    return TensorType(axes, x.dtype), (), a


def _text(v: Any, ctx: LowerCtx) -> str:
    return str(v) if isinstance(v, int) else ctx.size(v)


def _forward(a: SliceAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    (x,) = ins
    if not a.keep:  # one position, the axis dropped
        return Expr(f"{args[0].atom()}[{', '.join([':'] * x.index(a.over) + [_text(a.start, ctx)])}]")
    start = "" if isinstance(a.start, int) and a.start == 0 else _text(a.start, ctx)
    stop = "" if a.stop is None else _text(a.stop, ctx)
    step = "" if isinstance(a.step, int) and a.step == 1 else f":{_text(a.step, ctx)}"
    index = [":"] * x.index(a.over) + [f"{start}:{stop}{step}"]
    return Expr(f"{args[0].atom()}[{', '.join(index)}]")


def _saves(a: SliceAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """A view of part of x: every `step`-th position of the kept range (see saves.part)."""
    return Sv.part(ins[0], R.tensor(out), ctx, a.step)


define(OpDef(
    key="SLICE", name="slice", attrs=SliceAttrs, tensors=1, traits=frozenset({Trait.MOVEMENT, Trait.VIEW}),
    shape=_shape, cost=C.free, torch=TorchLowering(forward=_forward),
    glyph=Glyph("bar", "[a:b]", G.SHAPE),
    doc="keeps `start:stop:step` of the `over` axis (negative start/stop count from the end; past the end is an "
        "error); `keep = false` takes one position and drops the axis",
    saves=_saves))

__all__ = ["SliceAttrs", "T"]
