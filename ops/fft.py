"""Fourier transforms over named axes: `fft`, `ifft`, `rfft`, `irfft` (spectral and long convolutions).

`rfft(x, over = [h, w])` transforms a real tensor over `h` and `w` into a complex
one (c64 from f32, c128 from f64); the last axis of `over` keeps its
non-negative frequencies only, `n -> n/2 + 1`. `irfft` is its inverse: a complex
tensor back to a real one, the last axis `n -> 2·(n − 1)` unless `size` gives the
signal length (an odd length cannot be recovered otherwise). `fft` and `ifft`
are the complex transforms (a real input is taken as complex). `size` (one size
per axis of `over`) pads or crops the signal to that length first, as torch's
`s=`; `norm` is "backward" (the default: the inverse divides by n), "ortho" or
"forward".

Cost: the transforms are not contractions; they are counted as their own kind,
"fft", by the usual 5·N·log2 N floating-point operations for a complex transform
of N points (N the product of the transformed lengths, per batch element) and
half that for a real one, rounded to the nearest integer. FlopCounterMode
counts no FFT work, so the torch convention gives 0; the full convention
includes the estimate (docs/costs.md).

>>> import archc
>>> m = archc.loads('block B() { in x: [b = 2, h = 8, w = 8]\\n out rfft(x, over = [h, w]) }')
>>> g = m.check().graph
>>> str(g.node(g.outputs[0]).type), m.flops().flops, m.flops(convention="full").flops
('c64[b=2, h=8, w=5]', 0, 1920)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from archc.ops import glyphs as G
from archc.ops import rules as R
from archc.ops import saves as Sv
from archc.ops import torch_lowering as T
from archc.ops.facets import Cost, Expr, Glyph, Kept, LowerCtx, SaveCtx, Saved, ShapeCtx, TorchLowering
from archc.ops.registry import FLOATING, Attrs, OpDef, Trait, arg, define
from archc.shapes import sizes as S
from archc.shapes.sizes import Size
from archc.shapes.types import DTYPES, Axis, ParamSpec, TensorType, Type

NORMS = ("backward", "ortho", "forward")
_COMPLEX = {"f32": "c64", "f64": "c128", "c64": "c64", "c128": "c128"}
_REAL = {"c64": "f32", "c128": "f64"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class FFTAttrs(Attrs):
    over: tuple[str, ...] = arg("axes")
    size: Any = arg("sizes", None)  # the signal length per axis of `over` (pad or crop first); None: as it is
    norm: str = arg("str", "backward", NORMS)


def _sizes(a: FFTAttrs) -> tuple[Size, ...] | None:
    if a.size is None:
        return None
    sizes = R.per_axis(a.size, len(a.over), "size")
    for s in sizes:
        if S.is_concrete(s) and int(s) < 1:
            raise R.fail(f"an FFT length must be at least 1, not {s}", "size", "value")
    return sizes


def _shape(kind: str) -> Any:
    def shape(ctx: ShapeCtx, ins: list[TensorType], a: FFTAttrs) -> tuple[Type, tuple[ParamSpec, ...], FFTAttrs]:
        (x,) = ins
        R.distinct_axes(x, a.over)
        if not a.over:
            raise R.fail("needs at least one axis in over", "over", "arg")
        info = DTYPES[x.dtype]
        if kind == "rfft" and info.kind != "float" or kind == "irfft" and info.kind != "complex":
            want = "a real" if kind == "rfft" else "a complex"
            raise R.fail(f"takes {want} tensor, not {x.dtype}: {x}", None, "type")
        if x.dtype not in _COMPLEX:
            raise R.fail(f"a Fourier transform of {x.dtype} is not supported (torch's take f32, f64, c64 and c128 "
                         "on every device): cast to f32 first", None, "type")
        sizes = _sizes(a)
        last = a.over[-1]
        axes = []
        for ax in x.axes:
            if ax.name not in a.over:
                axes.append(ax)
                continue
            n = sizes[a.over.index(ax.name)] if sizes is not None else ax.size
            if ax.name == last and kind == "rfft":
                n = S.add(S.floordiv(n, 2), 1)
            elif ax.name == last and kind == "irfft" and sizes is None:
                n = S.mul(2, S.add(ax.size, -1))
                ctx.require_positive(n, f"the signal length 2·({ax.name} − 1) (give size = ...)", "size")
            axes.append(Axis(ax.name, n))
        dtype = _REAL[x.dtype] if kind == "irfft" else _COMPLEX[x.dtype]
        return TensorType(tuple(axes), dtype), (), a
    return shape


def _cost(kind: str) -> Any:
    def cost(a: FFTAttrs, ins: list[TensorType], out: Type, params: tuple[ParamSpec, ...]) -> Cost:
        x, y = ins[0], R.tensor(out)
        sizes = _sizes(a)
        if kind == "rfft":  # the real signal: the input (padded or cropped to `size`)
            n = S.prod(sizes) if sizes is not None else S.prod(x.size(name) for name in a.over)
        else:  # the output: the complex signal, or irfft's real one
            n = S.prod(y.size(name) for name in a.over)
        batch = S.prod(ax.size for ax in y.axes if ax.name not in a.over)
        per = 2.5 if kind in ("rfft", "irfft") else 5.0
        return Cost().add("fft", S.mul(batch, S.fft_work(n, per)))
    return cost


def _forward(kind: str) -> Any:
    def forward(a: FFTAttrs, ins: list[TensorType], out: Type, ctx: LowerCtx, args: list[Expr]) -> Expr:
        kw = ""
        sizes = _sizes(a)
        if sizes is not None:
            kw += f", s=({', '.join(ctx.size(s) for s in sizes)}{',' if len(sizes) == 1 else ''})"
        elif kind == "irfft":  # the default length is torch's too; say it, as the type does
            n = R.tensor(out).size(a.over[-1])
            others = [ctx.size(R.tensor(out).size(name)) for name in a.over[:-1]]
            kw += f", s=({', '.join(others + [ctx.size(n)])}{',' if not others else ''})"
        kw += f", dim={T.dim_lit(T.dims(ins[0], a.over))}"
        if a.norm != "backward":
            kw += f", norm={a.norm!r}"
        return Expr(f"torch.fft.{kind}n({args[0].text}{kw})")
    return forward


def _rfft_saves(a: FFTAttrs, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """rfft keeps its real input (its backward reads it): the input itself, or the view a crop makes of
    it; where `size` pads an axis, the padded copy torch transforms (the input with the `over` axes at
    `size`). The complex transforms and irfft keep nothing."""
    (x,) = ins
    sizes = _sizes(a)
    if sizes is None or all(S.compare(s, "<=", x.size(n)) is True for n, s in zip(a.over, sizes)):
        return Saved(inputs=(0,))
    padded = {n: s for n, s in zip(a.over, sizes)}
    return Saved(new=(Kept(S.prod(padded.get(ax.name, ax.size) for ax in x.axes), x.dtype),))


_DOCS = {
    "fft": "the discrete Fourier transform over the `over` axes (complex; a real input taken as complex)",
    "ifft": "its inverse (complex)",
    "rfft": "the transform of a real tensor: complex, the last axis of `over` n -> n/2 + 1",
    "irfft": "its inverse: real, the last axis n -> 2·(n − 1) or `size`",
}

for _kind in ("fft", "ifft", "rfft", "irfft"):
    define(OpDef(
        key=_kind.upper(), name=_kind, attrs=FFTAttrs, tensors=1, traits=frozenset({Trait.SPECTRAL}),
        shape=_shape(_kind), cost=_cost(_kind), torch=TorchLowering(forward=_forward(_kind), fresh=True),
        glyph=Glyph("func", {"fft": "FFT", "ifft": "FFT⁻¹", "rfft": "rFFT", "irfft": "rFFT⁻¹"}[_kind], G.FUNC),
        doc=_DOCS[_kind], dtypes=FLOATING, saves=_rfft_saves if _kind == "rfft" else Sv.nothing))

__all__ = ["FFTAttrs", "Trait"]
