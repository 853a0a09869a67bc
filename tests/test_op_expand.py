"""`expand` adds the axes a tensor lacks in front, in the order they are written (a 0-d tensor
expanded to `a = 2, b = 3` is [a=2, b=3]; it was [b=3, a=2] before), and the generated module agrees.
Zero sizes are errors at the argument: tests/errors/axis_sizes.arch."""

from __future__ import annotations

import pytest

import archc

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("param,call,expected", [
    ("[]", "expand(s, a = 2, b = 3)", [("a", 2), ("b", 3)]),
    ("[]", "expand(s, b = 3, a = 2, c = 4)", [("b", 3), ("a", 2), ("c", 4)]),
    ("[c = 1, w = 5]", "expand(s, a = 2, c = 4, b = 3)", [("a", 2), ("b", 3), ("c", 4), ("w", 5)]),
])
def test_new_axes_come_in_the_order_written(param: str, call: str, expected: list) -> None:
    m = archc.loads(f"block B() {{\n  in x: [n = 2]\n  param s: {param} = 1.5\n  y = {call}\n  out y\n}}\n")
    g = m.check().graph
    t = g.node(g.outputs[0]).type
    assert [(a.name, a.size) for a in t.axes] == expected
    y = m.torch()()(torch.zeros(2))
    assert tuple(y.shape) == tuple(n for _, n in expected) and bool((y == 1.5).all())
