"""`pad` against torch.nn.functional.pad: every mode, margins per axis and per side, located errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archc
from archc.diagnostics import ArchError

torch = pytest.importorskip("torch")
F = torch.nn.functional


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(h=st.integers(2, 6), w=st.integers(2, 6), mode=st.sampled_from(["constant", "reflect", "replicate", "circular"]),
       data=st.data())
def test_pad_equals_torch(h: int, w: int, mode: str, data: st.DataObject) -> None:
    limit = {"reflect": (h - 1, w - 1), "circular": (h, w)}.get(mode, (4, 4))
    ph = [data.draw(st.integers(0, limit[0])) for _ in range(2)]
    pw = [data.draw(st.integers(0, limit[1])) for _ in range(2)]
    value = ", value = 1.5" if mode == "constant" else ""
    m = archc.loads(f'block B() {{\n  in x: [n = 2, c = 3, h = {h}, w = {w}]\n'
                    f'  y = pad(x, over = [h, w], pad = [{ph}, {pw}], mode = "{mode}"{value})\n  out y\n}}\n')
    x = torch.randn(2, 3, h, w)
    ref = F.pad(x, (pw[0], pw[1], ph[0], ph[1]), mode=mode, **({"value": 1.5} if mode == "constant" else {}))
    g = m.check().graph
    assert g.node(g.outputs[0]).tensor_type.shape == tuple(ref.shape)
    assert torch.equal(m.torch()()(x), ref) and m.flops().flops == 0


def test_constant_padding_of_an_inner_axis_and_free_sizes() -> None:
    m = archc.loads("size L = 6\nblock B() {\n  in x: [n = 2, tok = L, chan = 4]\n"
                    "  y = pad(x, over = [tok], pad = [[0, L]])\n  out y\n}\n")
    module = m.torch()()
    for length in (6, 9):  # L is free: the margin is read off the input's shape
        x = torch.randn(2, length, 4)
        assert torch.equal(module(x), F.pad(x, (0, 0, 0, length)))


@pytest.mark.parametrize("call, message, at", [
    ('pad(x, over = [w], pad = 5, mode = "reflect")', "minus its reflect margin", "pad = 5"),
    ('pad(x, over = [w], pad = 1, mode = "mirror")', "'mode' of pad is one of", '"mirror"'),
    ('pad(x, over = [w], pad = 1, mode = "replicate", value = 2.0)', "value fills the margins", "value"),
    ("pad(x, over = [q], pad = 1)", "has no axis 'q'", "over"),
    ("pad(x, over = [w], pad = -1)", "must not be negative", "-1"),
])
def test_bad_pads_are_located(call: str, message: str, at: str) -> None:
    with pytest.raises(ArchError) as err:
        archc.loads(f"block B() {{\n  in x: [n = 2, c = 3, h = 4, w = 5]\n  y = {call}\n  out y\n}}\n").check()
    d = err.value.diagnostics[0]
    assert message in d.message and (d.span.line, d.span.col) == (3, 7 + call.index(at)), (d.message, d.span)


def test_a_layout_torch_cannot_pad_is_a_located_build_error() -> None:
    m = archc.loads('block B() {\n  in x: [h = 4, w = 5, c = 3]\n  y = pad(x, over = [h], pad = 1, mode = "reflect")\n'
                    "  out y\n}\n")
    with pytest.raises(ArchError) as err:
        m.torch_source()
    d = err.value.diagnostics[0]
    assert "torch pads the last 1 to 3 axes" in d.message and d.span.line == 3
