"""`roll` against torch.roll: types, generated code, costs and located errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archc
from archc.diagnostics import ArchError

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

AXES = ["n", "c", "h", "w"]


def _model(sizes: list[int], shift: str, over: list[str]) -> archc.Model:
    decl = ", ".join(f"{a} = {s}" for a, s in zip(AXES, sizes))
    return archc.loads(f"block R() {{\n  in x: [{decl}]\n  y = roll(x, shift = {shift}, over = [{', '.join(over)}])\n"
                       "  out y\n}\n")


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(sizes=st.lists(st.integers(1, 5), min_size=4, max_size=4),
       over=st.lists(st.sampled_from(AXES), min_size=1, max_size=3, unique=True),
       data=st.data())
def test_roll_equals_torch_roll(sizes: list[int], over: list[str], data: st.DataObject) -> None:
    shifts = data.draw(st.lists(st.integers(-7, 7), min_size=len(over), max_size=len(over)))
    m = _model(sizes, "[" + ", ".join(map(str, shifts)) + "]", over)
    g = m.check().graph
    assert g.node(g.outputs[0]).type == g.node(g.inputs[0]).type
    x = torch.randn(*sizes)
    module = m.torch()()
    with FlopCounterMode(display=False) as counter:
        y = module(x)
    assert torch.equal(y, torch.roll(x, tuple(shifts), tuple(AXES.index(a) for a in over)))
    assert counter.get_total_flops() == m.flops().flops == 0


def test_one_shift_for_every_axis_and_free_sizes() -> None:
    m = archc.loads("size H = 6\nblock R() {\n  in x: [n = 2, h = H, w = H]\n"
                    "  y = roll(x, shift = -H/2, over = [h, w])\n  out y\n}\n")
    module = m.torch()()
    for h in (6, 8):  # H is free: the shift is read off the input's shape
        x = torch.randn(2, h, h)
        assert torch.equal(module(x), torch.roll(x, (-(h // 2), -(h // 2)), (1, 2)))
    assert "torch.roll(x, (" in m.torch_source()


@pytest.mark.parametrize("call, message, at", [
    ("roll(x, shift = 1, over = [q])", "has no axis 'q'", "over"),
    ("roll(x, shift = [1, 2], over = [h])", "shift has 2 values but the op acts on 1 axes", "shift"),
    ("roll(x, shift = 1, over = [h, h])", "an axis is named twice in over", "over"),
    ("roll(x, shift = 1.5, over = [h])", "must be a whole number", "1.5"),
    ("roll(x, over = [h])", "roll needs 'shift'", "roll"),
])
def test_bad_rolls_are_located(call: str, message: str, at: str) -> None:
    """The error points at the argument that is wrong (line 3; `  y = ` puts the call at column 7)."""
    with pytest.raises(ArchError) as err:
        archc.loads(f"block R() {{\n  in x: [n = 2, h = 5]\n  y = {call}\n  out y\n}}\n").check()
    d = err.value.diagnostics[0]
    assert message in d.message and (d.span.line, d.span.col) == (3, 7 + call.index(at)), (d.message, d.span)
