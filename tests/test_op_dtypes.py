"""An op given a tensor of a dtype it cannot take is an error at the call, not a failure in torch:
each op declares the dtype families it accepts (OpDef.dtypes)."""

from __future__ import annotations

import pytest

import archc
from archc.diagnostics import ArchError
from archc.ops.registry import BY_NAME

SRC = ("block B() {{\n  in x: [n = 2, c = 4, h = 4, w = 4]\n  in ids: i64[n = 2, c = 4, h = 4, w = 4]\n"
       "  in z: c64[n = 2, c = 4, h = 4, w = 4]\n  y = {call}\n  out y\n}}\n")


@pytest.mark.parametrize("call, words", [
    ("softmax(ids, axis = c)", "softmax takes floating-point tensors, not i64"),
    ("relu(ids)", "relu takes floating-point tensors, not i64"),
    ("maxpool(ids, k = 2)", "maxpool takes floating-point tensors, not i64"),
    ("conv(z, c -> 4, k = 1)", "conv takes floating-point tensors, not c64"),
    ("amax(z, over = [c])", "amax takes floating-point or integer tensors, not c64"),
    ("embedding(x, num = 4, dim = 2)", "embedding takes integer tensors, not f32"),
    ("batchnorm(ids)", "batchnorm takes floating-point tensors, not i64"),
])
def test_a_wrong_dtype_is_an_error_at_the_call(call: str, words: str) -> None:
    with pytest.raises(ArchError) as err:
        archc.loads(SRC.format(call=call)).check()
    d = err.value.diagnostics[0]
    assert words in d.message and d.code == "type" and (d.span.line, d.span.col) == (5, 7), (d.message, d.span)


@pytest.mark.parametrize("call", ["ids + ids", "z * z", "sum(ids, over = [c])", "flip(ids, over = [c])",
                                  "rearrange(z, \"n c h w -> n h w c\")", "amax(ids, over = [c])"])
def test_what_torch_can_do_stays_allowed(call: str) -> None:
    archc.loads(SRC.format(call=call)).check()


def test_the_float_only_ops_are_the_learned_and_numeric_ones() -> None:
    only_float = {name for name, op in BY_NAME.items() if op.dtypes == frozenset({"float"})}
    assert {"conv", "linear", "batchnorm", "softmax", "relu", "gelu", "maxpool", "upsample"} <= only_float
    assert not {"rearrange", "concat", "split", "flip", "roll", "pad", "add"} & only_float


@pytest.mark.parametrize("norm", ["batchnorm(x, eps = -2.0)", "layernorm(x, eps = 0.0)", "rmsnorm(x, eps = -1.0)",
                                  "groupnorm(x, groups = 2, eps = -0.5)"])
def test_a_norms_eps_must_be_positive(norm: str) -> None:
    """Found by benchmarks/fuzz.py: torch refused a negative eps only when the built module ran."""
    with pytest.raises(ArchError) as err:
        archc.loads(SRC.format(call=norm)).check()
    d = err.value.diagnostics[0]
    assert "eps must be positive" in d.message and (d.span.line, d.span.col) == (5, 7 + norm.index("eps"))
