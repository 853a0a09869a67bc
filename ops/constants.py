"""Constant tensors, made from nothing: zeros, ones, full, arange, eye, and the triangular masks tril and triu.

Each takes its axes as keyword sizes, in order (`zeros(n = 4, c = 8)`), and a `dtype` (f32 unless said,
i64 for arange as in torch, bool for tril and triu). A size may be free: forward reads it off an input's
shape. They are not learned (no state_dict entries), cost nothing, and are made on torch's default
device (`torch.set_default_device` or a `with torch.device(...)` block moves them).

>>> import archc
>>> g = archc.loads('size L\\nblock B() { in x: [t = L]\\n out tril(a = L, b = L) }').check().graph
>>> str(g.node(g.outputs[0]).type), archc.loads('block B() { out zeros(n = 2, dtype = "i64") }').flops().flops
('bool[a=L, b=L]', 0)
"""

from __future__ import annotations

import dataclasses

from archc.ops import costs as C
from archc.ops import glyphs as G
from archc.ops import rules as R
from archc.ops import torch_lowering as T
from archc.ops.facets import Expr, Glyph, LowerCtx, ShapeCtx, TorchLowering
from archc.ops.registry import Attrs, OpDef, Trait, arg, define
from archc.shapes import sizes as S
from archc.shapes.sizes import Size
from archc.shapes.types import DTYPES, Axis, ParamSpec, TensorType, Type

_DTYPE_NAMES = tuple(DTYPES)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConstantAttrs(Attrs):
    """What every constant takes: its axes (keyword sizes, in order) and its dtype."""

    sizes: dict[str, Size] | None = arg("sizes_kw", None)
    dtype: str = arg("str", "f32", _DTYPE_NAMES)


@dataclasses.dataclass(frozen=True, kw_only=True)
class FullAttrs(ConstantAttrs):
    value: float = arg("float")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ArangeAttrs(ConstantAttrs):
    dtype: str = arg("str", "i64", _DTYPE_NAMES)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TriangleAttrs(ConstantAttrs):
    dtype: str = arg("str", "bool", _DTYPE_NAMES)
    diagonal: int = arg("ints", 0)  # as torch.tril's: 0 the main diagonal, 1 above it, -1 below


def _axes(name: str, ins: list[TensorType], a: ConstantAttrs, count: int | None, example: str
          ) -> TensorType:
    """The constant's type from its keyword sizes; `count` axes exactly, or at least one."""
    if ins:  # a sequence step hands its running tensor to the op: a constant has no use for it
        raise R.fail("makes a tensor from nothing and takes no tensor input; call it on its own line",
                     None, "arg")
    sizes = a.sizes or {}
    if not sizes or (count is not None and len(sizes) != count):
        want = "exactly one axis" if count == 1 else f"exactly {count} axes" if count else "at least one axis"
        raise R.fail(f"needs {want}, given as keyword sizes, as in {example}; got {len(sizes)}",
                     "sizes" if sizes else None, "arg")
    return TensorType(tuple(Axis(n, s) for n, s in sizes.items()), a.dtype)


def _fits(value: float, dtype: str, arg: str) -> None:
    kind = DTYPES[dtype].kind
    if kind == "int" and not float(value).is_integer():
        raise R.fail(f"{arg} {value} does not fit in the {dtype} tensor (a whole number does)", arg, "value")
    if kind == "bool" and value not in (0.0, 1.0):
        raise R.fail(f"{arg} {value} does not fit in the bool tensor (0 or 1 does)", arg, "value")


def _typed_value(value: float, dtype: str) -> str:
    kind = DTYPES[dtype].kind
    return T.lit(bool(value) if kind == "bool" else int(value) if kind == "int" else float(value))


def _dims(out: Type, ctx: LowerCtx) -> str:
    return ", ".join(ctx.size(ax.size) for ax in R.tensor(out).axes)


def _torch_dtype(out: Type) -> str:
    return DTYPES[R.tensor(out).dtype].torch


# ---- zeros, ones, full -----------------------------------------------------------------------------------


def _filled(key: str, name: str, function: str, symbol: str, doc: str) -> None:
    def shape(ctx: ShapeCtx, ins: list[TensorType], a: ConstantAttrs
              ) -> tuple[Type, tuple[ParamSpec, ...], ConstantAttrs]:
        return _axes(name, ins, a, None, f"{name}(n = 4, c = 8)"), (), a

    def forward(a: ConstantAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
        return Expr(f"torch.{function}({_dims(out, ctx)}, dtype={_torch_dtype(out)}{ctx.device()})")

    define(OpDef(
        key=key, name=name, attrs=ConstantAttrs, tensors=0, traits=frozenset({Trait.SOURCE}),
        shape=shape, cost=C.free, torch=TorchLowering(forward=forward, fresh=True),
        glyph=Glyph("func", symbol, G.SHAPE), doc=doc))


_filled("ZEROS", "zeros", "zeros", "0", "a tensor of zeros with the axes given as keyword sizes and a dtype")
_filled("ONES", "ones", "ones", "1", "a tensor of ones with the axes given as keyword sizes and a dtype")


def _full_shape(ctx: ShapeCtx, ins: list[TensorType], a: FullAttrs) -> tuple[Type, tuple[ParamSpec, ...], FullAttrs]:
    out = _axes("full", ins, a, None, "full(n = 4, value = 2.5)")
    _fits(a.value, a.dtype, "value")
    return out, (), a


def _full_forward(a: FullAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    dims = _dims(out, ctx) + ("," if len(R.tensor(out).axes) == 1 else "")
    return Expr(f"torch.full(({dims}), {_typed_value(a.value, a.dtype)}, dtype={_torch_dtype(out)}{ctx.device()})")


define(OpDef(
    key="FULL", name="full", attrs=FullAttrs, tensors=0, traits=frozenset({Trait.SOURCE}),
    shape=_full_shape, cost=C.free, torch=TorchLowering(forward=_full_forward, fresh=True),
    glyph=Glyph("func", "c", G.SHAPE), doc="a tensor filled with `value`, with the axes given as keyword sizes"))


# ---- arange and eye --------------------------------------------------------------------------------------


def _arange_shape(ctx: ShapeCtx, ins: list[TensorType], a: ArangeAttrs
                  ) -> tuple[Type, tuple[ParamSpec, ...], ArangeAttrs]:
    out = _axes("arange", ins, a, 1, "arange(n = 10)")
    if a.dtype == "bool" or DTYPES[a.dtype].kind == "complex":
        raise R.fail(f"counts 0, 1, 2, ... in an integer or floating-point dtype, not {a.dtype}",
                     "dtype", "type")
    return out, (), a


def _arange_forward(a: ArangeAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    return Expr(f"torch.arange({_dims(out, ctx)}, dtype={_torch_dtype(out)}{ctx.device()})")


define(OpDef(
    key="ARANGE", name="arange", attrs=ArangeAttrs, tensors=0, traits=frozenset({Trait.SOURCE}),
    shape=_arange_shape, cost=C.free, torch=TorchLowering(forward=_arange_forward, fresh=True),
    glyph=Glyph("func", "0…n", G.SHAPE), doc="0, 1, ..., n − 1 along the one axis given (`arange(n = 10)`); i64"))


def _eye_shape(ctx: ShapeCtx, ins: list[TensorType], a: ConstantAttrs
               ) -> tuple[Type, tuple[ParamSpec, ...], ConstantAttrs]:
    return _axes("eye", ins, a, 2, "eye(a = 4, b = 4)"), (), a


def _eye_forward(a: ConstantAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    return Expr(f"torch.eye({_dims(out, ctx)}, dtype={_torch_dtype(out)}{ctx.device()})")


define(OpDef(
    key="EYE", name="eye", attrs=ConstantAttrs, tensors=0, traits=frozenset({Trait.SOURCE}),
    shape=_eye_shape, cost=C.free, torch=TorchLowering(forward=_eye_forward, fresh=True),
    glyph=Glyph("func", "I", G.SHAPE), doc="ones on the diagonal of the two axes given, zeros elsewhere"))


# ---- tril and triu ---------------------------------------------------------------------------------------


def _triangle(key: str, name: str, symbol: str, doc: str) -> None:
    def shape(ctx: ShapeCtx, ins: list[TensorType], a: TriangleAttrs
              ) -> tuple[Type, tuple[ParamSpec, ...], TriangleAttrs]:
        out = _axes(name, ins, a, 2, f"{name}(a = L, b = L)")
        if isinstance(a.diagonal, list):
            raise R.fail(f"diagonal is one whole number, not the list {a.diagonal}", "diagonal", "value")
        return out, (), a

    def forward(a: TriangleAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
        diagonal = "" if S.is_concrete(a.diagonal) and int(a.diagonal) == 0 else ctx.size(a.diagonal)
        return Expr(f"torch.ones({_dims(out, ctx)}, dtype={_torch_dtype(out)}{ctx.device()}).{name}({diagonal})")

    define(OpDef(
        key=key, name=name, attrs=TriangleAttrs, tensors=0, traits=frozenset({Trait.SOURCE}),
        shape=shape, cost=C.free, torch=TorchLowering(forward=forward, fresh=True),
        glyph=Glyph("func", symbol, G.SHAPE), doc=doc))


_triangle("TRIL", "tril", "◣", "true on and below the diagonal (+ diagonal) of the two axes given: a causal mask")
_triangle("TRIU", "triu", "◥", "true on and above the diagonal (+ diagonal) of the two axes given")
