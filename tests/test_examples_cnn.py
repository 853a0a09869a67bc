"""The CNN examples (ResNet-50, MobileNetV2) and std.vision against torchvision's figures.

The reference files (shared/reference/) were measured on torchvision's own models with
FlopCounterMode; here the static checker must reproduce them exactly: every state_dict key
and shape, parameter and buffer counts, FLOPs at 224x224 and, for ResNet-50, at other batch
sizes and resolutions, both by overriding sizes and by substituting into the closed form.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import archc
from archc import cli
from archc.analysis.report import analyze
from archc.api import compile_file
from archc.diagnostics import ArchError
from archc.shapes.sizes import evaluate, free_names

from conftest import EXAMPLES, ROOT

RESNET50 = str(EXAMPLES / "resnet50.arch")
MOBILENET = str(EXAMPLES / "mobilenet_v2.arch")
# example file, entry, key in the reference files
CASES = [(RESNET50, "ResNet50", "resnet50"), (MOBILENET, "MobileNetV2", "mobilenet_v2")]
IDS = [c[2] for c in CASES]


def _sizes(key: str) -> dict[str, int]:
    """'[2,3,128,128]' -> the example's free sizes."""
    batch, _, h, w = json.loads(key)
    return {"batch": batch, "H": h, "W": w}


# ---- the examples against torchvision ----------------------------------------------------


@pytest.mark.parametrize("path, entry, ref", CASES, ids=IDS)
def test_state_dict_keys_and_shapes_are_torchvisions(path, entry, ref, state_dict_keys) -> None:
    g = archc.load(path).check().graph
    assert g.entry == entry
    got = {key: list(shape) for key, (shape, _buffer) in g.state_dict().items()}
    want = state_dict_keys[ref]
    assert sorted(set(want) - set(got)) == [] and sorted(set(got) - set(want)) == []
    assert list(got) == list(want)  # definition order too, as torchvision registers them
    assert got == want


@pytest.mark.parametrize("path, entry, ref", CASES, ids=IDS)
def test_params_buffers_and_flops_are_torchvisions(path, entry, ref, figures) -> None:
    fig = figures["models"][ref]
    m = archc.load(path)
    g = m.check().graph
    assert g.sizes == {"batch": 1, "H": 224, "W": 224}
    assert g.modules[""].args == {"num_classes": 1000} | ({"dropout_p": 0.2} if ref == "mobilenet_v2" else {})
    assert [g.node(i).type.shape for i in g.inputs] == [tuple(fig["input"])]
    assert [g.node(i).type.shape for i in g.outputs] == [tuple(fig["output"])]
    r = m.flops()
    assert (r.params, r.buffers, r.flops) == (fig["params"], fig["buffers_numel"], fig["flops_conv_linear"])
    # buffers: running mean and var per channel, and one num_batches_tracked per batchnorm
    buffers = [shape for shape, is_buffer in g.state_dict().values() if is_buffer]
    assert sum(s[0] if s else 1 for s in buffers) == fig["buffers_numel"]


def test_resnet50_flops_at_other_sizes_by_overriding_sizes(figures) -> None:
    m = archc.load(RESNET50)
    for key, want in figures["flops_conv_linear_at_other_sizes"]["resnet50"].items():
        assert m.flops(**_sizes(key)).flops == want, key


def test_resnet50_symbolic_flops_match_every_reference_row(figures) -> None:
    res = compile_file(RESNET50, symbolic=True)
    rep = analyze(res.graph)
    assert free_names(rep.flops) == {"batch", "H", "W"}
    assert rep.params == figures["models"]["resnet50"]["params"]  # no size in the weights
    rows = dict(figures["flops_conv_linear_at_other_sizes"]["resnet50"])
    rows["[1,3,224,224]"] = figures["models"]["resnet50"]["flops_conv_linear"]
    for key, want in rows.items():
        assert evaluate(rep.flops, _sizes(key)) == want, key
    # ... and the report itself evaluates the closed form at the sizes' defaults
    assert rep.value(rep.flops) == figures["models"]["resnet50"]["flops_conv_linear"]


def test_the_generic_resnet_gives_resnet18_with_basic_blocks(figures) -> None:
    fig = figures["models"]["resnet18"]
    m = archc.load(RESNET50, entry="ResNet18")
    r = m.flops()
    assert (r.params, r.buffers, r.flops) == (fig["params"], fig["buffers_numel"], fig["flops_conv_linear"])
    g = m.check().graph
    assert g.modules["layer1.0"].name == "BasicBlock" and g.modules["layer3.1"].name == "BasicBlock"
    keys = g.state_dict()
    assert "layer1.0.downsample.0.weight" not in keys  # 64 -> 64 at stride 1: identity shortcut
    assert keys["layer2.0.downsample.0.weight"] == ((128, 64, 1, 1), False)


def test_resnet50_module_tree_follows_torchvision() -> None:
    g = archc.load(RESNET50).check().graph
    assert g.modules[""].children[:5] == ["conv1", "bn1", "relu", "maxpool", "layer1"]
    assert g.modules[""].children[-2:] == ["avgpool", "fc"]
    assert [g.modules[f"layer3.{j}"].name for j in range(6)] == ["Bottleneck"] * 6
    assert g.modules["layer2.1"].repeat == ("j", 1, 0, 4)


# ---- std.vision blocks -------------------------------------------------------------------


def _graph(body: str, **sets):
    text = "import std.vision\nblock T() {\n  in x: [n = 1, chan = 16, h = 8, w = 8]\n" + body + "\n}\n"
    return archc.loads(text, "t.arch").check(**sets).graph


@pytest.mark.parametrize("act, op", [("relu", "relu"), ("relu6", "relu6"), ("silu", "silu"),
                                     ("hardswish", "hardswish"), ("none", None)])
def test_conv_bn_act_numbers_conv_norm_and_activation(act, op) -> None:
    g = _graph(f'  y = ConvBNAct(x, 32, stride = 2, act = "{act}")\n  out y')
    assert list(g.state_dict()) == ["y.0.weight", "y.1.weight", "y.1.bias", "y.1.running_mean",
                                    "y.1.running_var", "y.1.num_batches_tracked"]
    assert g.modules["y"].name == "ConvBNAct"
    assert g.modules["y"].children == ["y.0", "y.1"] + (["y.2"] if op else [])
    if op:
        assert g.modules["y.2"].name == op
    assert str(g.node(g.outputs[0]).type) == "[n=1, chan=32, h=4, w=4]"


def test_conv_bn_act_rejects_an_unknown_activation() -> None:
    with pytest.raises(ArchError) as e:
        _graph('  y = ConvBNAct(x, 32, act = "gelu")\n  out y')
    assert [d.code for d in e.value.diagnostics] == ["constraint"]
    assert "act is one of" in e.value.diagnostics[0].message


def test_inverted_residual_expands_only_when_asked_and_adds_only_when_shapes_keep() -> None:
    g = _graph("  a = InvertedResidual(x, 16, expand_ratio = 1)\n"
               "  b = InvertedResidual(a, 24, stride = 2)\n  out b")
    keys = g.state_dict()
    assert keys["a.conv.0.0.weight"] == ((16, 1, 3, 3), False)  # depthwise first: no expansion
    assert keys["a.conv.1.weight"] == ((16, 16, 1, 1), False)
    assert keys["b.conv.0.0.weight"] == ((96, 16, 1, 1), False)  # 1x1 expansion to 6 * 16
    assert keys["b.conv.1.0.weight"] == ((96, 1, 3, 3), False)
    assert keys["b.conv.2.weight"] == ((24, 96, 1, 1), False)
    adds = [n.scope for n in g if n.op.value == "add"]
    assert adds == ["a"]  # a keeps 16 channels at stride 1; b changes both


def test_bottleneck_and_basic_block_shortcuts() -> None:
    g = _graph("  a = Bottleneck(x, 4)\n  b = Bottleneck(a, 8, stride = 2)\n"
               "  c = BasicBlock(b, 32)\n  d = BasicBlock(c, 64, stride = 2)\n  out d")
    keys = g.state_dict()
    assert "a.downsample.0.weight" not in keys  # 16 == 4 * 4 at stride 1
    assert keys["b.downsample.0.weight"] == ((32, 16, 1, 1), False)
    assert keys["b.conv2.weight"] == ((8, 8, 3, 3), False)
    assert "c.downsample.0.weight" not in keys
    assert keys["d.downsample.0.weight"] == ((64, 32, 1, 1), False)
    assert str(g.node(g.outputs[0]).type) == "[n=1, chan=64, h=2, w=2]"


def test_resnext_bottleneck_is_grouped() -> None:
    g = _graph("  a = Bottleneck(x, 4, groups = 2, width_per_group = 128)\n  out a")
    keys = g.state_dict()
    assert keys["a.conv1.weight"] == ((16, 16, 1, 1), False)
    assert keys["a.conv2.weight"] == ((16, 8, 3, 3), False)


def test_an_unnamed_block_call_in_out_names_its_layers_under_the_caller() -> None:
    text = ("block Inner(c) {\n  in x: [n, chan, h, w]\n  fc = conv(x, chan -> c, k = 1)\n  out relu(fc)\n}\n"
            "block Outer(c) {\n  in x: [n, chan, h, w]\n  out Inner(x, c)\n}\n"
            "block T() {\n  in x: [n = 1, chan = 3, h = 4, w = 4]\n  o = Outer(x, 8)\n  out o\n}\n")
    g = archc.loads(text, "t.arch").check().graph
    assert list(g.state_dict()) == ["o.fc.weight", "o.fc.bias"]
    assert g.modules["o"].name == "Outer" and g.modules["o"].args == {"c": 8}
    assert g.modules["o"].children == ["o.fc"]
    assert str(g.node(g.outputs[0]).type) == "[n=1, chan=8, h=4, w=4]"


# ---- the command line --------------------------------------------------------------------


@pytest.mark.parametrize("path", [RESNET50, MOBILENET], ids=IDS)
@pytest.mark.parametrize("command", [["check"], ["flops"], ["flops", "--symbolic", "--no-layers"],
                                     ["check", "--symbolic"]])
def test_cli_exits_0_on_the_examples(path, command, capsys) -> None:
    assert cli.main(command + [path]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out


def test_cli_flops_json_with_set_gives_the_reference_figure(figures, capsys) -> None:
    for key, want in figures["flops_conv_linear_at_other_sizes"]["resnet50"].items():
        sets = [a for k, v in _sizes(key).items() for a in ("--set", f"{k}={v}")]
        assert cli.main(["flops", RESNET50, "--json", "--no-layers"] + sets) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["flops"] == want, key
        assert doc["params"] == figures["models"]["resnet50"]["params"]


_NO_TORCH = """
import sys
from archc import cli
rc = cli.main([sys.argv[1], sys.argv[2]])
heavy = sorted(m for m in ("torch", "triton") if m in sys.modules)
print("imported:", heavy, file=sys.stderr)
sys.exit(rc or (3 if heavy else 0))
"""


@pytest.mark.parametrize("command", ["check", "flops"])
@pytest.mark.parametrize("path", [RESNET50, MOBILENET], ids=IDS)
def test_check_and_flops_run_as_a_subprocess_without_importing_torch(command, path) -> None:
    proc = subprocess.run([sys.executable, "-c", _NO_TORCH, command, path], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "imported: []" in proc.stderr


def test_archc_console_command_as_a_subprocess() -> None:
    proc = subprocess.run([sys.executable, "-m", "archc.cli", "flops", RESNET50, "--no-layers"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "FLOPs = 8,178,368,512" in proc.stdout
