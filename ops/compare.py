"""Comparisons and masks: greater, less, equal, not_equal, greater_equal and less_equal of two tensors
or of a tensor and a number (`not_equal(ids, value = 0)`), with bool results; logical_and, logical_or
and logical_not of bool tensors; `where(cond, a, b)` and `masked_fill(x, mask, value)`. Every op with
two or three tensors broadcasts their axes by name, as `add`.

>>> import archc
>>> src = 'block B() {{ in x: [n = 2, c = 4]\\n in y: [c = 4]\\n out {} }}'
>>> g = archc.loads(src.format('less(x, y)')).check().graph
>>> str(g.node(g.outputs[0]).type)
'bool[n=2, c=4]'
>>> g = archc.loads(src.format('masked_fill(x, greater(y, y), fill = "-inf")')).check().graph
>>> str(g.node(g.outputs[0]).type)
'[n=2, c=4]'
"""

from __future__ import annotations

import dataclasses

from archc.ops import costs as C
from archc.ops import glyphs as G
from archc.ops import rules as R
from archc.ops import saves as Sv
from archc.ops import torch_lowering as T
from archc.ops.facets import Expr, Glyph, LowerCtx, SaveCtx, Saved, ShapeCtx, TorchLowering
from archc.ops.registry import Attrs, NoAttrs, OpDef, Trait, arg, define, derived
from archc.shapes.types import DTYPES, ParamSpec, TensorType, Type


def _as_bool(t: TensorType) -> TensorType:
    return TensorType(t.axes, "bool")


# ---- comparisons ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class CompareAttrs(Attrs):
    value: float | int | None = arg("number", None)  # instead of a second tensor: ids != 0, x > 0.5


def _compare(key: str, name: str, function: str, symbol: str, ordered: bool) -> None:
    def shape(ctx: ShapeCtx, ins: list[TensorType], a: CompareAttrs
              ) -> tuple[Type, tuple[ParamSpec, ...], CompareAttrs]:
        for t in ins:
            if ordered and DTYPES[t.dtype].kind == "complex":
                raise R.fail(f"{name} orders its inputs, and complex numbers ({t.dtype}) have no order; "
                             "compare real parts or moduli (abs) instead", None, "type")
        if len(ins) == 2 and a.value is not None:
            raise R.fail("compares with a second tensor or with value=, not both", "value", "arg")
        if len(ins) == 1:
            if a.value is None:
                raise R.fail(f"compares two tensors, or a tensor with value= (as in {name}(ids, value = 0))",
                             None, "arg")
            return _as_bool(ins[0]), (), a
        return _as_bool(R.broadcast(ctx, ins[0], ins[1], name)), (), a

    def forward(a: CompareAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
        if len(ins) == 1:
            value = T.lit(a.value) if isinstance(a.value, (int, float)) else ctx.size(a.value)
            return Expr(f"torch.{function}({args[0].text}, {value})")
        return T.call_aligned(function)(a, ins, out, ctx, args)

    define(OpDef(
        key=key, name=name, attrs=CompareAttrs, tensors=(1, 2), traits=frozenset({Trait.POINTWISE, Trait.JOIN}),
        shape=shape, cost=C.per_element, torch=TorchLowering(forward=forward, fresh=True),
        glyph=Glyph("join", symbol, G.JOIN),
        doc=f"elementwise `{symbol}` of two tensors of one dtype (axes broadcast by name) or of a tensor and "
            "value=; a bool tensor" + ("" if ordered else " (complex allowed)"), saves=Sv.nothing))


_compare("GREATER", "greater", "gt", ">", True)
_compare("LESS", "less", "lt", "<", True)
_compare("GREATER_EQUAL", "greater_equal", "ge", "≥", True)
_compare("LESS_EQUAL", "less_equal", "le", "≤", True)
_compare("EQUAL", "equal", "eq", "=", False)
_compare("NOT_EQUAL", "not_equal", "ne", "≠", False)


# ---- logic on bool tensors ----------------------------------------------------------------------------


def _need_bool(t: TensorType, what: str, arg: str | None = None) -> None:
    if t.dtype != "bool":
        raise R.fail(f"{what} takes bool tensors, not {t.dtype}: {t} (compare first, as in greater(x, y))",
                     arg, "type")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LogicAttrs(Attrs):
    what: str = derived("logical and or or")


def _logic(key: str, name: str, symbol: str) -> None:
    def shape(ctx: ShapeCtx, ins: list[TensorType], a: LogicAttrs) -> tuple[Type, tuple[ParamSpec, ...], LogicAttrs]:
        for t in ins:
            _need_bool(t, name)
        return R.broadcast(ctx, ins[0], ins[1], name), (), a

    define(OpDef(
        key=key, name=name, attrs=LogicAttrs, tensors=2, traits=frozenset({Trait.POINTWISE, Trait.JOIN}),
        shape=shape, cost=C.per_element, torch=TorchLowering(forward=T.call_aligned(name), fresh=True),
        glyph=Glyph("join", symbol, G.JOIN), doc=f"elementwise `{symbol}` of two bool tensors; axes broadcast by name",
        saves=Sv.nothing))


_logic("LOGICAL_AND", "logical_and", "∧")
_logic("LOGICAL_OR", "logical_or", "∨")


def _not_shape(ctx: ShapeCtx, ins: list[TensorType], a: NoAttrs) -> tuple[Type, tuple[ParamSpec, ...], NoAttrs]:
    _need_bool(ins[0], "logical_not")
    return ins[0], (), a


def _not_forward(a: NoAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    return Expr(f"torch.logical_not({args[0].text})")


define(OpDef(
    key="LOGICAL_NOT", name="logical_not", attrs=NoAttrs, tensors=1, traits=frozenset({Trait.POINTWISE}),
    shape=_not_shape, cost=C.per_element, torch=TorchLowering(forward=_not_forward, fresh=True),
    glyph=Glyph("func", "¬", G.FUNC), doc="elementwise negation of a bool tensor", saves=Sv.nothing))


# ---- where and masked_fill ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class WhereAttrs(Attrs):
    what: str = derived("where")


def _where_shape(ctx: ShapeCtx, ins: list[TensorType], a: WhereAttrs) -> tuple[Type, tuple[ParamSpec, ...], WhereAttrs]:
    cond, x, y = ins
    _need_bool(cond, "where's condition")
    values = R.broadcast(ctx, x, y, "where")
    # the condition broadcasts with the values by name; its dtype is not theirs, so compare it as theirs
    out = R.broadcast(ctx, TensorType(cond.axes, values.dtype), values, "where")
    return out, (), a


def _where_forward(a: WhereAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    return Expr(f"torch.where({', '.join(T.aligned_args(ins, out, args))})")


def _where_saves(a: WhereAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """The condition, to route the gradient to a or b."""
    return Saved(inputs=(0,))


define(OpDef(
    key="WHERE", name="where", attrs=WhereAttrs, tensors=3, traits=frozenset({Trait.POINTWISE, Trait.JOIN}),
    shape=_where_shape, cost=C.per_element, torch=TorchLowering(forward=_where_forward, fresh=True),
    glyph=Glyph("join", "?:", G.JOIN),
    doc="`where(cond, a, b)`: a where the bool cond holds, else b (a and b of one dtype); axes broadcast by name",
    saves=_where_saves))


FILLS = ("-inf", "inf")


@dataclasses.dataclass(frozen=True, kw_only=True)
class MaskedFillAttrs(Attrs):
    value: float | None = arg("float", None)  # a finite number (binding refuses 1e999)
    fill: str | None = arg("str", None, FILLS)  # an infinity, spelt as a string: "-inf" for attention masks


def _masked_fill_shape(ctx: ShapeCtx, ins: list[TensorType], a: MaskedFillAttrs
                       ) -> tuple[Type, tuple[ParamSpec, ...], MaskedFillAttrs]:
    x, mask = ins
    _need_bool(mask, "masked_fill's mask")
    if a.value is None and a.fill is None:
        raise R.fail('masked_fill needs value= (a finite number) or fill = "-inf" (or "inf")', None, "arg")
    if a.value is not None and a.fill is not None:
        raise R.fail("masked_fill takes value= or fill=, not both", "fill", "arg")
    kind = DTYPES[x.dtype].kind
    if a.fill is not None and kind not in ("float", "complex"):
        raise R.fail(f"{a.fill} does not fit in the {x.dtype} tensor; give a finite value=", "fill", "type")
    if a.value is not None and kind == "int" and not float(a.value).is_integer():
        raise R.fail(f"value {a.value} does not fit in the {x.dtype} tensor (a whole number does)", "value", "value")
    if a.value is not None and kind == "bool" and a.value not in (0.0, 1.0):
        raise R.fail(f"value {a.value} does not fit in the bool tensor (0 or 1 does)", "value", "value")
    return R.broadcast(ctx, x, TensorType(mask.axes, x.dtype), "masked_fill"), (), a


def _masked_fill_forward(a: MaskedFillAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx,
                         args: list[Expr]) -> Expr:
    x, mask = T.aligned_args(ins, out, args)
    value = T.lit(float(a.fill)) if a.fill is not None else T.lit(a.value)
    if a.value is not None and DTYPES[ins[0].dtype].kind in ("int", "bool"):
        value = T.lit(int(a.value) if DTYPES[ins[0].dtype].kind == "int" else bool(a.value))
    return Expr(f"{x}.masked_fill({mask}, {value})")


def _masked_fill_saves(a: MaskedFillAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """The mask, to zero the gradient where it filled."""
    return Saved(inputs=(1,))


define(OpDef(
    key="MASKED_FILL", name="masked_fill", attrs=MaskedFillAttrs, tensors=2,
    traits=frozenset({Trait.POINTWISE, Trait.JOIN}),
    shape=_masked_fill_shape, cost=C.per_element, torch=TorchLowering(forward=_masked_fill_forward, fresh=True),
    glyph=Glyph("join", "fill", G.JOIN),
    doc='`masked_fill(x, mask, value = v)`: v where the bool mask holds, else x; `fill = "-inf"` (or "inf") for '
        "an infinity; axes broadcast by name", saves=_masked_fill_saves))
