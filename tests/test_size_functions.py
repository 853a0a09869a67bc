"""max, min, floor, ceil, round and int in size expressions: concrete and symbolic, and located errors."""

from __future__ import annotations

import pytest

import archc
from archc.diagnostics import ArchError


def _size(expr: str, sizes: str = "size H = 8", symbolic: bool = False) -> str:
    g = archc.loads(f"{sizes}\nblock B() {{\n  in x: [n = 2, c = {expr}]\n  out x\n}}\n").check(symbolic=symbolic).graph
    return str(g.node(g.inputs[0]).type.size("c"))


@pytest.mark.parametrize("expr, value", [
    ("max(3, 7, 5)", "7"), ("min(H, 4)", "4"), ("max(H, 2 * H)", "16"), ("floor(H / 3)", "2"),
    ("ceil(H / 3)", "3"), ("round(2.5)", "2"), ("round(3.5)", "4"), ("int(7 / 2)", "3"), ("min(max(H, 3), 5)", "5"),
])
def test_size_functions_compute(expr: str, value: str) -> None:
    assert _size(expr) == value


def test_free_sizes_stay_symbolic_and_evaluate_at_their_values() -> None:
    assert _size("ceil(H / 2)", "size H", symbolic=True) == "ceiling(H/2)"
    assert _size("max(H, 4)", "size H", symbolic=True) == "Max(4, H)"
    for h, c in ((7, 4), (8, 4), (9, 5)):
        assert _size("ceil(H / 2)", f"size H = {h}") == str(c)


@pytest.mark.parametrize("expr, message", [
    ("max(3)", "max takes 2 or more number(s) or size(s)"),
    ("floor(1, 2)", "floor takes 1 number(s) or size(s)"),
    ("min(a = 3, b = 4)", "written without names"),
    ('max("a", 2)', 'max takes numbers and sizes, got the string "a"'),
    ("round(H / 3)", "round needs a number, but H/3 depends on free sizes"),
])
def test_bad_size_functions_are_located(expr: str, message: str) -> None:
    with pytest.raises(ArchError) as err:
        archc.loads(f"size H\nblock B() {{\n  in x: [n = 2, c = {expr}]\n  out x\n}}\n").check(symbolic=True)
    d = err.value.diagnostics[0]
    assert message in d.message and d.span.line == 3, (d.message, d.span)


@pytest.mark.parametrize("call, at", [("zeros(n = 2, n = 3)", "n = 3"), ("expand(x, b = 2, b = 3)", "b = 3")])
def test_an_axis_size_given_twice_is_an_error(call: str, at: str) -> None:
    with pytest.raises(ArchError) as err:
        archc.loads(f"block B() {{\n  in x: [n = 2, c = 4]\n  y = {call}\n  out y\n}}\n").check()
    d = err.value.diagnostics[0]
    assert "is given twice" in d.message and (d.span.line, d.span.col) == (3, 7 + call.index(at))
