"""Run-time shape checks in generated modules (`archc build --checks`).

- every example, built with checks, runs at its default sizes (meta device) and at
  random admissible sizes, with the checker's output shape: the checks never refuse
  what the checker admits;
- with the same weights, a checked ResNet-50 and U-Net compute exactly what the
  unchecked ones do (small sizes, CPU);
- a wrong channel count, a wrong rank, a spatial size a skip join cannot take, at
  the entry and at a nested block, raise ValueError naming the block, the `.arch`
  line, the tensor, the axis, the sizes and the expression expected; also under
  `python -O`;
- the output check catches a layer that does not produce what the `.arch` says;
- torch.export works with the checks, with static and with a dynamic batch;
- without checks the text is byte-identical to the goldens of tests/golden/torch/;
  with checks it equals tests/golden/torch_checks/ (ARCHC_UPDATE_GOLDENS=1 rewrites);
- `archc build --checks` writes the checked module.
"""

from __future__ import annotations

import ast
import json
import os
import random
import re
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import archc  # noqa: E402
from archc.diagnostics import ArchError  # noqa: E402

from conftest import EXAMPLES, ROOT  # noqa: E402

GOLDEN = ROOT / "tests" / "golden" / "torch_checks"
PLAIN_GOLDEN = ROOT / "tests" / "golden" / "torch"
UPDATE = os.environ.get("ARCHC_UPDATE_GOLDENS") == "1"
EXAMPLE_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.arch"))
SETS = {"transformer_encoder": {"L": 16}}
GOLDEN_NAMES = ("resnet50", "unet")
UNET_SMALL = {"base": 8, "levels": 3, "H": 32, "W": 32}  # levels=3: H, W multiples of 8

_CLASSES: dict[tuple, type] = {}


def build(name: str, checks: bool, **sets) -> type:
    key = (name, checks, tuple(sorted(sets.items())))
    if key not in _CLASSES:
        _CLASSES[key] = archc.load(str(EXAMPLES / f"{name}.arch")).torch(checks=checks, **sets)
    return _CLASSES[key]


def module_of(cls: type):
    return sys.modules[cls.__module__]


def inputs_of(graph, device: str = "cpu") -> tuple:
    out = []
    for i in graph.inputs:
        t = graph.node(i).type
        shape = [int(a.size) for a in t.axes]
        out.append(torch.randint(0, 8, shape, device=device) if t.dtype.startswith("i")
                   else torch.randn(*shape, device=device))
    return tuple(out)


def out_shape(graph) -> list[int]:
    return [int(a.size) for a in graph.node(graph.outputs[0]).type.axes]


def raises(fn, *args) -> str:
    with pytest.raises(ValueError) as err:
        fn(*args)
    return str(err.value)


def randomized_pair(name: str, **sets) -> tuple[nn.Module, nn.Module]:
    """The module without and with checks, same random weights and statistics, in eval mode."""
    plain, checked = build(name, False, **sets)().eval(), build(name, True, **sets)().eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, t in plain.state_dict().items():
            if t.dtype.is_floating_point:
                v = torch.randn(t.shape, generator=gen) * 0.2
                t.copy_(v.abs() + 0.5 if key.endswith("running_var") else v)
    checked.load_state_dict(plain.state_dict())
    return plain, checked


# ---- the checks admit what the checker admits ----------------------------------------------


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_every_example_runs_with_checks(name: str) -> None:
    model = archc.load(str(EXAMPLES / f"{name}.arch"))
    graph = model.check(**SETS.get(name, {})).graph
    with torch.device("meta"):
        net = build(name, True, **SETS.get(name, {}))().eval()
    assert list(net(*inputs_of(graph, "meta")).shape) == out_shape(graph)
    text = model.torch_source(checks=True, **SETS.get(name, {}))
    assert "check_shape(" in text
    # every class checks its inputs first and its output before returning
    tree = ast.parse(text)
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in module_of(net.__class__).__dict__):
        fwd = next((f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "forward"), None)
        if fwd is None or cls.name in {"Reduce", "Permute", "Scale", "StochasticDepth", "LayerNormAt"}:
            continue
        first = fwd.body[0] if not isinstance(fwd.body[0], ast.Expr) or not isinstance(
            fwd.body[0].value, ast.Constant) else fwd.body[1]
        assert "check_shape" in ast.unparse(first), cls.name


@pytest.mark.parametrize("name", ["resnet50", "unet", "mobilenet_v2"])
def test_checks_pass_at_random_admissible_sizes(name: str) -> None:
    model = archc.load(str(EXAMPLES / f"{name}.arch"))
    with torch.device("meta"):
        net = build(name, True)().eval()
    rng = random.Random(f"checks-{name}")
    step = 16 if name == "unet" else 1
    tried = 0
    for _ in range(100):
        sizes = {"H": rng.randrange(32, 260, step), "W": rng.randrange(32, 260, step), "batch": rng.randint(1, 3)}
        try:
            graph = model.check(**sizes).graph
        except ArchError:
            continue
        assert list(net(*inputs_of(graph, "meta")).shape) == out_shape(graph), sizes
        tried += 1
        if tried == 3:
            break
    assert tried == 3


@pytest.mark.parametrize("name,sets,shape", [
    ("resnet50", {}, (2, 3, 40, 56)),
    ("unet", UNET_SMALL, (2, 1, 24, 40)),
])
def test_checked_equals_unchecked(name: str, sets: dict, shape: tuple) -> None:
    plain, checked = randomized_pair(name, **sets)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = plain(x)
        got = checked(x)
    assert torch.equal(got, want)


# ---- what a failing check says ------------------------------------------------------------------


def test_resnet_messages() -> None:
    ResNet50 = build("resnet50", True)  # noqa: N806
    Bottleneck = module_of(ResNet50).Bottleneck  # noqa: N806
    net = ResNet50(num_classes=10).eval()
    assert raises(net, torch.randn(1, 4, 32, 32)) == (
        "ResNet50 (resnet50.arch:37): input x: axis 'chan' is 4, expected 3; x is [batch, chan, h, w]")
    assert raises(net, torch.randn(3, 32, 32)) == (
        "ResNet50 (resnet50.arch:37): input x: has 3 axes (3, 32, 32), expected 4; x is [batch, chan, h, w]")
    # a nested block: the constructor argument the layers were built for, by name and value
    assert raises(Bottleneck(256, 64).eval(), torch.randn(1, 128, 8, 8)) == (
        "Bottleneck (std.vision:53): input x: axis 'chan' is 128, expected cin = 256; x is [batch, chan, h, w]")
    # the check comes before any layer: a stage fed the wrong stage's output
    assert raises(net.layer3, torch.randn(1, 256, 8, 8)).startswith(
        "Bottleneck (std.vision:53): input x: axis 'chan' is 256, expected cin = 512")


def test_unet_messages() -> None:
    UNet = build("unet", True, **UNET_SMALL)  # noqa: N806
    net = UNet(base=8).eval()
    assert raises(net, torch.randn(1, 3, 32, 32)) == (
        "UNet (unet.arch:31): input image: axis 'chan' is 3, expected in_channels = 1; "
        "image is [batch, chan, h, w]")
    assert raises(net, torch.randn(1, 32, 32)).startswith("UNet (unet.arch:31): input image: has 3 axes")
    msg = raises(net.up[0], torch.randn(1, 48, 8, 8))  # up[0] joins 32 + 32 channels
    assert msg == "DoubleConv (unet.arch:18): input x: axis 'chan' is 48, expected cin = 64; x is [batch, chan, h, w]"


def test_skip_join_of_two_inputs_is_checked() -> None:
    """An axis size bound by one input and required of another (`h = h`; a bare `h` admits any
    size) is checked against the first input's, once."""
    src = """
block Join(c) {
  in x: [batch, chan = c, h, w]
  in skip: [batch = batch, chan = c, h = h, w = w]
  fuse = conv(concat(x, skip, axis = chan), chan -> c, k = 1)
  out fuse
}
block Net() {
  in a: [batch = 2, chan = 4, h = 8, w = 8]
  first = conv(a, chan -> 4, k = 1)
  j = Join(first, a, 4)
  out j
}
"""
    Net = archc.loads(src, "join.arch").torch(checks=True)  # noqa: N806
    Join = module_of(Net).Join  # noqa: N806
    text = archc.loads(src, "join.arch").torch_source(checks=True)
    assert text.count("'h': ('h of x', x.shape[2])") == 1 and "skip.shape[2]" not in text
    j = Join(4)
    assert list(j(torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)).shape) == [2, 4, 8, 8]
    assert raises(j, torch.randn(2, 4, 8, 8), torch.randn(2, 4, 6, 8)) == (
        "Join (join.arch:4): input skip: axis 'h' is 6, expected h of x = 8; skip is [batch, chan, h, w]")
    assert raises(j, torch.randn(2, 4, 8, 8), torch.randn(3, 4, 8, 8)).startswith(
        "Join (join.arch:4): input skip: axis 'batch' is 3, expected batch of x = 2")
    assert list(j(torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)).shape) == [2, 4, 8, 8]


def test_output_check_catches_a_wrong_layer() -> None:
    """The output check holds the module to the `.arch` file: swap a layer for one that does
    something else, and the block says so at its `out` line."""
    ResNet50 = build("resnet50", True)  # noqa: N806
    block = module_of(ResNet50).Bottleneck(64, 16, stride=2).eval()
    block.conv3 = nn.Conv2d(16, 32, 1, bias=False)
    block.bn3 = nn.BatchNorm2d(32)
    block.downsample = nn.Sequential(nn.Conv2d(64, 32, 1, stride=2, bias=False), nn.BatchNorm2d(32))
    assert raises(block, torch.randn(1, 64, 8, 8)) == (
        "Bottleneck (std.vision:69): output: axis 'chan' is 32, expected 4·planes = 64; "
        "output is [batch, chan, h, w]")


def test_checks_survive_python_O() -> None:  # noqa: N802
    code = ("import archc, torch\n"
            "Net = archc.load('examples/unet.arch').torch(checks=True, base=8, levels=3, H=32, W=32)\n"
            "try:\n    Net(base=8)(torch.randn(1, 2, 32, 32))\nexcept ValueError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-O", "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "input image: axis 'chan' is 2, expected in_channels = 1" in out.stdout


# ---- torch.export ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name,sets,shape", [
    ("resnet50", {}, (2, 3, 64, 64)),
    ("unet", UNET_SMALL, (2, 1, 32, 32)),
])
def test_torch_export_with_checks(name: str, sets: dict, shape: tuple) -> None:
    plain, checked = randomized_pair(name, **sets)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
    exported = torch.export.export(checked, (x,))
    with torch.no_grad():
        assert torch.equal(exported.module()(x), plain(x))
    # dynamic sizes: the checks keep them dynamic (no specialisation); the U-Net's H and W as
    # multiples of 8, what its three skip joins admit
    dims = {0: torch.export.Dim("batch", min=1, max=64)}
    other = shape[1:]
    if name == "unet":
        dims.update({2: 8 * torch.export.Dim("h8", min=1, max=32), 3: 8 * torch.export.Dim("w8", min=1, max=32)})
        other = (1, 24, 40)
    dyn = torch.export.export(checked, (x,), dynamic_shapes=(dims,))
    x3 = torch.randn(3, *other, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(dyn.module()(x3), plain(x3), rtol=1e-4, atol=1e-5)


def test_export_refuses_a_wrong_channel_count() -> None:
    net = build("resnet50", True)(num_classes=10).eval()
    with pytest.raises(ValueError, match=r"axis 'chan' is 4, expected 3"):
        torch.export.export(net, (torch.randn(1, 4, 32, 32),))


# ---- goldens, byte-identity, the command line ----------------------------------------------------


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden_with_checks(name: str) -> None:
    text = archc.load(str(EXAMPLES / f"{name}.arch")).torch_source(checks=True)
    path = GOLDEN / f"{name}.py"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden {path}; run with ARCHC_UPDATE_GOLDENS=1"
    assert path.read_text() == text, f"{path.name} differs; review and regenerate"
    assert text == archc.load(str(EXAMPLES / f"{name}.arch")).torch_source(checks=True)  # reproducible


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_without_checks_the_text_is_unchanged(name: str) -> None:
    plain = archc.load(str(EXAMPLES / f"{name}.arch")).torch_source()
    assert plain == (PLAIN_GOLDEN / f"{name}.py").read_text()
    assert "check_shape" not in plain and "_check_value" not in plain
    # the plain text is a subsequence of the checked one, a `return X` there as `output = X`
    checked = iter((GOLDEN / f"{name}.py").read_text().splitlines())
    for line in plain.splitlines():
        other = re.sub(r"^(\s+)return ", r"\1output = ", line)
        assert any(c in (line, other) for c in checked), line


def test_cli_build_checks(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-m", "archc.cli", "build", str(EXAMPLES / "unet.arch"),
                          "-o", str(tmp_path), "--checks", "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["checks"] is True and doc["entry"] == "UNet"
    assert (tmp_path / "unet.py").read_text() == (GOLDEN / "unet.py").read_text()


# ---- every op: the output checks hold torch's shapes to the checker's rules ----------------------

from test_codegen_torch import OPS  # noqa: E402


@pytest.mark.parametrize("op", sorted(OPS))
def test_every_op_passes_its_checks(op: str) -> None:
    """Each op's output shape, as torch computes it, equals the shape rule's (the output check),
    and the checked module computes what the unchecked one does."""
    typ, body = OPS[op]
    src = f"block T() {{\n in x: {typ}\n {body}\n out y\n}}\n"
    model = archc.loads(src, name=f"{op}.arch")
    graph = model.check().graph
    plain, checked = model.torch()().eval(), model.torch(checks=True)().eval()
    checked.load_state_dict(plain.state_dict())
    torch.manual_seed(0)
    xs = inputs_of(graph)
    with torch.no_grad():
        want = plain(*xs)
        got = checked(*xs)
    assert torch.equal(got, want)
    text = model.torch_source(checks=True)
    assert text.count("check_shape(") == 3  # the helper, the input and the output
    # every axis is concrete here: each one of the input and of the output is checked
    axes = len(graph.node(graph.inputs[0]).type.axes) + len(graph.node(graph.outputs[0]).type.axes)
    assert len(re.findall(r"'\w+': \('", text.split("class T(")[1])) == axes
