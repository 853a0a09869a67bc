"""Programs `archc check` accepts that code generation once refused (issue 11: build must accept every
program check accepts): a block's output that is a nested block's tuple, and a block whose output is a
sequence while it owns learned tensors too. Each is run against what the .arch file says."""

from __future__ import annotations

import pytest

import archc

torch = pytest.importorskip("torch")

TWO = "block Two() {\n  in x: [b = 2, c = 4]\n  out relu(x), tanh(x)\n}\n"


@pytest.mark.parametrize("body", ["  out Two(x)", "  t = Two(x)\n  out t", "  t = Two(x) as \"pair\"\n  out t"])
def test_a_nested_blocks_tuple_is_the_blocks_output(body: str) -> None:
    net = archc.loads(TWO + f"block Net() {{\n  in x: [b = 2, c = 4]\n{body}\n}}\n", entry="Net").torch()()
    x = torch.randn(2, 4)
    got = net(x)
    assert isinstance(got, tuple) and len(got) == 2
    assert torch.equal(got[0], torch.relu(x)) and torch.equal(got[1], torch.tanh(x))


def test_a_tuple_through_two_levels_and_the_checks() -> None:
    src = TWO + ("block Mid() {\n  in x: [b = 2, c = 4]\n  t = Two(x)\n  out t\n}\n"
                 "block Net() {\n  in x: [b = 2, c = 4]\n  m = Mid(x)\n  out m[1], m[0]\n}\n")
    x = torch.randn(2, 4)
    for checks in (False, True):
        got = archc.loads(src, entry="Net").torch(checks=checks)()(x)
        assert torch.equal(got[0], torch.tanh(x)) and torch.equal(got[1], torch.relu(x))


def test_a_sequence_output_with_its_own_learned_tensor() -> None:
    """`param s` beside `out seq(x * s) {...}`: an nn.Sequential subclass whose state_dict has `s` and the steps."""
    src = ("block Net() {\n  in x: [b = 2, c = 4]\n  param s: [c = 4] = 2.0\n  buffer n: i64[c = 4] = 3\n"
           "  out seq(x * s) {\n    fc: linear(c -> 3)\n    relu()\n  }\n}\n")
    net = archc.loads(src).torch()()
    assert isinstance(net, torch.nn.Sequential)
    sd = net.state_dict()
    assert set(sd) == {"s", "n", "fc.weight", "fc.bias"} and sd["n"].dtype == torch.int64
    x = torch.randn(2, 4)
    assert torch.allclose(net(x), torch.relu(net.fc(x * 2.0)))
