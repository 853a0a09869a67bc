"""Conditions on input sizes are branches of the generated forward (issue 11): `if H % ws != 0 { pad }`
builds one module that takes either branch at run time, as the condition comes out for the input it is
given. Oracles: `archc check --set H=h`, which decides the condition at that size, for the output's shape;
a hand-written reference, or the same network written without the branch (`pad` by `(ws - h % ws) % ws`,
0 at a multiple), for the values. Nested blocks too, where the sizes after the call depend on the branch
the callee took. The Triton target plans its kernels for the traced outcome and runs the PyTorch forward
at sizes where a condition comes out the other way."""

from __future__ import annotations

import itertools

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import archc  # noqa: E402

PAD = """size batch = 1, H = 14, W = 3
block Net(ws = 4) {
  in x: [batch, chan = 4, h = H, w = W]
  y = if H % ws != 0 then pad(x, over = h, pad = [[0, ws - H % ws]]) else x
  out relu(y) * 2.0
}
"""

# the pad in a nested block, then a window partition whose sizes the caller computes from the padded ones
WINDOWS = """size batch = 2, H = 8, W = 8
block PadTo(ws) {
  in x: [batch, h, w, chan]
  y = if h % ws != 0 then pad(x, over = [h], pad = [[0, ws - h % ws]]) else x
  out if w % ws != 0 then pad(y, over = [w], pad = [[0, ws - w % ws]]) else y
}
entry block Net(ws = 4) {
  in x: [batch, h = H, w = W, chan = 8]
  p = PadTo(x, ws)
  win = rearrange(p, "batch (nh s) (nw t) chan -> batch nh nw (s t) chan", s = ws, t = ws)
  fc = linear(win, chan -> 6)
  out mean(fc, over = [nh, s_t])
}
"""

# three outcomes, the second decided only when the first is false
THREE = """size batch = 1, L = 8
block Net() {
  in x: [batch, chan = 2, t = L]
  if L % 4 == 0 {
    y = x
  } elif L % 2 == 0 {
    y = pad(x, over = t, pad = [[1, 1]])
  } else {
    y = pad(x, over = t, pad = [[0, 1]], mode = "reflect")
  }
  out y * 3.0
}
"""


def _output_shape(model: archc.Model, **sets: int) -> list[int]:
    g = model.check(**sets).graph
    return [int(a.size) for a in g.node(g.outputs[0]).type.axes]


def test_a_pad_to_a_multiple_branches_at_run_time() -> None:
    m = archc.loads(PAD)
    source = m.torch_source()
    assert "H = x.shape[2]\n        if H % self.ws != 0:" in source
    net = m.torch()()
    for h in range(1, 14):
        x = torch.randn(1, 4, h, 3)
        expected = torch.relu(F.pad(x, (0, 0, 0, -h % 4))) * 2.0
        got = net(x)
        assert torch.equal(got, expected), h
        assert list(got.shape) == _output_shape(m, H=h)


def test_the_sizes_after_a_nested_branch_follow_it() -> None:
    """The caller's window partition reads sizes the callee's branch changed: at each size the module
    equals the same network written without branches (same weights), with the shape archc check gives."""
    m = archc.loads(WINDOWS)
    source = m.torch_source()
    assert "class PadTo" in source and source.count("if h % self.ws != 0:") == 1
    unbranched = WINDOWS.replace(
        "  y = if h % ws != 0 then pad(x, over = [h], pad = [[0, ws - h % ws]]) else x\n"
        "  out if w % ws != 0 then pad(y, over = [w], pad = [[0, ws - w % ws]]) else y\n",
        "  out pad(x, over = [h, w], pad = [[0, (ws - h % ws) % ws], [0, (ws - w % ws) % ws]])\n")
    assert unbranched != WINDOWS and " if " not in archc.loads(unbranched).torch_source()
    net, reference = m.torch()(), archc.loads(unbranched).torch()()
    reference.load_state_dict(net.state_dict())
    for h, w in itertools.product((4, 5, 7, 8, 9, 12), (3, 4, 6, 8)):
        x = torch.randn(2, h, w, 8)
        got = net(x)
        assert list(got.shape) == _output_shape(m, H=h, W=w), (h, w)
        assert torch.allclose(got, reference(x), rtol=1e-5, atol=1e-6), (h, w)


def test_three_outcomes() -> None:
    m = archc.loads(THREE)
    source = m.torch_source()
    assert "if L % 4 == 0:" in source and "L % 2 == 0" in source
    net = m.torch()()
    for length in range(2, 14):
        x = torch.randn(1, 2, length)
        got = net(x)
        assert list(got.shape) == _output_shape(m, L=length), length
        if length % 4 == 0:
            expected = x
        elif length % 2 == 0:
            expected = F.pad(x, (1, 1))
        else:
            expected = F.pad(x, (0, 1), mode="reflect")
        assert torch.equal(got, expected * 3.0), length


def test_a_callers_checks_follow_the_branch_and_read_its_argument() -> None:
    """`--checks` on WINDOWS: the caller's code is the same either way, its output check is not, so it tests
    the condition itself, reading the window from its constructor argument (built with ws=2, not 4)."""
    m = archc.loads(WINDOWS)
    forward = m.torch_source(checks=True).split("class Net(")[1].split("def forward")[1]
    assert forward.count("if ") == 1 and "if W % self.ws != 0:" in forward
    net = m.torch(checks=True)(ws=2)
    for h, w in ((8, 8), (5, 7), (9, 3), (4, 6)):  # at w = 6, w % 2 == 0 but w % 4 != 0
        out = net(torch.randn(2, h, w, 8))
        assert out.shape == (2, -(-w // 2), 6), (h, w)


def test_the_checked_forward_checks_each_branch() -> None:
    """`archc build --checks`: the output check of each branch is the branch's own shape."""
    source = archc.loads(PAD).torch_source(checks=True)
    assert "'h': ('ws·⌊(H + ws)/ws⌋', self.ws * ((self.ws + H) // self.ws))" in source
    assert "'h': ('H', H)" in source
    net = archc.loads(PAD).torch(checks=True)()
    for h in (12, 13):
        assert net(torch.randn(1, 4, h, 3)).shape[2] == h + -h % 4


def test_layers_in_a_branch_on_the_input_size_build_the_module_for_the_size() -> None:
    """No module is built once for every H here: it is built for H = 8 (a warning at the condition says
    why), and forward refuses another H, telling how to build for it."""
    src = ("size H = 8\nblock Net() {\n  in x: [c = 1, h = H]\n  y = if H > 7 then conv(x, c -> 2, k = 3) else x\n"
           "  out y\n}\n")
    with pytest.warns(UserWarning, match=r":4:10: the module is built for H=8 .*the layers depend on the "
                      r"condition `H > 7`"):
        net = archc.loads(src).torch()()
    assert net(torch.randn(1, 8)).shape == (2, 6)
    with pytest.raises(ValueError, match=r"Net is built for x's axis 'h' = 8, got 5: build it again with "
                       r"`archc build --set H=5`"):
        net(torch.randn(1, 5))
    with pytest.warns(UserWarning, match="built for H=5"):  # as the message says
        assert archc.loads(src).torch(H=5)()(torch.randn(1, 5)).shape == (1, 5)
    # a module for every size: the layer outside the branch, a choice between values in it
    fixed = src.replace("  y = if H > 7 then conv(x, c -> 2, k = 3) else x\n",
                        "  c = conv(x, c -> 1, k = 3, pad = 1)\n  y = if H > 7 then c else x\n")
    net = archc.loads(fixed).torch()()
    for h, expected in ((8, net.c), (5, lambda x: x)):
        x = torch.randn(1, h)
        assert torch.equal(net(x), expected(x))


def test_a_block_whose_layers_depend_on_its_input_channels_keeps_them_as_an_argument() -> None:
    """`if cin != cout { proj = conv(...) }`: the other outcome builds other layers, so the class takes the
    channel count as a constructor argument (one class for both uses), not a branch of forward."""
    m = archc.loads("size batch = 1, H = 4\nblock Proj(cout) {\n  in x: [batch, chan = cin, h]\n"
                    "  if cin != cout {\n    proj = conv(x, chan -> cout, k = 1)\n    y = proj\n"
                    "  } else {\n    y = x\n  }\n  out y\n}\nentry block Net() {\n"
                    "  in x: [batch, chan = 16, h = H]\n  c = Proj(x, 16)\n  d = Proj(c, 32)\n  out d\n}\n")
    source = m.torch_source()
    assert source.count("class Proj") == 1 and "def __init__(self, cin: int, cout: int)" in source
    assert "self.c = Proj(16, 16)" in source and "self.d = Proj(16, 32)" in source
    assert m.torch()()(torch.randn(1, 16, 5)).shape == (1, 32, 5)


def test_the_triton_target_runs_the_pytorch_forward_off_the_planned_outcome(monkeypatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    pytest.importorskip("triton")
    m = archc.loads(WINDOWS)
    text = m.triton_module().text
    assert "if H % 4 != 0:  # planned where H % 4 == 0" in text
    fused, eager = m.triton()().eval(), m.torch()().eval()
    eager.load_state_dict(fused.state_dict())
    calls = []
    fused.forward_eager = lambda x: calls.append(x.shape) or eager(x)
    with torch.no_grad():
        for h, w in ((8, 8), (5, 8), (8, 6)):
            x = torch.randn(2, h, w, 8)
            assert torch.allclose(fused(x), eager(x), rtol=1e-4, atol=1e-5), (h, w)
    assert calls == [(2, 5, 8, 8), (2, 8, 6, 8)]  # the planned sizes ran the kernels


def test_the_same_condition_in_several_blocks_is_one_branch() -> None:
    """Three blocks pad by the same rule: the caller sees the condition three times (the same one), traces it
    once each way, and, as its own code is the same either way, needs no `if` of its own."""
    src = ("size batch = 1, H = 8\nblock PadTo(ws) {\n  in x: [batch, chan, h]\n"
           "  out if h % ws != 0 then pad(x, over = [h], pad = [[0, ws - h % ws]]) else x\n}\n"
           "entry block Net() {\n  in x: [batch, chan = 2, h = H]\n  a = PadTo(x, 4)\n"
           "  b = PadTo(relu(a), 4)\n  c = PadTo(relu(b), 4)\n  out c\n}\n")
    source = archc.loads(src).torch_source()
    assert source.count(" if ") == 1 and "if h % self.ws != 0:" in source  # PadTo's own
    net = archc.loads(src).torch()()
    for h in (8, 9, 5, 12):
        x = torch.randn(1, 2, h)
        expected = torch.relu(torch.relu(F.pad(x, (0, -h % 4))))
        assert torch.equal(net(x), expected), h


def test_the_documented_forward_is_the_generated_one() -> None:
    """docs/language.md shows PadToWindow's generated forward (shape comments left out): it must stay true."""
    import pathlib
    import re

    doc = (pathlib.Path(__file__).parents[1] / "docs" / "language.md").read_text(encoding="utf-8")
    example = re.search(r"```arch\n(size batch = 1, H = 56, W = 56\n\nblock PadToWindow.*?)```", doc, re.S)
    shown = re.search(r"`PadToWindow`'s generated forward \(shape comments left out\):\n\n```python\n(.*?)```",
                      doc, re.S)
    assert example and shown
    source = archc.loads(example.group(1)).torch_source()
    body = source.split("class PadToWindow")[1].split("\nclass ")[0]
    generated = "\n".join(line.split("  # ")[0] for line in body.splitlines())
    assert shown.group(1).strip() in generated
    net = archc.loads(example.group(1)).torch()()
    assert net(torch.randn(1, 57, 50, 96)).shape == (1 * 9 * 8, 49, 96)  # 63 x 56 in 7 x 7 windows


UNET = """size batch = 1, H = 64, W = 64

block Up(cout) {
  in x: [batch, chan, h, w]
  in skip: [batch, chan = cs, h = hs, w = ws]
  u = upsample(x, scale = 2)
  uh = if hs > 2 * h then pad(u, over = [h], pad = [[0, hs - 2 * h]]) else u
  uw = if ws > 2 * w then pad(uh, over = [w], pad = [[0, ws - 2 * w]]) else uh
  c = conv(concat(uw, skip, axis = chan), chan -> cout, k = 3, pad = 1)
  out relu(c)
}

entry block UNet(widths = [8, 16, 32, 64]) {
  in x: [batch, chan = 3, h = H, w = W]
  y = x
  for i in 0..4 {
    down[i] = conv(y, chan -> widths[i], k = 3, pad = 1)
    skips[i] = relu(down[i])
    y = maxpool(skips[i], k = 2)
  }
  for i in 0..4 {
    up[i] = Up(y, skips[3 - i], widths[3 - i])
    y = up[i]
  }
  out y
}
"""


def test_a_unet_that_pads_each_upsampling_to_its_skip_runs_at_every_size() -> None:
    """The classic U-Net decoder: upsample, pad to the skip's size where the pooling floored, concat. Eight
    conditions (h and w at four levels) live in the up block, which branches on them; its caller's code is
    the same whatever they are, so it is traced once each way per condition, not 2^8 times, and has no if."""
    m = archc.loads(UNET)
    source = m.torch_source()
    assert "if" not in source.split("class UNet(")[1].split("def forward")[1]
    assert "if hs > 2 * h:" in source and "if ws > 2 * w:" in source
    net = m.torch()()
    sd = net.state_dict()

    def reference(x: torch.Tensor) -> torch.Tensor:
        skips, y = [], x
        for i in range(4):
            skips.append(torch.relu(F.conv2d(y, sd[f"down.{i}.weight"], sd[f"down.{i}.bias"], padding=1)))
            y = F.max_pool2d(skips[-1], 2)
        for i in range(4):
            skip = skips[3 - i]
            u = F.interpolate(y, scale_factor=2.0)
            u = F.pad(u, (0, skip.shape[3] - u.shape[3], 0, skip.shape[2] - u.shape[2]))
            y = torch.relu(F.conv2d(torch.cat([u, skip], 1), sd[f"up.{i}.c.weight"], sd[f"up.{i}.c.bias"], padding=1))
        return y

    for h, w in ((64, 64), (65, 70), (37, 50), (16, 17), (31, 16)):
        x = torch.randn(1, 3, h, w)
        got = net(x)
        assert got.shape == (1, 8, h, w), (h, w)
        assert torch.allclose(got, reference(x), rtol=1e-4, atol=1e-5), (h, w)
