"""std.vision's Activation: an activation chosen by a string parameter, a block without layers that
nests like an operation; each kind against its torch function, and an unknown kind is refused."""

from __future__ import annotations

import pytest

import archc

torch = pytest.importorskip("torch")

KINDS = {"relu": torch.relu, "relu6": torch.nn.functional.relu6, "gelu": torch.nn.functional.gelu,
         "silu": torch.nn.functional.silu, "hardswish": torch.nn.functional.hardswish,
         "sigmoid": torch.sigmoid, "tanh": torch.tanh, "none": lambda x: x,
         "leaky_relu": torch.nn.functional.leaky_relu}


def source(kind: str) -> str:
    return ("import std.vision\nblock B() {\n  in x: [batch = 2, chan = 4, h = 3, w = 5]\n"
            f'  out Activation(x, "{kind}") * 2.0\n}}\n')


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_is_its_torch_function(kind: str) -> None:
    mod = archc.loads(source(kind), "act.arch").torch()().eval()
    x = torch.randn(2, 4, 3, 5) * 4
    with torch.no_grad():
        assert torch.allclose(mod(x), KINDS[kind](x) * 2.0, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("slope", [0.2, 1.5, -0.3])
def test_leaky_relu_takes_any_slope(slope: float) -> None:
    src = source("leaky_relu").replace('"leaky_relu")', f'"leaky_relu", slope = {slope})')
    mod = archc.loads(src, "act.arch").torch()().eval()
    x = torch.randn(2, 4, 3, 5)
    with torch.no_grad():
        assert torch.allclose(mod(x), torch.nn.functional.leaky_relu(x, slope) * 2.0, rtol=1e-6, atol=1e-6)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(archc.ArchError, match="kind is relu, relu6"):
        archc.loads(source("swish"), "act.arch").check()
