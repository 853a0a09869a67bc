"""Elementwise ops: activations, softmax over an axis, dropout, identity, scaling, and + − × joins.

>>> import archc.ops
>>> Op.RELU.torch.inplace, Op.SIGMOID.torch.inplace, Op.ADD.glyph.symbol
(True, False, '+')
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from archc.ops import costs as C
from archc.ops import glyphs as G
from archc.ops import rules as R
from archc.ops import saves as Sv
from archc.ops import torch_lowering as T
from archc.ops.facets import (
    ADD,
    MUL,
    Cost,
    Expr,
    Glyph,
    Kept,
    LowerCtx,
    SaveCtx,
    Saved,
    ShapeCtx,
    TorchLowering,
    Unsupported,
)
from archc.ops.registry import FLOAT, FLOATING, NUMBER, Attrs, NoAttrs, Op, OpDef, Trait, arg, define, derived
from archc.shapes import sizes as S
from archc.shapes.types import ParamSpec, TensorType, Type

_ACT_DOC = "elementwise; acts on every axis"


AnyAttrs = TypeVar("AnyAttrs", bound=Attrs)


def _same_shape(ctx: ShapeCtx, ins: list[TensorType], a: AnyAttrs) -> tuple[Type, tuple[ParamSpec, ...], AnyAttrs]:
    p = a.get("p")
    if p is not None and not 0 <= p <= 1:
        raise R.fail(f"p must be between 0 and 1, got {p}", "p", "value")
    return ins[0], (), a


# ---- activations -----------------------------------------------------------------------------------


def _inplace_kw(inplace: bool, ctx: LowerCtx, sep: str) -> str:
    """`inplace=True` where the op may overwrite its input and the class builder allows it here."""
    return f"{sep}inplace=True" if inplace and getattr(ctx, "inplace", False) else ""


def _activation(key: str, name: str, functional: str, module: str, symbol: str, inplace: bool, triton: str) -> None:
    def forward(a: NoAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
        return Expr(f"{functional}({args[0].text}{_inplace_kw(inplace, ctx, ', ')})")

    def build(a: NoAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
        return f"{module}({_inplace_kw(inplace, ctx, '')})"

    define(OpDef(
        key=key, name=name, attrs=NoAttrs, tensors=1, traits=frozenset({Trait.POINTWISE, Trait.ACTIVATION}),
        shape=_same_shape, cost=C.per_element, torch=TorchLowering(module=build, forward=forward, inplace=inplace),
        glyph=Glyph("func", symbol, G.FUNC), doc=_ACT_DOC, dtypes=FLOAT,
        triton=lambda a, args: triton.format(*args),
        saves=Sv.keeps_output if name in ("relu", "sigmoid", "tanh") else Sv.keeps_input))


_activation("RELU", "relu", "F.relu", "nn.ReLU", "ReLU", True, "tl.maximum({0}, 0.0)")
_activation("RELU6", "relu6", "F.relu6", "nn.ReLU6", "ReLU6", True, "tl.minimum(tl.maximum({0}, 0.0), 6.0)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class GeluAttrs(Attrs):
    approximate: str = arg("str", "none", ("none", "tanh"))


def _gelu_kw(a: GeluAttrs) -> str:
    return "" if a.approximate == "none" else f", approximate={a.approximate!r}"


def _gelu_module(a: GeluAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    return f"nn.GELU({_gelu_kw(a)[2:]})"


def _gelu_forward(a: GeluAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    return Expr(f"F.gelu({args[0].text}{_gelu_kw(a)})")


def _gelu_triton(a: GeluAttrs, args: list[str]) -> str:
    x = args[0]
    if a.approximate == "tanh":  # tanh(u) = 2·sigmoid(2u) - 1
        return f"{x} * tl.sigmoid(1.5957691216057308 * ({x} + 0.044715 * {x} * {x} * {x}))"
    return f"0.5 * {x} * (1.0 + tl.erf({x} * 0.7071067811865476))"


define(OpDef(
    key="GELU", name="gelu", attrs=GeluAttrs, tensors=1, traits=frozenset({Trait.POINTWISE, Trait.ACTIVATION}),
    shape=_same_shape, cost=C.per_element, torch=TorchLowering(module=_gelu_module, forward=_gelu_forward),
    glyph=Glyph("func", "GELU", G.FUNC), doc=_ACT_DOC, dtypes=FLOAT, triton=_gelu_triton, saves=Sv.keeps_input))

_activation("SILU", "silu", "F.silu", "nn.SiLU", "SiLU", True, "{0} * tl.sigmoid({0})")
_activation("SIGMOID", "sigmoid", "torch.sigmoid", "nn.Sigmoid", "σ", False, "tl.sigmoid({0})")
_activation("TANH", "tanh", "torch.tanh", "nn.Tanh", "tanh", False, "2.0 * tl.sigmoid(2.0 * {0}) - 1.0")
_activation("HARDSWISH", "hardswish", "F.hardswish", "nn.Hardswish", "hswish", True,
            "{0} * tl.minimum(tl.maximum({0} + 3.0, 0.0), 6.0) / 6.0")
_activation("HARDSIGMOID", "hardsigmoid", "F.hardsigmoid", "nn.Hardsigmoid", "hσ", True,
            "tl.minimum(tl.maximum({0} + 3.0, 0.0), 6.0) / 6.0")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LeakyReluAttrs(Attrs):
    slope: float = arg("float", 0.01)  # torch's negative_slope (binding refuses nan and the infinities)


def _leaky_module(a: LeakyReluAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    return f"nn.LeakyReLU({T.lit(a.slope) if a.slope != 0.01 else ''})"


def _leaky_forward(a: LeakyReluAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    # never in place: torch's in-place backward keeps the output and cannot undo a negative slope, its
    # out-of-place one keeps the input (what `saves` says, exactly)
    return Expr(f"F.leaky_relu({args[0].text}{', ' + T.lit(a.slope) if a.slope != 0.01 else ''})")


define(OpDef(
    key="LEAKY_RELU", name="leaky_relu", attrs=LeakyReluAttrs, tensors=1,
    traits=frozenset({Trait.POINTWISE, Trait.ACTIVATION}), shape=_same_shape, cost=C.per_element,
    torch=TorchLowering(module=_leaky_module, forward=_leaky_forward),
    glyph=Glyph("func", "LReLU", G.FUNC), doc=_ACT_DOC + "; x where x >= 0, else slope · x", dtypes=FLOAT,
    triton=lambda a, args: f"tl.where({args[0]} >= 0.0, {args[0]}, {args[0]} * {float(a.slope)!r})",
    saves=Sv.keeps_input))


# ---- softmax ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class AxisAttrs(Attrs):
    """An op along one named axis (softmax, cumsum)."""

    axis: str = arg("axis")


def axis_shape(ctx: ShapeCtx, ins: list[TensorType], a: AxisAttrs) -> tuple[Type, tuple[ParamSpec, ...], AxisAttrs]:
    """Along one axis, which must exist; the type is unchanged."""
    R.axis_of(ins[0], a.axis, "axis")
    return ins[0], (), a


def _softmax_cost(a: AxisAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    return Cost().add("softmax", S.mul(5, ins[0].numel()))


def _softmax_module(a: AxisAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    return f"nn.Softmax(dim={ins[0].index(a.axis)})"


def _softmax_forward(a: AxisAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    return Expr(f"{args[0].atom()}.softmax({ins[0].index(a.axis)})")


define(OpDef(
    key="SOFTMAX", name="softmax", attrs=AxisAttrs, tensors=1, traits=frozenset({Trait.REDUCTION}),
    shape=axis_shape, cost=_softmax_cost, torch=TorchLowering(module=_softmax_module, forward=_softmax_forward),
    glyph=Glyph("softmax", "◁", G.FUNC), doc="softmax along one axis", dtypes=FLOAT, saves=Sv.keeps_output))

# ---- dropout, stochastic depth, identity --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class DropoutAttrs(Attrs):
    p: float = arg("float", 0.5)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DropPathAttrs(Attrs):
    p: float = arg("float", 0.0)
    mode: str = arg("str", "row", ("row", "batch"))


def _dropout_module(a: DropoutAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    return f"nn.Dropout({T.lit(float(a.p))})"


def _dropout_forward(a: DropoutAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    return Expr(f"F.dropout({args[0].text}, {T.lit(float(a.p))}, self.training)")


def _drop_path_module(a: DropPathAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    ctx.helper("StochasticDepth")
    return f"StochasticDepth({T.lit(float(a.p))}, {a.mode!r})"


def _drop_path_forward(a: DropPathAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx,
                       args: list[Expr]) -> Expr:
    ctx.helper("StochasticDepth")
    return Expr(f"stochastic_depth({args[0].text}, {T.lit(float(a.p))}, {a.mode!r}, self.training)")


def _dropout_saves(a: DropoutAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Training on CPU, torch computes `x * noise` and keeps the noise (x's size and dtype; CUDA's fused
    kernel keeps a bool mask instead, 1 byte per element); at p = 0 the output is x itself."""
    if a.p == 0:
        return Sv.view(a, ins, out, ctx)  # x itself, laid out as it is
    return Saved(new=(Kept(ins[0].numel(), ins[0].dtype),))


def _drop_path_saves(a: DropPathAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """`x * keep` keeps `keep`: one value per row (mode "row") or one in all (mode "batch")."""
    if a.p == 0:
        return Sv.view(a, ins, out, ctx)  # x itself, laid out as it is
    return Saved(new=(Kept(ins[0].axes[0].size if a.mode == "row" and ins[0].axes else 1, ins[0].dtype),))


_RANDOM = frozenset({Trait.POINTWISE, Trait.RANDOM, Trait.VIEW})


def _passthrough(a: Attrs, args: list[str]) -> str:
    """The inference value of dropout, drop_path and identity: the input."""
    return args[0]


define(OpDef(
    key="DROPOUT", name="dropout", attrs=DropoutAttrs, tensors=1, traits=_RANDOM,
    shape=_same_shape, cost=C.free, torch=TorchLowering(module=_dropout_module, forward=_dropout_forward),
    glyph=Glyph("dropout", "drop", "#f5f5f5"), doc="dropout (identity at inference)", dtypes=FLOAT,
    triton=_passthrough, saves=_dropout_saves))

define(OpDef(
    key="DROP_PATH", name="drop_path", attrs=DropPathAttrs, tensors=1, traits=_RANDOM,
    shape=_same_shape, cost=C.free, torch=TorchLowering(module=_drop_path_module, forward=_drop_path_forward),
    glyph=Glyph("dropout", "droppath", "#f5f5f5"), doc="stochastic depth (identity at inference)", dtypes=FLOAT,
    triton=_passthrough, saves=_drop_path_saves))


def _identity_module(a: Attrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    return "nn.Identity()"


def _identity_forward(a: Attrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    return args[0]


IDENTITY_LOWERING: TorchLowering[Attrs] = TorchLowering(module=_identity_module, forward=_identity_forward)


@dataclasses.dataclass(frozen=True, kw_only=True)
class IdentityAttrs(Attrs):
    folded_into: str | None = derived(None)  # a batchnorm folded into the layer at this path (passes/fold_bn.py)


define(OpDef(
    key="IDENTITY", name="identity", attrs=IdentityAttrs, tensors=1, traits=frozenset({Trait.POINTWISE, Trait.VIEW}),
    shape=_same_shape, cost=C.free, torch=IDENTITY_LOWERING,
    glyph=Glyph("identity", "id", "#f5f5f5"), doc="passes its input through", triton=_passthrough,
    saves=Sv.view))

# ---- joins and scaling ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class JoinAttrs(Attrs):
    what: str = derived("sum")  # how messages name the op: `a + b` is "the sum"


def _join_shape(ctx: ShapeCtx, ins: list[TensorType], a: JoinAttrs) -> tuple[Type, tuple[ParamSpec, ...], JoinAttrs]:
    return R.broadcast(ctx, ins[0], ins[1], a.what), (), a


def _join(key: str, name: str, sym: str, prec: int, method: str, symbol: str, inplace: bool, doc: str) -> None:
    def forward(a: JoinAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
        assert isinstance(out, TensorType)
        if getattr(ctx, "inplace", False):  # `bn3.add_(x)`: the left side is a fresh tensor of the result's shape
            return Expr(f"{args[0].atom()}.{method}({T.aligned(ins[1], out, args[1], 0)})")
        left = T.aligned(ins[0], out, args[0], prec)
        right = T.aligned(ins[1], out, args[1], prec + 1)
        return Expr(f"{left} {sym} {right}", prec)

    define(OpDef(
        key=key, name=name, attrs=JoinAttrs, tensors=2, traits=frozenset({Trait.POINTWISE, Trait.JOIN}),
        shape=_join_shape, cost=C.per_element, torch=TorchLowering(forward=forward, inplace=inplace, fresh=True),
        glyph=Glyph("join", symbol, G.JOIN), doc=doc, dtypes=NUMBER,
        triton=lambda a, args: f"{args[0]} {sym} {args[1]}",
        saves=Sv.operands if name == "mul" else Sv.nothing))


_join("ADD", "add", "+", ADD, "add_", "+", True, "elementwise sum; axes broadcast by name")
_join("SUB", "sub", "-", ADD, "sub_", "−", True, "elementwise difference")
# (mul never in place: its gradient needs the left side as it was, which an in-place product overwrites)
_join("MUL", "mul", "*", MUL, "mul_", "×", False, "elementwise product")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScaleAttrs(Attrs):
    factor: Any = arg("number")
    # `x * L`, `x / (H * W)`: a size the generated forward reads at run time (an input's shape, a
    # constructor argument), multiplying or dividing; set by the elaborator, not an argument of scale()
    size: Any = derived(None)
    divide: bool = derived(False)


def _scale_literal(a: ScaleAttrs) -> str:
    f = a.factor
    if isinstance(f, bool) or not isinstance(f, (int, float)) or a.size is not None:
        raise Unsupported(f"a scale factor of {f if a.size is None else S.fmt(a.size)} is not a number")
    return T.lit(f)


def _scale_module(a: ScaleAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    ctx.helper("Scale")
    return f"Scale({_scale_literal(a)})"


def _scale_forward(a: ScaleAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    if a.size is not None:
        size = ctx.size(a.size)
        size = size if all(c.isalnum() or c in "._" for c in size) else f"({size})"  # a name or number as is
        return Expr(f"{args[0].at(MUL)} {'/' if a.divide else '*'} {size}", MUL)
    return Expr(f"{args[0].at(MUL)} * {_scale_literal(a)}", MUL)


define(OpDef(
    key="SCALE", name="scale", attrs=ScaleAttrs, tensors=1, traits=frozenset({Trait.POINTWISE}),
    shape=_same_shape, cost=C.per_element,
    torch=TorchLowering(module=_scale_module, forward=_scale_forward, fresh=True),
    glyph=Glyph("func", "·c", G.FUNC), doc="multiply by a constant", dtypes=FLOATING,
    triton=lambda a, args: f"{args[0]} * {float(_scale_literal(a))!r}", saves=Sv.nothing))

__all__ = ["Op"]
