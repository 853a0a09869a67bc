"""`pad`: widen named axes by a margin on each side, filled with a constant or from the tensor itself.

`pad(x, over = [h, w], pad = 3)` adds 3 on both sides of h and of w; `pad = [1, 2]` gives one
margin per axis, `pad = [[0, 1], [2, 3]]` a (before, after) pair per axis. `mode` is "constant"
(filled with `value`), "reflect" (mirrored without repeating the edge: each margin smaller than the
axis), "replicate" (the edge repeated) or "circular" (wrapped round: each margin at most the axis).

>>> import archc
>>> g = archc.loads('block B() { in x: [n = 1, h = 4, w = 4]\\n out pad(x, over = [w], pad = [[0, 3]]) }').check().graph
>>> str(g.node(g.outputs[0]).type)
'[n=1, h=4, w=7]'
"""

from __future__ import annotations

import dataclasses
from typing import Any

from archc.ops import costs as C
from archc.ops import glyphs as G
from archc.ops import rules as R
from archc.ops import saves as Sv
from archc.ops import torch_lowering as T
from archc.ops.facets import Expr, Glyph, LowerCtx, SaveCtx, Saved, ShapeCtx, TorchLowering, Unsupported
from archc.ops.registry import Attrs, OpDef, Trait, arg, define, derived
from archc.shapes import sizes as S
from archc.shapes.sizes import Size
from archc.shapes.types import ParamSpec, TensorType, Type

MODES = ("constant", "reflect", "replicate", "circular")


@dataclasses.dataclass(frozen=True, kw_only=True)
class PadAttrs(Attrs):
    over: tuple[str, ...] = arg("axes")
    pad: Any = arg("pad")
    mode: str = arg("str", "constant", MODES)
    value: float = arg("float", 0.0)
    pads: tuple[tuple[Size, Size], ...] = derived(())  # (before, after) per axis of `over`


def _shape(ctx: ShapeCtx, ins: list[TensorType], a: PadAttrs) -> tuple[Type, tuple[ParamSpec, ...], PadAttrs]:
    (x,) = ins
    R.distinct_axes(x, a.over)
    if isinstance(a.pad, str):
        raise R.fail(f"pad is a size, a list or [before, after] pairs, not \"{a.pad}\"", "pad", "value")
    pads = R.padding(a.pad, (1,) * len(a.over), (1,) * len(a.over), (1,) * len(a.over), len(a.over))
    if a.mode != "constant" and a.value != 0.0:
        raise R.fail(f"value fills the margins of mode \"constant\" only, not \"{a.mode}\"", "value", "value")
    out = x
    for name, (p0, p1) in zip(a.over, pads):
        R.check_min((p0, p1), "pad")
        size = x.size(name)
        if a.mode == "reflect":  # PyTorch: each margin smaller than the axis
            ctx.require_positive(S.add(size, S.mul(-1, p0)), f"'{name}' ({S.fmt(size)}) minus its reflect margin "
                                 f"{S.fmt(p0)} (reflection does not repeat the edge)", "pad")
            ctx.require_positive(S.add(size, S.mul(-1, p1)), f"'{name}' ({S.fmt(size)}) minus its reflect margin "
                                 f"{S.fmt(p1)} (reflection does not repeat the edge)", "pad")
        if a.mode == "circular":  # each margin at most the axis
            ctx.require_positive(S.add(S.add(size, 1), S.mul(-1, p0)), f"'{name}' ({S.fmt(size)}) plus 1 minus its "
                                 f"circular margin {S.fmt(p0)}", "pad")
            ctx.require_positive(S.add(S.add(size, 1), S.mul(-1, p1)), f"'{name}' ({S.fmt(size)}) plus 1 minus its "
                                 f"circular margin {S.fmt(p1)}", "pad")
        out = out.with_size(name, S.add(size, S.add(p0, p1)))
    return out, (), a.replace(pads=tuple(pads))


def _forward(a: PadAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    """F.pad takes (before, after) pairs from the last dimension inwards, over trailing dimensions."""
    (x,) = ins
    margins = dict(zip(a.over, a.pads))
    first = min(x.index(name) for name in a.over)
    trailing = x.names[first:]
    if a.mode != "constant":
        n = len(trailing)
        if set(trailing) != set(a.over) or not 1 <= n <= 3 or len(x.names) not in (n + 1, n + 2):
            raise Unsupported(f"pad mode \"{a.mode}\" on {x}: torch pads the last 1 to 3 axes of a tensor with one "
                              f"or two axes before them; the `over` axes {list(a.over)} must be those (rearrange "
                              "first)")
    flat: list[str] = []
    for name in reversed(trailing):
        p0, p1 = margins.get(name, (0, 0))
        flat += [ctx.size(p0), ctx.size(p1)]
    kw = "" if a.mode == "constant" else f", mode={a.mode!r}"
    if a.mode == "constant" and a.value != 0.0:
        kw += f", value={T.lit(float(a.value))}"
    return Expr(f"F.pad({args[0].text}, ({', '.join(flat)}){kw})")


def _saves(a: PadAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Reflect and replicate padding keep the input (their backward kernels read it); constant and
    circular padding keep nothing."""
    return Sv.keeps_input(a, ins, out, ctx) if a.mode in ("reflect", "replicate") else Saved()


define(OpDef(
    key="PAD", name="pad", attrs=PadAttrs, tensors=1, traits=frozenset({Trait.MOVEMENT}),
    shape=_shape, cost=C.free, torch=TorchLowering(forward=_forward),
    glyph=Glyph("bar", "pad", G.SHAPE),
    doc="widens the `over` axes by margins: constant (value), reflect, replicate or circular", saves=_saves))
