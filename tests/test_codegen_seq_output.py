"""A block whose output is a sequence of a value its own layers compute (`out MLP(h)` with MLP = `out seq(x)`):
the generated nn.Sequential holds those layers too, so its forward must not run them a second time."""

from __future__ import annotations

import pytest

import archc
from archc.diagnostics import ArchError

torch = pytest.importorskip("torch")

MLP = "block MLP(d) {\n  in x: [b, c = d]\n  out seq(x) {\n    linear(c -> d)\n    relu()\n  }\n}\n"


def test_layers_chained_into_the_sequence_are_its_first_steps() -> None:
    m = archc.loads(MLP + "block Net() {\n  in x: [b = 2, c = 8]\n  h = linear(x, c -> 8)\n  out MLP(h, 8)\n}\n")
    net = m.torch()().eval()
    assert list(net.state_dict()) == ["h.weight", "h.bias", "0.weight", "0.bias"]
    x = torch.randn(2, 8)
    with torch.no_grad():  # h runs once (it once ran twice: the wrong result)
        assert torch.allclose(net(x), torch.relu(net[1](net[0](x))))


def test_stateless_work_before_the_sequence_is_computed_once() -> None:
    m = archc.loads(MLP + "block Net() {\n  in x: [b = 2, c = 8]\n  out MLP(relu(x), 8)\n}\n")
    net = m.torch()().eval()
    x = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.allclose(net(x), torch.relu(net[1](net[0](torch.relu(x)))))


def test_other_layers_before_the_sequence_are_a_located_error_not_wrong_code() -> None:
    m = archc.loads(MLP + "block Net() {\n  in x: [b = 2, c = 8]\n  h = linear(x, c -> 8)\n"
                    "  out MLP(relu(h), 8)\n}\n", "net.arch")
    with pytest.raises(ArchError) as e:
        m.torch_source()
    assert "give the sequence a name" in str(e.value)


def test_self_attention_of_an_expression_computes_it_once() -> None:
    """`multihead_attention(relu(x))`: the input is one variable passed as q, k and v (computed once, and
    `q is k is v`, so torch takes its packed-projection path)."""
    m = archc.loads("block B() {\n  in x: [b = 2, t = 5, c = 8]\n  a = multihead_attention(relu(x), heads = 2)\n"
                    "  out a\n}\n")
    text = m.torch_source()
    assert text.count("F.relu(") == 1 and "self.a(relu, relu, relu, need_weights=False)" in text
