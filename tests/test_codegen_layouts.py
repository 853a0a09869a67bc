"""Windowed ops (conv, conv_transpose, max/avg pooling, adaptive pooling) and upsample on axes that are not
in torch's layout build (what `archc check` accepts, code generation accepts): the generated module moves the axes
into [batch, channel, *spatial] and back (ops/torch_lowering.py's `Moved`; the `moved` helper and the
`MovedAxes` subclasses of torch's modules). Each output equals a hand-written reference (permute, torch's
own module or function, permute back) and the parameters load into torch's own module with strict=True.
"""

from __future__ import annotations

import math
import os
import pathlib
import shutil
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import archc

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional

SIZES = {"a": 2, "b": 2, "t": 3, "c": 3, "h": 7, "w": 6, "d": 5}

# name: (the input's axes, the spatial axes in the op's order); the channel axis is `c`
LAYOUTS = {
    "channel_last": ("b h w c", "h w"),
    "channel_first_spatial_middle": ("c h w b", "h w"),
    "spatial_middle": ("b h c w", "h w"),
    "spatial_reversed": ("b c w h", "h w"),
    "over_reversed": ("b c h w", "w h"),
    "three_leading": ("a t b c h w", "h w"),
    "three_leading_apart": ("a h t w c b", "h w"),
    "no_batch": ("h w c", "h w"),
    "one_d_channel_last": ("b w c", "w"),
    "three_d_mixed": ("d c b h w", "w d h"),
}
# torch's layout already (no move): the generated module is torch's own
TORCH_LAYOUTS = {"batched": ("b c h w", "h w"), "unbatched": ("c h w", "h w")}


def reference(x: Any, names: list[str], over: list[str], channel: bool, op: Any) -> Any:
    """op on x's axes moved to [other axes flattened, (c,) *over], the result's axes moved back (by name)."""
    inner = (["c"] if channel else []) + over
    others = [n for n in names if n not in inner]
    if not channel and others:  # a pool: the last other axis is its channels
        inner, others = [others[-1]] + inner, others[:-1]
    xt = x.permute([names.index(n) for n in others + inner])
    lead = xt.shape[:len(others)]
    y = op(xt.reshape(math.prod(lead), *xt.shape[len(others):]))
    y = y.reshape(*lead, *y.shape[1:])
    order = others + inner
    return y.permute([order.index(n) for n in names])


def program(names: list[str], line: str) -> archc.Model:
    axes = ", ".join(f"{n} = {SIZES[n]}" for n in names)
    return archc.loads(f"block B() {{\n  in x: [{axes}]\n  y = {line}\n  out y\n}}\n", "layouts.arch")


def run(names: list[str], line: str, seed: int = 0) -> tuple[Any, Any, Any, str]:
    m = program(names, line)
    torch.manual_seed(seed)
    net = m.torch()()
    x = torch.randn(*[SIZES[n] for n in names])
    return net, x, net(x), m.torch_source()


CONVS = {  # the op's text (over, and channel c), torch's module for the reference, with n its rank
    "conv": ("conv(x, c -> 4, k = 3, stride = 2, pad = 1, over = [{over}])",
             lambda n: getattr(nn, f"Conv{n}d")(3, 4, 3, stride=2, padding=1)),
    "conv_groups": ("conv(x, c -> 6, k = 2, dilation = 2, groups = 3, bias = false, over = [{over}])",
                    lambda n: getattr(nn, f"Conv{n}d")(3, 6, 2, dilation=2, groups=3, bias=False)),
    "conv_transpose": ("conv_transpose(x, c -> 2, k = 3, stride = 2, pad = 1, output_padding = 1, over = [{over}])",
                       lambda n: getattr(nn, f"ConvTranspose{n}d")(3, 2, 3, stride=2, padding=1, output_padding=1)),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS) + sorted(TORCH_LAYOUTS))
@pytest.mark.parametrize("op", sorted(CONVS))
def test_convs_in_every_layout(op: str, layout: str) -> None:
    text, module = CONVS[op]
    axes, over = {**LAYOUTS, **TORCH_LAYOUTS}[layout]
    names, spatial = axes.split(), over.split()
    net, x, y, src = run(names, text.format(over=", ".join(spatial)))
    ref = module(len(spatial))
    ref.load_state_dict(net.y.state_dict(), strict=True)
    assert isinstance(net.y, type(ref)) and list(net.state_dict()) == [f"y.{k}" for k in ref.state_dict()]
    assert ("At(" in src) == (layout in LAYOUTS)
    want = reference(x, names, spatial, True, ref)
    assert y.shape == want.shape and torch.allclose(y, want, atol=1e-5)


def test_the_example_of_issue_11() -> None:
    """A conv over `pos` with the channels last: the generated layer is nn.Conv1d's subclass Conv1dAt."""
    net, x, y, src = run(["b", "w", "c"], "conv(x, c -> 8, k = 3, pad = 1, over = [w])")
    assert "self.y = Conv1dAt(3, 8, kernel_size=3, padding=1, dims=(0, 2, 1), batch=1)" in src
    ref = nn.Conv1d(3, 8, 3, padding=1)
    ref.load_state_dict(net.y.state_dict(), strict=True)
    assert torch.allclose(y, ref(x.transpose(1, 2)).transpose(1, 2), atol=1e-5)


POOLS = {  # the op's text, torch's function for the reference (n: its rank)
    "maxpool": ("maxpool(x, k = 3, stride = 2, pad = 1, over = [{over}])",
                lambda n: lambda t: getattr(F, f"max_pool{n}d")(t, 3, stride=2, padding=1)),
    "avgpool": ("avgpool(x, k = 2, over = [{over}])", lambda n: lambda t: getattr(F, f"avg_pool{n}d")(t, 2)),
    "adaptive_avgpool": ("adaptive_avgpool(x, out = 2, over = [{over}])",
                         lambda n: lambda t: getattr(F, f"adaptive_avg_pool{n}d")(t, 2)),
    "adaptive_maxpool": ("adaptive_maxpool(x, out = 3, over = [{over}])",
                         lambda n: lambda t: getattr(F, f"adaptive_max_pool{n}d")(t, 3)),
}


@pytest.mark.parametrize("step", [False, True], ids=["forward", "sequence_step"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS) + ["pool_no_other_axis"])
@pytest.mark.parametrize("op", sorted(POOLS))
def test_pools_in_every_layout(op: str, layout: str, step: bool) -> None:
    """In forward (torch's function, through `moved`) and as a sequence step (the module's subclass)."""
    text, fn = POOLS[op]
    axes, over = LAYOUTS.get(layout, ("w h", "h w"))
    names, spatial = axes.split(), over.split()
    line = text.format(over=", ".join(spatial))
    if step:
        line = f"seq(x) {{ {line.replace('(x, ', '(')} }}"
    net, x, y, src = run(names, line)
    assert ("moved(F." in src) != step and ("At(" in src) == step
    want = reference(x, names, spatial, False, fn(len(spatial)))
    assert y.shape == want.shape and torch.allclose(y, want, atol=1e-6)


@pytest.mark.parametrize("step", [False, True], ids=["forward", "sequence_step"])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pools_padded_first_move_the_padding_too(kind: str, step: bool) -> None:
    """A padding that differs before and after pads first (F.pad, nn.ConstantPad2d), along the moved axes."""
    line = f"{kind}pool(x, k = 3, stride = 2, pad = [[0, 1], [1, 0]], over = [w, h])"
    if step:
        line = f"seq(x) {{ {line.replace('(x, ', '(')} }}"
    names = ["c", "h", "b", "w"]
    net, x, y, src = run(names, line)
    assert ("ConstantPad2dAt(" in src) == step
    value = float("-inf") if kind == "max" else 0.0
    pool = getattr(F, f"{kind}_pool2d")
    want = reference(x, names, ["w", "h"], False, lambda t: pool(F.pad(t, (1, 0, 0, 1), value=value), 3, stride=2))
    assert y.shape == want.shape and torch.allclose(y, want, atol=1e-6)


@pytest.mark.parametrize("transposed", [False, True])
def test_convs_padded_first_or_cropped_after(transposed: bool) -> None:
    """Conv2dPadded and ConvTranspose2dCropped, moved: Conv2dPaddedAt, ConvTranspose2dCroppedAt."""
    op = "conv_transpose" if transposed else "conv"
    extra = ", stride = 2, output_padding = 1" if transposed else ""
    names = ["h", "b", "w", "c"]
    net, x, y, src = run(names, f"{op}(x, c -> 2, k = 3, pad = [[0, 1], [2, 1]]{extra}, over = [w, h])")
    assert ("ConvTranspose2dCroppedAt(" if transposed else "Conv2dPaddedAt(") in src
    if transposed:
        ref = nn.ConvTranspose2d(3, 2, 3, stride=2, output_padding=1)
        ref.load_state_dict(net.y.state_dict(), strict=True)

        def op_ref(t: Any) -> Any:
            return ref(t)[:, :, 0:-1, 2:-1]
    else:
        ref = nn.Conv2d(3, 2, 3)
        ref.load_state_dict(net.y.state_dict(), strict=True)

        def op_ref(t: Any) -> Any:
            return ref(F.pad(t, (2, 1, 0, 1)))
    want = reference(x, names, ["w", "h"], True, op_ref)
    assert y.shape == want.shape and torch.allclose(y, want, atol=1e-5)


def test_gradients_reach_the_parameters_through_the_moves() -> None:
    net, x, y, _ = run(["a", "t", "b", "c", "h", "w"][::-1], "conv(x, c -> 4, k = 3, over = [h, w])")
    y.square().sum().backward()
    assert net.y.weight.grad is not None and net.y.weight.grad.abs().sum() > 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.permutations(["b", "c", "h", "w", "t"]), over=st.permutations(["h", "w"]),
       kind=st.sampled_from(["conv", "maxpool", "avgpool", "adaptive_avgpool"]), batch=st.booleans())
def test_any_layout(order: list[str], over: list[str], kind: str, batch: bool) -> None:
    """Every order of the axes (with or without extra ones), either order of the spatial axes."""
    names = [n for n in order if batch or n not in ("b", "t")]
    text, ref_of = ({**CONVS, **POOLS})[kind]
    net, x, y, _ = run(names, text.format(over=", ".join(over)))
    if kind == "conv":
        ref = ref_of(2)
        ref.load_state_dict(net.y.state_dict(), strict=True)
        op: Any = ref
    else:
        op = ref_of(2)
    want = reference(x, names, over, kind == "conv", op)
    assert y.shape == want.shape and torch.allclose(y, want, atol=1e-5)


# ---- the Triton target: a fused window kernel reads any layout; an unfused op is the torch call above --------


TRITON_OPS = {"conv": "conv(x, c -> 4, k = 3, pad = 1, over = [{over}])",  # not fused: Conv2dAt
              "depthwise": "conv(x, c -> 3, k = 3, pad = 1, groups = 3, over = [{over}])",  # a window kernel
              "maxpool": "maxpool(x, k = 3, stride = 2, pad = 1, over = [{over}])",
              "avgpool_padded_first": "avgpool(x, k = 2, pad = [[0, 1], [1, 0]], over = [{over}])",
              "adaptive_avgpool": "adaptive_avgpool(x, out = 2, over = [{over}])",
              "upsample": "upsample(x, scale = 2, over = [{over}])"}


@pytest.mark.parametrize("layout", ["channel_last", "spatial_reversed", "three_leading_apart", "no_batch"])
@pytest.mark.parametrize("op", sorted(TRITON_OPS))
def test_the_triton_target(op: str, layout: str) -> None:
    pytest.importorskip("triton")
    from test_triton import build, randomize
    op = TRITON_OPS[op]
    axes, over = LAYOUTS[layout]
    names = axes.split()
    src = (f"block B() {{\n  in x: [{', '.join(f'{n} = {SIZES[n]}' for n in names)}]\n"
           f"  y = {op.format(over=over.replace(' ', ', '))}\n  out gelu(y)\n}}\n")
    eager_cls, fused_cls, tm = build(archc.loads(src, "layouts.arch"))
    assert tm.kernels > 0
    eager, fused = eager_cls().eval(), fused_cls().eval()
    randomize(eager)
    fused.load_state_dict(eager.state_dict(), strict=True)
    x = torch.randn(*[SIZES[n] for n in names])
    with torch.no_grad():
        want, got = eager(x), fused(x)
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5)


UPSAMPLES = {  # the op's text, torch's F.interpolate keywords (the sizes in the op's order of the axes)
    "nearest": ("upsample(x, scale = 2, over = [{over}])", {"scale_factor": 2.0}),
    "bilinear": ('upsample(x, size = [4, 9], mode = "bilinear", over = [{over}])',
                 {"size": (4, 9), "mode": "bilinear", "align_corners": False}),
}


@pytest.mark.parametrize("step", [False, True], ids=["forward", "sequence_step"])
@pytest.mark.parametrize("mode,layout", [(m, k) for m in sorted(UPSAMPLES) for k in sorted(LAYOUTS)
                                         if m != "bilinear" or len(LAYOUTS[k][1].split()) == 2])
def test_upsample_in_every_layout(mode: str, layout: str, step: bool) -> None:
    """upsample is not a window, but torch wants the same layout: F.interpolate through `moved`, or UpsampleAt
    (bilinear where the layout resamples two axes)."""
    text, kw = UPSAMPLES[mode]
    axes, over = LAYOUTS[layout]
    names, spatial = axes.split(), over.split()
    line = text.format(over=", ".join(spatial))
    if step:
        line = f"seq(x) {{ {line.replace('(x, ', '(')} }}"
    net, x, y, src = run(names, line)
    assert ("UpsampleAt(" in src) == step
    want = reference(x, names, spatial, False, lambda t: F.interpolate(t, **kw))
    assert y.shape == want.shape and torch.allclose(y, want, atol=1e-6)


@pytest.mark.parametrize("step", [False, True])
@pytest.mark.parametrize("names,over", [(["h", "w"], ["w", "h"]), (["h", "w"], ["h", "w"]), (["d"], ["d"])])
def test_upsample_of_only_its_own_axes(names: list[str], over: list[str], step: bool) -> None:
    """No axis for torch's batch and channels: `moved` with batch -1 adds both (of size 1)."""
    line = f"upsample(x, scale = 2, mode = \"bilinear\", over = [{', '.join(over)}])" if len(over) == 2 else \
        f"upsample(x, scale = 3, over = [{over[0]}])"
    if step:
        line = f"seq(x) {{ {line.replace('(x, ', '(')} }}"
    net, x, y, src = run(names, line)
    assert ("UpsampleAt(" in src) == step and ("batch=-1" if step else ", -1, ") in src
    xt = x.permute([names.index(n) for n in over])[None, None]
    kw = {"scale_factor": 2.0, "mode": "bilinear", "align_corners": False} if len(over) == 2 else {"scale_factor": 3.0}
    want = F.interpolate(xt, **kw)[0, 0].permute([over.index(n) for n in names])
    assert y.shape == want.shape and torch.allclose(y, want, atol=1e-6)


def test_build_is_deterministic_and_ruff_clean(tmp_path: pathlib.Path) -> None:
    """Every helper (the module subclasses, MovedAxes, moved) in one file, built twice by the CLI."""
    src = tmp_path / "moved.arch"
    src.write_text("""block Moved() {
  in x: [h = 9, b = 2, w = 8, c = 3]
  a = conv(x, c -> 4, k = 3, over = [w, h])
  p = conv(x, c -> 4, k = 2, pad = [[0, 1], [1, 0]], over = [h, w])
  t = conv_transpose(x, c -> 2, k = 3, stride = 2, pad = [[0, 1], [1, 0]], output_padding = 1, over = [h, w])
  s = seq(a) {
    maxpool(k = 3, stride = 2, pad = [[0, 1], [1, 0]], over = [h, w])
    avgpool(k = 2, over = [w, h])
    adaptive_maxpool(out = 2, over = [h, w])
    upsample(scale = 2, over = [h, w])
  }
  m = adaptive_avgpool(p, out = 1, over = [w, h])
  out mean(s, over = [h, b, w, c]) + mean(m, over = [h, b, w, c]) + mean(t, over = [h, b, w, c])
}
""")
    texts = set()
    for seed in ("1", "77"):
        out = tmp_path / seed
        run = subprocess.run([sys.executable, "-m", "archc.cli", "build", str(src), "-o", str(out)],
                             env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        texts.add((out / "moved.py").read_text())
    assert len(texts) == 1
    text = texts.pop()
    for name in ("def moved(", "class MovedAxes:", "class Conv2dAt(MovedAxes, nn.Conv2d):",
                 "class Conv2dPaddedAt(MovedAxes, Conv2dPadded):",
                 "class ConstantPad2dAt(MovedAxes, nn.ConstantPad2d):",
                 "class ConvTranspose2dCroppedAt(MovedAxes, ConvTranspose2dCropped):", "class UpsampleAt(",
                 "class MaxPool2dAt(", "class AvgPool2dAt(", "class AdaptiveMaxPool2dAt(",
                 "moved(F.adaptive_avg_pool2d"):
        assert name in text
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    path = tmp_path / "m.py"
    path.write_text(text)
    subprocess.run([ruff, "check", "--isolated", "--line-length", "300", "--select", "E,F,W,I,B,UP,N",
                    "--ignore", "E741,B905,N812,N818,N803,N806", str(path)], check=True, capture_output=True)


# ---- training memory: what autograd keeps through the moves ----------------------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(order=st.permutations(["b", "c", "h", "w", "t"]), over=st.permutations(["h", "w"]),
       kind=st.sampled_from(["conv", "conv_groups", "conv_transpose", "maxpool", "avgpool", "adaptive_maxpool"]),
       first=st.sampled_from(["c", "t", "w"]), then=st.sampled_from(["b", "c", "h", "w", "t"]),
       ones=st.sets(st.sampled_from(["b", "t"])))
def test_saved_activations_through_the_moves(order: list[str], over: list[str], kind: str, first: str,
                                            then: str, ones: set[str]) -> None:
    """After a linear on `first` (which lays the input out with that axis last in memory), the op on moved
    axes keeps its input or the copy the moves make, and a linear on `then` reads the layout of its result
    (a copy where it is not a view): archc memory equals the bytes autograd keeps (test_memory's measure).
    Axes of size 1 (`ones`) leave torch's reading of a channels-last layout to their strides."""
    from test_memory import measure
    text = ({**CONVS, **POOLS})[kind][0].format(over=", ".join(over)).replace("(x, ", "(p, ")
    sizes = {**SIZES, **dict.fromkeys(ones, 1)}
    axes, names = ", ".join(f"{n} = {sizes[n]}" for n in order), ", ".join(order)
    m = archc.loads(f"block B() {{\n  in x: [{axes}]\n  p = linear(x, {first} -> 3)\n  y = {text}\n"
                    f"  q = linear(y, {then} -> 2)\n  out mean(q, over = [{names}]) + mean(gelu(y), over = [{names}])"
                    f" + mean(gelu(p), over = [{names}])\n}}\n", "saves.arch")
    measured, _ = measure(m, {})
    assert m.memory().saved == measured
