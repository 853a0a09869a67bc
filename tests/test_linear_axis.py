"""`linear` on an axis that is not the last one builds (what checks also builds): an nn.Linear that moves
the axis last and back, with nn.Linear's parameters, state_dict keys and FLOPs."""

from __future__ import annotations

import pytest

import archc

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

SRC = "size H = 5\nblock B() {\n  in x: [n = 2, c = 4, h = H, w = 3]\n  fc = linear(x, c -> 6%s)\n  out fc\n}\n"


@pytest.mark.parametrize("bias", ["", ", bias = false"])
def test_linear_on_an_inner_axis_equals_einsum(bias: str) -> None:
    m = archc.loads(SRC % bias)
    module = m.torch()()
    assert "LinearAt(4, 6, dim=1" in m.torch_source()
    sd = module.state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == {k: s for k, (s, _) in m.check().graph.state_dict().items()}
    for h in (5, 7):  # H is free
        x = torch.randn(2, 4, h, 3)
        with FlopCounterMode(display=False) as counter:
            y = module(x)
        ref = torch.einsum("nchw,oc->nohw", x, sd["fc.weight"])
        if not bias:
            ref = ref + sd["fc.bias"][None, :, None, None]
        assert torch.allclose(y, ref, atol=1e-6) and tuple(y.shape) == (2, 6, h, 3)
        if h == 5:
            assert counter.get_total_flops() == m.flops().flops


def test_an_inner_linear_as_a_sequence_step() -> None:
    m = archc.loads("block B() {\n  in x: [n = 2, c = 4, t = 3]\n  out seq(x) {\n    linear(c -> 5)\n"
                    "    relu()\n  }\n}\n")
    x = torch.randn(2, 4, 3)
    module = m.torch()()
    ref = torch.relu(torch.einsum("nct,oc->not", x, module[0].weight) + module[0].bias[None, :, None])
    assert torch.allclose(module(x), ref, atol=1e-6)
