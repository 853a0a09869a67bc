"""Shape rules: one function per primitive op, in the table `SHAPE_RULES`.

A rule takes the checker context, the input tensor types and the bound
attributes, and returns the output type and the parameters the op owns. It
reports problems by raising `ShapeError` (code, message, and optionally the
name of the argument to point at) and states requirements on sizes through
`ctx.require_*`, which decide them now when sizes are concrete and record them
as constraints on the free sizes when they are not.

Convolution arithmetic follows Dumoulin & Visin and PyTorch:
  conv/pool:  o = floor((i + p0 + p1 - d(k-1) - 1) / s) + 1      (ceil with ceil_mode)
  transposed: o = (i - 1)s - p0 - p1 + d(k-1) + output_padding + 1
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from archc.ir.graph import ACTIVATIONS, Op
from archc.shapes import sizes as S
from archc.shapes.sizes import Size
from archc.shapes.types import Axis, ParamSpec, TensorType, Type


class ShapeError(Exception):
    def __init__(self, code: str, message: str, arg: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.arg = arg


class Ctx(Protocol):
    def require_equal(self, a: Size, b: Size, what: str, arg: str | None = None) -> None: ...
    def require_divisible(self, a: Size, m: Size, what: str, arg: str | None = None) -> None: ...
    def require_positive(self, a: Size, what: str, arg: str | None = None) -> None: ...


Rule = Callable[[Ctx, list[TensorType], dict[str, Any]], tuple[Type, tuple[ParamSpec, ...]]]
SHAPE_RULES: dict[Op, Rule] = {}


def rule(*ops: Op):
    def register(fn: Rule) -> Rule:
        for op in ops:
            SHAPE_RULES[op] = fn
        return fn
    return register


def fail(message: str, arg: str | None = None, code: str = "axis") -> ShapeError:
    return ShapeError(code, message, arg)


def axis_of(t: TensorType, name: str, arg: str | None = None, role: str = "") -> int:
    if not t.has(name):
        from archc.diagnostics import did_you_mean
        role = f" {role}" if role else ""
        raise fail(f"the tensor {t} has no axis '{name}'{role}{did_you_mean(name, t.names)}", arg)
    return t.index(name)


def per_axis(value: Any, n: int, what: str) -> tuple[Size, ...]:
    """Expand a scalar or check a list against the number of spatial axes."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise fail(f"{what} has {len(value)} values but the op acts on {n} axes", what, "arg")
        return tuple(value)
    return (value,) * n


def spatial_axes(t: TensorType, over: tuple[str, ...] | None, after: int, arg: str = "over") -> list[int]:
    if over is None:
        idx = list(range(after + 1, len(t.axes)))
    else:
        idx = [axis_of(t, a, arg) for a in over]
    if not 1 <= len(idx) <= 3:
        raise fail(f"acts on 1 to 3 spatial axes, got {len(idx)} of {t}; name them with over=[...]",
                   arg)
    return idx


def padding(pad: Any, k: tuple, d: tuple, s: tuple, n: int, transposed: bool = False
            ) -> list[tuple[Size, Size]]:
    if pad == "valid":
        return [(0, 0)] * n
    if pad == "same":
        if transposed:
            raise fail("pad='same' is not defined for transposed convolution", "pad", "value")
        if any(x != 1 for x in s):
            raise fail("pad='same' needs stride 1 (as in PyTorch)", "pad", "value")
        out = []
        for ki, di in zip(k, d):
            tot = S.mul(di, S.add(ki, -1))
            left = S.floordiv(tot, 2)
            out.append((left, S.add(tot, S.mul(-1, left))))
        return out
    if isinstance(pad, str):
        raise fail(f"pad must be a size, a list, 'same' or 'valid', not '{pad}'", "pad", "value")
    if isinstance(pad, (list, tuple)):
        if len(pad) == n and all(isinstance(p, (list, tuple)) for p in pad):
            if any(len(p) != 2 for p in pad):
                raise fail("each padding pair is [before, after]", "pad", "value")
            return [(p[0], p[1]) for p in pad]
        if len(pad) == 2 * n and not any(isinstance(p, (list, tuple)) for p in pad):
            return [(pad[2 * i], pad[2 * i + 1]) for i in range(n)]
        return [(p, p) for p in per_axis(pad, n, "pad")]
    return [(pad, pad)] * n


def _check_nonneg(vals: tuple, what: str, minimum: int = 0) -> None:
    for v in vals:
        if S.is_concrete(v) and int(v) < minimum:
            raise fail(f"{what} must be at least {minimum}, got {v}", what, "value")


def window_out(i: Size, k: Size, s: Size, p0: Size, p1: Size, d: Size, ceil: bool) -> Size:
    span = S.add(S.add(i, S.add(p0, p1)), S.mul(-1, S.add(S.mul(d, S.add(k, -1)), 1)))
    if not ceil:  # floor(a/s) + 1 == floor((a + s)/s): one floor reads better symbolically
        return S.floordiv(S.add(span, s), s)
    o = S.add(S.ceildiv(span, s), 1)
    # PyTorch drops a last window that would start inside the right padding, at or after
    # i + p0; that leaves floor((i + p0 - 1)/s) + 1 windows, exactly one fewer.
    start_last = S.mul(S.add(o, -1), s)
    limit = S.add(i, p0)
    if S.is_concrete(start_last) and S.is_concrete(limit):
        return o - 1 if start_last >= limit else o
    eff = S.add(S.mul(d, S.add(k, -1)), 1)
    if all(S.is_concrete(v) for v in (p1, s, eff)) and int(p1) + int(s) <= int(eff):
        return o  # (o - 1)·s <= span + s - 1 < i + p0: the last window never starts in the padding
    import sympy  # only here, with symbolic sizes: concrete checks never import sympy
    # Min, not a Piecewise on the comparison: nested Piecewise conditions send sympy into evalf.
    return S.norm(sympy.Min(o, S.floordiv(S.add(limit, S.add(s, -1)), s)))


# ---- contractions -----------------------------------------------------------------


@rule(Op.LINEAR)
def _linear(ctx, ins, a):
    (x,) = ins
    axis, n_out, rename = a["map"]
    n_in = x.size(x.names[axis_of(x, axis, "map")])
    ctx.require_positive(n_out, "the output size", "map")
    params = (ParamSpec("weight", (n_out, n_in)),)
    if a["bias"]:
        params += (ParamSpec("bias", (n_out,)),)
    return x.with_size(axis, n_out, rename), params


def _conv_common(ctx, x: TensorType, a: dict, transposed: bool):
    axis, cout, rename = a["map"]
    c = axis_of(x, axis, "map", "to act on")
    cin = x.axes[c].size
    idx = spatial_axes(x, a["over"], c)
    if c in idx:
        raise fail(f"the channel axis '{axis}' cannot also be a spatial axis", "over")
    n = len(idx)
    k = per_axis(a["k"], n, "k")
    s = per_axis(a["stride"], n, "stride")
    d = per_axis(a["dilation"], n, "dilation")
    _check_nonneg(k, "k", 1)
    _check_nonneg(s, "stride", 1)
    _check_nonneg(d, "dilation", 1)
    pads = padding(a["pad"], k, d, s, n, transposed)
    for p0, p1 in pads:
        _check_nonneg((p0, p1), "pad")
    g = a["groups"]
    _check_nonneg((g,), "groups", 1)
    ctx.require_positive(cout, "the output channels", "map")
    ctx.require_divisible(cin, g, f"input channels '{axis}' by groups", "groups")
    ctx.require_divisible(cout, g, "output channels by groups", "groups")
    _record_window(a, x, idx, k, s, d, pads)
    return axis, cout, rename, c, cin, idx, k, s, d, pads, g


def _record_window(a: dict, x: TensorType, idx: list[int], k, s, d, pads) -> None:
    """Keep the resolved per-axis geometry for the cost rules and code generators."""
    a["spatial"] = tuple(x.axes[i].name for i in idx)
    a["kernel"], a["strides"], a["dilations"], a["pads"] = tuple(k), tuple(s), tuple(d), tuple(pads)


@rule(Op.CONV)
def _conv(ctx, ins, a):
    (x,) = ins
    axis, cout, rename, c, cin, idx, k, s, d, pads, g = _conv_common(ctx, x, a, False)
    out = x
    for j, i in enumerate(idx):
        ax = x.axes[i]
        o = window_out(ax.size, k[j], s[j], pads[j][0], pads[j][1], d[j], False)
        ctx.require_positive(o, f"conv output along '{ax.name}' (input {S.fmt(ax.size)}, k={k[j]})", "k")
        out = out.with_size(ax.name, o)
    out = out.with_size(axis, cout, rename)
    params = (ParamSpec("weight", (cout, S.floordiv(cin, g)) + tuple(k)),)
    if a["bias"]:
        params += (ParamSpec("bias", (cout,)),)
    return out, params


@rule(Op.CONV_T)
def _conv_t(ctx, ins, a):
    (x,) = ins
    axis, cout, rename, c, cin, idx, k, s, d, pads, g = _conv_common(ctx, x, a, True)
    op = per_axis(a["output_padding"], len(idx), "output_padding")
    out = x
    for j, i in enumerate(idx):
        ax = x.axes[i]
        if S.is_concrete(op[j]) and S.is_concrete(s[j]) and S.is_concrete(d[j]):
            if not 0 <= int(op[j]) < max(int(s[j]), int(d[j])):
                raise fail(f"output_padding must be smaller than max(stride, dilation) = "
                           f"{max(int(s[j]), int(d[j]))}, got {op[j]}", "output_padding", "value")
        o = S.add(S.mul(S.add(ax.size, -1), s[j]), S.add(S.mul(-1, S.add(pads[j][0], pads[j][1])),
                  S.add(S.mul(d[j], S.add(k[j], -1)), S.add(op[j], 1))))
        ctx.require_positive(o, f"transposed conv output along '{ax.name}'", "k")
        out = out.with_size(ax.name, o)
    out = out.with_size(axis, cout, rename)
    params = (ParamSpec("weight", (cin, S.floordiv(cout, g)) + tuple(k)),)
    if a["bias"]:
        params += (ParamSpec("bias", (cout,)),)
    return out, params


@rule(Op.EINSUM)
def _einsum(ctx, ins, a):
    spec, over = a["spec"], a["over"]
    if spec is None:
        if len(ins) != 2 or over is None:
            raise fail("einsum needs a spec string, or two tensors and over=[axes]", "spec", "arg")
        left, right = ins
        for name in over:
            axis_of(left, name, "over")
            axis_of(right, name, "over")
        out_names = [n for n in left.names if n not in over]
        out_names += [n for n in right.names if n not in over and n not in out_names]
        operands = [list(t.names) for t in ins]
    else:
        if "->" not in spec:
            raise fail("an einsum spec needs '->', as in 'a b, b c -> a c'", "spec", "arg")
        lhs, rhs = spec.split("->", 1)
        operands = [p.split() for p in lhs.split(",")]
        out_names = rhs.split()
        if len(operands) != len(ins):
            raise fail(f"the spec names {len(operands)} operands but {len(ins)} tensors are given",
                       "spec", "arg")
        for j, (names, t) in enumerate(zip(operands, ins)):
            if tuple(names) != t.names:
                raise fail(f"operand {j + 1} of the spec is [{', '.join(names)}] but the tensor is {t}",
                           "spec")
    known: dict[str, Size] = {}
    for t in ins:
        for ax in t.axes:
            if ax.name in known:
                ctx.require_equal(known[ax.name], ax.size, f"axis '{ax.name}' across einsum operands")
            else:
                known[ax.name] = ax.size
    for n in out_names:
        if n not in known:
            raise fail(f"output axis '{n}' is not an axis of any operand", "spec")
    if len(set(out_names)) != len(out_names):
        raise fail("an output axis appears twice", "spec")
    return TensorType(tuple(Axis(n, known[n]) for n in out_names), ins[0].dtype), ()


@rule(Op.ATTENTION)
def _attention(ctx, ins, a):
    q, k, v = ins
    seq, chan = a["seq"], a["chan"]
    for t, nm in ((q, "q"), (k, "k"), (v, "v")):
        axis_of(t, seq, "seq", f"(the sequence axis of {nm})")
        axis_of(t, chan, "chan", f"(the feature axis of {nm})")
    if not (q.names == k.names == v.names):
        raise fail(f"q, k and v must have the same axes: {q}, {k}, {v}")
    for ax in q.axes:
        if ax.name == seq:
            continue
        if ax.name == chan:
            ctx.require_equal(ax.size, k.size(chan), "the feature axis of q and k")
            continue
        ctx.require_equal(ax.size, k.size(ax.name), f"axis '{ax.name}' of q and k")
        ctx.require_equal(ax.size, v.size(ax.name), f"axis '{ax.name}' of q and v")
    ctx.require_equal(k.size(seq), v.size(seq), "the sequence axis of k and v")
    return q.with_size(chan, v.size(chan)), ()


@rule(Op.MHA)
def _mha(ctx, ins, a):
    q = ins[0]
    if len(ins) == 2:
        raise fail("multihead_attention takes one tensor (self-attention) or three (q, k, v)", None, "arg")
    chan = a["chan"] or q.names[-1]
    seq = a["seq"] or (q.names[-2] if len(q.axes) >= 2 else None)
    if seq is None:
        raise fail("multihead_attention needs a sequence axis", "seq")
    axis_of(q, chan, "chan")
    axis_of(q, seq, "seq")
    d = q.size(chan)
    for t in ins[1:]:
        if t.names != q.names:
            raise fail(f"k and v must have the axes of q {q}, got {t}")
        ctx.require_equal(t.size(chan), d, "the feature axis of k and v")
    heads = a["heads"]
    _check_nonneg((heads,), "heads", 1)
    ctx.require_divisible(d, heads, f"'{chan}' by heads", "heads")
    params = [ParamSpec("in_proj_weight", (S.mul(3, d), d))]
    if a["bias"]:
        params.append(ParamSpec("in_proj_bias", (S.mul(3, d),)))
    params.append(ParamSpec("out_proj.weight", (d, d)))
    if a["bias"]:
        params.append(ParamSpec("out_proj.bias", (d,)))
    return q, tuple(params)


# ---- pooling and reductions -------------------------------------------------------


@rule(Op.MAXPOOL, Op.AVGPOOL)
def _pool(ctx, ins, a):
    (x,) = ins
    idx = spatial_axes(x, a["over"], 1)
    n = len(idx)
    k = per_axis(a["k"], n, "k")
    s = per_axis(a["stride"] if a["stride"] is not None else a["k"], n, "stride")
    d = per_axis(a.get("dilation", 1), n, "dilation")
    _check_nonneg(k, "k", 1)
    _check_nonneg(s, "stride", 1)
    pads = padding(a["pad"], k, d, s, n)
    _record_window(a, x, idx, k, s, d, pads)
    out = x
    for j, i in enumerate(idx):
        ax = x.axes[i]
        p0, p1 = pads[j]
        for p in (p0, p1):
            # PyTorch's rule: pad <= k // 2, of the kernel size itself whatever the dilation.
            if S.is_concrete(p) and S.is_concrete(k[j]) and int(p) > int(k[j]) // 2:
                raise fail(f"pooling pad {p} exceeds half the kernel size {k[j]} (PyTorch rejects it)",
                           "pad", "value")
        if n == 3 and "count_include_pad" in a:  # avg_pool3d (alone) wants a window in the unpadded input
            ctx.require_positive(S.add(ax.size, S.add(1, S.mul(-1, k[j]))),
                                 f"3-D average pooling input along '{ax.name}' ({S.fmt(ax.size)}) "
                                 f"minus the kernel {k[j]}, plus 1", "k")
        o = window_out(ax.size, k[j], s[j], p0, p1, d[j], a["ceil"])
        ctx.require_positive(o, f"pooling output along '{ax.name}' (input {S.fmt(ax.size)}, k={k[j]})", "k")
        out = out.with_size(ax.name, o)
    return out, ()


@rule(Op.ADAPTIVE_AVGPOOL, Op.ADAPTIVE_MAXPOOL)
def _adaptive(ctx, ins, a):
    (x,) = ins
    idx = spatial_axes(x, a["over"], 1)
    outs = per_axis(a["out"], len(idx), "out")
    _check_nonneg(outs, "out", 1)
    a["spatial"] = tuple(x.axes[i].name for i in idx)
    out = x
    for i, o in zip(idx, outs):
        out = out.with_size(x.axes[i].name, o)
    return out, ()


@rule(Op.MEAN, Op.SUM, Op.AMAX)
def _reduce(ctx, ins, a):
    (x,) = ins
    over = a["over"]
    for n in over:
        axis_of(x, n, "over")
    if a["keep"]:
        axes = tuple(Axis(ax.name, 1) if ax.name in over else ax for ax in x.axes)
    else:
        axes = tuple(ax for ax in x.axes if ax.name not in over)
    return TensorType(axes, x.dtype), ()


# ---- normalisation ----------------------------------------------------------------


def _channel(x: TensorType, axis: str | None) -> str:
    if axis is not None:
        axis_of(x, axis, "axis")
        return axis
    if len(x.axes) < 2:
        raise fail(f"the tensor {x} has no second axis to normalise; name one with axis=", "axis")
    return x.names[1]


@rule(Op.BATCHNORM)
def _batchnorm(ctx, ins, a):
    (x,) = ins
    c = x.size(_channel(x, a["axis"]))
    params: tuple[ParamSpec, ...] = ()
    if a["affine"]:
        params += (ParamSpec("weight", (c,)), ParamSpec("bias", (c,)))
    if a["track_running_stats"]:
        params += (ParamSpec("running_mean", (c,), True), ParamSpec("running_var", (c,), True),
                   ParamSpec("num_batches_tracked", (), True))
    return x, params


def _norm_over(x: TensorType, over) -> tuple[str, ...]:
    if over is None:
        return (x.names[-1],)
    for n in over:
        axis_of(x, n, "over")
    return tuple(over)


@rule(Op.LAYERNORM)
def _layernorm(ctx, ins, a):
    (x,) = ins
    shape = tuple(x.size(n) for n in _norm_over(x, a["over"]))
    params: tuple[ParamSpec, ...] = ()
    if a["affine"]:
        params += (ParamSpec("weight", shape),)
        if a["bias"]:
            params += (ParamSpec("bias", shape),)
    return x, params


@rule(Op.RMSNORM)
def _rmsnorm(ctx, ins, a):
    (x,) = ins
    shape = tuple(x.size(n) for n in _norm_over(x, a["over"]))
    return x, (ParamSpec("weight", shape),) if a["affine"] else ()


@rule(Op.GROUPNORM)
def _groupnorm(ctx, ins, a):
    (x,) = ins
    name = _channel(x, a["axis"])
    c = x.size(name)
    _check_nonneg((a["groups"],), "groups", 1)
    ctx.require_divisible(c, a["groups"], f"'{name}' by groups", "groups")
    return x, (ParamSpec("weight", (c,)), ParamSpec("bias", (c,))) if a["affine"] else ()


# ---- elementwise ---------------------------------------------------------------------


@rule(*ACTIVATIONS, Op.DROPOUT, Op.DROP_PATH, Op.IDENTITY, Op.SCALE)
def _same(ctx, ins, a):
    if "p" in a and a["p"] is not None and not 0 <= a["p"] <= 1:
        raise fail(f"p must be between 0 and 1, got {a['p']}", "p", "value")
    return ins[0], ()


@rule(Op.SOFTMAX)
def _softmax(ctx, ins, a):
    axis_of(ins[0], a["axis"], "axis")
    return ins[0], ()


def broadcast(ctx: Ctx, x: TensorType, y: TensorType, what: str) -> TensorType:
    """Named broadcasting: same axes in the same order, or one a subsequence of the other.

    Axes of size 1 stretch; otherwise sizes must be equal.
    """
    if x.dtype != y.dtype:
        raise fail(f"{what} of {x.dtype} and {y.dtype} tensors", None, "type")
    big, small = (x, y) if len(x.axes) >= len(y.axes) else (y, x)
    pos = [big.index(n) if big.has(n) else -1 for n in small.names]
    if -1 in pos or pos != sorted(pos):
        if set(x.names) == set(y.names):
            raise fail(f"the two sides of the {what} have their axes in a different order: {x} vs {y}; "
                       "rearrange one first")
        missing = [n for n in small.names if not big.has(n)]
        if missing:
            raise fail(f"axis '{missing[0]}' of {small} is not in {big}, the other side of the {what}")
        raise fail(f"the axes of {small} are not in the order of {big}, the other side of the {what}")
    axes = list(big.axes)
    for j, i in zip(range(len(small.axes)), pos):
        bs, ss = big.axes[i].size, small.axes[j].size
        if ss == 1:
            continue
        if bs == 1:
            axes[i] = Axis(big.axes[i].name, ss)
            continue
        ctx.require_equal(bs, ss, f"axis '{big.axes[i].name}' on both sides of the {what}")
    return TensorType(tuple(axes), big.dtype)


@rule(Op.ADD, Op.SUB, Op.MUL)
def _binary(ctx, ins, a):
    return broadcast(ctx, ins[0], ins[1], a.get("what", "sum")), ()


# The data-movement rules live in movement.py; importing it registers them.
from archc.ops.movement import _pattern_side  # noqa: E402,F401 - re-exported for code generation
