"""`slice` against Python/torch slicing: types, generated code, costs, and located errors past the ends."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archc
from archc.diagnostics import ArchError

torch = pytest.importorskip("torch")


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(n=st.integers(1, 12), data=st.data())
def test_slice_equals_python_slicing(n: int, data: st.DataObject) -> None:
    start = data.draw(st.integers(-n, n - 1))
    lo = (start + n if start < 0 else start) + 1
    stop = data.draw(st.one_of(st.none(), st.integers(lo, n)))
    step = data.draw(st.integers(1, 4))
    args = f"start = {start}" + ("" if stop is None else f", stop = {stop}") + f", step = {step}"
    m = archc.loads(f"block B() {{\n  in x: [c = 3, h = {n}]\n  out slice(x, over = h, {args})\n}}\n")
    x = torch.randn(3, n)
    want = x[:, start:stop:step]
    g = m.check().graph
    assert [a.size for a in g.node(g.outputs[0]).type.axes] == list(want.shape)
    assert torch.equal(m.torch()()(x), want)
    assert m.flops(convention="full").flops == 0


def test_free_sizes_slice_symbolically() -> None:
    m = archc.loads("size H\nblock B() {\n  in x: [c = 2, h = H]\n"
                    "  out slice(x, over = h, start = 1, stop = H // 2)\n}\n")
    g = m.check(symbolic=True).graph
    assert str(g.node(g.outputs[0]).type) == "[c=2, h=⌊H/2⌋ - 1]"
    assert torch.equal(m.torch()()(torch.arange(20.0).reshape(2, 10)), torch.arange(20.0).reshape(2, 10)[:, 1:5])


@pytest.mark.parametrize("args,message", [
    ("start = 2, stop = 12", "stop 12 is past the end of 'h' (its length is 10)"),
    ("start = -11", "start -11 is before the start of 'h'"),
    ("start = 5, stop = 5", "the slice 5:5 of 'h' is empty"),
    ("step = 0", "step must be at least 1"),
    ("start = [1, 2]", "start is one whole number"),
])
def test_bad_slices_are_located_errors(args: str, message: str) -> None:
    with pytest.raises(ArchError) as e:
        archc.loads(f"block B() {{\n  in x: [c = 2, h = 10]\n  y = slice(x, over = h, {args})\n  out y\n}}\n").check()
    assert message in str(e.value) and e.value.diagnostics[0].span.line == 3, str(e.value)
