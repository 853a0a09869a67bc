"""The generated PyTorch modules, checked against independent oracles.

- parameter count and FLOPs (by kind, with torch's own FlopCounterMode) equal
  archc's static figures; the output shape equals the checker's at random sizes;
- the torchvision examples have exactly torchvision's state_dict keys and shapes
  (shared/reference/state_dict_keys.json);
- numerics: ResNet, MobileNetV2, ConvNeXt and ViT blocks, the transformer encoder
  (against torch.nn.TransformerEncoder itself) and the U-Net equal hand-written
  torch.nn references, with the weights copied across;
- torch.export traces every example; the code is byte-identical from run to run
  and equal to the goldens in tests/golden/torch/ (rewrite them with
  ARCHC_UPDATE_GOLDENS=1 and review the diff);
- hostile names and strings cannot break or inject into the generated code.

Full-size models run on the meta device (no memory, no arithmetic): shapes,
parameter counts and FlopCounterMode's counts are exact there.
"""

from __future__ import annotations

import ast
import json
import os
import pathlib
import random
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import archc  # noqa: E402
from archc.diagnostics import ArchError  # noqa: E402

from conftest import EXAMPLES, ROOT  # noqa: E402
from torch_references import Bottleneck, CNBlock, EncoderBlock, InvertedResidual, UNet  # noqa: E402

GOLDEN = ROOT / "tests" / "golden" / "torch"
UPDATE = os.environ.get("ARCHC_UPDATE_GOLDENS") == "1"
EXAMPLE_NAMES = sorted(p.stem for p in EXAMPLES.glob("*.arch"))
SETS = {"transformer_encoder": {"L": 16}}  # free sizes without a default
TORCHVISION = ("resnet50", "mobilenet_v2", "convnext_tiny", "vit_b_16")

_CLASSES: dict[str, type] = {}


def example_class(name: str) -> type:
    if name not in _CLASSES:
        _CLASSES[name] = archc.load(str(EXAMPLES / f"{name}.arch")).torch(**SETS.get(name, {}))
    return _CLASSES[name]


def on_meta(cls: type) -> nn.Module:
    with torch.device("meta"):
        return cls().eval()


def inputs_of(graph, device: str = "cpu", dtype=torch.float32) -> tuple:
    out = []
    for i in graph.inputs:
        t = graph.node(i).type
        shape = [int(a.size) for a in t.axes]
        if t.dtype.startswith("i"):
            out.append(torch.randint(0, 8, shape, device=device))
        else:
            out.append(torch.randn(*shape, device=device, dtype=dtype))
    return tuple(out)


def measured_by_kind(counts: dict) -> dict[str, int]:
    """FlopCounterMode's counts grouped like archc's kinds."""
    out = {"conv": 0, "mm": 0, "attention": 0}
    for op, n in counts.items():
        name = str(op)
        if "convolution" in name:
            out["conv"] += n
        elif "scaled_dot_product" in name or "attention" in name:
            out["attention"] += n
        else:
            out["mm"] += n
    return out


def static_by_kind(report) -> dict[str, int]:
    k = report.by_kind
    return {"conv": int(k.get("conv", 0)), "mm": int(k.get("linear", 0)) + int(k.get("matmul", 0)),
            "attention": int(k.get("attention", 0))}


# ---- every example against the static figures ------------------------------------------


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_params_flops_and_shape_match_the_checker(name: str) -> None:
    model = archc.load(str(EXAMPLES / f"{name}.arch"))
    sets = SETS.get(name, {})
    report = model.flops(**sets)
    graph = model.check(**sets).graph
    net = on_meta(example_class(name))
    assert sum(p.numel() for p in net.parameters()) == report.params
    assert sum(b.numel() for b in net.buffers()) == report.buffers
    with FlopCounterMode(display=False) as fc:
        y = net(*inputs_of(graph, "meta"))
    measured = measured_by_kind(fc.get_flop_counts().get("Global", {}))
    static = static_by_kind(report)
    # torch computes attention's two products as an attention kernel (counted apart), as
    # bmm (counted with the matmuls) or, on CPU, as a kernel FlopCounterMode misses: archc
    # reports them as their own kind, and they are all there or all elsewhere.
    assert measured["conv"] == static["conv"], (measured, static)
    assert measured["mm"] + measured["attention"] == static["mm"] + static["attention"], (measured, static)
    assert measured["attention"] in (0, static["attention"])
    assert static["conv"] + static["mm"] == report.flops
    assert list(y.shape) == [int(a.size) for a in graph.node(graph.outputs[0]).type.axes]


def _admissible_sizes(model, rng: random.Random, n: int, low: int, high: int, step: int) -> list[dict[str, int]]:
    """n random (H, W) the checker accepts (a rejected draw is redrawn)."""
    found: list[dict[str, int]] = []
    for _ in range(200):
        sizes = {"H": rng.randrange(low, high, step), "W": rng.randrange(low, high, step),
                 "batch": rng.randint(1, 3)}
        try:
            model.check(**sizes)
        except ArchError:
            continue
        found.append(sizes)
        if len(found) == n:
            break
    return found


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "convnext_tiny", "unet"])
def test_output_shape_at_random_sizes(name: str) -> None:
    model = archc.load(str(EXAMPLES / f"{name}.arch"))
    net = on_meta(example_class(name))
    # The U-Net joins skips at four levels: the checker admits multiples of 16 only.
    draws = _admissible_sizes(model, random.Random(f"sizes-{name}"), 3, 32, 300, 16 if name == "unet" else 1)
    assert len(draws) == 3
    for sizes in draws:
        graph = model.check(**sizes).graph
        y = net(*inputs_of(graph, "meta"))
        assert list(y.shape) == [int(a.size) for a in graph.node(graph.outputs[0]).type.axes], sizes


def test_transformer_runs_at_any_length() -> None:
    model = archc.load(str(EXAMPLES / "transformer_encoder.arch"))
    net = on_meta(example_class("transformer_encoder"))
    for length in (1, 7, 33):
        graph = model.check(L=length, batch=2).graph
        assert list(net(*inputs_of(graph, "meta")).shape) == [2, length, 512]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_trains(name: str) -> None:
    """Backward through the training-mode module works (the in-place ops overwrite nothing autograd needs)."""
    model = archc.load(str(EXAMPLES / f"{name}.arch"))
    graph = model.check(**SETS.get(name, {})).graph
    with torch.device("meta"):
        net = example_class(name)().train()
    xs = inputs_of(graph, "meta")
    net(*xs).sum().backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("name", TORCHVISION)
def test_state_dict_is_torchvisions(name: str, state_dict_keys: dict) -> None:
    net = on_meta(example_class(name))
    got = {k: list(v.shape) for k, v in net.state_dict().items()}
    want = {k: list(v) for k, v in state_dict_keys[name].items()}
    assert list(got) == list(want)
    assert got == want


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_torch_export(name: str) -> None:
    model = archc.load(str(EXAMPLES / f"{name}.arch"))
    sizes = dict(SETS.get(name, {}))
    if name not in ("vit_b_16",):
        sizes.update({"H": 64, "W": 64} if name != "transformer_encoder" else {})
    graph = model.check(**sizes).graph
    with torch.device("meta"):
        net = example_class(name)().eval()
    exported = torch.export.export(net, inputs_of(graph, "meta"))
    assert len(exported.graph.nodes) > 0


# ---- numerics against hand-written torch.nn references ----------------------------------


def randomize(module: nn.Module, seed: int = 0) -> None:
    """Random weights and running statistics, so every parameter and buffer matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.dtype.is_floating_point:
                v = torch.randn(t.shape, generator=gen) * 0.2
                t.copy_(v.abs() + 0.5 if name.endswith("running_var") else v)


def assert_same(generated: nn.Module, reference: nn.Module, *xs: torch.Tensor, tol: float = 1e-5) -> None:
    randomize(generated)
    reference.load_state_dict(generated.state_dict(), strict=True)
    generated.eval()
    reference.eval()
    with torch.no_grad():
        got, want = generated(*xs), reference(*xs)
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("cin,planes,stride", [(64, 16, 1), (32, 16, 2), (32, 8, 1)])
def test_bottleneck_numerics(cin: int, planes: int, stride: int) -> None:
    src = ("import std.vision\n"
           f"block T() {{\n in x: [batch = 2, chan = {cin}, h = 9, w = 11]\n"
           f" out Bottleneck(x, {planes}, stride = {stride})\n}}\n")
    cls = archc.loads(src, name=str(ROOT / "tests" / "t.arch")).torch()
    assert_same(cls(), Bottleneck(cin, planes, stride), torch.randn(2, cin, 9, 11))


@pytest.mark.parametrize("cin,cout,stride,t", [(16, 16, 1, 6), (16, 24, 2, 6), (8, 8, 1, 1)])
def test_inverted_residual_numerics(cin: int, cout: int, stride: int, t: int) -> None:
    src = ("import std.vision\n"
           f"block T() {{\n in x: [batch = 2, chan = {cin}, h = 10, w = 10]\n"
           f" out InvertedResidual(x, {cout}, stride = {stride}, expand_ratio = {t})\n}}\n")
    cls = archc.loads(src, name=str(ROOT / "tests" / "t.arch")).torch()
    assert_same(cls(), InvertedResidual(cin, cout, stride, t), torch.randn(2, cin, 10, 10))


def test_convnext_block_numerics() -> None:
    cls = archc.load(str(EXAMPLES / "convnext_tiny.arch"), entry="CNBlock").torch(dim=16, sd_prob=0.1)
    assert_same(cls(), CNBlock(16), torch.randn(2, 16, 9, 8))


def test_vit_encoder_block_numerics() -> None:
    src = ("import std.transformer\n"
           "block T() {\n in x: [batch = 2, tok = 10, chan = 32]\n out EncoderBlock(x, 4, 32, 64)\n}\n")
    cls = archc.loads(src, name=str(ROOT / "tests" / "t.arch")).torch()
    assert_same(cls(), EncoderBlock(4, 32, 64), torch.randn(2, 10, 32))


def test_transformer_encoder_equals_torch() -> None:
    cls = archc.load(str(EXAMPLES / "transformer_encoder.arch")).torch(num_layers=2, d_model=32, heads=4,
                                                                       d_ff=64, L=10)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.1, batch_first=True)
    ref = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    assert_same(cls(), ref, torch.randn(3, 10, 32))


def test_unet_numerics() -> None:
    cls = archc.load(str(EXAMPLES / "unet.arch")).torch(base=8, levels=3, H=32, W=32)
    assert_same(cls(), UNet(1, 2, base=8, levels=3), torch.randn(2, 1, 24, 40))


# ---- generic classes: right for parameter values the .arch file never used ----------------------


def generated_module(name: str, **sets):
    cls = archc.load(str(EXAMPLES / f"{name}.arch")).torch(**sets)
    return sys.modules[cls.__module__]


@pytest.mark.parametrize("cin,planes,stride", [(48, 16, 2), (64, 16, 1), (24, 8, 3)])
def test_generic_bottleneck_at_new_values(cin: int, planes: int, stride: int) -> None:
    mod = generated_module("resnet50")
    assert_same(mod.Bottleneck(cin, planes, stride=stride), Bottleneck(cin, planes, stride),
                torch.randn(2, cin, 7, 9))


@pytest.mark.parametrize("cin,cout,stride,t", [(8, 8, 1, 3), (8, 12, 2, 2), (12, 6, 1, 4)])
def test_generic_inverted_residual_at_new_values(cin: int, cout: int, stride: int, t: int) -> None:
    mod = generated_module("mobilenet_v2")
    assert_same(mod.InvertedResidual(cin, cout, stride=stride, expand_ratio=t),
                InvertedResidual(cin, cout, stride, t), torch.randn(2, cin, 9, 9))


def test_generic_class_refuses_a_case_it_was_not_generated_for() -> None:
    mod = generated_module("mobilenet_v2")
    with pytest.raises(ValueError, match="stride 1 or 2"):  # the .arch file's own assert
        mod.InvertedResidual(8, 8, stride=3)
    with pytest.raises(ValueError, match="cin == cout"):  # expand_ratio 1 keeping the width: never traced
        mod.InvertedResidual(8, 8, expand_ratio=1)


def test_generic_entry_takes_its_parameters() -> None:
    vit = archc.load(str(EXAMPLES / "vit_b_16.arch")).torch()
    with torch.device("meta"):
        small = vit(H=64, W=96, patch=16, num_heads=2, dim=32, mlp_dim=64, num_classes=10).eval()
        y = small(torch.randn(3, 3, 64, 96, device="meta"))
    assert tuple(y.shape) == (3, 10)
    assert small.encoder.pos_embedding.shape == (1, 4 * 6 + 1, 32)
    net = archc.load(str(EXAMPLES / "resnet50.arch")).torch()(num_classes=7).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 40, 40)).shape == (1, 7)


# ---- one small program per op -------------------------------------------------------------

OPS = {
    "linear": ("[b = 2, t = 3, c = 8]", "y = linear(x, c -> 5)"),
    "linear_nobias": ("[b = 2, c = 8]", "y = linear(x, c -> d = 5, bias = false)"),
    "conv1d": ("[b = 2, c = 4, t = 17]", "y = conv(x, c -> 6, k = 3, stride = 2, dilation = 2)"),
    "conv2d_groups": ("[b = 2, c = 8, h = 9, w = 7]", "y = conv(x, c -> 4, k = [3, 1], pad = [1, 0], groups = 4)"),
    "conv2d_same": ("[b = 1, c = 3, h = 8, w = 9]", "y = conv(x, c -> 5, k = 4, pad = \"same\")"),
    "conv3d": ("[b = 1, c = 2, d = 5, h = 6, w = 7]", "y = conv(x, c -> 3, k = 3, pad = 1, bias = false)"),
    "conv_transpose": ("[b = 2, c = 4, h = 5, w = 6]",
                       "y = conv_transpose(x, c -> 3, k = 3, stride = 2, pad = 1, output_padding = 1)"),
    "maxpool": ("[b = 2, c = 3, h = 11, w = 10]", "y = maxpool(x, k = 3, stride = 2, ceil = true)"),
    "avgpool": ("[b = 2, c = 3, h = 11, w = 10]",
                "y = avgpool(x, k = 3, stride = 2, pad = 1, count_include_pad = false)"),
    "adaptive": ("[b = 2, c = 3, h = 11, w = 10]",
                 "y = adaptive_avgpool(x, out = [2, 3]) + adaptive_maxpool(x, out = [2, 3])"),
    "reduce": ("[b = 2, c = 3, h = 5, w = 4]", "y = mean(x, over = [h, w]) + sum(x, over = [w, h]) * 0.5"),
    "amax_keep": ("[b = 2, c = 3, h = 5]", "y = amax(x, over = [h], keep = true) - x"),
    "batchnorm1d": ("[b = 4, c = 6, t = 5]", "y = batchnorm(x, eps = 0.001)"),
    "layernorm_inner": ("[b = 2, c = 6, h = 3, w = 4]", "y = layernorm(x, over = [c])"),
    "layernorm_last2": ("[b = 2, c = 6, h = 3, w = 4]", "y = layernorm(x, over = [h, w], bias = false)"),
    "groupnorm": ("[b = 2, c = 6, h = 3, w = 4]", "y = groupnorm(x, groups = 3)"),
    "rmsnorm": ("[b = 2, t = 3, c = 8]", "y = rmsnorm(x, eps = 0.000001)"),
    "activations": ("[b = 2, c = 8]",
                    "y = relu(x) + relu6(x) + gelu(x) + gelu(x, approximate = \"tanh\") + silu(x) + sigmoid(x)"
                    " + tanh(x) + hardswish(x) + hardsigmoid(x) + leaky_relu(x) + leaky_relu(x, slope = -0.5)"),
    "softmax": ("[b = 2, c = 5, t = 3]", "y = softmax(x, axis = c)"),
    "dropout_etc": ("[b = 2, c = 5]", "y = identity(dropout(drop_path(x, p = 0.2), p = 0.3))"),
    "broadcast": ("[b = 2, c = 3, h = 4, w = 5]", "m = mean(x, over = [h, w])\n y = x * m - m"),
    "einsum": ("[b = 2, t = 4, c = 6]", "y = einsum(x, rename(x, t -> s), spec = \"b t c, b s c -> b t s\")"),
    "rearrange": ("[b = 2, t = 6, c = 8]",
                  "y = rearrange(x, \"b t c=(g d) -> b g t d\", g = 2)\n"
                  " y = rearrange(y, \"b g t d -> b t c=(g d)\")"),
    "rename_flatten": ("[b = 2, c = 3, h = 4, w = 5]", "y = flatten(rename(x, c -> k), over = [k, h, w])"),
    "concat_split": ("[b = 2, c = 6, h = 3]",
                     "p, q = split(x, axis = c, sizes = [2, 4])\n r, s = split(x, axis = c, parts = 2)\n"
                     " y = concat(q, p, r, axis = c)"),
    "embedding": ("i64[b = 2, t = 5]", "y = embedding(x, num = 8, dim = 4)"),
    "pixel_shuffle": ("[b = 2, c = 8, h = 3, w = 4]", "y = pixel_unshuffle(pixel_shuffle(x, r = 2), r = 2)"),
    "upsample": ("[b = 2, c = 3, h = 4, w = 5]",
                 "y = upsample(x, scale = 2) + upsample(x, size = [8, 10], mode = \"bilinear\")"),
    "attention": ("[b = 2, g = 2, t = 5, d = 4]", "y = attention(x, x, x, seq = t, chan = d, causal = true)"),
    "mha": ("[b = 2, t = 5, c = 8]", "y = multihead_attention(x, heads = 2)"),
    "seq_steps": ("[b = 2, c = 4, h = 6, w = 6]",
                  "y = seq(x) {\n conv(c -> 8, k = 3, pad = 1)\n groupnorm(groups = 2)\n gelu()\n"
                  " rearrange(\"b c h w -> b h w c\")\n layernorm()\n rearrange(\"b h w c -> b c h w\")\n"
                  " maxpool(k = 2)\n upsample(scale = 2)\n mean(over = [h, w])\n scale(factor = 2.0)\n"
                  " drop_path(p = 0.1)\n softmax(axis = c)\n }"),
}


@pytest.mark.parametrize("op", sorted(OPS))
def test_op_lowering(op: str) -> None:
    typ, body = OPS[op]
    src = f"block T() {{\n in x: {typ}\n {body}\n out y\n}}\n"
    model = archc.loads(src, name=f"{op}.arch")
    graph = model.check().graph
    report = model.flops()
    net = model.torch()().eval()
    torch.manual_seed(0)
    xs = inputs_of(graph)
    with FlopCounterMode(display=False) as fc:  # with grad: nn.MultiheadAttention's fast path hides its FLOPs
        y = net(*xs)
    assert list(y.shape) == [int(a.size) for a in graph.node(graph.outputs[0]).type.axes]
    assert sum(p.numel() for p in net.parameters()) == report.params
    measured = measured_by_kind(fc.get_flop_counts().get("Global", {}))
    static = static_by_kind(report)
    assert measured["conv"] == static["conv"] and measured["mm"] == static["mm"], (measured, static)


def _run_op(typ: str, body: str, *xs):
    src = f"block T() {{\n in x: {typ}\n {body}\n out y\n}}\n"
    return archc.loads(src, name="t.arch").torch()().eval()(*xs)


def test_rearrange_and_broadcast_numerics() -> None:
    x = torch.randn(2, 6, 8)
    y = _run_op("[b = 2, t = 6, c = 8]", "y = rearrange(x, \"b t c=(g d) -> b g t d\", g = 2)", x)
    torch.testing.assert_close(y, x.reshape(2, 6, 2, 4).permute(0, 2, 1, 3))
    x = torch.randn(2, 3, 4, 5)
    y = _run_op("[b = 2, c = 3, h = 4, w = 5]", "m = mean(x, over = [h, w])\n y = x - m", x)
    torch.testing.assert_close(y, x - x.mean((2, 3), keepdim=True))
    y = _run_op("[b = 2, c = 3, h = 4, w = 5]", "m = sum(x, over = [c, w])\n y = m * x", x)
    torch.testing.assert_close(y, x.sum((1, 3), keepdim=True) * x)


def test_attention_numerics() -> None:
    q = torch.randn(2, 3, 5, 4)
    y = _run_op("[b = 2, g = 3, t = 5, d = 4]", "y = attention(x, x, x, seq = t, chan = d)", q)
    want = torch.softmax(q @ q.transpose(-1, -2) / 2.0, dim=-1) @ q
    torch.testing.assert_close(y, want)


# ---- goldens, determinism, safety ---------------------------------------------------------------

SOURCES = [EXAMPLES / f"{n}.arch" for n in EXAMPLE_NAMES] + [ROOT / "tests" / "data" / "mini_resnet.arch"]


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_golden(src: pathlib.Path) -> None:
    text = archc.load(str(src)).torch_source(**SETS.get(src.stem, {}))
    path = GOLDEN / f"{src.stem}.py"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden {path}; run with ARCHC_UPDATE_GOLDENS=1"
    assert path.read_text() == text, f"{path.name} differs; review and regenerate"
    ast.parse(text)


def test_byte_identical_across_processes(tmp_path: pathlib.Path) -> None:
    """Other hash seeds, another process: the same bytes (set and dict order never leak)."""
    texts = set()
    for seed in ("1", "12345"):
        out = tmp_path / seed
        env = dict(os.environ, PYTHONHASHSEED=seed)
        subprocess.run([sys.executable, "-m", "archc.cli", "build", str(EXAMPLES / "resnet50.arch"), "-o", str(out)],
                       check=True, env=env, capture_output=True, cwd=tmp_path)
        texts.add((out / "resnet50.py").read_text())
    texts.add(archc.load(str(EXAMPLES / "resnet50.arch")).torch_source())
    assert len(texts) == 1


def test_build_cli_writes_and_refuses(tmp_path: pathlib.Path, capsys) -> None:
    from archc import cli
    src = str(ROOT / "tests" / "data" / "mini_resnet.arch")
    assert cli.main(["build", src, "-o", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["entry"] == "Net" and doc["path"].endswith("mini_resnet.py")
    assert doc["inputs"][0]["name"] == "x"
    assert doc["inputs"][0]["axes"] == [{"name": "batch", "size": "batch", "default": 1},
                                        {"name": "chan", "size": "3", "default": 3},
                                        {"name": "h", "size": "H", "default": 224},
                                        {"name": "w", "size": "W", "default": 224}]
    written = pathlib.Path(doc["path"])
    assert written.read_text() == archc.load(src).torch_source()
    assert cli.main(["build", src, "-o", str(tmp_path)]) == 0  # its own file: overwritten
    written.write_text("my own code\n")
    assert cli.main(["build", src, "-o", str(tmp_path)]) == 1
    assert "was not written by archc" in capsys.readouterr().err
    assert written.read_text() == "my own code\n"
    assert cli.main(["build", src, "-o", str(tmp_path), "--force"]) == 0
    assert written.read_text().startswith("# Generated by archc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mini_resnet.py"]  # no temporary left


def test_check_and_flops_never_import_codegen_or_torch() -> None:
    code = ("import sys\nfrom archc import cli\n"
            f"cli.main(['flops', {str(EXAMPLES / 'resnet50.arch')!r}, '--no-layers'])\n"
            f"cli.main(['check', {str(EXAMPLES / 'vit_b_16.arch')!r}])\n"
            "bad = [m for m in sys.modules if m.startswith(('archc.codegen', 'torch', 'jinja2'))]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def _generate(src: str):
    return archc.loads(src, name="hostile.arch").torch_source()


def test_hostile_strings_stay_inert() -> None:
    evil = '\\"\\"\\" + __import__(\\"os\\").system(\\"echo pwned\\") # \\n import os'
    src = (f'block Blk(note = "{evil}") {{\n in x: [b = 1, c = 4]\n y = relu(x)\n out y\n}}\n'
           'block T() {\n in x: [b = 1, c = 4]\n blk = Blk(x)\n out blk\n}\n')
    text = _generate(src)
    tree = ast.parse(text)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "__import__"]
    assert not calls
    assert "import os" not in [line.strip() for line in text.splitlines()]


def test_keyword_and_builtin_parameter_names() -> None:
    src = ('block Blk(lambda, sum = 3, class = 2) {\n in x: [b = 1, c = 4]\n'
           ' fc = linear(x, c -> lambda * sum + class)\n out fc\n}\n'
           'block T() {\n in x: [b = 1, c = 4]\n blk = Blk(x, 2, class = 1)\n out blk\n}\n')
    text = _generate(src)
    assert "def __init__(self, c: int, lambda_: int, sum_: int = 3, class_: int = 2)" in text
    assert "Blk(4, 2, class_=1)" in text  # c: the input's channels, read off the caller's type
    net = archc.loads(src, name="kw.arch").torch()()
    assert net(torch.ones(1, 4)).shape == (1, 7)


def test_hostile_names_are_renamed_or_refused() -> None:
    # Blocks named like what the module imports and variables named like builtins are renamed.
    src = ('block torch(n = 4) {\n in self: [b = 1, c = 4]\n sum = relu(self)\n list = sum * 2.0\n'
           ' F = linear(list, c -> n)\n out F\n}\n'
           'block nn() {\n in x: [b = 1, c = 4]\n torch = torch(x)\n out torch\n}\n')
    cls = archc.loads(src, name="names.arch").torch()
    assert cls.__name__ == "nn_"
    net = cls()
    assert list(net.state_dict()) == ["torch.F.weight", "torch.F.bias"]
    assert net(torch.ones(1, 4)).shape == (1, 4)
    # A layer name that nn.Module or Python keeps for itself is refused, at its line.
    for bad in ("forward", "training", "lambda", "_modules"):
        with pytest.raises(ArchError) as err:
            _generate(f"block T() {{\n in x: [b = 1, c = 4]\n {bad} = linear(x, c -> 2)\n out {bad}\n}}\n")
        d = err.value.diagnostics[0]
        assert d.code == "codegen" and d.span.line == 3 and bad in d.message


def test_unsupported_lowering_is_a_located_error() -> None:
    src = "block T() {\n in x: [b = 1, c = 4, h = 8, w = 8]\n forward = conv(x, c -> 2, k = 1)\n out forward\n}\n"
    with pytest.raises(ArchError) as err:
        _generate(src)
    d = err.value.diagnostics[0]
    assert d.code == "codegen" and d.span.line == 3 and "is an attribute of torch's nn.Module" in d.message
