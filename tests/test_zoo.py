"""The seed zoo (issue 11): each example in examples/zoo/ against a PyTorch reference written by hand
from its paper (tests/zoo_references.py). The zoo sits in its own folder so that the tests which walk
examples/*.arch (goldens, the gallery, memory, torch.export, ...) keep to the six torchvision-style
examples.

For every model:
- parameters and FLOPs from archc (torch convention) equal the reference's: parameters counted,
  FLOPs measured with FlopCounterMode; at the example's full size on the meta device (no
  arithmetic), and at the small size the numerics run at;
- the generated module loads the reference's state_dict with `strict=True` and its output equals the
  reference's in eval mode, fp32, on random inputs (max relative difference <= 1e-5);
- `archc render` draws it in both styles (graph to .dot, circuit to .svg);
- the file survives the formatter: formatting it and parsing it back gives the same AST.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import pathlib
from collections.abc import Callable

import pytest

torch = pytest.importorskip("torch")
import zoo_references as ref  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import archc  # noqa: E402
from archc import cli  # noqa: E402

from conftest import ROOT  # noqa: E402

ZOO = ROOT / "examples" / "zoo"


@dataclasses.dataclass(frozen=True)
class Case:
    """One example: its file and entry, the reference at full size and at the small test size."""

    file: str
    full: Callable[[], nn.Module]            # the reference at the example's default sizes
    full_input: tuple[int, ...]
    small: Callable[[], nn.Module]           # the reference at `sets`
    small_input: tuple[int, ...]
    sets: dict = dataclasses.field(default_factory=dict)
    entry: str | None = None
    variant: str = ""                        # tells apart two cases of one entry

    @property
    def id(self) -> str:
        return self.file + (f":{self.entry}" if self.entry else "") + (f"[{self.variant}]" if self.variant else "")

    def model(self) -> archc.Model:
        return archc.load(str(ZOO / self.file), entry=self.entry)


CASES = [
    Case("mlp_mixer_b16.arch", lambda: ref.MLPMixer(), (1, 3, 224, 224),
         lambda: ref.MLPMixer(image=32, patch=8, dim=32, depth=2, tokens_mlp=12, channels_mlp=64, num_classes=10),
         (2, 3, 32, 32), dict(H=32, W=32, batch=2, patch=8, dim=32, depth=2, tokens_mlp=12, channels_mlp=64,
                              num_classes=10)),
    Case("convmixer_768_32.arch", lambda: ref.conv_mixer(), (1, 3, 224, 224),
         lambda: ref.conv_mixer(dim=16, depth=3, kernel_size=5, patch_size=4, act=nn.GELU, n_classes=10),
         (2, 3, 32, 32), dict(H=32, W=32, batch=2, dim=16, depth=3, k=5, patch=4, act="gelu", num_classes=10)),
    Case("dcgan.arch", lambda: ref.dcgan_generator(), (1, 100, 1, 1),
         lambda: ref.dcgan_generator(nz=16, ngf=8), (2, 16, 1, 1), dict(batch=2, nz=16, ngf=8)),
    Case("dcgan.arch", lambda: ref.dcgan_discriminator(), (1, 3, 64, 64),
         lambda: ref.dcgan_discriminator(ndf=8), (2, 3, 64, 64), dict(batch=2, ndf=8), entry="Discriminator"),
    Case("se_resnet50.arch", lambda: ref.SEResNet50(), (1, 3, 224, 224),
         lambda: ref.SEResNet50(depths=(1, 2, 1, 1), num_classes=10), (2, 3, 32, 32),
         dict(H=32, W=32, batch=2, depths=[1, 2, 1, 1], num_classes=10)),
    Case("xception.arch", lambda: ref.Xception(), (1, 3, 299, 299),
         lambda: ref.Xception(middle=2, num_classes=10), (2, 3, 48, 48),
         dict(H=48, W=48, batch=2, middle=2, num_classes=10)),
    Case("fasternet_t0.arch", lambda: ref.FasterNet(), (1, 3, 224, 224),
         lambda: ref.FasterNet(dim=16, depths=(1, 2, 1, 1), feature_dim=64, num_classes=10), (2, 3, 64, 64),
         dict(H=64, W=64, batch=2, dim=16, depths=[1, 2, 1, 1], feature_dim=64, num_classes=10)),
    Case("inception_v3.arch", lambda: ref.InceptionV3(), (1, 3, 299, 299),
         lambda: ref.InceptionV3(num_classes=10), (1, 3, 75, 75), dict(H=75, W=75, num_classes=10)),
    Case("ge_resnet50.arch", lambda: ref.GEResNet50(), (1, 3, 224, 224),
         lambda: ref.GEResNet50(image=64, depths=(1, 2, 1, 1), num_classes=10), (2, 3, 64, 64),
         dict(H=64, W=64, batch=2, depths=[1, 2, 1, 1], num_classes=10)),
    Case("fcn_resnet50.arch", lambda: ref.FCNResNet50(), (1, 3, 520, 520),
         lambda: ref.FCNResNet50(num_classes=5, depths=(1, 1, 2, 2)), (2, 3, 40, 40),
         dict(H=40, W=40, batch=2, num_classes=5, depths=[1, 1, 2, 2])),
    Case("hornet_t.arch", lambda: ref.HorNet(), (1, 3, 224, 224),
         lambda: ref.HorNet(dim=16, depths=(1, 2, 1, 1), num_classes=10), (2, 3, 64, 64),
         dict(H=64, W=64, batch=2, dim=16, depths=[1, 2, 1, 1], num_classes=10)),
    Case("swin_stage.arch", lambda: ref.SwinStage(), (1, 56, 56, 96),
         lambda: ref.SwinStage(dim=32, heads=2, depth=2, ws=7), (2, 14, 21, 32),
         dict(H=14, W=21, batch=2, dim=32, heads=2, depth=2, ws=7)),
    # the other activation of each
    Case("convmixer_768_32.arch", lambda: ref.conv_mixer(), (1, 3, 224, 224),
         lambda: ref.conv_mixer(dim=16, depth=2, kernel_size=7, patch_size=7, n_classes=10),
         (1, 3, 28, 28), dict(H=28, W=28, dim=16, depth=2, num_classes=10), variant="relu"),
    Case("fasternet_t0.arch", lambda: ref.FasterNet(act=nn.ReLU), (1, 3, 224, 224),
         lambda: ref.FasterNet(dim=16, depths=(1, 1, 1, 1), act=nn.ReLU, feature_dim=64, num_classes=10),
         (1, 3, 64, 64), dict(H=64, W=64, dim=16, depths=[1, 1, 1, 1], act="relu", feature_dim=64, num_classes=10),
         variant="relu"),
    # an input size no multiple of the output stride: 5x6 class maps upsampled back to 37x45
    Case("fcn_resnet50.arch", lambda: ref.FCNResNet50(), (1, 3, 520, 520),
         lambda: ref.FCNResNet50(num_classes=3, depths=(1, 1, 1, 2)), (1, 3, 37, 45),
         dict(H=37, W=45, num_classes=3, depths=[1, 1, 1, 2]), variant="37x45"),
]
IDS = [c.id for c in CASES]
MODELS = [c for c in CASES if not c.variant]   # a variant's full-size figures are its model's


def flops_of(module: nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(x)
    return counter.get_total_flops()


def randomize(module: nn.Module, seed: int = 0) -> None:
    """Random weights and running statistics (positive variances), so every entry matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.dtype.is_floating_point:
                v = torch.randn(t.shape, generator=gen) * 0.1
                if name.endswith("running_var"):
                    v = v.abs() + 0.5
                elif name.endswith("weight") and t.dim() == 1:       # norm scales near 1
                    v = v + 1.0
                elif t.dim() > 1:                                    # keep activations O(1) with depth
                    v = v * 10 / max(1.0, t[0].numel()) ** 0.5
                t.copy_(v)


@pytest.mark.parametrize("case", MODELS, ids=[c.id for c in MODELS])
def test_params_and_flops_at_full_size(case: Case) -> None:
    report = case.model().flops()
    with torch.device("meta"):
        net = case.full().eval()
        x = torch.empty(case.full_input)
    assert report.params == sum(p.numel() for p in net.parameters())
    assert report.buffers == sum(b.numel() for b in net.buffers())
    assert report.flops == flops_of(net, x)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_generated_module_loads_and_matches_the_reference(case: Case) -> None:
    model = case.model()
    report = model.flops(**case.sets)
    torch.manual_seed(0)
    reference = case.small().eval()
    randomize(reference)
    x = torch.randn(case.small_input)
    assert report.params == sum(p.numel() for p in reference.parameters())
    assert report.flops == flops_of(reference, x)
    net = model.torch(**case.sets)().eval()
    net.load_state_dict(reference.state_dict(), strict=True)
    with torch.no_grad():
        want, got = reference(x), net(x)
    assert got.shape == want.shape
    rel = ((got - want).abs().max() / want.abs().max()).item()
    assert rel <= 1e-5, rel


@pytest.mark.parametrize("case", MODELS, ids=[c.id for c in MODELS])
@pytest.mark.parametrize("style,suffix", [("graph", ".dot"), ("circuit", ".svg")])
def test_renders(case: Case, style: str, suffix: str, tmp_path: pathlib.Path) -> None:
    out = tmp_path / f"zoo{suffix}"
    argv = ["render", str(ZOO / case.file), "--style", style, "-o", str(out)]
    if case.entry:
        argv += ["--entry", case.entry]
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(argv) == 0
    assert out.stat().st_size > 0


@pytest.mark.parametrize("src", sorted(ZOO.glob("*.arch")), ids=lambda p: p.name)
def test_formats_and_parses_back(src: pathlib.Path) -> None:
    from test_roundtrip import strip

    from archc.grammar.format import format_module
    from archc.grammar.parser import parse

    tree = parse(src.read_text(), src.name)
    assert strip(parse(format_module(tree), src.name)) == strip(tree)
