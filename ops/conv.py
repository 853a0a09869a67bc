"""Learned linear maps: `linear` on one axis, `conv` and `conv_transpose` over spatial axes.

Convolution arithmetic follows Dumoulin & Visin and PyTorch, per spatial axis:
  conv:        o = floor((i + p0 + p1 - d(k-1) - 1) / s) + 1
  transposed:  o = (i - 1)s - p0 - p1 + d(k-1) + output_padding + 1

>>> import archc.ops
>>> [p.name for p in Op.CONV.params][:4]
['map', 'k', 'stride', 'pad']
"""

from __future__ import annotations

import dataclasses
from typing import Any

from archc.ops import glyphs as G
from archc.ops import rules as R
from archc.ops import saves as Sv
from archc.ops import torch_lowering as T
from archc.ops.facets import Cost, Glyph, Kept, LowerCtx, SaveCtx, Saved, ShapeCtx, TorchLowering
from archc.ops.registry import FLOAT, Attrs, Op, OpDef, Trait, WindowAttrs, arg, define, derived
from archc.shapes import sizes as S
from archc.shapes.sizes import Size
from archc.shapes.types import ParamSpec, TensorType, Type

Map = tuple[str, Size, "str | None"]  # (axis, new size, new name)


# ---- linear ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class LinearAttrs(Attrs):
    map: Map = arg("map")
    bias: bool = arg("bool", True)
    folded_bn: dict[str, Any] | None = derived(None)  # the batchnorm folded in (passes/fold_bn.py): path, eps


def _linear_shape(ctx: ShapeCtx, ins: list[TensorType], a: LinearAttrs
                  ) -> tuple[Type, tuple[ParamSpec, ...], LinearAttrs]:
    (x,) = ins
    axis, n_out, rename = a.map
    n_in = x.size(x.names[R.axis_of(x, axis, "map")])
    ctx.require_positive(n_out, "the output size", "map")
    params: tuple[ParamSpec, ...] = (ParamSpec("weight", (n_out, n_in)),)
    if a.bias:
        params += (ParamSpec("bias", (n_out,)),)
    return x.with_size(axis, n_out, rename), params, a


def _linear_cost(a: LinearAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    c = Cost().add("linear", S.mul(R.tensor(out).numel(), ins[0].size(a.map[0])))
    return c.add("bias", R.tensor(out).numel()) if a.bias else c


def _linear_module(a: LinearAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    (x,) = ins
    axis, n_out, _ = a.map
    n_in = ctx.const(x.size(axis), "in_features")
    sizes = f"{n_in}, {ctx.const(n_out, 'out_features')}"
    bias = T.kwargs([("bias", a.bias, True)])
    if x.names[-1] == axis:
        return f"nn.Linear({sizes}{bias})"
    ctx.helper("LinearAt")  # nn.Linear acts on the last axis: an nn.Linear that moves `axis` there and back
    return f"LinearAt({sizes}, dim={x.index(axis)}{bias})"


def _linear_saves(a: LinearAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Its input, for the weight's gradient (F.linear: addmm or mm on the input flattened to 2-D). Where
    that flattening cannot be a view of the input's layout (LinearAt's moved axis, a permuted input of
    3 or more axes), torch keeps the contiguous copy reshape makes. LinearAt's output is moved back:
    laid out with the mapped axis last in memory."""
    x, o = ins[0], R.tensor(out)
    axis = a.map[0]
    order = Sv.to_last(o, a.map[2] or axis)
    moved = x.names[-1] != axis and Sv.moves_data(o, order)
    back = order if moved else None
    if len(x.axes) <= 2:
        return Saved(inputs=(0,), contiguous=not moved, order=back)
    rows = [[n for n in x.names if n != axis], [axis]]
    ones = {ax.name for ax in x.axes if Sv.one(ax.size)}
    known = Sv.layout(ctx, 0, x.names)
    if known is not None:
        copies = Sv.relayout(known[0], rows, ones, known[1]).view is None
    else:  # a layout not known (a broadcast): a merge of two axes longer than 1 copies
        copies = len([n for n in rows[0] if n not in ones]) > 1
    if copies:
        return Saved(new=(Sv.copy_of(x),), contiguous=not moved, order=back)
    return Saved(inputs=(0,), contiguous=not moved, order=back)


define(OpDef(
    key="LINEAR", name="linear", attrs=LinearAttrs, tensors=1,
    traits=frozenset({Trait.CONTRACTION, Trait.PARAMETERS}),
    shape=_linear_shape, cost=_linear_cost, torch=TorchLowering(module=_linear_module, fresh=True),
    glyph=Glyph("linear", "L", G.LEARNED),
    doc="a learned linear map on one axis; broadcasts over the rest", dtypes=FLOAT, saves=_linear_saves))


# ---- convolution ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConvAttrs(WindowAttrs):
    map: Map = arg("map")
    k: Any = arg("sizes")
    stride: Any = arg("sizes", 1)
    pad: Any = arg("pad", 0)
    dilation: Any = arg("sizes", 1)
    groups: Size = arg("size", 1)
    bias: bool = arg("bool", True)
    over: tuple[str, ...] | None = arg("axes", None)
    folded_bn: dict[str, Any] | None = derived(None)  # the batchnorm folded in (passes/fold_bn.py): path, eps


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConvTAttrs(ConvAttrs):
    output_padding: Any = arg("sizes", 0)


def _conv_common(ctx: ShapeCtx, x: TensorType, a: ConvAttrs, transposed: bool) -> tuple[Any, ...]:
    axis, cout, rename = a.map
    c = R.axis_of(x, axis, "map", "to act on")
    cin = x.axes[c].size
    idx = R.spatial_axes(x, a.over, c)
    if c in idx:
        raise R.fail(f"the channel axis '{axis}' cannot also be a spatial axis", "over")
    n = len(idx)
    k = R.per_axis(a.k, n, "k")
    s = R.per_axis(a.stride, n, "stride")
    d = R.per_axis(a.dilation, n, "dilation")
    R.check_min(k, "k", 1)
    R.check_min(s, "stride", 1)
    R.check_min(d, "dilation", 1)
    pads = R.padding(a.pad, k, d, s, n, transposed)
    for p0, p1 in pads:
        R.check_min((p0, p1), "pad")
    g = a.groups
    R.check_min((g,), "groups", 1)
    ctx.require_positive(cout, "the output channels", "map")
    ctx.require_divisible(cin, g, f"input channels '{axis}' by groups", "groups")
    ctx.require_divisible(cout, g, "output channels by groups", "groups")
    return axis, cout, rename, cin, idx, k, s, d, pads, g


def _conv_shape(ctx: ShapeCtx, ins: list[TensorType], a: ConvAttrs
                ) -> tuple[Type, tuple[ParamSpec, ...], ConvAttrs]:
    (x,) = ins
    axis, cout, rename, cin, idx, k, s, d, pads, g = _conv_common(ctx, x, a, False)
    out = x
    for j, i in enumerate(idx):
        ax = x.axes[i]
        o = R.window_out(ax.size, k[j], s[j], pads[j][0], pads[j][1], d[j], False)
        ctx.require_positive(o, f"conv output along '{ax.name}' (input {S.fmt(ax.size)}, k={k[j]})", "k")
        out = out.with_size(ax.name, o)
    out = out.with_size(axis, cout, rename)
    params: tuple[ParamSpec, ...] = (ParamSpec("weight", (cout, S.floordiv(cin, g)) + tuple(k)),)
    if a.bias:
        params += (ParamSpec("bias", (cout,)),)
    return out, params, a.replace(**R.window(x, idx, k, s, d, pads))


def _conv_t_shape(ctx: ShapeCtx, ins: list[TensorType], a: ConvTAttrs
                  ) -> tuple[Type, tuple[ParamSpec, ...], ConvTAttrs]:
    (x,) = ins
    axis, cout, rename, cin, idx, k, s, d, pads, g = _conv_common(ctx, x, a, True)
    op = R.per_axis(a.output_padding, len(idx), "output_padding")
    out = x
    for j, i in enumerate(idx):
        ax = x.axes[i]
        if S.is_concrete(op[j]) and S.is_concrete(s[j]) and S.is_concrete(d[j]):
            if not 0 <= int(op[j]) < max(int(s[j]), int(d[j])):
                raise R.fail(f"output_padding must be smaller than max(stride, dilation) = "
                             f"{max(int(s[j]), int(d[j]))}, got {op[j]}", "output_padding", "value")
        o = S.add(S.mul(S.add(ax.size, -1), s[j]), S.add(S.mul(-1, S.add(pads[j][0], pads[j][1])),
                  S.add(S.mul(d[j], S.add(k[j], -1)), S.add(op[j], 1))))
        ctx.require_positive(o, f"transposed conv output along '{ax.name}'", "k")
        out = out.with_size(ax.name, o)
    out = out.with_size(axis, cout, rename)
    params: tuple[ParamSpec, ...] = (ParamSpec("weight", (cin, S.floordiv(cout, g)) + tuple(k)),)
    if a.bias:
        params += (ParamSpec("bias", (cout,)),)
    return out, params, a.replace(**R.window(x, idx, k, s, d, pads))


def _conv_cost(a: ConvAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    weight = params[0].shape  # [cout, cin/g, *k]: each output element meets cin/g * prod(k) weights
    c = Cost().add("conv", S.mul(R.tensor(out).numel(), S.prod(weight[1:])))
    return c.add("bias", R.tensor(out).numel()) if a.bias else c


def _conv_t_cost(a: ConvTAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
    # FlopCounterMode counts a transposed conv over its *input* positions:
    # each input element meets cout/g * prod(k) weights.
    weight = params[0].shape  # [cin, cout/g, *k]
    c = Cost().add("conv", S.mul(ins[0].numel(), S.prod(weight[1:])))
    return c.add("bias", R.tensor(out).numel()) if a.bias else c


def _conv_module(a: ConvAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx) -> str:
    (x,) = ins
    transposed = isinstance(a, ConvTAttrs)
    what = "conv_transpose" if transposed else "conv"
    axis, n_out, _ = a.map
    n, moved = T.spatial(a, x, axis)
    cin, cout = ctx.const(x.size(axis), "in_channels"), ctx.const(n_out, "out_channels")
    k = T.ints(ctx, a.kernel, "kernel_size")
    # torch's take one padding per axis: a conv pads first, a transposed conv crops its output after
    padded = T.asymmetric(a, ctx)
    pad = 0 if padded else T.pads(a, ctx, what)
    cls = f"nn.ConvTranspose{n}d" if transposed else f"nn.Conv{n}d"
    if padded:
        cls = f"ConvTranspose{n}dCropped" if transposed else f"Conv{n}dPadded"
        ctx.helper(cls)
    if moved is not None:  # axes not in torch's layout: the module's subclass that moves them there and back
        cls = f"{cls.removeprefix('nn.')}At"
        ctx.helper(cls)
    kw = [("stride", T.ints(ctx, a.strides, "stride"), 1), ("padding", pad, 0)]
    if isinstance(a, ConvTAttrs):
        kw.append(("output_padding", T.ints(ctx, T.per(a.output_padding, n), "output_padding"), 0))
    kw += [("dilation", T.ints(ctx, a.dilations, "dilation"), 1),
           ("groups", ctx.const(a.groups, "groups"), 1), ("bias", a.bias, True)]
    extra = ""
    if padded and transposed:
        extra = f", crop={T.lit(tuple(tuple(ctx.const(p, 'padding') for p in pair) for pair in a.pads))}"
    elif padded:
        extra = f", pad={T.pad_first(a, ctx)}"
    if moved is not None:
        extra += moved.kwargs()
    return f"{cls}({cin}, {cout}, kernel_size={T.lit(k)}{T.kwargs(kw)}{extra})"


_CONV_TRAITS = frozenset({Trait.CONTRACTION, Trait.WINDOW, Trait.PARAMETERS})


def _conv_saves(a: ConvAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Its input, for the weight's gradient, or the padded copy torch makes of it where the padding
    differs before and after: with pad = "same" (an even kernel) torch pads the odd element on the
    right; an explicit padding is all done first (Conv*dPadded's F.pad). That copy is what it keeps.
    On axes moved into torch's layout (Conv*dAt), the copy merging the batch axes makes where that is
    not a view; its result is laid out as torch's (channels-last from a channels-last input), moved
    back (`Moved.saves`)."""
    x = ins[0]
    even = all(S.equal(b, e) for b, e in a.pads)
    moves = T.moves(a, x, a.map[0])
    copies, layout = moves.saves(x, R.tensor(out), ctx, len(a.spatial), len(a.spatial) > 1, not even)
    if copies and even:
        return dataclasses.replace(layout, new=(Sv.copy_of(x),))
    if even:
        return dataclasses.replace(layout, inputs=(0,))
    same = a.get("pad") == "same"
    grow = dict(zip(a.spatial, (S.add(e, S.mul(-1, b)) if same else S.add(b, e) for b, e in a.pads)))
    return dataclasses.replace(layout, new=(Kept(S.prod(S.add(ax.size, grow.get(ax.name, 0)) for ax in x.axes),
                                                 x.dtype),))


def _conv_t_saves(a: ConvTAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Its input (on moved axes, the copy merging the batch axes makes where that is not a view). Where
    the padding differs before and after, the output is the full result cropped (ConvTranspose*dCropped's
    narrow): a view of a larger storage, not contiguous."""
    x, o = ins[0], R.tensor(out)
    copies, layout = T.moves(a, x, a.map[0]).saves(x, o, ctx, len(a.spatial), len(a.spatial) > 1)
    kept = Saved(new=(Sv.copy_of(x),)) if copies else Saved(inputs=(0,))
    if a.get("pad") == "same" or all(S.equal(b, e) for b, e in a.pads):
        return dataclasses.replace(layout, inputs=kept.inputs, new=kept.new)
    grow = dict(zip(a.spatial, (S.add(b, e) for b, e in a.pads)))
    full = Kept(S.prod(S.add(ax.size, grow.get(ax.name, 0)) for ax in o.axes), o.dtype)
    return Saved(inputs=kept.inputs, new=kept.new, contiguous=False, storage=full)


define(OpDef(
    key="CONV", name="conv", attrs=ConvAttrs, tensors=1, traits=_CONV_TRAITS,
    shape=_conv_shape, cost=_conv_cost, torch=TorchLowering(module=_conv_module, fresh=True),
    glyph=Glyph("conv", "★", G.CONV),
    doc="convolution over the spatial axes `over` (default: the axes after the channel axis)", dtypes=FLOAT,
    saves=_conv_saves))

define(OpDef(
    key="CONV_T", name="conv_transpose", attrs=ConvTAttrs, tensors=1, traits=_CONV_TRAITS,
    shape=_conv_t_shape, cost=_conv_t_cost, torch=TorchLowering(module=_conv_module, fresh=True),
    glyph=Glyph("conv_t", "★T", G.CONV),
    doc="transposed convolution", dtypes=FLOAT, saves=_conv_t_saves))

__all__ = ["Op"]
