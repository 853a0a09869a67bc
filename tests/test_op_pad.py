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


def _source(mode: str, i: int, n: int) -> int:
    """Which element of an axis of n a padded position i (from -before) reads, by the mode's definition."""
    if mode == "reflect":
        return -i if i < 0 else 2 * (n - 1) - i if i >= n else i
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    return i % n  # circular


def reference(x: torch.Tensor, names: list[str], margins: dict[str, tuple[int, int]], mode: str) -> torch.Tensor:
    for d, name in enumerate(names):
        if name in margins:
            before, after = margins[name]
            n = x.shape[d]
            x = x.index_select(d, torch.tensor([_source(mode, i, n) for i in range(-before, n + after)]))
    return x


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("axes,over", [
    ("h = 4, w = 5, c = 3", ["h"]),                     # an axis that is not last: moved there
    ("h = 4, w = 5, c = 3", ["h", "c"]),                # axes apart
    ("h = 4, w = 5", ["h", "w"]),                       # no axis for torch's batch and channel
    ("l = 5", ["l"]),
    ("a = 2, b = 3, c = 4, d = 5, e = 3", ["b", "c", "d", "e"]),  # four axes: three, then one
])
def test_other_modes_pad_any_axes(mode: str, axes: str, over: list[str]) -> None:
    """torch's non-constant modes pad only the last 1 to 3 dimensions of a tensor with 1 or 2 before them:
    `moved` takes the axes there (once a codegen error); against each mode's definition, element by element."""
    names = [a.split(" = ")[0] for a in axes.split(", ")]
    sizes = [int(a.split(" = ")[1]) for a in axes.split(", ")]
    margins = {n: ((1, 2) if mode != "reflect" or sizes[names.index(n)] > 2 else (1, 1)) for n in over}
    pad = "[" + ", ".join(f"[{margins[n][0]}, {margins[n][1]}]" for n in over) + "]"
    m = archc.loads(f'block B() {{\n  in x: [{axes}]\n  y = pad(x, over = [{", ".join(over)}], pad = {pad}, '
                    f'mode = "{mode}")\n  out y\n}}\n')
    x = torch.randn(*sizes)
    assert torch.equal(m.torch()()(x), reference(x, names, margins, mode))
