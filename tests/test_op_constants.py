"""zeros, ones, full, arange, eye, tril and triu against torch's own constructors (values, dtypes, shapes,
zero FLOPs), free sizes read off an input at two sizes, a causal attention mask, and located errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import archc
from archc.diagnostics import ArchError

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

BLOCK = "size L = 4\nblock B() {{\n  in x: [t = L, c = 3]\n  z = {call}\n  out z\n}}\n"
CASES: dict[str, Callable[[int], Any]] = {
    "zeros(n = 2, c = 3)": lambda n: torch.zeros(2, 3),
    'zeros(n = L, dtype = "i64")': lambda n: torch.zeros(n, dtype=torch.int64),
    'zeros(dtype = "bool", n = 2, m = L)': lambda n: torch.zeros(2, n, dtype=torch.bool),
    "ones(n = L, c = 3)": lambda n: torch.ones(n, 3),
    'ones(n = 2, dtype = "f64")': lambda n: torch.ones(2, dtype=torch.float64),
    "full(n = 2, m = L, value = 2.5)": lambda n: torch.full((2, n), 2.5),
    'full(n = L, value = -3, dtype = "i32")': lambda n: torch.full((n,), -3, dtype=torch.int32),
    'full(n = 2, value = 1, dtype = "bool")': lambda n: torch.full((2,), True),
    "arange(n = L)": lambda n: torch.arange(n),
    'arange(n = 2 * L, dtype = "f32")': lambda n: torch.arange(2 * n, dtype=torch.float32),
    "eye(a = L, b = L)": lambda n: torch.eye(n),
    'eye(a = 3, b = L, dtype = "i64")': lambda n: torch.eye(3, n, dtype=torch.int64),
    "tril(a = L, b = L)": lambda n: torch.ones(n, n, dtype=torch.bool).tril(),
    "tril(a = L, b = 3, diagonal = -1)": lambda n: torch.ones(n, 3, dtype=torch.bool).tril(-1),
    'triu(a = L, b = L, diagonal = 1, dtype = "f32")': lambda n: torch.ones(n, n).triu(1),
    "triu(a = 2, b = L)": lambda n: torch.ones(2, n, dtype=torch.bool).triu(),
}


@pytest.mark.parametrize("call", sorted(CASES))
def test_generated_code_equals_torch(call: str) -> None:
    m = archc.loads(BLOCK.format(call=call))
    module = m.torch()()
    assert "def forward" in m.torch_source()
    g = m.check().graph
    t = g.node(g.outputs[0]).tensor_type
    for length in (4, 7):  # L is free: read off x's shape at run time
        with FlopCounterMode(display=False) as counter:
            out = module(torch.randn(length, 3))
        ref = CASES[call](length)
        assert out.dtype == ref.dtype and torch.equal(out, ref)
        assert counter.get_total_flops() == m.flops().flops == 0
    assert tuple(out.shape) == tuple(ref.shape) and out.dtype == getattr(torch, {
        "f32": "float32", "f64": "float64", "i64": "int64", "i32": "int32", "bool": "bool"}[t.dtype])
    assert not list(module.state_dict())  # not learned: nothing to load


def test_a_block_with_no_inputs() -> None:
    m = archc.loads('block B() { out zeros(n = 2, c = 3, dtype = "i64") }')
    assert torch.equal(m.torch()()(), torch.zeros(2, 3, dtype=torch.int64))
    g = m.check().graph
    assert str(g.node(g.outputs[0]).type) == "i64[n=2, c=3]"


def test_a_causal_mask_on_einsum_scores() -> None:
    """The attention of a decoder: scores q·k, masked to the past by tril, then softmax and a second einsum."""
    src = ("size T\nblock B() {\n  in q: [n = 2, t = T, c = 8]\n  in k: [n = 2, s = T, c = 8]\n"
           "  in v: [n = 2, s = T, c = 8]\n"
           '  scores = einsum(q, k, spec = "n t c, n s c -> n t s")\n'
           "  past = tril(t = T, s = T)\n"
           '  masked = masked_fill(scores, logical_not(past), fill = "-inf")\n'
           "  weights = softmax(masked, axis = s)\n"
           '  out einsum(weights, v, spec = "n t s, n s c -> n t c")\n}\n')
    m = archc.loads(src)
    assert "tril()" in m.torch_source() and "float('-inf')" in m.torch_source()
    module = m.torch()()
    for length in (3, 6):
        q, k, v = (torch.randn(2, length, 8) for _ in range(3))
        scores = q @ k.transpose(1, 2)
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        ref = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1) @ v
        assert torch.allclose(module(q, k, v), ref, atol=1e-5)
        assert torch.allclose(ref, torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                                                     scale=1.0), atol=1e-5)


def test_positions_from_arange_compare_to_a_length() -> None:
    """A padding mask from positions: arange(s) < length, broadcast by name."""
    src = ("size S\nblock B() {\n  in x: [n = 2, s = S]\n  in length: i64[n = 2]\n"
           "  pos = arange(s = S)\n  keep = less(expand(pos, n = 2), length)\n"
           "  out masked_fill(x, logical_not(keep), value = 0.0)\n}\n")
    m = archc.loads(src)
    x, length = torch.randn(2, 5), torch.tensor([3, 5])
    keep = torch.arange(5)[None, :] < length[:, None]
    assert torch.equal(m.torch()()(x, length), x.masked_fill(~keep, 0.0))


@pytest.mark.parametrize("call, message, at", [
    ('zeros(n = 2, dtype = "f33")', "'dtype' of zeros is one of", '"f33"'),
    ('zeros(n = 2, dtype = "f33")', "did you mean 'f32'", '"f33"'),
    ('ones(dtype = "i64")', "ones: needs at least one axis, given as keyword sizes", "ones"),
    ("arange(n = 2, m = 3)", "arange: needs exactly one axis", "m = 3"),
    ('arange(n = 4, dtype = "bool")', "counts 0, 1, 2, ... in an integer or floating-point dtype, not bool",
     'dtype = "bool"'),
    ("eye(a = 4)", "eye: needs exactly 2 axes", "a = 4"),
    ("tril(a = 4, b = 4, c = 4)", "tril: needs exactly 2 axes", "c = 4"),
    ("triu(a = 4, b = 4, diagonal = [1, 2])", "diagonal is one whole number", "diagonal"),
    ("full(n = 4)", "full needs 'value'", "full"),
    ('full(n = 4, value = 2.5, dtype = "i64")', "value 2.5 does not fit in the i64 tensor", "value"),
    ('full(n = 4, value = 2, dtype = "bool")', "value 2.0 does not fit in the bool tensor", "value"),
    ("zeros(n = -1)", "the size of axis 'n' must be at least 1, got -1", "-1"),
    ("zeros(n = 0)", "the size of axis 'n' must be at least 1, got 0", "0"),
    ("zeros(n = x)", "must be an integer size", "x)"),
])
def test_bad_calls_are_located(call: str, message: str, at: str) -> None:
    src = f"block B() {{\n  in x: [n = 3]\n  w = {call}\n  out w\n}}\n"
    with pytest.raises(ArchError) as err:
        archc.loads(src).check()
    d = err.value.diagnostics[0]
    assert message in d.message and (d.span.line, d.span.col) == (3, 7 + call.index(at)), (d.message, d.span)


def test_a_size_no_input_gives_is_a_located_build_error() -> None:
    m = archc.loads("size L\nblock B() {\n  in x: [n = 2]\n  y = zeros(n = L)\n  out y\n}\n")
    with pytest.raises(ArchError) as err:
        m.torch_source()
    d = err.value.diagnostics[0]
    assert "cannot read 'L' off an input's shape" in d.message and d.span.line == 4


def test_dtype_is_an_argument_name_as_well_as_a_top_level_word() -> None:
    """`dtype` starts a file's dtype declaration, and names a constant's argument: both parse, in any position."""
    src = ('dtype bf16\nblock B() {\n  in x: [n = 2]\n  ids = zeros(dtype = "i64", n = 2)\n'
           '  mask = ones(n = 2, dtype = "bool")\n  halves = full(n = 2, value = 0.5, dtype = "f32")\n'
           "  out (ids, mask, halves)\n}\n")
    g = archc.loads(src).check().graph
    types = [str(g.node(o).type) for o in g.outputs]
    assert types == ["i64[n=2]", "bool[n=2]", "bf16[n=2]"]  # the file's dtype casts the floats only


def test_constants_are_made_on_the_inputs_device() -> None:
    """A constant follows the block's first input (`device=x.device`), so the module runs on a GPU too."""
    src = archc.loads("block B() {\n  in x: [n = 2, c = 4]\n  m = ones(n = 2, c = 4)\n  out x * m\n}\n").torch_source()
    assert "device=x.device" in src
