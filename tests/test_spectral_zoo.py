"""FNO-2D (examples/zoo/fno2d.arch) against a PyTorch reference written by hand from the paper: parameters,
FLOPs (FlopCounterMode counts the lifting, 1x1 convs and projection; the FFTs are kind "fft"), the
reference's state_dict loading strictly into the generated module, and equal outputs."""

from __future__ import annotations

import math
import pathlib

import pytest

import archc

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

FNO = pathlib.Path(__file__).resolve().parent.parent / "examples" / "zoo" / "fno2d.arch"


class SpectralConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, modes: int) -> None:
        super().__init__()
        self.modes = modes
        scale = 1 / (cin * cout)
        self.weights1 = nn.Parameter(scale * torch.rand(cin, cout, modes, modes, dtype=torch.cfloat))
        self.weights2 = nn.Parameter(scale * torch.rand(cin, cout, modes, modes, dtype=torch.cfloat))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        m = self.modes
        f = torch.fft.rfft2(x)
        out = torch.zeros(b, self.weights1.shape[1], h, w // 2 + 1, dtype=torch.cfloat, device=x.device)
        out[:, :, :m, :m] = torch.einsum("bixy,ioxy->boxy", f[:, :, :m, :m], self.weights1)
        out[:, :, -m:, :m] = torch.einsum("bixy,ioxy->boxy", f[:, :, -m:, :m], self.weights2)
        return torch.fft.irfft2(out, s=(h, w))


class FNO2d(nn.Module):
    def __init__(self, modes: int = 12, width: int = 32, cin: int = 3) -> None:
        super().__init__()
        self.fc0 = nn.Linear(cin, width)
        for i in range(4):
            setattr(self, f"conv{i}", SpectralConv2d(width, width, modes))
            setattr(self, f"w{i}", nn.Conv2d(width, width, 1))
        self.fc1 = nn.Linear(width, 128)
        self.fc2 = nn.Linear(128, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc0(x).permute(0, 3, 1, 2)
        for i in range(4):
            y = getattr(self, f"conv{i}")(x) + getattr(self, f"w{i}")(x)
            x = nn.functional.gelu(y) if i < 3 else y
        x = x.permute(0, 2, 3, 1)
        return self.fc2(nn.functional.gelu(self.fc1(x)))


def test_figures_equal_the_reference() -> None:
    ref = FNO2d()
    report = archc.load(str(FNO)).flops()
    assert report.params == sum(p.numel() for p in ref.parameters()) == 1_188_353
    with FlopCounterMode(display=False) as counter:
        ref(torch.randn(1, 64, 64, 3))
    assert report.flops == counter.get_total_flops()
    full = archc.load(str(FNO)).flops(convention="full")
    n = 64 * 64
    per_layer = 32 * round(2.5 * n * math.log2(n)) * 2  # rfft2 of 32 channels and irfft2 of 32
    assert full.by_kind["fft"] == 4 * per_layer


def test_the_generated_module_loads_the_reference_and_agrees() -> None:
    torch.manual_seed(0)
    ref = FNO2d().eval()
    for i in range(4):
        conv = getattr(ref, f"conv{i}")
        with torch.no_grad():
            conv.weights1.copy_(torch.randn_like(conv.weights1) * 0.01)
            conv.weights2.copy_(torch.randn_like(conv.weights2) * 0.01)
    mod = archc.load(str(FNO)).torch()().eval()
    mod.load_state_dict(ref.state_dict(), strict=True)
    assert list(mod.state_dict()) == list(ref.state_dict())
    x = torch.randn(2, 40, 48, 3)
    with torch.no_grad():
        want, got = ref(x), mod(x)
    assert got.shape == want.shape == (2, 40, 48, 1)
    assert ((got - want).abs().max() / want.abs().max()).item() <= 1e-5


def test_the_triton_target_runs_fno_with_torch_ffts() -> None:
    """The FFTs, slices, pads and the complex einsums stay torch calls; the lifting, 1x1 convs, GELUs and
    projection are kernels."""
    pytest.importorskip("triton")
    from archc.codegen.torch.generate import Generated, load_class
    from archc.codegen.triton import generate
    from archc.dsl.templates import Templates
    model = archc.load(str(FNO))
    tm = generate(Templates(model.program, model.entry), model.check(symbolic=True).graph)
    fused = load_class(Generated(tm.text, tm.entry_class, tm.inputs, tm.classes))().eval()
    eager = archc.load(str(FNO)).torch()().eval()
    fused.load_state_dict(eager.state_dict())
    x = torch.randn(1, 24, 24, 3)
    with torch.no_grad():
        want, got = eager(x), fused(x)
    # fc0; each 1x1 conv with the spectral branch's sum and the GELU as its epilogue (4); fc1 + GELU; fc2
    assert tm.kernels == 7 and ((got - want).abs().max() / want.abs().max()).item() <= 1e-4
