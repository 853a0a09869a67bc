"""std.vision's SqueezeExcitation and ConvBNAct's eps/momentum against torch modules written the way
torchvision writes them: the same state_dict keys, the same outputs, the same FLOPs."""

from __future__ import annotations

import pytest

import archc

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402


class SqueezeExcitation(nn.Module):
    def __init__(self, cin: int, squeeze: int, act: type = nn.ReLU, gate: type = nn.Sigmoid) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(cin, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, cin, 1)
        self.activation = act()
        self.scale_activation = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))


@pytest.mark.parametrize("act,gate", [("relu", "sigmoid"), ("silu", "hardsigmoid")])
def test_squeeze_excitation(act: str, gate: str) -> None:
    src = ("import std.vision\nblock B() {\n  in x: [batch = 2, chan = 16, h = 7, w = 5]\n"
           f'  se = SqueezeExcitation(x, 4, act = "{act}", gate = "{gate}")\n  out se\n}}\n')
    model = archc.loads(src, "se.arch")
    ref = SqueezeExcitation(16, 4, {"relu": nn.ReLU, "silu": nn.SiLU}[act],
                            {"sigmoid": nn.Sigmoid, "hardsigmoid": nn.Hardsigmoid}[gate]).eval()
    mod = model.torch()().eval()
    mod.se.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 16, 7, 5)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        want = ref(x)
    with torch.no_grad():
        got = mod(x)
    assert torch.allclose(got, want, rtol=1e-6, atol=1e-6)
    assert model.flops().flops == counter.get_total_flops()


def test_conv_bn_act_takes_eps_and_momentum() -> None:
    src = ("import std.vision\nblock B() {\n  in x: [batch = 2, chan = 3, h = 8, w = 8]\n"
           "  c = ConvBNAct(x, 8, eps = 1e-3, momentum = 0.01)\n  out c\n}\n")
    mod = archc.loads(src, "cba.arch").torch()()
    assert mod.c[1].eps == 1e-3 and mod.c[1].momentum == 0.01
