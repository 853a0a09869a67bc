"""Values that used to be walls (issue 11): axis names as block parameters (docs/language.md's Mixer, against
the same layers written by hand in torch) and blocks as parameters (a stage calling the block it is given,
against the same network with the block written in)."""

from __future__ import annotations

import pathlib
import re

import pytest

import archc

torch = pytest.importorskip("torch")


def _example(start: str) -> str:
    doc = (archc.__file__.rsplit("/", 2)[0] + "/docs/language.md")
    text = open(doc, encoding="utf-8").read()
    m = re.search(r"```arch\n(" + re.escape(start) + r".*?)```", text, re.S)
    assert m, f"docs/language.md lost the example starting {start!r}"
    return m.group(1)


def _mixer() -> str:
    return _example("size batch = 1\n\n# one MLP for both")


def test_one_block_mixes_either_axis() -> None:
    model = archc.loads(_mixer())
    source = model.torch_source()
    assert "for ax='tok'" in source and "for ax='chan'" in source  # one class per axis
    net = model.torch()()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes["token_mixing.fc1.weight"] == (64, 49) and shapes["channel_mixing.fc1.weight"] == (256, 128)
    x = torch.randn(1, 49, 128)
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        net(x)
    assert model.flops().flops == counter.get_total_flops() == 2 * 49 * 128 * (2 * 64 + 2 * 256)
    sd = net.state_dict()

    def mlp(t: torch.Tensor, name: str) -> torch.Tensor:
        h = torch.nn.functional.linear(t, sd[f"{name}.fc1.weight"], sd[f"{name}.fc1.bias"])
        h = torch.nn.functional.gelu(h)
        return torch.nn.functional.linear(h, sd[f"{name}.fc2.weight"], sd[f"{name}.fc2.bias"])

    def norm(t: torch.Tensor, name: str) -> torch.Tensor:
        return torch.nn.functional.layer_norm(t, (128,), sd[f"{name}.weight"], sd[f"{name}.bias"])

    y = x + mlp(norm(x, "norm1").transpose(1, 2), "token_mixing").transpose(1, 2)
    z = y + mlp(norm(y, "norm2"), "channel_mixing")
    assert torch.allclose(net(x), z.mean((1, 2)), rtol=1e-5, atol=1e-6)


def test_a_block_passed_as_a_parameter_is_the_block_written_in() -> None:
    """docs/language.md's Stage(unit, ...): with unit = Basic and with unit = Wide, the same state_dict keys and
    shapes, FLOPs and outputs as the network with the block's name written in its place."""
    src = _example("size batch = 1, H = 32, W = 32\n\nblock Basic")
    for unit in ("Basic", "Wide"):
        given = src.replace("unit = Basic, widths", f"unit = {unit}, widths")
        written = (given.replace("block Stage(unit, planes, n)", "block Stage(planes, n)")
                   .replace("unit(planes)", f"{unit}(planes)").replace("Stage(x, unit, ", "Stage(x, ")
                   .replace("Stage(layer1, unit, ", "Stage(layer1, "))
        assert "unit(" not in written.split("entry block")[0]
        a, b = archc.loads(given), archc.loads(written)
        net_a, net_b = a.torch()(), b.torch()()
        shapes = [{k: v.shape for k, v in n.state_dict().items()} for n in (net_a, net_b)]
        assert shapes[0] == shapes[1]
        assert a.flops().flops == b.flops().flops and a.flops().params == b.flops().params
        net_b.load_state_dict(net_a.state_dict())
        x = torch.randn(1, 3, 32, 32)
        assert torch.equal(net_a(x), net_b(x))
        assert f"for unit={unit}" in a.torch_source()


def test_the_corpus_program_of_this_language_at_other_sizes_and_windows() -> None:
    """tests/data/values_and_branches.arch (the fuzzer mutates it too): built once, constructed with another
    window than the default, run at sizes on both sides of each branch; the shape is what archc check gives
    for those values, and the values are those of the same network with the pads written without a branch."""
    path = pathlib.Path(__file__).parent / "data" / "values_and_branches.arch"
    src = path.read_text(encoding="utf-8")
    unbranched = src.replace(
        "  y = if h % ws != 0 then pad(x, over = [h], pad = [[0, ws - h % ws]]) else x\n"
        "  out if w % ws != 0 then pad(y, over = [w], pad = [[0, ws - w % ws]]) else y\n",
        "  out pad(x, over = [h, w], pad = [[0, (ws - h % ws) % ws], [0, (ws - w % ws) % ws]])\n")
    assert unbranched != src
    model = archc.loads(src)
    source = model.torch_source()
    assert "if h % self.ws != 0:" in source  # PadTo's; its caller's code is the same either way: no `if`
    assert "if" not in source.split("class Net(")[1].split("def forward")[1]
    for ws in (4, 2):
        net, reference = model.torch()(ws=ws), archc.loads(unbranched).torch()(ws=ws)
        reference.load_state_dict(net.state_dict())
        for h, w in ((12, 10), (13, 8), (16, 16), (5, 3)):
            x = torch.randn(1, 3, h, w)
            got = net(x)
            g = model.check(ws=ws, H=h, W=w).graph
            assert list(got.shape) == [int(a.size) for a in g.node(g.outputs[0]).type.axes]
            assert torch.allclose(got, reference(x), rtol=1e-5, atol=1e-6), (ws, h, w)


def test_set_gives_strings_and_blocks(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--set kind=gelu` (or `kind="gelu"`) sets a string parameter; `--set unit=Flat` a parameter whose default
    is a block, by the block's name (a wrong name is a `set` error with a suggestion); Python's sets alike."""
    from archc.cli import main

    src = (pathlib.Path(__file__).parent / "data" / "values_and_branches.arch").read_text(encoding="utf-8")
    src += ("\nblock Flat(planes) {\n  in x: [batch, chan, h, w]\n  c = conv(x, chan -> planes, k = 1)\n  out c\n}\n"
            "\nblock Act(kind = \"relu\") {\n  in x: [batch, chan = 3, h = 4, w = 4]\n"
            "  out if kind == \"gelu\" then gelu(x) else relu(x)\n}\n")
    path = tmp_path / "net.arch"
    path.write_text(src, encoding="utf-8")
    assert main(["flops", str(path), "--entry", "Net", "--set", "unit=Flat"]) == 0
    flat = capsys.readouterr().out
    assert main(["flops", str(path), "--entry", "Net"]) == 0
    assert flat != capsys.readouterr().out  # 1x1 convs, not Unit's 3x3
    assert main(["check", str(path), "--entry", "Net", "--set", "unit=Flt"]) == 1
    assert "--set unit: no block named 'Flt' (did you mean 'Flat'?) [set]" in capsys.readouterr().err
    for value in ("gelu", '"gelu"'):
        assert main(["check", str(path), "--entry", "Act", "--set", f"kind={value}"]) == 0
        assert " gelu " in capsys.readouterr().out
    model = archc.loads(src, entry="Net")
    assert model.flops(unit="Flat").params == 3 * 8 + 8 + 8 * 16 + 16 + model.flops().params - sum(
        v.numel() for k, v in model.torch()().state_dict().items() if k.startswith("stage"))
