"""What PyTorch lowerings share: Python literals, construction-time ints, torch's layouts.

Each op's own lowering lives with its definition (`OpDef.torch`, a
`facets.TorchLowering`). Tensors are laid out as their types say: the axes in
order, one dimension each. A lowering that needs torch's layout (channels at
dim 1 for a conv, features last for a linear) moves the axes there and back
(`spatial`, `Moved`) or raises `Unsupported`, rather than emitting wrong code. Sizes reach the text
through `ctx.const` (a construction-time integer) and `ctx.size` (a run-time
size expression).

>>> import archc.ops
>>> from archc.ops.registry import NoAttrs, Op
>>> Op.RELU.torch.forward(NoAttrs(), [], None, None, [Expr("bn1")]).text
'F.relu(bn1)'
>>> lit((3, 3)), kwargs([("stride", 2, 1), ("bias", True, True)]), lit(float("-inf"))
('(3, 3)', ', stride=2', "float('-inf')")
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from archc.ops import saves as Sv
from archc.ops.facets import ADD, ATOM, MUL, Expr, LowerCtx, SaveCtx, Saved, TorchLowering, Unsupported
from archc.ops.registry import Op, OpDef
from archc.shapes.types import TensorType

__all__ = ["ADD", "ATOM", "MUL", "Expr", "Unsupported", "LOWERINGS"]


class _Lowerings(Mapping[OpDef[Any], TorchLowering[Any]]):
    """Every op's lowering, read off its definition (`LOWERINGS[node.op]`)."""

    def __getitem__(self, op: OpDef[Any]) -> TorchLowering[Any]:
        return op.torch

    def __iter__(self) -> Any:
        return iter(Op)

    def __len__(self) -> int:
        return len(Op)


LOWERINGS = _Lowerings()


def lit(v: Any) -> str:
    """A Python literal for an attribute value (ints, floats, bools, strings, tuples)."""
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else f"float({str(v)!r})"  # inf, nan: no Python literal
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, (list, tuple)):
        items = [lit(x) for x in v]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    raise Unsupported(f"cannot write the value {v!r} in Python")


def ints(ctx: LowerCtx, xs: Any, what: str) -> Any:
    """Construction-time integers; one int when every axis has the same value."""
    vals = tuple(ctx.const(x, what) for x in xs)
    return vals[0] if len(set(vals)) == 1 else vals


def kwargs(pairs: list[tuple[str, Any, Any]]) -> str:
    """`name=value` for each value that differs from torch's default."""
    return "".join(f", {k}={lit(v)}" for k, v, default in pairs if v != default)


@dataclasses.dataclass(frozen=True)
class Moved:
    """Where a windowed op's axes are not in torch's layout, how the generated module moves them (the
    `moved` helper): the input's dimensions permuted to `dims` (the other axes, then the channel axis if
    any, then the spatial ones in the op's order), its first `batch` dimensions flattened into one batch
    dimension (0: one of size 1 added; -1: no channel axis either, a batch and a channel of size 1
    added), the op applied, and the result moved back."""

    dims: tuple[int, ...]
    batch: int

    def kwargs(self) -> str:
        return f", dims={lit(self.dims)}, batch={self.batch}"

    def saves(self, x: TensorType, out: TensorType, ctx: SaveCtx, n: int, keeps_format: bool,
              padded: bool = False) -> tuple[bool, Saved]:
        """What these moves mean for training memory (the op's `saves` rule): whether merging the batch
        dimensions copies `x` (the op then keeps that copy, not `x`), and the layout of the op's output.
        Torch's result (of `n` spatial axes) is contiguous, or channels-last where its input is and the
        op keeps that memory format (`keeps_format`: a conv of 2 or 3 spatial axes, a pool; a 1-D pool
        keeps [batch, length, channel] too), F.pad first (`padded`) keeping channels-last in 4 or 5
        dimensions only; moved back, it is dense in that order.

        >>> from archc.shapes.types import Axis
        >>> class Ctx: contiguous, layouts = (True,), (((0, 1, 2), frozenset(), True),)
        >>> x = TensorType((Axis("b", 2), Axis("l", 9), Axis("c", 4)), "f32")
        >>> copies, saved = Moved((0, 2, 1), 1).saves(x, x, Ctx(), 1, False)
        >>> copies, saved.order  # torch's [b, c, l] result, moved back: c before l in memory
        (False, (0, 2, 1))
        """
        dims, batch, names = self.dims, self.batch, x.names
        if batch < 0:  # only the op's own axes: torch's result [1, 1, *spatial] is dense in `dims`' order
            moved = Sv.moves_data(out, list(dims))
            return False, Saved(contiguous=not moved, order=tuple(dims) if moved else None)
        groups = [[names[d] for d in dims[:batch]]] + [[names[d]] for d in dims[batch:]]
        ones = {ax.name for ax in x.axes if Sv.one(ax.size)}
        known = Sv.layout(ctx, 0, names)
        m = len(groups)
        order: Sequence[int] = range(m)  # the dimensions of the input torch's op reads, in memory order
        if known is not None:
            merged = Sv.relayout(known[0], groups, ones, known[1], known[2])
            copies = merged.view is None
            if not copies and merged.order is not None:
                order = merged.order
        else:  # a layout not known (a broadcast): a merge of two axes longer than 1 copies
            copies = len([n for n in groups[0] if n not in ones]) > 1
        big = [not all(n in ones for n in g) for g in groups]
        last = [0, *range(2, m), 1]  # channels-last: [batch, *spatial, channel] in memory

        def live(o: Sequence[int]) -> list[int]:
            return [j for j in o if big[j]]

        channels_last = (keeps_format and m == n + 2 and not (padded and m == 3)
                         and live(order) == live(last) != live(range(m)))
        if not big[0]:  # a batch of 1: torch reads its stride, which says channels-last only for one axis
            # outside the others in memory (not a dimension reshape adds or merges: an unbatched input)
            lead = groups[0]
            memory = known[0] if known is not None else []
            channels_last = channels_last and len(lead) == 1 and lead[0] in memory and all(
                memory.index(lead[0]) < memory.index(name) for g in groups[1:] for name in g if name not in ones)
        back: list[int] = []
        for j in (last if channels_last else range(m)):
            back += list(dims[:batch]) if j == 0 else [dims[batch + j - 1]]
        moved = Sv.moves_data(out, back)
        return copies, Saved(contiguous=not moved, order=tuple(back) if moved else None)


def spatial(a: Any, x: TensorType, channel: str | None = None) -> tuple[int, Moved | None]:
    """The spatial rank n of a windowed op, and how its axes move into torch's layout: None where they
    are there already, [batch?, channel?, *spatial] (the spatial axes last and in order, the channel
    axis, if any, right before them; a pool takes one or two axes before them)."""
    names = list(a.spatial)
    n = len(names)
    lead = len(x.names) - n
    torch_layout = tuple(x.names[lead:]) == tuple(names) and lead in (1, 2)
    if channel is not None:
        torch_layout = torch_layout and x.names[lead - 1] == channel
    if torch_layout:
        return n, None
    inner = ([channel] if channel is not None else []) + names
    others = tuple(i for i, name in enumerate(x.names) if name not in inner)
    dims = others + tuple(x.index(name) for name in inner)
    # a conv flattens every other axis into its batch; a pool keeps the last one as its channels
    return n, Moved(dims, len(others) if channel is not None else max(len(others) - 1, 0))


def moves(a: Any, x: TensorType, channel: str | None = None) -> Moved:
    """The moves of `spatial`, or none (the dimensions in order, the batch axis if any as torch's) where
    the axes are in torch's layout already: what a windowed op's saves rule reads."""
    n, moved = spatial(a, x, channel)
    return moved or Moved(tuple(range(len(x.axes))), len(x.axes) - n - 1)


def pads(a: Any, ctx: LowerCtx, what: str) -> Any:
    if a.get("pad") == "same":
        return "same"
    pads = a.pads
    if asymmetric(a, ctx):
        raise Unsupported(f"{what} with asymmetric padding {[list(p) for p in pads]} is not lowered yet")
    return ints(ctx, [a for a, _ in pads], "padding")


def asymmetric(a: Any, ctx: LowerCtx) -> bool:
    """A windowed op whose explicit padding differs before and after along some axis (torch's modules
    take one padding per axis: such an op pads first, with `F.pad`)."""
    return a.get("pad") != "same" and any(ctx.const(p0, "padding") != ctx.const(p1, "padding") for p0, p1 in a.pads)


def pad_first(a: Any, ctx: LowerCtx) -> str:
    """`F.pad`'s pad argument for a windowed op's padding: (before, after) per axis, the last axis first."""
    return lit(tuple(ctx.const(p, "padding") for p0, p1 in reversed(a.pads) for p in (p0, p1)))


def dims(x: TensorType, names: Any) -> tuple[int, ...]:
    return tuple(x.index(n) for n in names)


def dim_lit(dims: tuple[int, ...]) -> str:
    return str(dims[0]) if len(dims) == 1 else lit(dims)


def per(v: Any, n: int) -> list[Any]:
    return list(v) if isinstance(v, (list, tuple)) else [v] * n


def aligned(x: TensorType, out: TensorType, e: Expr, need: int) -> str:
    """`e` (of type x) with size-1 dimensions inserted so torch's right-aligned broadcasting
    pairs its axes with the same-named axes of `out` (named broadcasting)."""
    pos = [out.index(n) for n in x.names]
    if not pos or pos == list(range(len(out.names) - len(pos), len(out.names))):
        return e.at(need)
    index = [":" if out.names[i] in x.names else "None" for i in range(pos[0], len(out.names))]
    while index and index[-1] == ":":
        index.pop()
    return f"{e.atom()}[{', '.join(index)}]"


def aligned_args(ins: list[TensorType], out: Any, args: list[Expr]) -> list[str]:
    """The inputs' texts, each aligned (see `aligned`) with the output, whose type is one tensor's."""
    assert isinstance(out, TensorType)
    return [aligned(t, out, e, ATOM) for t, e in zip(ins, args)]


def call_aligned(function: str) -> Callable[..., Expr]:
    """The forward lowering `torch.<function>(a, b)` of a two-tensor op whose axes broadcast by name
    (comparisons, logic, minimum and maximum)."""
    def forward(a: Any, ins: list[TensorType], out: Any, ctx: LowerCtx, args: list[Expr]) -> Expr:
        return Expr(f"torch.{function}({', '.join(aligned_args(ins, out, args))})")
    return forward
