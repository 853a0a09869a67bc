"""Convolutions and pools whose explicit padding differs before and after build, as they check (issue
11: check accepted them, build refused): a conv is `ConvNdPadded`, torch's module padding its input
with `F.pad` first, a transposed conv `ConvTransposeNdCropped`, torch's module without padding, its
output cropped (same parameters, so the same state_dict and the same FLOPs under FlopCounterMode);
a pool pads first with -inf (max) or zeros counted in the average, and so does a pool with
`pad = "same"` and an even window (torch's pools do not take "same"). Where padding first would change
the result (ceil mode with a stride, an average without the padding) the `pool_padded` helper drops the
last window and divides by a padded mask's average: tested against torch's own pools where the padding
is even, and against the definition window by window where it is not."""

from __future__ import annotations

from typing import Any

import pytest

import archc

torch = pytest.importorskip("torch")
F = torch.nn.functional
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

CONV = {  # input shape, the call, and what it computes from x and the state_dict (conv's weight and bias)
    "conv1d": ((2, 3, 11), "conv(x, c -> 4, k = 3, stride = 2, pad = [[2, 0]])",
               lambda x, w, b: F.conv1d(F.pad(x, (2, 0)), w, b, stride=2)),
    "conv2d": ((2, 3, 9, 8), "conv(x, c -> 4, k = 3, stride = 2, pad = [[0, 1], [1, 0]])",
               lambda x, w, b: F.conv2d(F.pad(x, (1, 0, 0, 1)), w, b, stride=2)),
    "conv2d_dilated": ((1, 4, 9, 9), "conv(x, c -> 4, k = [3, 2], dilation = 2, groups = 2, pad = [[1, 2], [0, 3]])",
                       lambda x, w, b: F.conv2d(F.pad(x, (0, 3, 1, 2)), w, b, dilation=2, groups=2)),
    "conv3d": ((1, 2, 5, 6, 7), "conv(x, c -> 3, k = 2, pad = [[1, 0], [0, 1], [1, 1]])",
               lambda x, w, b: F.conv3d(F.pad(x, (1, 1, 0, 1, 1, 0)), w, b)),
    "conv_transpose2d": ((2, 4, 5, 6), "conv_transpose(x, c -> 3, k = 3, stride = 2, pad = [[0, 1], [2, 1]], "
                         "output_padding = 1)",
                         lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, output_padding=1)[:, :, 0:-1, 2:-1]),
    "conv_transpose1d": ((1, 2, 7), "conv_transpose(x, c -> 2, k = 4, dilation = 2, pad = [[3, 0]], bias = false)",
                         lambda x, w, b: F.conv_transpose1d(x, w, b, dilation=2)[:, :, 3:]),
}


def _src(shape: tuple[int, ...], call: str) -> str:
    names = {3: "b c w", 4: "b c h w", 5: "b c d h w"}[len(shape)].split()
    axes = ", ".join(f"{n} = {s}" for n, s in zip(names, shape))
    return f"block T() {{\n  in x: [{axes}]\n  y = {call}\n  out y\n}}\n"


@pytest.mark.parametrize("name", sorted(CONV))
def test_a_conv_pads_first(name: str) -> None:
    shape, call, ref = CONV[name]
    m = archc.loads(_src(shape, call), name="t.arch")
    helper = "ConvTranspose{}dCropped(" if name.startswith("conv_transpose") else "Conv{}dPadded("
    assert helper.format(len(shape) - 2) in m.torch_source()
    module = m.torch()()
    sd = module.state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == {k: s for k, (s, _) in m.check().graph.state_dict().items()}
    x = torch.randn(*shape)
    with FlopCounterMode(display=False) as counter:
        y = module(x)
    expected = ref(x, sd["y.weight"], sd.get("y.bias"))
    g = m.check().graph
    assert tuple(y.shape) == tuple(int(a.size) for a in g.node(g.outputs[0]).type.axes) == tuple(expected.shape)
    assert torch.allclose(y, expected, atol=1e-5)
    assert counter.get_total_flops() == m.flops().flops


def test_a_generic_class_pads_by_its_parameter() -> None:
    src = ("block Down(p) {\n  in x: [b, c, h, w]\n"
           "  conv = conv(x, c -> 4, k = 2, stride = 2, pad = [[0, p], [0, p]])\n  out conv\n}\n"
           "block T() {\n  in x: [b = 1, c = 3, h = 7, w = 7]\n  d1 = Down(x, 1)\n  d2 = Down(x, 3)\n  out d1, d2\n}\n")
    m = archc.loads(src)
    assert "pad=(0, p, 0, p)" in m.torch_source()
    module = m.torch()()
    x = torch.randn(1, 3, 7, 7)
    y1, y2 = module(x)
    sd = module.state_dict()
    assert torch.allclose(y1, F.conv2d(F.pad(x, (0, 1, 0, 1)), sd["d1.conv.weight"], sd["d1.conv.bias"], stride=2),
                          atol=1e-5)
    assert tuple(y2.shape) == (1, 4, 5, 5)


POOLS = {
    "max": ("maxpool(x, k = 3, stride = 2, pad = [[0, 1], [1, 0]])",
            lambda x: F.max_pool2d(F.pad(x, (1, 0, 0, 1), value=float("-inf")), 3, stride=2)),
    "max_dilated": ("maxpool(x, k = 2, dilation = 2, pad = [[1, 0], [0, 1]])",
                    lambda x: F.max_pool2d(F.pad(x, (0, 1, 1, 0), value=float("-inf")), 2, stride=2, dilation=2)),
    "avg": ("avgpool(x, k = 2, pad = [[1, 0], [0, 1]])", lambda x: F.avg_pool2d(F.pad(x, (0, 1, 1, 0)), 2)),
    # pad = "same" (stride 1): torch's pools do not take it; an odd window pads evenly, an even one not
    "max_same": ('maxpool(x, k = 3, stride = 1, pad = "same")', lambda x: F.max_pool2d(x, 3, stride=1, padding=1)),
    "avg_same_even": ('avgpool(x, k = 2, stride = 1, pad = "same")',
                      lambda x: F.avg_pool2d(F.pad(x, (0, 1, 0, 1)), 2, stride=1)),
    "avg_same_exclusive": ('avgpool(x, k = [3, 5], stride = 1, pad = "same", count_include_pad = false)',
                           lambda x: F.avg_pool2d(x, (3, 5), stride=1, padding=(1, 2), count_include_pad=False)),
    "max_same_ceil": ('maxpool(x, k = 4, stride = 1, pad = "same", ceil = true)',
                      lambda x: F.max_pool2d(F.pad(x, (1, 2, 1, 2), value=float("-inf")), 4, stride=1)),
}


@pytest.mark.parametrize("name", sorted(POOLS))
@pytest.mark.parametrize("step", [False, True])
def test_a_pool_pads_first(name: str, step: bool) -> None:
    call, ref = POOLS[name]
    body = f"y = seq(x) {{\n    {call.replace('(x, ', '(')}\n  }}" if step else f"y = {call}"
    m = archc.loads(f"block T() {{\n  in x: [b = 2, c = 3, h = 9, w = 8]\n  {body}\n  out y\n}}\n")
    x = torch.randn(2, 3, 9, 8) - 5  # all negative: padding with zeros would show in a max
    y = m.torch()()(x)
    g = m.check().graph
    assert tuple(y.shape) == tuple(int(a.size) for a in g.node(g.outputs[0]).type.axes)
    assert torch.allclose(y, ref(x), atol=1e-6)


def _helper(src: str) -> Any:
    """The `pool_padded` helper of the module generated for `src`."""
    net = archc.loads(src).torch()
    return net.forward.__globals__["pool_padded"]


POOL_PADDED = ("block T() {\n  in x: [b = 1, c = 2, h = 9, w = 8]\n"
               "  y = maxpool(x, k = 3, stride = 2, pad = [[1, 0], [0, 1]], ceil = true)\n  out y\n}\n")


@pytest.mark.parametrize("kind,k,s,p,h,w", [("max", 3, 2, 1, 9, 8), ("max", 2, 3, 1, 10, 7), ("avg", 3, 2, 1, 8, 9),
                                          ("avg", 4, 3, 2, 11, 10), ("avg_excl", 3, 2, 1, 9, 10)])
def test_the_helper_is_torchs_own_pool_where_the_padding_is_even(kind: str, k: int, s: int, p: int, h: int,
                                                                    w: int) -> None:
    """pool_padded (pad first, pool, the ceil rule's last window dropped, averages without the padding) against
    torch's pools that pad themselves, where they can (the same padding before and after)."""
    pool_padded = _helper(POOL_PADDED)
    x = torch.randn(2, 3, h, w)
    if kind == "max":
        want = F.max_pool2d(x, k, s, padding=p, ceil_mode=True)
        got = pool_padded(x, (p,) * 4, float("-inf"), F.max_pool2d, k, stride=s, ceil_mode=True)
    else:
        count = kind == "avg"
        want = F.avg_pool2d(x, k, s, padding=p, ceil_mode=True, count_include_pad=count)
        got = pool_padded(x, (p,) * 4, 0.0, F.avg_pool2d, k, stride=s, ceil_mode=True, count_include_pad=count)
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-6)


def _windows(x: torch.Tensor, k: int, s: int, pads: list[tuple[int, int]], out: tuple[int, int], kind: str
             ) -> torch.Tensor:
    """The definition, window by window: x padded first (-inf for a max, zeros for an average, NaN where the
    average leaves the padding out), each window clipped to the padded input."""
    value = {"max": float("-inf"), "avg": 0.0, "avg_excl": float("nan")}[kind]
    xp = F.pad(x, [pads[1][0], pads[1][1], pads[0][0], pads[0][1]], value=value)
    y = torch.empty(*x.shape[:2], *out)
    for i in range(out[0]):
        for j in range(out[1]):
            win = xp[:, :, i * s:i * s + k, j * s:j * s + k]
            y[:, :, i, j] = (win.amax(dim=(2, 3)) if kind == "max" else win.mean(dim=(2, 3)) if kind == "avg"
                             else win.nanmean(dim=(2, 3)))
    return y


@pytest.mark.parametrize("kind", ["max", "avg", "avg_excl"])
@pytest.mark.parametrize("step", [False, True])
def test_ceil_with_a_stride_and_padding_that_differs(kind: str, step: bool) -> None:
    """`ceil = true` with a stride and asymmetric padding (once a codegen error): the shape rule's windows,
    each what the definition says, in forward and as a sequence step."""
    op = "maxpool" if kind == "max" else "avgpool"
    extra = ", count_include_pad = false" if kind == "avg_excl" else ""
    call = f"{op}(x, k = 3, stride = 2, pad = [[1, 0], [0, 1]], ceil = true{extra})"
    body = f"y = seq(x) {{\n    {call.replace('(x, ', '(')}\n  }}" if step else f"y = {call}"
    m = archc.loads(f"block T() {{\n  in x: [b = 2, c = 3, h = 10, w = 8]\n  {body}\n  out y\n}}\n")
    x = torch.randn(2, 3, 10, 8)
    y = m.torch()()(x)
    g = m.check().graph
    out = tuple(int(a.size) for a in g.node(g.outputs[0]).type.axes)
    assert tuple(y.shape) == out
    assert torch.allclose(y, _windows(x, 3, 2, [(1, 0), (0, 1)], out[2:], kind), atol=1e-6)
