"""Axis names as values (issue 11's wall "axis names as block parameters"): a block takes the axis it works
on as a string parameter. docs/language.md's Mixer, against the same layers written by hand in torch."""

from __future__ import annotations

import re

import pytest

import archc

torch = pytest.importorskip("torch")


def _mixer() -> str:
    doc = (archc.__file__.rsplit("/", 2)[0] + "/docs/language.md")
    text = open(doc, encoding="utf-8").read()
    m = re.search(r"```arch\n(size batch = 1\n\n# one MLP for both.*?)```", text, re.S)
    assert m, "docs/language.md lost the Mixer example"
    return m.group(1)


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
