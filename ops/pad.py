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
from archc.ops.facets import Expr, Glyph, LowerCtx, SaveCtx, Saved, ShapeCtx, TorchLowering
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
    """F.pad takes (before, after) pairs from the last dimension inwards, over trailing dimensions. Its
    other modes pad the last 1 to 3 dimensions of a tensor with one or two before them: elsewhere (`over`
    not trailing, more axes) the padded axes go last through `moved` (the others merged into torch's batch
    and channel dimensions), three at a time (each mode pads one axis after another alike)."""
    (x,) = ins
    margins = dict(zip(a.over, a.pads))
    first = min(x.index(name) for name in a.over)
    trailing = x.names[first:]
    kw = "" if a.mode == "constant" else f", mode={a.mode!r}"
    if a.mode == "constant" and a.value != 0.0:
        kw += f", value={T.lit(float(a.value))}"

    def pads(names: Any) -> str:
        flat = [ctx.size(p) for name in reversed(names) for p in margins.get(name, (0, 0))]
        return f"({', '.join(flat)})"

    moves = _moves(a, x)
    if not moves:
        return Expr(f"F.pad({args[0].text}, {pads(trailing)}{kw})")
    ctx.helper("moved")
    text = args[0].text
    for group, m in moves:
        text = f"moved(F.pad, {text}, {T.lit(m.dims)}, {m.batch}, {pads(group)}{kw})"
    return Expr(text)


def _moves(a: PadAttrs, x: TensorType) -> list[tuple[list[str], T.Moved]]:
    """How a non-constant pad moves the `over` axes where torch pads them (none: F.pad as it is): three
    at a time, in the tensor's order, each group last and the other axes torch's batch and channel."""
    trailing = x.names[min(x.index(name) for name in a.over):]
    n = len(trailing)
    if a.mode == "constant" or (set(trailing) == set(a.over) and 1 <= n <= 3 and len(x.names) in (n + 1, n + 2)):
        return []
    out = []
    for k in range(0, len(a.over), 3):
        group = [name for name in x.names if name in a.over][k:k + 3]
        others = tuple(i for i, name in enumerate(x.names) if name not in group)
        out.append((group, T.Moved(others + tuple(x.index(name) for name in group), len(others) - 1)))
    return out


def _saves(a: PadAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Reflect and replicate padding keep the input (their backward kernels read it); constant and
    circular padding keep nothing. Through `moved` (one group of axes), the input torch pads is the merge
    of the other axes, a copy where that is not a view (kept instead), and the result is moved back."""
    keeps = a.mode in ("reflect", "replicate")
    moves = _moves(a, ins[0])
    if len(moves) != 1:  # in place, or several groups: the input as it is (the moves not followed)
        return Sv.keeps_input(a, ins, out, ctx) if keeps else Saved()
    group, m = moves[0]
    copies, layout = m.saves(ins[0], R.tensor(out), ctx, len(group), False)
    if not keeps:
        return layout
    if copies:
        return dataclasses.replace(layout, new=(Sv.copy_of(ins[0]),))
    return dataclasses.replace(layout, inputs=(0,))


define(OpDef(
    key="PAD", name="pad", attrs=PadAttrs, tensors=1, traits=frozenset({Trait.MOVEMENT}),
    shape=_shape, cost=C.free, torch=TorchLowering(forward=_forward),
    glyph=Glyph("bar", "pad", G.SHAPE),
    doc="widens the `over` axes by margins: constant (value), reflect, replicate or circular", saves=_saves))
