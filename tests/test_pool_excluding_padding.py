"""An average pool without the padding (`count_include_pad = false`) whose padding differs before and
after (TensorFlow's "SAME" with a stride): padded first, divided by the average of a padded mask of
ones (the `avg_pool_padded` helper), against a reference written here from the definition: the mean
of each window's elements inside the input."""

from __future__ import annotations

import pytest

import archc

torch = pytest.importorskip("torch")


def reference(x: torch.Tensor, k: list[int], s: list[int], pads: list[tuple[int, int]]) -> torch.Tensor:
    """The mean over each window of the input's own elements (the padding NaN, left out), on the last
    len(k) dimensions."""
    flat = [p for before, after in reversed(pads) for p in (before, after)]
    xp = torch.nn.functional.pad(x, flat, value=float("nan"))
    n = len(k)
    for i in range(n):
        xp = xp.unfold(x.dim() - n + i, k[i], s[i])
    return xp.nanmean(dim=tuple(range(-n, 0)))


@pytest.mark.parametrize("shape,over,k,s,pads", [
    ((2, 3, 9, 8), "[h, w]", [3, 2], [2, 2], [(1, 1), (0, 1)]),
    ((2, 3, 7), "[w]", [3], [2], [(0, 1)]),
    ((1, 2, 5, 6, 4), "[d, h, w]", [2, 3, 2], [1, 2, 2], [(1, 0), (0, 1), (1, 0)]),
])
def test_the_average_excludes_the_padding(shape: tuple[int, ...], over: str, k: list[int], s: list[int],
                                          pads: list[tuple[int, int]]) -> None:
    names = ["b", "c", "d", "h", "w"][:2] + ["d", "h", "w"][3 - (len(shape) - 2):]
    decl = ", ".join(f"{a} = {n}" for a, n in zip(names, shape))
    pad = "[" + ", ".join(f"[{a}, {b}]" for a, b in pads) + "]"
    call = f"avgpool(x, k = {k}, stride = {s}, pad = {pad}, count_include_pad = false)"
    x = torch.randn(shape)
    want = reference(x, k, s, pads)
    # in forward (F.avg_pool), as a sequence step (the AvgPoolNdPadded module), on axes moved last (moved)
    for body in (f"  y = {call}\n  out y", f"  out seq(x) {{\n    {call.replace('x, ', '', 1)}\n  }}"):
        net = archc.loads(f"block Net() {{\n  in x: [{decl}]\n{body}\n}}\n").torch()()
        assert torch.allclose(net(x), want, atol=1e-6)
    moved = ", ".join(f"{a} = {n}" for a, n in zip(names[2:] + names[:2], shape[2:] + shape[:2]))
    net = archc.loads(f"block Net() {{\n  in x: [{moved}]\n  y = {call.replace(')', f', over = {over})')}\n"
                      "  out y\n}\n").torch()()
    got = net(x.movedim((0, 1), (-2, -1)).contiguous()).movedim((-2, -1), (0, 1))
    assert torch.allclose(got, want, atol=1e-6)


def test_tensorflow_same_with_a_stride() -> None:
    """TensorFlow's "SAME" average pool with a stride pads more after than before (pad = "same" takes
    stride 1 only, as in PyTorch: the padding is written out), and leaves the padding out of the mean."""
    src = ("block Net() {\n  in x: [b = 2, c = 3, h = 7, w = 8]\n"
           "  y = avgpool(x, k = 2, stride = 2, pad = [[0, 1], [0, 0]], count_include_pad = false)\n  out y\n}\n")
    m = archc.loads(src)
    x = torch.randn(2, 3, 7, 8)
    assert torch.allclose(m.torch()()(x), reference(x, [2, 2], [2, 2], [(0, 1), (0, 0)]), atol=1e-6)
    assert "pool_padded(x, (0, 0, 0, 1), 0.0, F.avg_pool2d, 2, count_include_pad=False)" in m.torch_source()
