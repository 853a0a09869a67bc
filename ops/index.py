"""`index` and `gather`: read a tensor at integer positions along a named axis (a table lookup).

`index(x, ids, over = r)` replaces the axis `r` of `x` by the axes of `ids`, in place:
each element of `ids` picks one position of `r` (torch's `index_select`, `x[:, ids]`).
Swin's relative position bias is `index(table, relative_position_index, over = r)`:
a table [r=169, head=3] read at ids i64[tok=49, key=49] gives [tok=49, key=49, head=3].
The other axes of `x` must not be named like an axis of `ids` (rename one first).

`gather(x, ids, over = r)` picks along `r` element by element (torch's `gather`; `take_along_dim`
with named axes): the result has `x`'s axes, in `x`'s order, with `ids`' size along `r`;
out[.., j, ..] = x[.., ids[.., j, ..], ..]. Every axis of `ids` is an axis of `x`, with `x`'s size
except along `r`; an axis of `x` that `ids` lacks is broadcast (the same ids along it), and `ids`
without `r` picks one position per element and the result has no `r` (the logit of each label:
gather(logits, labels, over = class)).

`ids` are i32 or i64 positions 0 to n - 1 of `r` (a position out of range is an error torch raises
when the module runs); i32 ids that gather broadcasts are widened to i64 first (torch's CPU gather
misreads a broadcast i32 index). Neither op computes anything: 0 FLOPs; it reads `x` and `ids` and
writes its result, as other data movement does.

>>> import archc
>>> m = archc.loads('block B() { in x: [r = 5, head = 2]\\n in ids: i64[tok = 3, key = 3]\\n'
...                 ' out index(x, ids, over = r) }')
>>> g = m.check().graph
>>> str(g.node(g.outputs[0]).type), m.torch_source().splitlines()[-1].split("  #")[0].strip()
('[tok=3, key=3, head=2]', 'return x[ids]')
>>> m = archc.loads('block B() { in x: [n = 2, c = 4]\\n in labels: i64[n = 2]\\n out gather(x, labels, over = c) }')
>>> g = m.check().graph
>>> str(g.node(g.outputs[0]).type), m.torch_source().splitlines()[-1].split("  #")[0].strip()
('[n=2]', 'return x.gather(1, labels[:, None]).squeeze(1)')
"""

from __future__ import annotations

import dataclasses

from archc.ops import costs as C
from archc.ops import glyphs as G
from archc.ops import rules as R
from archc.ops.facets import Expr, Glyph, Kept, LowerCtx, SaveCtx, Saved, ShapeCtx, TorchLowering
from archc.ops.registry import Attrs, OpDef, Trait, arg, define
from archc.shapes.types import Axis, ParamSpec, TensorType, Type

IDS = ("i32", "i64")  # torch reads a u8 or bool index as a mask, and i8/i16 not at all


@dataclasses.dataclass(frozen=True, kw_only=True)
class IndexAttrs(Attrs):
    over: str = arg("axis")


def _ids(op: str, x: TensorType, ids: TensorType, over: str) -> None:
    """What both ops check first: integer ids, and `over` an axis of x."""
    if ids.dtype not in IDS:
        raise R.fail(f"the ids of {op} are an i32 or i64 tensor of positions along '{over}', not {ids.dtype}: {ids}",
                     None, "type")
    R.axis_of(x, over, "over")


def _index_shape(ctx: ShapeCtx, ins: list[TensorType], a: IndexAttrs) -> tuple[Type, tuple[ParamSpec, ...], IndexAttrs]:
    x, ids = ins
    _ids("index", x, ids, a.over)
    for name in ids.names:
        if name != a.over and x.has(name):
            raise R.fail(f"axis '{name}' of the ids {ids} is also an axis of {x}: the result would have it "
                         "twice; rename one first")
    i = x.index(a.over)
    return TensorType(x.axes[:i] + ids.axes + x.axes[i + 1:], x.dtype), (), a


def _index_forward(a: IndexAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    # one advanced index puts the ids' dimensions in place of the indexed one (numpy's rule)
    index = [":"] * ins[0].index(a.over) + [args[1].text]
    return Expr(f"{args[0].atom()}[{', '.join(index)}]")


def _index_saves(a: IndexAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """The ids, to scatter the gradient back into x's rows."""
    return Saved(inputs=(1,))


def _gather_shape(ctx: ShapeCtx, ins: list[TensorType], a: IndexAttrs
                  ) -> tuple[Type, tuple[ParamSpec, ...], IndexAttrs]:
    x, ids = ins
    _ids("gather", x, ids, a.over)
    for ax in ids.axes:
        if not x.has(ax.name):
            raise R.fail(f"axis '{ax.name}' of the ids {ids} is not an axis of {x}: gather's ids have x's axes "
                         f"(index puts new axes in place of '{a.over}')")
        if ax.name != a.over:
            ctx.require_equal(x.size(ax.name), ax.size, f"axis '{ax.name}' of x and of the ids")
    axes = tuple(Axis(ax.name, ids.size(ax.name)) if ax.name == a.over else ax
                 for ax in x.axes if ax.name != a.over or ids.has(a.over))
    return TensorType(axes, x.dtype), (), a


def _gather_forward(a: IndexAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    x, ids = ins
    d = x.index(a.over)
    e = args[1]
    mine = [n for n in x.names if ids.has(n)]  # ids' axes in x's order
    if list(ids.names) != mine:
        e = Expr(f"{e.atom()}.permute({', '.join(str(ids.index(n)) for n in mine)})")
    index = [":" if ids.has(n) else "None" for n in x.names]
    while index and index[-1] == ":":
        index.pop()
    if index:
        e = Expr(f"{e.atom()}[{', '.join(index)}]")
    if _broadcast(a, x, ids):  # gather does not broadcast: expand the ids
        if ids.dtype != "i64":  # torch's CPU gather misreads an i32 index with zero strides (torch 2.13)
            e = Expr(f"{e.atom()}.long()")
        sizes = ["-1" if ids.has(ax.name) or ax.name == a.over else ctx.size(ax.size) for ax in x.axes]
        e = Expr(f"{e.atom()}.expand({', '.join(sizes)})")
    picked = f"{args[0].atom()}.gather({d}, {e.text})"
    return Expr(picked if ids.has(a.over) else f"{picked}.squeeze({d})")


def _broadcast(a: IndexAttrs, x: TensorType, ids: TensorType) -> bool:
    """Whether the ids lack an axis of x besides `over` (the lowering expands them along it)."""
    return any(not ids.has(n) for n in x.names if n != a.over)


def _gather_saves(a: IndexAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """x and the ids (torch's gather backward keeps both, x for its sizes); broadcast i32 ids are an i64
    copy of them."""
    x, ids = ins
    if _broadcast(a, x, ids) and ids.dtype != "i64":
        return Saved(inputs=(0,), new=(Kept(ids.numel(), "i64"),))
    return Saved(inputs=(0, 1))


define(OpDef(
    key="INDEX", name="index", attrs=IndexAttrs, tensors=2, traits=frozenset({Trait.MOVEMENT}),
    shape=_index_shape, cost=C.free, torch=TorchLowering(forward=_index_forward, fresh=True),
    glyph=Glyph("bar", "[ids]", G.SHAPE),
    doc="`index(x, ids, over = r)`: x read at the integer ids along r; the axes of ids replace r, in place",
    saves=_index_saves))

define(OpDef(
    key="GATHER", name="gather", attrs=IndexAttrs, tensors=2, traits=frozenset({Trait.MOVEMENT}),
    shape=_gather_shape, cost=C.free, torch=TorchLowering(forward=_gather_forward, fresh=True),
    glyph=Glyph("bar", "gather", G.SHAPE),
    doc="`gather(x, ids, over = r)`: x picked along r element by element at the ids (of x's other axes; "
        "one missing is broadcast, and without r the result has no r)",
    saves=_gather_saves))
