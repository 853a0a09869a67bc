"""`fft`, `ifft`, `rfft`, `irfft` against torch.fft: types, generated code and values, costs (their own kind,
"fft": FlopCounterMode counts none), complex tensors through einsum and products, and located errors."""

from __future__ import annotations

import math
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archc
from archc.diagnostics import ArchError

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

AXES = ["n", "c", "h", "w"]
TORCH = {"fft": torch.fft.fftn, "ifft": torch.fft.ifftn, "rfft": torch.fft.rfftn, "irfft": torch.fft.irfftn}


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(sizes=st.lists(st.integers(1, 6), min_size=4, max_size=4),
       over=st.lists(st.sampled_from(AXES), min_size=1, max_size=3, unique=True),
       kind=st.sampled_from(["fft", "ifft", "rfft", "irfft"]),
       norm=st.sampled_from(["backward", "ortho", "forward"]), sized=st.booleans())
def test_each_transform_equals_torch_fft(sizes: list[int], over: list[str], kind: str, norm: str,
                                         sized: bool) -> None:
    if kind == "irfft" and not sized and sizes[AXES.index(over[-1])] == 1:
        sizes[AXES.index(over[-1])] = 2  # irfft of one frequency: no default length (an error, tested below)
    dtype = "c64" if kind in ("ifft", "irfft") else "f32"
    lengths = [sizes[AXES.index(a)] + (1 if sized else 0) for a in over]
    decl = ", ".join(f"{a} = {s}" for a, s in zip(AXES, sizes))
    size = f", size = [{', '.join(map(str, lengths))}]" if sized else ""
    src = (f"block F() {{\n  in x: {dtype}[{decl}]\n"
           f"  y = {kind}(x, over = [{', '.join(over)}]{size}, norm = \"{norm}\")\n  out y\n}}\n")
    m = archc.loads(src, "fft.arch")
    x = torch.randn(*sizes, dtype=torch.complex64 if dtype == "c64" else torch.float32)
    dims = tuple(AXES.index(a) for a in over)
    want = TORCH[kind](x, s=tuple(lengths) if sized else None, dim=dims, norm=norm)
    g = m.check().graph
    t = g.node(g.outputs[0]).type
    assert [a.size for a in t.axes] == list(want.shape)
    assert t.dtype == {"torch.complex64": "c64", "torch.float32": "f32"}[str(want.dtype)]
    with FlopCounterMode(display=False) as counter:
        got = m.torch()()(x)
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-5)
    assert counter.get_total_flops() == m.flops().flops == 0  # FlopCounterMode counts no FFT work
    signal = [lengths[i] if sized else (want.shape[d] if kind != "rfft" else x.shape[d]) for i, d in enumerate(dims)]
    n = math.prod(signal)
    batch = math.prod(s for i, s in enumerate(want.shape) if i not in dims)
    per = 2.5 if kind in ("rfft", "irfft") else 5.0
    expected = round(per * n * math.log2(n)) * batch if n > 1 else 0
    assert m.flops(convention="full").flops == expected
    assert m.flops(convention="full").by_kind.get("fft", 0) == expected


def test_a_spectral_convolution_with_complex_weights() -> None:
    """rfft2, a complex per-frequency channel mixing by einsum with a learned c64 weight, irfft2: the FNO layer's
    core; complex tensors flow through einsum and products, and the weight is stored as torch stores it."""
    src = """
block Spectral() {
  in x: [b = 2, c = 4, h = 8, w = 8]
  param weight: c64[c = 4, d = 6, h = 8, w = 5] = 0.02
  f = rfft(x, over = [h, w])
  g = einsum(f, weight, spec = "b c h w, c d h w -> b d h w")
  out irfft(g * g, over = [h, w], size = [8, 8])
}
"""
    m = archc.loads(src, "spectral.arch")
    g = m.check().graph
    assert str(g.node(g.outputs[0]).type) == "[b=2, d=6, h=8, w=8]"
    module = m.torch()()
    assert module.weight.dtype == torch.complex64 and module.state_dict()["weight"].shape == (4, 6, 8, 5)
    x = torch.randn(2, 4, 8, 8)
    f = torch.fft.rfftn(x, dim=(2, 3))
    mixed = torch.einsum("bchw,cdhw->bdhw", f, module.weight)
    want = torch.fft.irfftn(mixed * mixed, s=(8, 8), dim=(2, 3))
    assert torch.allclose(module(x), want, rtol=1e-4, atol=1e-5)
    # rfft of 2·4 signals of 64 points, irfft of 2·6: 2.5·64·log2(64) = 960 each
    assert m.flops(convention="full").by_kind["fft"] == 960 * 8 + 960 * 12


def test_free_lengths_give_closed_forms() -> None:
    m = archc.loads("size L\nblock B() {\n  in x: [b = 2, t = L]\n  out fft(x, over = [t])\n}\n")
    text = str(m.flops(symbolic=True, convention="full").flops)
    assert "log" in text and "L" in text


@pytest.mark.parametrize("body,message", [
    ("rfft(x, over = [q])", "no axis 'q'"),
    ("rfft(z, over = [h])", "rfft: takes a real tensor, not c64"),
    ("irfft(x, over = [h])", "irfft: takes a complex tensor, not f32"),
    ("fft(half, over = [h])", "a Fourier transform of f16 is not supported"),
    ("fft(x, over = [h, h])", "named twice"),
    ("irfft(one, over = [w])", "the signal length 2·(w − 1) (give size = ...) would be 0"),
    ("fft(x, over = [h], size = 0)", "at least 1"),
    ('fft(x, over = [h], norm = "both")', "norm"),
])
def test_bad_transforms_are_located_errors(body: str, message: str) -> None:
    src = ("block B() {\n  in x: [n = 2, h = 4, w = 4]\n  in z: c64[n = 2, h = 4]\n  in half: f16[n = 2, h = 4]\n"
           f"  in one: c64[n = 2, w = 1]\n  y = {body}\n  out y\n}}\n")
    with pytest.raises(ArchError) as e:
        archc.loads(src, "bad.arch").check()
    text = str(e.value)
    assert message in text and e.value.diagnostics[0].span.line == 6, text


def test_errors_file_exists() -> None:
    assert (pathlib.Path(__file__).parent / "errors" / "fft.arch").exists()
