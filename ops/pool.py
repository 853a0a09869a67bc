"""Windows and reductions: max/avg pooling, adaptive pooling, and mean/sum/amax over named axes.

>>> import archc.ops
>>> Op.MAXPOOL.glyph.symbol, Op.MEAN.glyph.symbol, Trait.REDUCTION in Op.SUM.traits
('Max', '𝔼', True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from archc.ops import glyphs as G
from archc.ops import rules as R
from archc.ops import saves as Sv
from archc.ops import torch_lowering as T
from archc.ops.facets import Cost, Expr, Glyph, Kept, LowerCtx, SaveCtx, Saved, ShapeCtx, TorchLowering
from archc.ops.registry import FLOAT, FLOATING, NUMBER, REAL, Attrs, Op, OpDef, Trait, WindowAttrs, arg, define, derived
from archc.shapes import sizes as S
from archc.shapes.sizes import Size
from archc.shapes.types import Axis, ParamSpec, TensorType, Type

# ---- max and average pooling -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class MaxPoolAttrs(WindowAttrs):
    k: Any = arg("sizes")
    stride: Any = arg("sizes", None)
    pad: Any = arg("pad", 0)
    dilation: Any = arg("sizes", 1)
    ceil: bool = arg("bool", False)
    over: tuple[str, ...] | None = arg("axes", None)


@dataclasses.dataclass(frozen=True, kw_only=True)
class AvgPoolAttrs(WindowAttrs):
    k: Any = arg("sizes")
    stride: Any = arg("sizes", None)
    pad: Any = arg("pad", 0)
    ceil: bool = arg("bool", False)
    count_include_pad: bool = arg("bool", True)
    over: tuple[str, ...] | None = arg("axes", None)


PoolAttrs = TypeVar("PoolAttrs", MaxPoolAttrs, AvgPoolAttrs)


def _pool_shape(ctx: ShapeCtx, ins: list[TensorType], a: PoolAttrs) -> tuple[Type, tuple[ParamSpec, ...], PoolAttrs]:
    (x,) = ins
    idx = R.spatial_axes(x, a.over, 1)
    n = len(idx)
    k = R.per_axis(a.k, n, "k")
    s = R.per_axis(a.stride if a.stride is not None else a.k, n, "stride")
    d = R.per_axis(a.get("dilation", 1), n, "dilation")
    R.check_min(k, "k", 1)
    R.check_min(s, "stride", 1)
    pads = R.padding(a.pad, k, d, s, n)
    out = x
    for j, i in enumerate(idx):
        ax = x.axes[i]
        p0, p1 = pads[j]
        for p in (p0, p1):
            # PyTorch's rule: pad <= k // 2, of the kernel size itself whatever the dilation.
            if S.is_concrete(p) and S.is_concrete(k[j]) and int(p) > int(k[j]) // 2:
                raise R.fail(f"pooling pad {p} exceeds half the kernel size {k[j]} (PyTorch rejects it)",
                             "pad", "value")
        if n == 3 and isinstance(a, AvgPoolAttrs):  # avg_pool3d (alone) wants a window in the unpadded input
            ctx.require_positive(S.add(ax.size, S.add(1, S.mul(-1, k[j]))),
                                 f"3-D average pooling input along '{ax.name}' ({S.fmt(ax.size)}) "
                                 f"minus the kernel {k[j]}, plus 1", "k")
        o = R.window_out(ax.size, k[j], s[j], p0, p1, d[j], a.ceil)
        ctx.require_positive(o, f"pooling output along '{ax.name}' (input {S.fmt(ax.size)}, k={k[j]})", "k")
        out = out.with_size(ax.name, o)
    return out, (), a.replace(**R.window(x, idx, k, s, d, pads))


def _maxpool_cost(a: MaxPoolAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    return Cost().add("pool", S.mul(R.tensor(out).numel(), S.add(S.prod(a.kernel), -1)))


def _avgpool_cost(a: AvgPoolAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    return Cost().add("pool", S.mul(R.tensor(out).numel(), S.prod(a.kernel)))


def _pool_args(a: MaxPoolAttrs | AvgPoolAttrs, ins: list[TensorType], ctx: LowerCtx, what: str
               ) -> tuple[int, T.Moved | None, Any, Any, Any]:
    n, moved = T.spatial(a, ins[0])
    k = T.ints(ctx, a.kernel, "kernel_size")
    s = T.ints(ctx, a.strides, "stride")
    # "same" is the padding the shape rule resolved (torch's pools do not take "same")
    pad = 0 if _padded_first(a, ctx) else T.ints(ctx, [p0 for p0, _ in a.pads], "padding")
    return n, moved, k, s, pad


def _padded_first(a: MaxPoolAttrs | AvgPoolAttrs, ctx: LowerCtx) -> tuple[str, str] | None:
    """F.pad's arguments for a padding that differs before and after (torch's pools take one per
    axis; `pad = "same"` with an even window too): -inf for a max pool, zeros counted in the average
    otherwise."""
    if all(ctx.const(p0, "padding") == ctx.const(p1, "padding") for p0, p1 in a.pads):
        return None
    return T.pad_first(a, ctx), "float('-inf')" if isinstance(a, MaxPoolAttrs) else "0.0"


def _needs_helper(a: MaxPoolAttrs | AvgPoolAttrs, ctx: LowerCtx) -> bool:
    """Where padding first and pooling would differ from a pool that pads itself (an average without the
    padding; the ceil rule with a stride, which drops a last window starting in the padding after the
    input): the `pool_padded` helper, which divides by a padded mask's average and drops that window."""
    return ((isinstance(a, AvgPoolAttrs) and not a.count_include_pad)
            or (a.ceil and any(ctx.const(st, "stride") != 1 for st in a.strides)))


def _maxpool_kw(a: MaxPoolAttrs, ctx: LowerCtx, k: Any, s: Any, pad: Any) -> list[tuple[str, Any, Any]]:
    return [("stride", s, k), ("padding", pad, 0), ("dilation", T.ints(ctx, a.dilations, "dilation"), 1),
            ("ceil_mode", a.ceil, False)]


def _avgpool_kw(a: AvgPoolAttrs, ctx: LowerCtx, k: Any, s: Any, pad: Any) -> list[tuple[str, Any, Any]]:
    return [("stride", s, k), ("padding", pad, 0), ("ceil_mode", a.ceil, False),
            ("count_include_pad", a.count_include_pad, True)]


def _pool_lowering(kind: str, keywords: Callable[[PoolAttrs, LowerCtx, Any, Any, Any], list[tuple[str, Any, Any]]]
                   ) -> TorchLowering[PoolAttrs]:
    """nn.MaxPool2d / F.max_pool2d (kind "max"), nn.AvgPool2d / F.avg_pool2d ("avg"), with the keywords
    that differ from torch's defaults."""
    def args(a: PoolAttrs, ins: list[TensorType], ctx: LowerCtx) -> tuple[int, T.Moved | None, Any, str]:
        n, moved, k, s, pad = _pool_args(a, ins, ctx, f"{kind}pool")
        return n, moved, k, T.kwargs(keywords(a, ctx, k, s, pad))

    def module(a: PoolAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
        n, moved, k, kw = args(a, ins, ctx)
        pool, pad = f"nn.{kind.capitalize()}Pool{n}d", f"nn.ConstantPad{n}d"
        if moved is not None:  # axes not in torch's layout: the modules' subclasses that move them there and back
            pool, pad, kw = pool[3:] + "At", pad[3:] + "At", kw + moved.kwargs()
            ctx.helper(pool)
        pre = _padded_first(a, ctx)
        if pre is None:
            return f"{pool}({T.lit(k)}{kw})"
        if _needs_helper(a, ctx):  # its own module, of torch's function
            helper = "PoolPadded" + ("At" if moved is not None else "")
            ctx.helper(helper)
            ctx.helper("pool_padded")
            return f"{helper}({pre[0]}, {pre[1]}, F.{kind}_pool{n}d, {T.lit(k)}{kw})"
        if moved is not None:
            ctx.helper(pad)
        return f"nn.Sequential({pad}({pre[0]}, {pre[1]}{moved.kwargs() if moved else ''}), {pool}({T.lit(k)}{kw}))"

    def forward(a: PoolAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, xs: list[Expr]) -> Expr:
        n, moved, k, kw = args(a, ins, ctx)
        pre = _padded_first(a, ctx)
        x = xs[0].text
        where = f"{T.lit(moved.dims)}, {moved.batch}" if moved is not None else ""
        if moved is not None:
            ctx.helper("moved")  # axes not in torch's layout: moved there and back (to pad them first too)
        if pre is not None and _needs_helper(a, ctx):
            ctx.helper("pool_padded")
            call = f"{pre[0]}, {pre[1]}, F.{kind}_pool{n}d, {T.lit(k)}{kw})"
            return Expr(f"pool_padded({x}, {call}" if moved is None else f"moved(pool_padded, {x}, {where}, {call}")
        if moved is None:
            if pre is not None:
                x = f"F.pad({x}, {pre[0]}{'' if pre[1] == '0.0' else f', value={pre[1]}'})"
            return Expr(f"F.{kind}_pool{n}d({x}, {T.lit(k)}{kw})")
        if pre is not None:
            x = f"moved(F.pad, {x}, {where}, {pre[0]}{'' if pre[1] == '0.0' else f', value={pre[1]}'})"
        return Expr(f"moved(F.{kind}_pool{n}d, {x}, {where}, {T.lit(k)}{kw})")

    return TorchLowering(module=module, forward=forward)


_POOL = frozenset({Trait.WINDOW, Trait.REDUCTION})


def _max_saves(a: Attrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Max pooling (max_pool*d_with_indices): its input (or the copy padded first, or the copy moving its
    axes into torch's layout makes: `_kept`) and the argmax of each output element (i64), of the pool's
    whole result where `pool_padded` drops a last window (`_full`)."""
    o, full = R.tensor(out), _full(a, ins[0], out)
    indices = Kept(o.numel() if full is None else full[0], "i64")
    kept = _kept(a, ins, out, ctx, keeps_format=True)
    kept = dataclasses.replace(kept, new=kept.new + (indices,))
    return kept if full is None else dataclasses.replace(kept, storage=Kept(full[0], o.dtype), contiguous=False)


def _avg_saves(a: Attrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Average pooling: its input, or the copy padded first, or the copy moving its axes makes (`_kept`);
    an average without asymmetric padding (`pool_padded`) also keeps its divisor, the average of the
    padded mask, one per position of the pool's result along the spatial axes (`_full`)."""
    kept = _kept(a, ins, out, ctx, keeps_format=len(getattr(a, "spatial", ())) < 3)
    o, full = R.tensor(out), _full(a, ins[0], out)
    if isinstance(a, AvgPoolAttrs) and not a.count_include_pad and _padded_copy(a, ins[0]) is not None:
        spatial = S.prod(o.size(n) for n in a.spatial) if full is None else full[1]
        kept = dataclasses.replace(kept, new=kept.new + (Kept(spatial, o.dtype),))
    return kept if full is None else dataclasses.replace(kept, storage=Kept(full[0], o.dtype), contiguous=False)


def _full(a: Attrs, x: TensorType, out: Type) -> tuple[Size, Size] | None:
    """Where `pool_padded` drops a last window (the ceil rule with a stride, on an input padded first in
    torch's layout), the element counts of the pool's whole result and of its spatial axes: the output is
    a view of it. None where nothing is dropped."""
    if not isinstance(a, WindowAttrs) or not getattr(a, "ceil", False) or not a.pads \
            or all(S.equal(b, e) for b, e in a.pads) or T.moves(a, x).dims != tuple(range(len(x.axes))):
        return None
    o = R.tensor(out)
    dilations = a.dilations or (1,) * len(a.spatial)
    sizes = {n: R.window_out(S.add(x.size(n), S.add(b, e)), k, st, 0, 0, d, True)
             for n, k, st, d, (b, e) in zip(a.spatial, a.kernel, a.strides, dilations, a.pads)}
    if all(S.equal(sizes[n], o.size(n)) for n in a.spatial):
        return None
    return S.prod(sizes.get(ax.name, ax.size) for ax in o.axes), S.prod(sizes[n] for n in a.spatial)


def _kept(a: Attrs, ins: list[TensorType], out: Type, ctx: SaveCtx, keeps_format: bool) -> Saved:
    """What a pool keeps of its input: the input, or the copy padded first (`_padded_copy`), or, on axes
    moved into torch's layout, the copy that merging the batch axes makes where it is not a view; and its
    output's layout (`Moved.saves`: torch's, channels-last from a channels-last input where
    `keeps_format`, moved back)."""
    x = ins[0]
    padded = _padded_copy(a, x)
    layout = Saved()
    if isinstance(a, (WindowAttrs, AdaptiveAttrs)):
        moves = T.moves(a, x)
        copies, layout = moves.saves(x, R.tensor(out), ctx, len(a.spatial), keeps_format, padded is not None)
        if copies and padded is None:
            return dataclasses.replace(layout, new=(Sv.copy_of(x),))
    if padded is not None:
        return dataclasses.replace(layout, new=(padded,))
    return dataclasses.replace(layout, inputs=(0,))


def _padded_copy(a: Attrs, x: TensorType) -> Kept | None:
    """Where the padding differs before and after along some axis (explicit, or pad = "same" with an
    even window), the lowering pads the input first (F.pad by all of it, the pool then pads nothing):
    the pool keeps that copy. None where the pool pads evenly itself."""
    if not isinstance(a, WindowAttrs) or not a.pads or all(S.equal(b, e) for b, e in a.pads):
        return None
    grow = dict(zip(a.spatial, (S.add(b, e) for b, e in a.pads)))
    return Kept(S.prod(S.add(ax.size, grow.get(ax.name, 0)) for ax in x.axes), x.dtype)


def _adaptive_avg_saves(a: AdaptiveAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Its input (`_kept`); to one element per channel torch takes a mean instead, which keeps nothing."""
    o = R.tensor(out)
    kept = _kept(a, ins, out, ctx, keeps_format=len(a.spatial) < 3)
    if all(S.is_concrete(o.size(n)) and int(o.size(n)) == 1 for n in a.spatial):
        return dataclasses.replace(kept, inputs=(), new=())
    return kept


def _adaptive_max_saves(a: AdaptiveAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Its input (`_kept`) and the argmax of each output element (i64)."""
    kept = _kept(a, ins, out, ctx, keeps_format=len(a.spatial) < 3)
    return dataclasses.replace(kept, new=kept.new + (Kept(R.tensor(out).numel(), "i64"),))


define(OpDef(
    key="MAXPOOL", name="maxpool", attrs=MaxPoolAttrs, tensors=1, traits=_POOL,
    shape=_pool_shape, cost=_maxpool_cost,
    torch=_pool_lowering("max", _maxpool_kw), glyph=Glyph("pool", "Max", G.POOL),
    doc="max pooling over `over` (default: every axis after the first two)", dtypes=FLOAT, saves=_max_saves))

define(OpDef(
    key="AVGPOOL", name="avgpool", attrs=AvgPoolAttrs, tensors=1, traits=_POOL,
    shape=_pool_shape, cost=_avgpool_cost,
    torch=_pool_lowering("avg", _avgpool_kw), glyph=Glyph("pool", "𝔼", G.POOL),
    doc="average pooling", dtypes=FLOAT, saves=_avg_saves))

# ---- adaptive pooling ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class AdaptiveAttrs(Attrs):
    out: Any = arg("sizes")
    over: tuple[str, ...] | None = arg("axes", None)
    spatial: tuple[str, ...] = derived(())


def _adaptive_shape(ctx: ShapeCtx, ins: list[TensorType], a: AdaptiveAttrs
                    ) -> tuple[Type, tuple[ParamSpec, ...], AdaptiveAttrs]:
    (x,) = ins
    idx = R.spatial_axes(x, a.over, 1)
    outs = R.per_axis(a.out, len(idx), "out")
    R.check_min(outs, "out", 1)
    out = x
    for i, o in zip(idx, outs):
        out = out.with_size(x.axes[i].name, o)
    return out, (), a.replace(spatial=tuple(x.axes[i].name for i in idx))


def _adaptive_window(ins: list[TensorType], out: Type) -> Size:
    window: Size = 1
    for a_in, a_out in zip(ins[0].axes, R.tensor(out).axes):
        if a_in.size != a_out.size:
            window = S.mul(window, S.ceildiv(a_in.size, a_out.size))
    return window


def _adaptive_avg_cost(a: AdaptiveAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    return Cost().add("pool", S.mul(R.tensor(out).numel(), _adaptive_window(ins, out)))


def _adaptive_max_cost(a: AdaptiveAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    return Cost().add("pool", S.mul(R.tensor(out).numel(), S.add(_adaptive_window(ins, out), -1)))


def _adaptive_lowering(kind: str) -> TorchLowering[AdaptiveAttrs]:
    def sizes(a: AdaptiveAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> tuple[int, T.Moved | None, str]:
        n, moved = T.spatial(a, ins[0])
        return n, moved, T.lit(T.ints(ctx, [R.tensor(out).size(s) for s in a.spatial], "output_size"))

    def module(a: AdaptiveAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
        n, moved, size = sizes(a, ins, out, ctx)
        if moved is None:
            return f"nn.Adaptive{kind}Pool{n}d({size})"
        ctx.helper(f"Adaptive{kind}Pool{n}dAt")  # axes not in torch's layout: moved there and back
        return f"Adaptive{kind}Pool{n}dAt({size}{moved.kwargs()})"

    def forward(a: AdaptiveAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
        n, moved, size = sizes(a, ins, out, ctx)
        if moved is None:
            return Expr(f"F.adaptive_{kind.lower()}_pool{n}d({args[0].text}, {size})")
        ctx.helper("moved")  # axes not in torch's layout: moved there and back
        return Expr(f"moved(F.adaptive_{kind.lower()}_pool{n}d, {args[0].text}, {T.lit(moved.dims)}, "
                    f"{moved.batch}, {size})")

    return TorchLowering(module=module, forward=forward)


define(OpDef(
    key="ADAPTIVE_AVGPOOL", name="adaptive_avgpool", attrs=AdaptiveAttrs, tensors=1, traits=_POOL,
    shape=_adaptive_shape, cost=_adaptive_avg_cost, torch=_adaptive_lowering("Avg"),
    glyph=Glyph("pool", "𝔼", G.POOL), doc="adaptive average pooling to a fixed output size", dtypes=FLOAT,
    saves=_adaptive_avg_saves))

define(OpDef(
    key="ADAPTIVE_MAXPOOL", name="adaptive_maxpool", attrs=AdaptiveAttrs, tensors=1, traits=_POOL,
    shape=_adaptive_shape, cost=_adaptive_max_cost, torch=_adaptive_lowering("Max"),
    glyph=Glyph("pool", "Max", G.POOL), doc="adaptive max pooling to a fixed output size", dtypes=FLOAT,
    saves=_adaptive_max_saves))

# ---- reductions over named axes ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReduceAttrs(Attrs):
    over: tuple[str, ...] = arg("axes")
    keep: bool = arg("bool", False)


def _reduce_shape(ctx: ShapeCtx, ins: list[TensorType], a: ReduceAttrs
                  ) -> tuple[Type, tuple[ParamSpec, ...], ReduceAttrs]:
    (x,) = ins
    for n in a.over:
        R.axis_of(x, n, "over")
    if a.keep:
        axes = tuple(Axis(ax.name, 1) if ax.name in a.over else ax for ax in x.axes)
    else:
        axes = tuple(ax for ax in x.axes if ax.name not in a.over)
    return TensorType(axes, x.dtype), (), a


def _reduce_cost(a: ReduceAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    return Cost().add("elementwise", ins[0].numel())


def _reduce_lowering(method: str) -> TorchLowering[ReduceAttrs]:
    def forward(a: ReduceAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
        keep = ", keepdim=True" if a.keep else ""
        return Expr(f"{args[0].atom()}.{method}({T.dim_lit(T.dims(ins[0], a.over))}{keep})")

    def module(a: ReduceAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
        ctx.helper("Reduce")
        keep = ", keepdim=True" if a.keep else ""
        return f"Reduce({method!r}, {T.lit(T.dims(ins[0], a.over))}{keep})"

    return TorchLowering(module=module, forward=forward)


for _key, _name, _symbol, _doc, _dtypes in (("MEAN", "mean", "𝔼", "mean over axes", FLOATING),
                                            ("SUM", "sum", "Σ", "sum over axes", NUMBER),
                                            ("AMAX", "amax", "Max", "maximum over axes", REAL)):
    define(OpDef(
        key=_key, name=_name, attrs=ReduceAttrs, tensors=1, traits=frozenset({Trait.REDUCTION}),
        shape=_reduce_shape, cost=_reduce_cost, torch=_reduce_lowering(_name),
        glyph=Glyph("reduce", _symbol, G.POOL), doc=_doc, dtypes=_dtypes,
        saves=Sv.keeps_input_and_output if _name == "amax" else Sv.nothing))

__all__ = ["Op"]
