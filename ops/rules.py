"""What shape rules share: locating axes, per-axis arguments, padding, window arithmetic, broadcasting.

Each op's own rule lives with its definition (ops/conv.py, ops/norm.py, ...).
A rule reports problems by raising `ShapeError` (`fail(...)`: code, message,
and the argument to point at) and states requirements on sizes through
`ctx.require_*`, which decide them now when sizes are concrete and record them
as constraints on the free sizes when they are not.

Convolution arithmetic follows Dumoulin & Visin and PyTorch:
  conv/pool:  o = floor((i + p0 + p1 - d(k-1) - 1) / s) + 1      (ceil with ceil_mode)
  transposed: o = (i - 1)s - p0 - p1 + d(k-1) + output_padding + 1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from archc.ops.facets import ShapeCtx, ShapeError
from archc.shapes import sizes as S
from archc.shapes.sizes import Size
from archc.shapes.types import Axis, TensorType, Type


def tensor(t: Type) -> TensorType:
    """An op's output type where the op always makes one tensor (not a tuple)."""
    assert isinstance(t, TensorType)
    return t


def fail(message: str, arg: str | None = None, code: str = "axis") -> ShapeError:
    return ShapeError(code, message, arg)


def axis_of(t: TensorType, name: str, arg: str | None = None, role: str = "") -> int:
    if not t.has(name):
        from archc.diagnostics import did_you_mean
        role = f" {role}" if role else ""
        raise fail(f"the tensor {t} has no axis '{name}'{role}{did_you_mean(name, t.names)}", arg)
    return t.index(name)


def distinct_axes(t: TensorType, names: tuple[str, ...], arg: str = "over") -> list[int]:
    """The positions of `names` in `t`: each must be an axis of it, and none named twice."""
    idx = [axis_of(t, name, arg) for name in names]
    if len(set(names)) != len(names):
        raise fail(f"an axis is named twice in {arg}", arg)
    return idx


def check_eps(eps: float | None) -> None:
    """A norm's eps is added under a square root: it must be positive (torch rejects a negative one)."""
    if eps is not None and not eps > 0:
        raise fail(f"eps must be positive, got {eps}", "eps", "value")


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


def padding(pad: Any, k: tuple[Size, ...], d: tuple[Size, ...], s: tuple[Size, ...], n: int, transposed: bool = False
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


def check_min(vals: tuple[Size, ...], what: str, minimum: int = 0) -> None:
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
    # Min, not a Piecewise on the comparison: nested Piecewise conditions send sympy into evalf.
    return S.minimum(o, S.floordiv(S.add(limit, S.add(s, -1)), s))


def channel(x: TensorType, axis: str | None) -> str:
    if axis is not None:
        axis_of(x, axis, "axis")
        return axis
    if len(x.axes) < 2:
        raise fail(f"the tensor {x} has no second axis to normalise; name one with axis=", "axis")
    return x.names[1]


def norm_over(x: TensorType, over: Sequence[str] | None) -> tuple[str, ...]:
    if over is None:
        return (x.names[-1],)
    for n in over:
        axis_of(x, n, "over")
    return tuple(over)


def window(x: TensorType, idx: list[int], k: tuple[Size, ...], s: tuple[Size, ...], d: tuple[Size, ...],
           pads: list[tuple[Size, Size]]) -> dict[str, Any]:
    """The resolved per-axis geometry a windowed op keeps for its cost rule and lowerings."""
    return {"spatial": tuple(x.axes[i].name for i in idx), "kernel": tuple(k), "strides": tuple(s),
            "dilations": tuple(d), "pads": tuple(pads)}


def broadcast(ctx: ShapeCtx, x: TensorType, y: TensorType, what: str) -> TensorType:
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
