"""exp, log, sqrt, abs, clamp, minimum, maximum, cumsum and flip against torch's own functions."""

from __future__ import annotations

import pytest

import archc
from archc.diagnostics import ArchError

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

BLOCK = "block B() {{\n  in x: [n = 3, c = 5]\n  in y: [c = 5]\n  z = {call}\n  out z\n}}\n"
CASES = {
    "exp(x)": lambda x, y: torch.exp(x),
    "log(abs(x) + y * 0)": lambda x, y: torch.log(torch.abs(x) + y * 0),
    "sqrt(abs(x))": lambda x, y: torch.sqrt(torch.abs(x)),
    "clamp(x, min = -0.5, max = 0.25)": lambda x, y: x.clamp(-0.5, 0.25),
    "clamp(x, max = 0.0)": lambda x, y: x.clamp(max=0.0),
    "minimum(x, y)": lambda x, y: torch.minimum(x, y[None, :]),
    "maximum(y, x)": lambda x, y: torch.maximum(y[None, :], x),
    "cumsum(x, axis = n)": lambda x, y: x.cumsum(0),
    "cumsum(x, axis = c)": lambda x, y: x.cumsum(1),
    "flip(x, over = [c])": lambda x, y: x.flip(1),
    "flip(x, over = [c, n])": lambda x, y: x.flip((1, 0)),
}


@pytest.mark.parametrize("call", sorted(CASES))
def test_generated_code_equals_torch(call: str) -> None:
    m = archc.loads(BLOCK.format(call=call))
    x, y = torch.randn(3, 5), torch.randn(5)
    module = m.torch()()
    with FlopCounterMode(display=False) as counter:
        out = module(x, y)
    assert torch.allclose(out, CASES[call](x, y), equal_nan=True)
    assert counter.get_total_flops() == m.flops().flops == 0  # torch convention: no work counted
    g = m.check().graph
    assert tuple(out.shape) == g.node(g.outputs[0]).tensor_type.shape


def test_complex_modulus_is_real() -> None:
    g = archc.loads("block B() { in z: c64[n = 2]\n out abs(z) }").check().graph
    assert str(g.node(g.outputs[0]).type) == "[n=2]"


@pytest.mark.parametrize("call, message, at", [
    ("exp(ids)", "exp takes a floating-point tensor, not i64", "exp"),
    ("clamp(x)", "clamp needs min=, max= or both", "clamp"),
    ("clamp(x, min = 2.0, max = 1.0)", "clamp's min 2.0 is above its max 1.0", "min"),
    ("minimum(x, q)", "axis 'q' of [q=5] is not in [n=3, c=5]", "minimum"),
    ("cumsum(x, axis = h)", "has no axis 'h'", "axis"),
    ("flip(x, over = [c, c])", "an axis is named twice in over", "over"),
    ("maximum(x, z)", "maximum takes real tensors, not c64", "maximum"),
])
def test_bad_calls_are_located(call: str, message: str, at: str) -> None:
    src = ("block B() {\n  in x: [n = 3, c = 5]\n  in q: [q = 5]\n  in ids: i64[n = 3]\n  in z: c64[n = 3, c = 5]\n"
           f"  w = {call}\n  out w\n}}\n")
    with pytest.raises(ArchError) as err:
        archc.loads(src).check()
    d = err.value.diagnostics[0]
    assert message in d.message and (d.span.line, d.span.col) == (6, 7 + call.index(at)), (d.message, d.span)
