"""Elementwise math and scans: exp, log, sqrt, abs, clamp, minimum and maximum of two tensors (axes
broadcast by name), cumsum along an axis, and flip over named axes.

>>> import archc
>>> g = archc.loads('block B() { in x: [n = 2, c = 4]\\n in y: [c = 4]\\n out maximum(exp(x), y) }').check().graph
>>> str(g.node(g.outputs[0]).type), archc.loads('block B() { in x: [n = 2]\\n out cumsum(x, axis = n) }').flops().flops
('[n=2, c=4]', 0)
"""

from __future__ import annotations

import dataclasses

from archc.ops import costs as C
from archc.ops import glyphs as G
from archc.ops import rules as R
from archc.ops import saves as Sv
from archc.ops import torch_lowering as T
from archc.ops.elementwise import AxisAttrs, axis_shape
from archc.ops.facets import Expr, Glyph, LowerCtx, ShapeCtx, TorchLowering
from archc.ops.registry import Attrs, NoAttrs, OpDef, Trait, arg, define, derived
from archc.shapes.types import DTYPES, ParamSpec, TensorType, Type

# ---- unary math ------------------------------------------------------------------------------------


def _unary(key: str, name: str, function: str, symbol: str, real_float: bool, doc: str) -> None:
    triton = f"tl.{name}"

    def shape(ctx: ShapeCtx, ins: list[TensorType], a: NoAttrs) -> tuple[Type, tuple[ParamSpec, ...], NoAttrs]:
        (x,) = ins
        if real_float and not DTYPES[x.dtype].is_float:
            raise R.fail(f"{name} takes a floating-point tensor, not {x.dtype}: {x}", None, "type")
        out = x if DTYPES[x.dtype].kind != "complex" or name != "abs" else \
            TensorType(x.axes, "f32" if x.dtype == "c64" else "f64")  # |z| of a complex tensor is real
        return out, (), a

    def forward(a: NoAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
        return Expr(f"{function}({args[0].text})")

    define(OpDef(
        key=key, name=name, attrs=NoAttrs, tensors=1, traits=frozenset({Trait.POINTWISE}),
        shape=shape, cost=C.per_element, torch=TorchLowering(forward=forward, fresh=True),
        glyph=Glyph("func", symbol, G.FUNC), doc=doc, triton=lambda a, args: f"{triton}({args[0]})",
        saves=Sv.keeps_output if name in ("exp", "sqrt") else Sv.keeps_input))


_unary("EXP", "exp", "torch.exp", "exp", True, "eˣ elementwise (floating-point tensors)")
_unary("LOG", "log", "torch.log", "log", True, "natural logarithm elementwise (floating-point tensors)")
_unary("SQRT", "sqrt", "torch.sqrt", "√", True, "square root elementwise (floating-point tensors)")
_unary("ABS", "abs", "torch.abs", "|x|", False, "absolute value elementwise (of a complex tensor: its modulus, real)")
_unary("SIN", "sin", "torch.sin", "sin", True, "sine elementwise (floating-point tensors; Hyena's implicit filters)")
_unary("COS", "cos", "torch.cos", "cos", True, "cosine elementwise (floating-point tensors)")


# ---- clamp ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClampAttrs(Attrs):
    min: float | None = arg("float", None)
    max: float | None = arg("float", None)


def _clamp_shape(ctx: ShapeCtx, ins: list[TensorType], a: ClampAttrs) -> tuple[Type, tuple[ParamSpec, ...], ClampAttrs]:
    if a.min is None and a.max is None:
        raise R.fail("clamp needs min=, max= or both", None, "arg")
    if a.min is not None and a.max is not None and a.min > a.max:
        raise R.fail(f"clamp's min {a.min} is above its max {a.max}", "min", "value")
    if DTYPES[ins[0].dtype].kind == "complex":
        raise R.fail(f"clamp takes a real tensor, not {ins[0].dtype}", None, "type")
    return ins[0], (), a


def _clamp_forward(a: ClampAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    bounds = ", ".join(f"{k}={T.lit(v)}" for k, v in (("min", a.min), ("max", a.max)) if v is not None)
    return Expr(f"{args[0].atom()}.clamp({bounds})")


def _clamp_triton(a: ClampAttrs, args: list[str]) -> str:
    x = args[0]
    if a.min is not None:
        x = f"tl.maximum({x}, {float(a.min)!r})"
    if a.max is not None:
        x = f"tl.minimum({x}, {float(a.max)!r})"
    return x


define(OpDef(
    key="CLAMP", name="clamp", attrs=ClampAttrs, tensors=1, traits=frozenset({Trait.POINTWISE}),
    shape=_clamp_shape, cost=C.per_element, torch=TorchLowering(forward=_clamp_forward, fresh=True),
    glyph=Glyph("func", "clamp", G.FUNC), doc="limits every element to [min, max] (either may be left out)",
    triton=_clamp_triton, saves=Sv.keeps_input))


# ---- minimum and maximum of two tensors ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class PairAttrs(Attrs):
    what: str = derived("elementwise minimum or maximum")


def _pair(key: str, name: str, symbol: str) -> None:
    def shape(ctx: ShapeCtx, ins: list[TensorType], a: PairAttrs) -> tuple[Type, tuple[ParamSpec, ...], PairAttrs]:
        for t in ins:
            if DTYPES[t.dtype].kind == "complex":
                raise R.fail(f"{name} takes real tensors, not {t.dtype}", None, "type")
        return R.broadcast(ctx, ins[0], ins[1], name), (), a

    define(OpDef(
        key=key, name=name, attrs=PairAttrs, tensors=2, traits=frozenset({Trait.POINTWISE, Trait.JOIN}),
        shape=shape, cost=C.per_element, torch=TorchLowering(forward=T.call_aligned(name), fresh=True),
        glyph=Glyph("join", symbol, G.JOIN),
        doc=f"elementwise {name} of two tensors; axes broadcast by name",
        triton=lambda a, args: f"tl.{name}({args[0]}, {args[1]})", saves=Sv.all_inputs))


_pair("MINIMUM", "minimum", "min")
_pair("MAXIMUM", "maximum", "max")


# ---- cumsum and flip --------------------------------------------------------------------------------------


def _cumsum_forward(a: AxisAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    return Expr(f"{args[0].atom()}.cumsum({ins[0].index(a.axis)})")


define(OpDef(
    key="CUMSUM", name="cumsum", attrs=AxisAttrs, tensors=1, traits=frozenset({Trait.REDUCTION}),
    shape=axis_shape, cost=C.per_element, torch=TorchLowering(forward=_cumsum_forward, fresh=True),
    glyph=Glyph("reduce", "Σ…", G.POOL), doc="running sum along one axis; the type is unchanged", saves=Sv.nothing))


@dataclasses.dataclass(frozen=True, kw_only=True)
class FlipAttrs(Attrs):
    over: tuple[str, ...] = arg("axes")


def _flip_shape(ctx: ShapeCtx, ins: list[TensorType], a: FlipAttrs) -> tuple[Type, tuple[ParamSpec, ...], FlipAttrs]:
    R.distinct_axes(ins[0], a.over)
    return ins[0], (), a


def _flip_forward(a: FlipAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    return Expr(f"{args[0].atom()}.flip({T.lit(T.dims(ins[0], a.over))})")


define(OpDef(
    key="FLIP", name="flip", attrs=FlipAttrs, tensors=1, traits=frozenset({Trait.MOVEMENT}),
    shape=_flip_shape, cost=C.free, torch=TorchLowering(forward=_flip_forward),
    glyph=Glyph("bar", "flip", G.SHAPE), doc="reverses the order along the `over` axes", saves=Sv.nothing))
