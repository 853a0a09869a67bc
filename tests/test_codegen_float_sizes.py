"""Float arithmetic on sizes builds, as it checks (issue 11: a Swin block's `(dim // heads) ** -0.5`
checked, then build refused it, "a symbolic size cannot be mixed with a fraction"): a class computes
it for the values it is built for. A parameter in it is built into a generic class (`for d=16`); a
size of a nested block's input makes the class specialised, one per size. A free size of the program
stays an error: a module is generated once for every value of it."""

from __future__ import annotations

import pytest

import archc

torch = pytest.importorskip("torch")

SRC = """size batch = 2
block Att(heads) {
  in x: [batch, tok, chan = dim]
  dh = dim // heads
  out x * dh ** -0.5
}
block Scaled(d) {
  in x: [batch, tok, chan]
  out x * (1 / d ** 0.5)
}
block Net() {
  in x: [batch, tok = 4, chan = 8]
  in y: [batch, tok = 4, chan = 32]
  a = Att(x, 2)
  b = Att(y, 2)
  c = Scaled(x, 16)
  e = Scaled(y, 4)
  out a, b, c, e
}
"""


def test_float_arithmetic_on_sizes_builds() -> None:
    m = archc.loads(SRC)
    m.check()
    src = m.torch_source()
    assert "for d=16" in src and "for d=4" in src  # the parameter built into the class
    x, y = torch.randn(2, 4, 8), torch.randn(2, 4, 32)
    a, b, c, e = m.torch()()(x, y)
    assert torch.allclose(a, x * 4 ** -0.5) and torch.allclose(b, y * 16 ** -0.5)
    assert torch.allclose(c, x * 0.25) and torch.allclose(e, y * 0.5)


def test_a_free_size_in_float_arithmetic_builds_the_module_for_the_size() -> None:
    """No module computes `H ** 0.5` for every H it is not built for: it is built for H = 16, warns at the
    expression, and forward refuses another H."""
    m = archc.loads("size H = 16\nblock Net() {\n  in x: [n = 2, h = H]\n  out x * H ** 0.5\n}\n")
    m.check()  # H = 16 here
    with pytest.warns(UserWarning, match=r":4:\d+: the module is built for H=16 .*a symbolic size cannot be mixed "
                      "with a fraction"):
        net = m.torch()()
    x = torch.randn(2, 16)
    assert torch.equal(net(x), x * 4.0)
    with pytest.raises(ValueError, match="archc build --set H=9"):
        net(torch.randn(2, 9))
