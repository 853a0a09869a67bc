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
    from archc.codegen.torch import load_class
    tm = archc.load(str(FNO)).triton_module()
    fused = load_class(tm.generated)().eval()
    eager = archc.load(str(FNO)).torch()().eval()
    fused.load_state_dict(eager.state_dict())
    x = torch.randn(1, 24, 24, 3)
    with torch.no_grad():
        want, got = eager(x), fused(x)
    # fc0; each 1x1 conv with the spectral branch's sum and the GELU as its epilogue (4); fc1 + GELU; fc2
    assert tm.kernels == 7 and ((got - want).abs().max() / want.abs().max()).item() <= 1e-4


# ---- the Hyena operator (examples/zoo/hyena.arch) --------------------------------------------------------

HYENA = FNO.parent / "hyena.arch"


class Sin(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.freq = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.freq * x)


class HyenaFilter(nn.Module):
    """The implicit long filter and the FFT convolution it is applied by (Poli et al. 2023, order 2)."""

    def __init__(self, d: int, order: int, emb: int, length: int) -> None:
        super().__init__()
        t = torch.linspace(0, 1, length)
        bands = (emb - 1) // 2
        w = 2 * math.pi * torch.arange(length)[:, None] / length
        f = torch.linspace(1e-4, bands - 1, bands)[None]
        z = torch.exp(-1j * f * w)
        self.bias = nn.Parameter(torch.randn(d))
        self.register_buffer("z", torch.cat([t[:, None], z.real, z.imag], dim=-1))
        self.register_buffer("t", t)
        self.register_buffer("deltas", torch.linspace(math.log(1e-2) / 0.3, math.log(1e-2) / 1.5, d))
        self.implicit_filter = nn.Sequential(nn.Linear(emb, order), Sin(order), nn.Linear(order, order), Sin(order),
                                             nn.Linear(order, d, bias=False))

    def forward(self, v: torch.Tensor) -> torch.Tensor:  # v: [b, d, L]
        length = v.shape[-1]
        k = self.implicit_filter(self.z) * torch.exp(-self.t[:, None] * self.deltas.abs())  # [L, d]
        k = k.t()
        spectrum = torch.fft.rfft(v, n=2 * length) * torch.fft.rfft(k, n=2 * length)
        return torch.fft.irfft(spectrum, n=2 * length)[..., :length] + v * self.bias[:, None]


class HyenaOperator(nn.Module):
    def __init__(self, d: int = 64, order: int = 16, emb: int = 3, length: int = 64) -> None:
        super().__init__()
        self.d = d
        self.in_proj = nn.Linear(d, 3 * d)
        self.short_filter = nn.Conv1d(3 * d, 3 * d, 3, padding=2, groups=3 * d)
        self.filter_fn = HyenaFilter(d, order, emb, length)
        self.out_proj = nn.Linear(d, d)

    def forward(self, u: torch.Tensor) -> torch.Tensor:  # u: [b, L, d]
        length = u.shape[1]
        x = self.short_filter(self.in_proj(u).transpose(1, 2))[..., :length]
        x0, x1, v = x.split(self.d, dim=1)
        y = self.filter_fn(v * x1) * x0
        return self.out_proj(y.transpose(1, 2))


def test_hyena_figures_equal_the_reference() -> None:
    ref = HyenaOperator()
    report = archc.load(str(HYENA)).flops()
    assert report.params == sum(p.numel() for p in ref.parameters()) == 18_864
    with FlopCounterMode(display=False) as counter:
        ref(torch.randn(1, 64, 64))
    assert report.flops == counter.get_total_flops()
    n = 128  # each FFT pads to 2L
    assert archc.load(str(HYENA)).flops(convention="full").by_kind["fft"] == \
        3 * 64 * round(2.5 * n * math.log2(n))  # rfft of v and of the filter, irfft: 64 channels each


def test_hyena_module_loads_the_reference_and_agrees() -> None:
    torch.manual_seed(1)
    ref = HyenaOperator().eval()
    mod = archc.load(str(HYENA)).torch()().eval()
    mod.load_state_dict(ref.state_dict(), strict=True)
    u = torch.randn(2, 64, 64)
    with torch.no_grad():
        want, got = ref(u), mod(u)
    assert got.shape == want.shape == (2, 64, 64)
    assert ((got - want).abs().max() / want.abs().max()).item() <= 1e-5


def test_hyena_through_the_triton_target() -> None:
    pytest.importorskip("triton")
    from archc.codegen.torch import load_class
    tm = archc.load(str(HYENA)).triton_module()
    fused = load_class(tm.generated)().eval()
    ref = HyenaOperator().eval()
    fused.load_state_dict(ref.state_dict(), strict=True)
    u = torch.randn(1, 64, 64)
    with torch.no_grad():
        want, got = ref(u), fused(u)
    assert tm.kernels == 10 and ((got - want).abs().max() / want.abs().max()).item() <= 1e-4


# ---- ESPCN (examples/zoo/espcn.arch): the sub-pixel convolution ----------------------------------------

ESPCN = FNO.parent / "espcn.arch"


class ESPCNRef(nn.Module):
    def __init__(self, r: int = 3, c: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, 64, 5, padding=2)
        self.conv2 = nn.Conv2d(64, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, r * r * c, 3, padding=1)
        self.shuffle = nn.PixelShuffle(r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.conv3(torch.tanh(self.conv2(torch.tanh(self.conv1(x))))))


@pytest.mark.parametrize("r,c", [(3, 1), (2, 3)])
def test_espcn_equals_the_reference(r: int, c: int) -> None:
    """The upscale factor is a block parameter that only pixel_shuffle uses (it once built a NameError)."""
    model = archc.load(str(ESPCN))
    ref = ESPCNRef(r, c).eval()
    report = model.flops(r=r, c=c)
    assert report.params == sum(p.numel() for p in ref.parameters())
    with FlopCounterMode(display=False) as counter:
        ref(torch.randn(1, c, 64, 64))
    assert report.flops == counter.get_total_flops()
    mod = model.torch()(r=r, c=c).eval() if r != 3 or c != 1 else model.torch()().eval()
    mod.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, c, 17, 23)
    with torch.no_grad():
        want, got = ref(x), mod(x)
    assert got.shape == want.shape == (2, c, 17 * r, 23 * r)
    assert ((got - want).abs().max() / want.abs().max()).item() <= 1e-5


# ---- PoolFormer-S12 (examples/zoo/poolformer_s12.arch) -------------------------------------------------

POOLFORMER = FNO.parent / "poolformer_s12.arch"


class PoolFormerBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.layer_scale_1 = nn.Parameter(1e-5 * torch.ones(dim))
        self.layer_scale_2 = nn.Parameter(1e-5 * torch.ones(dim))
        self.norm1 = nn.GroupNorm(1, dim)
        self.pool = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.norm2 = nn.GroupNorm(1, dim)
        self.mlp = nn.Sequential(nn.Conv2d(dim, 4 * dim, 1), nn.GELU(), nn.Conv2d(4 * dim, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.norm1(x)
        x = x + self.layer_scale_1[:, None, None] * (self.pool(n) - n)
        return x + self.layer_scale_2[:, None, None] * self.mlp(self.norm2(x))


class PoolFormerS12(nn.Module):
    def __init__(self, layers: tuple[int, ...] = (2, 2, 6, 2), dims: tuple[int, ...] = (64, 128, 320, 512)) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dims[0], 7, stride=4, padding=2)
        stages: list[nn.Module] = []
        for i in range(4):
            stages.append(nn.Sequential(*[PoolFormerBlock(dims[i]) for _ in range(layers[i])]))
            if i < 3:
                stages.append(nn.Conv2d(dims[i], dims[i + 1], 3, stride=2, padding=1))
        self.network = nn.Sequential(*stages)
        self.norm = nn.GroupNorm(1, dims[-1])
        self.head = nn.Linear(dims[-1], 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.network(self.patch_embed(x))).mean((2, 3)))


def test_poolformer_equals_the_reference() -> None:
    torch.manual_seed(2)
    ref = PoolFormerS12().eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "layer_scale" in name:
                p.copy_(torch.rand_like(p) + 0.5)  # so that every branch matters
    model = archc.load(str(POOLFORMER))
    report = model.flops()
    assert report.params == sum(p.numel() for p in ref.parameters()) == 11_915_176
    with FlopCounterMode(display=False) as counter:
        ref(torch.randn(1, 3, 224, 224))
    assert report.flops == counter.get_total_flops()
    mod = model.torch()().eval()
    mod.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        want, got = ref(x), mod(x)
    assert ((got - want).abs().max() / want.abs().max()).item() <= 1e-5


@pytest.mark.parametrize("path", [FNO, HYENA, ESPCN, POOLFORMER], ids=lambda p: p.stem)
@pytest.mark.parametrize("style,ext", [("graph", "dot"), ("circuit", "svg")])
def test_renders_in_both_styles(path: pathlib.Path, style: str, ext: str, tmp_path: pathlib.Path) -> None:
    from archc import cli
    out = tmp_path / f"{path.stem}.{ext}"
    assert cli.main(["render", str(path), "--style", style, "-o", str(out)]) == 0
    assert out.stat().st_size > 1000
