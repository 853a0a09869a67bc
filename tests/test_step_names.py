"""Quoted step names may hold a '-', as keys of real checkpoints do (`head.pre-logits.weight`): they
reach the state_dict, the generated nn.Sequential (an OrderedDict) and strict loading (issue 11).
Other characters are located errors: tests/errors/step_names.arch."""

from __future__ import annotations

from collections import OrderedDict

import pytest

import archc

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

SRC = """block Head() {
  in x: [b, c]
  out seq(x) {
    "pre-logits": linear(c -> 8)
    "act-0": relu()
    linear(c -> 3)
  }
}
block Net() {
  in x: [b = 2, c = 4]
  stem = seq(x) {
    "fc-1": linear(c -> 4)
    relu()
  }
  head = Head(stem)
  out head
}
"""


def test_a_dash_in_a_step_name_is_a_state_dict_key() -> None:
    m = archc.loads(SRC)
    keys = list(m.check().graph.state_dict())
    assert keys == ["stem.fc-1.weight", "stem.fc-1.bias", "head.pre-logits.weight", "head.pre-logits.bias",
                    "head.0.weight", "head.0.bias"]
    reference = nn.ModuleDict({
        "stem": nn.Sequential(OrderedDict([("fc-1", nn.Linear(4, 4)), ("0", nn.ReLU())])),
        "head": nn.Sequential(OrderedDict([("pre-logits", nn.Linear(4, 8)), ("act-0", nn.ReLU()),
                                           ("0", nn.Linear(8, 3))])),
    })
    module = m.torch()().eval()
    assert list(module.state_dict()) == keys
    module.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 4)
    assert torch.allclose(module(x), reference["head"](reference["stem"](x)), atol=1e-6)
