"""Normalisations over named axes: batch, layer, group and RMS norm.

>>> import archc.ops
>>> Op.BATCHNORM.glyph.symbol, Trait.NORMALIZATION in Op.RMSNORM.traits
('BN', True)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from archc.ops import glyphs as G
from archc.ops import rules as R
from archc.ops import saves as Sv
from archc.ops import torch_lowering as T
from archc.ops.facets import Cost, Expr, Glyph, Kept, LowerCtx, SaveCtx, Saved, ShapeCtx, TorchLowering
from archc.ops.registry import FLOAT, Attrs, Op, OpDef, Trait, arg, define
from archc.shapes import sizes as S
from archc.shapes.sizes import Size
from archc.shapes.types import ParamSpec, TensorType, Type

_NORM = frozenset({Trait.NORMALIZATION, Trait.PARAMETERS})


def _moved(call: str, x: str, dims: tuple[int, ...], to: tuple[int, ...]) -> Expr:
    """`call` (a format string over its input) applied with the dimensions `dims` of `x` moved to
    `to`, where torch's function wants them, and moved back: a norm without state written in forward."""
    if dims == to:
        return Expr(call.format(x))
    src, dst = T.dim_lit(dims), T.dim_lit(to)
    return Expr(f"torch.movedim({call.format(f'torch.movedim({x}, {src}, {dst})')}, {dst}, {src})")

# ---- batch norm ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class BatchNormAttrs(Attrs):
    axis: str | None = arg("axis", None)
    eps: float = arg("float", 1e-5)
    momentum: float = arg("float", 0.1)
    affine: bool = arg("bool", True)
    track_running_stats: bool = arg("bool", True)


def _batchnorm_shape(ctx: ShapeCtx, ins: list[TensorType], a: BatchNormAttrs
                     ) -> tuple[Type, tuple[ParamSpec, ...], BatchNormAttrs]:
    (x,) = ins
    R.check_eps(a.eps)
    name = R.channel(x, a.axis)
    if len(x.names) < 2:
        raise R.fail(f"batchnorm of '{name}' on {x}: one value per channel, no batch to take its statistics over "
                     "(2 axes or more)", "axis")
    c = x.size(name)
    params: tuple[ParamSpec, ...] = ()
    if a.affine:
        params += (ParamSpec("weight", (c,)), ParamSpec("bias", (c,)))
    if a.track_running_stats:
        params += (ParamSpec("running_mean", (c,), True), ParamSpec("running_var", (c,), True),
                   ParamSpec("num_batches_tracked", (), True, "i64"))
    return x, params, a


def _batchnorm_cost(a: BatchNormAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    return Cost().add("norm", S.mul(2, ins[0].numel()))


def _batchnorm_module(a: BatchNormAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    (x,) = ins
    axis = a.axis or x.names[1]
    kw = [("eps", float(a.eps), 1e-5), ("momentum", float(a.momentum), 0.1), ("affine", a.affine, True),
          ("track_running_stats", a.track_running_stats, True)]
    c = ctx.const(x.size(axis), "num_features")
    if x.index(axis) == 1 and 2 <= len(x.names) <= 5:
        n = {2: 1, 3: 1, 4: 2, 5: 3}[len(x.names)]
        return f"nn.BatchNorm{n}d({c}{T.kwargs(kw)})"
    ctx.helper("BatchNormAt")  # torch's need [batch, chan, ...] with 2 to 5 axes: one that moves chan there and back
    return f"BatchNormAt({c}, dim={x.index(axis)}{T.kwargs(kw)})"


def _batchnorm_forward(a: BatchNormAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    """Without weights or running statistics (`affine = false, track_running_stats = false`): the batch's."""
    (x,) = ins
    axis = a.axis or x.names[1]
    kw = T.kwargs([("momentum", float(a.momentum), 0.1), ("eps", float(a.eps), 1e-5)])
    return _moved(f"F.batch_norm({{}}, None, None, training=True{kw})", args[0].text, (x.index(axis),), (1,))


def _batchnorm_saves(a: BatchNormAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Training: its input and the batch's mean and inverse std, one per channel (fp32 for a half input)."""
    x = ins[0]
    stat = Kept(x.size(a.axis or x.names[1]), Sv.stats_dtype(x.dtype))
    dense, order = _moved_to_1(x, x.index(a.axis or x.names[1]), ctx)
    return Saved(inputs=(0,), new=(stat, stat), contiguous=dense, order=order)


define(OpDef(
    key="BATCHNORM", name="batchnorm", attrs=BatchNormAttrs, tensors=1, traits=_NORM,
    shape=_batchnorm_shape, cost=_batchnorm_cost,
    torch=TorchLowering(module=_batchnorm_module, forward=_batchnorm_forward, fresh=True),
    glyph=Glyph("norm", "BN", G.NORM),
    doc="batch normalisation of one channel axis (default: the second axis)", dtypes=FLOAT,
    saves=_batchnorm_saves))

# ---- layer norm and RMS norm ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class LayerNormAttrs(Attrs):
    over: tuple[str, ...] | None = arg("axes", None)
    eps: float = arg("float", 1e-5)
    affine: bool = arg("bool", True)
    bias: bool = arg("bool", True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RMSNormAttrs(Attrs):
    over: tuple[str, ...] | None = arg("axes", None)
    eps: float | None = arg("float", None)
    affine: bool = arg("bool", True)


def _layernorm_shape(ctx: ShapeCtx, ins: list[TensorType], a: LayerNormAttrs
                     ) -> tuple[Type, tuple[ParamSpec, ...], LayerNormAttrs]:
    (x,) = ins
    R.check_eps(a.eps)
    shape = tuple(x.size(n) for n in R.norm_over(x, a.over))
    params: tuple[ParamSpec, ...] = ()
    if a.affine:
        params += (ParamSpec("weight", shape),)
        if a.bias:
            params += (ParamSpec("bias", shape),)
    return x, params, a


def _rmsnorm_shape(ctx: ShapeCtx, ins: list[TensorType], a: RMSNormAttrs
                   ) -> tuple[Type, tuple[ParamSpec, ...], RMSNormAttrs]:
    (x,) = ins
    R.check_eps(a.eps)
    shape = tuple(x.size(n) for n in R.norm_over(x, a.over))
    return x, (ParamSpec("weight", shape),) if a.affine else (), a


def _affine_cost(ins: list[TensorType], params: tuple[ParamSpec, ...]) -> Cost:
    """4 per element for the statistics and the normalisation, +2 with weight and bias, +1 with one."""
    per = 4
    if params:
        per += 2 if len([p for p in params if not p.buffer]) == 2 else 1
    return Cost().add("norm", S.mul(per, ins[0].numel()))


def _layernorm_cost(a: LayerNormAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    return _affine_cost(ins, params)


def _rmsnorm_cost(a: RMSNormAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    return Cost().add("norm", S.mul(4 if params else 3, ins[0].numel()))


def _over(x: TensorType, over: tuple[str, ...] | None) -> tuple[int, ...]:
    """The dimensions of the `over` axes, in their order (the order of the weight's shape)."""
    return T.dims(x, over or (x.names[-1],))


def _run(dims: tuple[int, ...]) -> bool:
    """Adjacent and in order, as torch's norm modules take them (once moved last)."""
    return list(dims) == list(range(dims[0], dims[0] + len(dims)))


def _normalized_shape(ctx: LowerCtx, x: TensorType, dims: tuple[int, ...]) -> object:
    return T.ints(ctx, [x.axes[d].size for d in dims], "normalized_shape")


def _layernorm_module(a: LayerNormAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    (x,) = ins
    dims = _over(x, a.over)
    shape = _normalized_shape(ctx, x, dims)
    shape = shape if isinstance(shape, tuple) or len(dims) == 1 else (shape,) * len(dims)
    kw = [("eps", float(a.eps), 1e-5), ("elementwise_affine", a.affine, True),
          ("bias", a.bias if a.affine else True, True)]
    if not _run(dims):  # axes apart or out of order: moved last, in the weight's order, and back
        ctx.helper("LayerNormOver")
        return f"LayerNormOver({T.lit(shape)}, dims={T.lit(dims)}{T.kwargs(kw)})"
    if dims[-1] == len(x.names) - 1:
        return f"nn.LayerNorm({T.lit(shape)}{T.kwargs(kw)})"
    ctx.helper("LayerNormAt")
    return f"LayerNormAt({T.lit(shape)}, dim={dims[0]}{T.kwargs(kw)})"


def _rmsnorm_module(a: RMSNormAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    (x,) = ins
    dims = _over(x, a.over)
    shape = _normalized_shape(ctx, x, dims)
    kw = [("eps", None if a.eps is None else float(a.eps), None), ("elementwise_affine", a.affine, True)]
    if _run(dims) and dims[-1] == len(x.names) - 1:
        return f"nn.RMSNorm({T.lit(shape)}{T.kwargs(kw)})"
    shape = shape if isinstance(shape, tuple) or len(dims) == 1 else (shape,) * len(dims)
    if not _run(dims):
        ctx.helper("RMSNormOver")
        return f"RMSNormOver({T.lit(shape)}, dims={T.lit(dims)}{T.kwargs(kw)})"
    ctx.helper("RMSNormAt")  # nn.RMSNorm normalises the last axes: one that moves them there and back
    return f"RMSNormAt({T.lit(shape)}, dim={dims[0]}{T.kwargs(kw)})"


def _norm_forward(what: str, functional: str, x: TensorType, over: tuple[str, ...] | None, eps: Any,
                  ctx: LowerCtx, arg: Expr) -> Expr:
    """layernorm or rmsnorm without weights: torch's function over the last dimensions, the `over`
    axes moved there (and back) when they are not."""
    dims = _over(x, over)
    shape = T.lit(tuple(ctx.const(x.axes[d].size, "normalized_shape") for d in dims))
    last = tuple(range(len(x.names) - len(dims), len(x.names)))
    return _moved(f"{functional}({{}}, {shape}{eps})", arg.text, dims, last)


def _layernorm_forward(a: LayerNormAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    return _norm_forward("layernorm", "F.layer_norm", ins[0], a.over, T.kwargs([("eps", float(a.eps), 1e-5)]),
                         ctx, args[0])


def _rmsnorm_forward(a: RMSNormAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    eps = T.kwargs([("eps", None if a.eps is None else float(a.eps), None)])
    return _norm_forward("rmsnorm", "F.rms_norm", ins[0], a.over, eps, ctx, args[0])


def _rows(x: TensorType, over: tuple[str, ...] | None) -> Kept:
    """One statistic per normalised row (the elements outside `over`)."""
    inner = R.norm_over(x, over)
    return Kept(S.prod(ax.size for ax in x.axes if ax.name not in inner), Sv.stats_dtype(x.dtype))


def _moved_last(x: TensorType, dims: tuple[int, ...]) -> tuple[bool, tuple[int, ...] | None]:
    """(contiguous, order) of a norm's result computed densely with `dims` moved last (in that order)
    and moved back: torch's layer_norm makes its input contiguous that way, and so does the composite
    rms_norm's arithmetic; in memory the other axes come first, then `dims`."""
    perm = tuple(d for d in range(len(x.axes)) if d not in dims) + tuple(dims)
    return (True, None) if not Sv.moves_data(x, perm) else (False, perm)


def _to_1(x: TensorType, d: int) -> tuple[int, ...]:
    """torch.movedim(x, d, 1) as a permutation."""
    return (0, d) + tuple(k for k in range(1, len(x.axes)) if k != d) if d else tuple(range(len(x.axes)))


def _format_of_moved(x: TensorType, d: int, ctx: SaveCtx) -> tuple[str, bool]:
    """The memory format torch suggests for x with axis `d` moved to dimension 1 (suggest_memory_format,
    which reads the order of the strides): "channels_last" where the channels lie innermost and the
    other axes in order outside them (4 or 5 dimensions), else "contiguous"; and whether x is exactly
    dense in that format (no gaps, packed). Axes of size 1 go anywhere; a layout not known is taken
    as not dense."""
    known = ctx.layouts[0]
    if known is None:
        return "contiguous", False
    perm, n = _to_1(x, d), len(x.axes)
    long = {k for k in range(n) if not Sv.one(x.axes[perm[k]].size)}
    mem = [perm.index(k) for k in known[0] if perm.index(k) in long]
    exact = not known[1] and known[2]
    last = [k for k in [0] + list(range(2, n)) + [1] if k in long]
    if n in (4, 5) and mem == last and mem != sorted(mem):
        return "channels_last", exact
    return "contiguous", exact and mem == sorted(mem)


def _moved_to_1(x: TensorType, d: int, ctx: SaveCtx) -> tuple[bool, tuple[int, ...] | None]:
    """(contiguous, order) of batch_norm's or group_norm's result with axis `d` moved to dimension 1 and
    back: dense in the memory format torch suggests for the moved input (channels-last: laid out as the
    input's order; else with `d` moved to 1)."""
    if _format_of_moved(x, d, ctx)[0] == "channels_last":
        known = ctx.layouts[0]
        assert known is not None
        order = known[0]
        return (True, None) if order == tuple(range(len(order))) else (False, order)
    perm = _to_1(x, d)
    return (True, None) if not Sv.moves_data(x, perm) else (False, perm)


def _layernorm_saves(a: LayerNormAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Its input, and each row's mean and inverse std. Its result is dense with the `over` axes last
    (moved back where they are not: a permuted layout)."""
    x = ins[0]
    dense, order = _moved_last(x, _over(x, a.over))
    return Saved(inputs=(0,), new=(_rows(x, a.over), _rows(x, a.over)), contiguous=dense, order=order)


def _rmsnorm_saves(a: RMSNormAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """torch's composite RMS norm: its input and each row's inverse RMS; with a weight, also the
    normalised input (for the weight's gradient). Laid out as layernorm's result."""
    x = ins[0]
    extra = (Kept(x.numel(), x.dtype),) if a.affine else ()
    dense, order = _moved_last(x, _over(x, a.over))
    return Saved(inputs=(0,), new=(_rows(x, a.over),) + extra, contiguous=dense, order=order)


define(OpDef(
    key="LAYERNORM", name="layernorm", attrs=LayerNormAttrs, tensors=1, traits=_NORM,
    shape=_layernorm_shape, cost=_layernorm_cost,
    torch=TorchLowering(module=_layernorm_module, forward=_layernorm_forward, fresh=True),
    glyph=Glyph("norm", "LN", G.NORM),
    doc="layer normalisation over `over` (default: the last axis)", dtypes=FLOAT, saves=_layernorm_saves))

define(OpDef(
    key="RMSNORM", name="rmsnorm", attrs=RMSNormAttrs, tensors=1, traits=_NORM,
    shape=_rmsnorm_shape, cost=_rmsnorm_cost,
    torch=TorchLowering(module=_rmsnorm_module, forward=_rmsnorm_forward, fresh=True),
    glyph=Glyph("norm", "RMS", G.NORM),
    doc="RMS normalisation over `over` (default: the last axis)", dtypes=FLOAT, saves=_rmsnorm_saves))

# ---- group norm -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class GroupNormAttrs(Attrs):
    groups: Size = arg("size")
    axis: str | None = arg("axis", None)
    eps: float = arg("float", 1e-5)
    affine: bool = arg("bool", True)


def _groupnorm_shape(ctx: ShapeCtx, ins: list[TensorType], a: GroupNormAttrs
                     ) -> tuple[Type, tuple[ParamSpec, ...], GroupNormAttrs]:
    (x,) = ins
    R.check_eps(a.eps)
    name = R.channel(x, a.axis)
    if x.index(name) == 0:
        raise R.fail(f"groupnorm of '{name}' on {x}: the first axis holds the samples, each normalised apart; "
                     "the channel axis must come after it", "axis" if a.axis else None)
    c = x.size(name)
    R.check_min((a.groups,), "groups", 1)
    ctx.require_divisible(c, a.groups, f"'{name}' by groups", "groups")
    return x, (ParamSpec("weight", (c,)), ParamSpec("bias", (c,))) if a.affine else (), a


def _groupnorm_cost(a: GroupNormAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    return _affine_cost(ins, params)


def _group_axis(a: GroupNormAttrs, x: TensorType) -> str:
    return a.axis or x.names[1]  # never the first (the shape rule refuses it)


def _groupnorm_module(a: GroupNormAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    (x,) = ins
    axis = _group_axis(a, x)
    kw = [("eps", float(a.eps), 1e-5), ("affine", a.affine, True)]
    sizes = f"{ctx.const(a.groups, 'num_groups')}, {ctx.const(x.size(axis), 'num_channels')}"
    if x.index(axis) == 1:
        return f"nn.GroupNorm({sizes}{T.kwargs(kw)})"
    ctx.helper("GroupNormAt")  # torch's needs [batch, chan, ...]: one that moves chan there and back
    return f"GroupNormAt({sizes}, dim={x.index(axis)}{T.kwargs(kw)})"


def _groupnorm_forward(a: GroupNormAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
    (x,) = ins
    axis = _group_axis(a, x)
    kw = T.kwargs([("eps", float(a.eps), 1e-5)])
    return _moved(f"F.group_norm({{}}, {ctx.const(a.groups, 'num_groups')}{kw})", args[0].text, (x.index(axis),), (1,))


def _groupnorm_saves(a: GroupNormAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Its input, and a mean and inverse std per (sample, group). torch's group_norm first makes its
    input (channels moved to dimension 1) contiguous in the memory format it suggests: where the input
    is not exactly dense in it (a permuted or sliced input, channels moved), that copy is kept."""
    x = ins[0]
    d = x.index(a.axis or x.names[1])
    stat = Kept(S.mul(x.axes[0].size, a.groups), Sv.stats_dtype(x.dtype))
    dense, order = _moved_to_1(x, d, ctx)
    if not _format_of_moved(x, d, ctx)[1]:
        return Saved(new=(Sv.copy_of(x), stat, stat), contiguous=dense, order=order)
    return Saved(inputs=(0,), new=(stat, stat), contiguous=dense, order=order)


define(OpDef(
    key="GROUPNORM", name="groupnorm", attrs=GroupNormAttrs, tensors=1, traits=_NORM,
    shape=_groupnorm_shape, cost=_groupnorm_cost,
    torch=TorchLowering(module=_groupnorm_module, forward=_groupnorm_forward, fresh=True),
    glyph=Glyph("norm", "GN", G.NORM),
    doc="group normalisation of a channel axis (default: the second axis)", dtypes=FLOAT, saves=_groupnorm_saves))

__all__ = ["Op"]
