"""Comparisons, logic, where and masked_fill against torch's own functions (values, bool dtypes, shapes,
zero FLOPs), named broadcasting at free sizes, and located errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import archc
from archc.diagnostics import ArchError

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

BLOCK = ("block B() {{\n  in x: [n = 3, c = 5]\n  in y: [c = 5]\n  in b: bool[n = 3, c = 1]\n"
         "  in m: bool[c = 5]\n  z = {call}\n  out z\n}}\n")
Fn = Callable[[Any, Any, Any, Any], Any]
CASES: dict[str, Fn] = {
    "greater(x, y)": lambda x, y, b, m: torch.gt(x, y),
    "less(y, x)": lambda x, y, b, m: torch.lt(y, x),
    "greater_equal(x, x)": lambda x, y, b, m: torch.ge(x, x),
    "less_equal(x, y)": lambda x, y, b, m: torch.le(x, y),
    "equal(x, y)": lambda x, y, b, m: torch.eq(x, y),
    "not_equal(y, x)": lambda x, y, b, m: torch.ne(y, x),
    "greater(x, value = 0.25)": lambda x, y, b, m: torch.gt(x, 0.25),
    "less_equal(y, value = -1)": lambda x, y, b, m: torch.le(y, -1),
    "not_equal(m, value = 0)": lambda x, y, b, m: torch.ne(m, 0),
    "logical_and(b, m)": lambda x, y, b, m: torch.logical_and(b, m),
    "logical_or(m, less(x, y))": lambda x, y, b, m: torch.logical_or(m, x < y),
    "logical_not(b)": lambda x, y, b, m: torch.logical_not(b),
    "where(b, x, y)": lambda x, y, b, m: torch.where(b, x, y),
    "where(m, y, x)": lambda x, y, b, m: torch.where(m, y, x),
    "where(greater(x, 0.0 * x), x, 0.0 * x)": lambda x, y, b, m: torch.where(x > 0, x, 0 * x),
    "masked_fill(x, b, value = 2.5)": lambda x, y, b, m: x.masked_fill(b, 2.5),
    'masked_fill(x, m, fill = "-inf")': lambda x, y, b, m: x.masked_fill(m, float("-inf")),
    'masked_fill(y, b, fill = "inf")': lambda x, y, b, m: y.masked_fill(b, float("inf")),
}


@pytest.mark.parametrize("call", sorted(CASES))
def test_generated_code_equals_torch(call: str) -> None:
    m = archc.loads(BLOCK.format(call=call))
    x, y = torch.randn(3, 5), torch.randn(5)
    y[:2] = x[0, :2]  # some equal elements, so equal and not_equal see both outcomes
    b, mask = torch.rand(3, 1) > 0.5, torch.rand(5) > 0.5
    module = m.torch()()
    with FlopCounterMode(display=False) as counter:
        out = module(x, y, b, mask)
    ref = CASES[call](x, y, b, mask)
    assert out.dtype == ref.dtype and torch.equal(out, ref)
    assert counter.get_total_flops() == m.flops().flops == 0  # torch convention: no work counted
    g = m.check().graph
    t = g.node(g.outputs[0]).tensor_type
    assert tuple(out.shape) == t.shape and str(out.dtype) == f"torch.{ {'bool': 'bool', 'f32': 'float32'}[t.dtype]}"


def test_free_sizes_broadcast_by_name() -> None:
    """A padding mask [n, s] over scores [n, t, s]: the mask's axes are placed by name."""
    src = ("size T, S\nblock B() {\n  in scores: [n = 2, t = T, s = S]\n  in keep: bool[n = 2, s = S]\n"
           '  z = masked_fill(scores, logical_not(keep), fill = "-inf")\n  out z\n}\n')
    m = archc.loads(src)
    assert "logical_not(keep)[:, None]" in m.torch_source()
    module = m.torch()()
    for t, s in ((3, 4), (5, 7)):
        scores, keep = torch.randn(2, t, s), torch.rand(2, s) > 0.3
        assert torch.equal(module(scores, keep), scores.masked_fill(~keep[:, None, :], float("-inf")))


def test_integer_comparison_and_fill() -> None:
    src = ("block B() {\n  in i: i64[n = 4]\n  in j: i64[n = 4]\n"
           "  z = masked_fill(i, logical_or(greater_equal(i, j), equal(i, value = 0)), value = 7)\n  out z\n}\n")
    i, j = torch.tensor([1, 5, 3, 0]), torch.tensor([2, 5, 1, 1])
    out = archc.loads(src).torch()()(i, j)
    assert out.dtype == torch.int64 and torch.equal(out, i.masked_fill((i >= j) | (i == 0), 7))


def test_a_padding_mask_from_token_ids() -> None:
    """Keys whose id is the padding id 0 get no attention: not_equal(ids, value = 0) broadcast over queries."""
    src = ("size S\nblock B() {\n  in scores: [n = 2, t = 3, s = S]\n  in ids: i64[n = 2, s = S]\n"
           '  out masked_fill(scores, equal(ids, value = 0), fill = "-inf")\n}\n')
    module = archc.loads(src).torch()()
    for s in (4, 6):
        scores, ids = torch.randn(2, 3, s), torch.randint(0, 3, (2, s))
        assert torch.equal(module(scores, ids), scores.masked_fill((ids == 0)[:, None, :], float("-inf")))


@pytest.mark.parametrize("call, message, at", [
    ("greater(z, z)", "complex numbers (c64) have no order", "greater"),
    ("less_equal(x, ids)", "less_equal of f32 and i64 tensors", "less_equal"),
    ("greater(x, q)", "axis 'q' of [q=5] is not in [n=3, c=5]", "greater"),
    ("greater(x, x, value = 1.0)", "a second tensor or with value=, not both", "value"),
    ("less(x)", "compares two tensors, or a tensor with value= (as in less(ids, value = 0))", "less"),
    ('equal(x, value = "a")', "'value' of equal is a number", '"a"'),
    ("logical_and(x, b)", "logical_and takes bool tensors, not f32", "logical_and"),
    ("logical_not(ids)", "logical_not takes bool tensors, not i64", "logical_not"),
    ("where(x, x, x)", "where's condition takes bool tensors, not f32", "where"),
    ("where(b, x, ids)", "where of f32 and i64 tensors", "where"),
    ("masked_fill(x, x, value = 1.0)", "masked_fill's mask takes bool tensors", "masked_fill"),
    ("masked_fill(x, b)", "needs value= (a finite number) or fill", "masked_fill"),
    ('masked_fill(x, b, value = 1.0, fill = "-inf")', "value= or fill=, not both", "fill ="),
    ('masked_fill(ids, b, fill = "-inf")', "-inf does not fit in the i64 tensor", "fill ="),
    ("masked_fill(ids, b, value = 0.5)", "value 0.5 does not fit in the i64 tensor", "value"),
    ('masked_fill(x, b, fill = "-infinity")', "'fill' of masked_fill is one of", '"-infinity"'),
    ("masked_fill(x, b, value = -1e999)", "must be a finite number", "-1e999"),
])
def test_bad_calls_are_located(call: str, message: str, at: str) -> None:
    src = ("block B() {\n  in x: [n = 3, c = 5]\n  in q: [q = 5]\n  in ids: i64[n = 3, c = 5]\n"
           "  in z: c64[n = 3, c = 5]\n  in b: bool[n = 3, c = 5]\n"
           f"  w = {call}\n  out w\n}}\n")
    with pytest.raises(ArchError) as err:
        archc.loads(src).check()
    d = err.value.diagnostics[0]
    assert message in d.message and (d.span.line, d.span.col) == (7, 7 + call.index(at)), (d.message, d.span)


def test_complex_tensors_compare_for_equality() -> None:
    g = archc.loads("block B() { in z: c64[n = 2]\n out not_equal(z, z) }").check().graph
    assert str(g.node(g.outputs[0]).type) == "bool[n=2]"
