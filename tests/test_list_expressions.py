"""List slicing and comprehensions (issue 11's walls): Python is the oracle. A program asserts that its
slice or comprehension equals the list Python computes, and `archc check` must accept it (and refuse the
same program with that list changed); a list of tensors goes whole into `concat`, as the generated
module shows against torch."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archc
from archc.diagnostics import ArchError

bounds = st.one_of(st.none(), st.integers(-7, 7))


def _holds(test: str, xs: list[int]) -> bool:
    src = f"block B(xs = {xs}) {{\n  in x: [n = 2]\n  assert {test}, \"no\"\n  out x\n}}\n"
    try:
        archc.loads(src).check()
    except ArchError as e:
        assert e.diagnostics[0].code == "constraint", e.diagnostics[0].message
        return False
    return True


def _text(xs: list[int] | tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, xs)) + "]"


def _slice(start: int | None, stop: int | None, step: int | None) -> str:
    parts = ["" if v is None else str(v) for v in (start, stop)]
    return ":".join(parts) + ("" if step is None else f":{step}")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 99), max_size=6), bounds, bounds, bounds.filter(lambda s: s != 0))
def test_a_slice_is_pythons(xs: list[int], start: int | None, stop: int | None, step: int | None) -> None:
    expected = xs[slice(start, stop, step)]
    assert _holds(f"xs[{_slice(start, stop, step)}] == {_text(expected)}", xs)
    assert not _holds(f"xs[{_slice(start, stop, step)}] == {_text(expected + [100])}", xs)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 20), max_size=6), st.integers(0, 20), st.integers(-3, 3))
def test_a_comprehension_is_pythons(xs: list[int], limit: int, k: int) -> None:
    expected = [k * v + 1 for v in xs if v < limit]
    assert _holds(f"[{k} * v + 1 for v in xs if v < {limit}] == {_text(expected)}", xs)
    assert _holds(f"[i * i for i in 0..len(xs)] == {_text([i * i for i in range(len(xs))])}", xs)


def test_the_documented_pyramid_against_torch() -> None:
    """docs/language.md's example: convs named after the comprehension's widths, quarters of the time axis
    concatenated from a sliced list of tensors."""
    torch = pytest.importorskip("torch")
    src = """size batch = 1, L = 32
block Pyramid(widths = [8, 16, 32, 64]) {
  in x: [batch, chan = 3, t = L]
  y = x
  for d in [2 * w for w in widths[:-1] if w > 8] {
    c = conv(y, chan -> d, k = 3, pad = 1) as "conv{d}"
    y = relu(c)
  }
  quarters = [y[t = i * (L // 4):(i + 1) * (L // 4)] for i in 0..4]
  out concat(quarters[::2], axis = t)
}
"""
    net = archc.loads(src).torch()()
    assert [k for k in net.state_dict() if k.endswith("weight")] == ["conv32.weight", "conv64.weight"]
    x = torch.randn(1, 3, 32)
    y = torch.relu(net.conv64(torch.relu(net.conv32(x))))
    assert torch.equal(net(x), torch.cat([y[..., 0:8], y[..., 16:24]], dim=2))
