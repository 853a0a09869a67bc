"""Convolution arithmetic against torch's own output shapes (hypothesis).

Each example writes a one-op .arch program, checks it with archc, and runs the
torch.nn module it stands for on a real tensor. The output shape, the
parameter count (`sum(p.numel() for p in module.parameters())`) and the FLOPs
(torch convention = `FlopCounterMode`) must agree, both with concrete sizes and
with every input size free (the closed forms evaluated at the sizes' values,
which is what the constraint derivation works on); where torch raises (or
returns an empty tensor), archc must report an `ArchError`, and where archc
reports one, torch must raise.

>>> program([("n", 1), ("c", 2), ("l", 5)], "maxpool(x, k = 2)")
'block T() {\\n  in x: [n = 1, c = 2, l = 5]\\n  y = maxpool(x, k = 2)\\n  out y\\n}\\n'
"""

from __future__ import annotations

import os
import re
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
nn = torch.nn
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import archc  # noqa: E402
from archc.analysis.report import analyze  # noqa: E402
from archc.diagnostics import ArchError  # noqa: E402

SPATIAL = {1: ["l"], 2: ["h", "w"], 3: ["d", "h", "w"]}
# A fixed set of examples in CI; ARCHC_HYPOTHESIS_EXAMPLES=5000 explores afresh (random, slower).
_DEEP = int(os.environ.get("ARCHC_HYPOTHESIS_EXAMPLES", "0"))
FAST = settings(max_examples=_DEEP or 100, deadline=None, derandomize=not _DEEP, database=None,
                suppress_health_check=[HealthCheck.too_slow])


# ---- the two sides -----------------------------------------------------------------------


def lit(v) -> str:
    """A Python value as a .arch literal."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(lit(x) for x in v) + "]"
    return str(v)


def program(axes: list[tuple[str, int]], call: str) -> str:
    """A block with one input of the given axes whose output is `call` (on `x`)."""
    decl = ", ".join(f"{name} = {size}" for name, size in axes)
    return f"block T() {{\n  in x: [{decl}]\n  y = {call}\n  out y\n}}\n"


def call(op: str, first: str, **kw) -> str:
    args = [first] + [f"{k} = {lit(v)}" for k, v in kw.items() if v is not None]
    return f"{op}({', '.join(args)})"


def with_free_sizes(text: str) -> str:
    """The same program with every input axis size a free size: `[n = 2]` -> `size S_n = 2 ... [n = S_n]`."""
    decl = re.search(r"in x: \[(.*)\]", text)
    assert decl is not None
    pairs = [item.split(" = ") for item in decl[1].split(", ")]
    sizes = "size " + ", ".join(f"S_{name} = {value}" for name, value in pairs) + "\n"
    axes = ", ".join(f"{name} = S_{name}" for name, _ in pairs)
    return sizes + text.replace(decl[0], f"in x: [{axes}]")


def ours(text: str, symbolic: bool = False):
    """(output shape, parameters, FLOPs) from archc, or the ArchError it reports.

    Symbolic: every figure is a closed form in the free sizes, evaluated at their values.
    """
    try:
        graph = archc.loads(text).check(symbolic=symbolic).graph
    except ArchError as err:
        return err
    rep = analyze(graph)
    shape = tuple(rep.value(s) for s in graph.node(graph.outputs[0]).type.shape)
    return shape, rep.value(rep.params), rep.value(rep.flops)


def theirs(make, shape: tuple[int, ...]):
    """(output shape, parameters, FLOPs) of a torch module run on a tensor, or what it raised."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = make()
            x = torch.randn(*shape)
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                y = module(x)
    except (RuntimeError, ValueError) as err:
        return err
    if y.numel() == 0:  # e.g. a 3-D transposed conv of output size 0: torch gives an empty tensor
        return ValueError(f"torch returned an empty tensor of shape {tuple(y.shape)}")
    return tuple(y.shape), sum(p.numel() for p in module.parameters()), counter.get_total_flops()


def agree(text: str, make, shape: tuple[int, ...]) -> None:
    """archc agrees with torch, with concrete sizes and with free sizes (the closed forms)."""
    t = theirs(make, shape)
    for program_text, symbolic in ((text, False), (with_free_sizes(text), True)):
        a = ours(program_text, symbolic)
        if isinstance(t, Exception):
            assert isinstance(a, ArchError), f"torch raised {t!r} but archc gives {a}\n{program_text}"
        else:
            assert not isinstance(a, ArchError), f"archc reports {a} but torch gives {t}\n{program_text}"
            assert a == t, f"archc (shape, params, FLOPs) {a} != torch {t}\n{program_text}"


def axes_for(n: int, batch: int, chan: int, spatial: list[int]) -> list[tuple[str, int]]:
    return [("n", batch), ("c", chan)] + list(zip(SPATIAL[n], spatial))


def tup(v):
    return tuple(v) if isinstance(v, list) else v


def per_axis(values: st.SearchStrategy, n: int) -> st.SearchStrategy:
    """One value for every axis, or a list with one per axis."""
    return st.one_of(values, st.lists(values, min_size=n, max_size=n))


# ---- convolution ---------------------------------------------------------------------------


@st.composite
def conv_case(draw, transposed: bool = False):
    n = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin, cout = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    if draw(st.integers(0, 3)):  # mostly divisible by groups; sometimes not, which both reject
        cin, cout = cin * groups, cout * groups
    spatial = draw(st.lists(st.integers(1, 8), min_size=n, max_size=n))
    k = draw(per_axis(st.integers(1, 4), n))
    stride = draw(per_axis(st.integers(1, 3), n))
    dilation = draw(per_axis(st.integers(1, 3), n))
    if transposed:
        pad = draw(per_axis(st.integers(0, 3), n))
        output_padding = draw(per_axis(st.integers(0, 2), n))
    else:
        pad = draw(st.one_of(per_axis(st.integers(0, 3), n), st.sampled_from(["same", "valid"])))
        if pad == "same" and draw(st.booleans()):
            stride = 1  # PyTorch has 'same' only with stride 1; keep both cases common
        output_padding = None
    return dict(n=n, batch=draw(st.integers(1, 2)), cin=cin, cout=cout, spatial=spatial, k=k,
                stride=stride, pad=pad, dilation=dilation, groups=groups, bias=draw(st.booleans()),
                output_padding=output_padding)


@FAST
@given(conv_case())
def test_conv_matches_torch(c):
    text = program(axes_for(c["n"], c["batch"], c["cin"], c["spatial"]),
                   call("conv", f"x, c -> {c['cout']}", k=c["k"], stride=c["stride"], pad=c["pad"],
                        dilation=c["dilation"], groups=c["groups"], bias=c["bias"]))

    def make():
        return getattr(nn, f"Conv{c['n']}d")(c["cin"], c["cout"], tup(c["k"]), stride=tup(c["stride"]),
                                             padding=tup(c["pad"]), dilation=tup(c["dilation"]),
                                             groups=c["groups"], bias=c["bias"])

    agree(text, make, (c["batch"], c["cin"], *c["spatial"]))


@FAST
@given(conv_case(transposed=True))
def test_conv_transpose_matches_torch(c):
    text = program(axes_for(c["n"], c["batch"], c["cin"], c["spatial"]),
                   call("conv_transpose", f"x, c -> {c['cout']}", k=c["k"], stride=c["stride"],
                        pad=c["pad"], dilation=c["dilation"], groups=c["groups"], bias=c["bias"],
                        output_padding=c["output_padding"]))

    def make():
        cls = getattr(nn, f"ConvTranspose{c['n']}d")
        return cls(c["cin"], c["cout"], tup(c["k"]), stride=tup(c["stride"]), padding=tup(c["pad"]),
                   output_padding=tup(c["output_padding"]), dilation=tup(c["dilation"]),
                   groups=c["groups"], bias=c["bias"])

    agree(text, make, (c["batch"], c["cin"], *c["spatial"]))


@FAST
@given(st.data())
def test_asymmetric_padding_matches_zero_pad_then_conv(data):
    n = data.draw(st.integers(1, 3))
    spatial = data.draw(st.lists(st.integers(1, 7), min_size=n, max_size=n))
    pairs = data.draw(st.lists(st.lists(st.integers(0, 3), min_size=2, max_size=2), min_size=n, max_size=n))
    k = data.draw(per_axis(st.integers(1, 4), n))
    stride = data.draw(per_axis(st.integers(1, 3), n))
    text = program(axes_for(n, 1, 2, spatial), call("conv", "x, c -> 3", k=k, stride=stride, pad=pairs))

    def make():
        flat = [p for pair in reversed(pairs) for p in pair]  # torch pads the last axis first
        pad = getattr(nn, f"ConstantPad{n}d")(tuple(flat), 0.0)
        return nn.Sequential(pad, getattr(nn, f"Conv{n}d")(2, 3, tup(k), stride=tup(stride)))

    agree(text, make, (1, 2, *spatial))


def test_same_padding_with_even_kernel_pads_right_as_torch():
    text = program(axes_for(2, 1, 1, [6, 5]), call("conv", "x, c -> 1", k=[4, 2], dilation=[1, 3],
                                                     pad="same", bias=False))
    graph = archc.loads(text).check().graph
    node = next(nd for nd in graph if nd.op.value == "conv")
    assert node.attrs["pads"] == ((1, 2), (1, 2))  # total d(k-1) = 3, the extra one on the right
    agree(text, lambda: nn.Conv2d(1, 1, (4, 2), dilation=(1, 3), padding="same", bias=False), (1, 1, 6, 5))


# ---- pooling -------------------------------------------------------------------------------


@st.composite
def pool_case(draw):
    n = draw(st.integers(1, 3))
    return dict(n=n, kind=draw(st.sampled_from(["max", "avg"])),
                spatial=draw(st.lists(st.integers(1, 9), min_size=n, max_size=n)),
                k=draw(per_axis(st.integers(1, 4), n)),
                stride=draw(st.one_of(st.none(), per_axis(st.integers(1, 3), n))),
                pad=draw(per_axis(st.integers(0, 2), n)),
                dilation=draw(per_axis(st.integers(1, 3), n)),
                ceil=draw(st.booleans()), count_include_pad=draw(st.booleans()))


@FAST
@given(pool_case())
def test_pooling_matches_torch(c):
    n = c["n"]
    common = dict(k=c["k"], stride=c["stride"], pad=c["pad"])
    if c["kind"] == "max":
        op = call("maxpool", "x", **common, dilation=c["dilation"], ceil=c["ceil"])

        def make():
            return getattr(nn, f"MaxPool{n}d")(tup(c["k"]), stride=tup(c["stride"]), padding=tup(c["pad"]),
                                               dilation=tup(c["dilation"]), ceil_mode=c["ceil"])
    else:
        op = call("avgpool", "x", **common, ceil=c["ceil"], count_include_pad=c["count_include_pad"])

        def make():
            return getattr(nn, f"AvgPool{n}d")(tup(c["k"]), stride=tup(c["stride"]), padding=tup(c["pad"]),
                                               ceil_mode=c["ceil"], count_include_pad=c["count_include_pad"])

    agree(program(axes_for(n, 1, 2, c["spatial"]), op), make, (1, 2, *c["spatial"]))


def test_ceil_mode_drops_a_window_that_starts_in_the_padding():
    # i=5, k=2, s=2, p=1: ceil gives 4 windows, but the 4th would start at 6 >= i + p = 6.
    text = program(axes_for(1, 1, 1, [5]), call("maxpool", "x", k=2, stride=2, pad=1, ceil=True))
    assert ours(text)[0] == (1, 1, 3)
    agree(text, lambda: nn.MaxPool1d(2, 2, padding=1, ceil_mode=True), (1, 1, 5))


@FAST
@given(st.data())
def test_adaptive_pooling_matches_torch(data):
    n = data.draw(st.integers(1, 3))
    kind = data.draw(st.sampled_from(["avg", "max"]))
    spatial = data.draw(st.lists(st.integers(1, 8), min_size=n, max_size=n))
    out = data.draw(per_axis(st.integers(1, 6), n))
    text = program(axes_for(n, 2, 3, spatial), call(f"adaptive_{kind}pool", "x", out=out))

    def make():
        return getattr(nn, f"Adaptive{kind.capitalize()}Pool{n}d")(tup(out))

    agree(text, make, (2, 3, *spatial))


# ---- resampling ----------------------------------------------------------------------------


@FAST
@given(st.data())
def test_pixel_shuffle_and_unshuffle_match_torch(data):
    lead = data.draw(st.lists(st.integers(1, 2), min_size=1, max_size=2))
    c, h, w = data.draw(st.integers(1, 18)), data.draw(st.integers(1, 7)), data.draw(st.integers(1, 7))
    r = data.draw(st.integers(1, 3))
    shuffle = data.draw(st.booleans())
    axes = [(f"e{i}", s) for i, s in enumerate(lead)] + [("c", c), ("h", h), ("w", w)]
    op = "pixel_shuffle" if shuffle else "pixel_unshuffle"
    text = program(axes, call(op, "x", r=r))
    agree(text, lambda: nn.PixelShuffle(r) if shuffle else nn.PixelUnshuffle(r), (*lead, c, h, w))


@FAST
@given(st.data())
def test_upsample_matches_torch(data):
    bilinear = data.draw(st.booleans())
    n = 2 if bilinear else data.draw(st.integers(1, 3))
    spatial = data.draw(st.lists(st.integers(1, 6), min_size=n, max_size=n))
    by_size = data.draw(st.booleans())
    target = data.draw(per_axis(st.integers(1, 9), n)) if by_size else data.draw(per_axis(st.integers(1, 3), n))
    align = data.draw(st.booleans()) if bilinear else None
    mode = "bilinear" if bilinear else "nearest"
    key = "size" if by_size else "scale"
    text = program(axes_for(n, 1, 2, spatial), call("upsample", "x", **{key: target}, mode=mode,
                                                     align_corners=align))

    def make():
        if by_size:
            return nn.Upsample(size=tup(target), mode=mode, align_corners=align)
        scale = tuple(float(s) for s in target) if isinstance(target, list) else float(target)
        return nn.Upsample(scale_factor=scale, mode=mode, align_corners=align)

    agree(text, make, (1, 2, *spatial))


# ---- errors where torch raises ---------------------------------------------------------------


@pytest.mark.parametrize("op, make, shape", [
    (call("conv", "x, c -> 2", k=5), lambda: nn.Conv1d(1, 2, 5), (1, 1, 4)),
    (call("conv", "x, c -> 2", k=3, stride=2, pad="same"), lambda: nn.Conv1d(1, 2, 3, 2, "same"), (1, 1, 9)),
    (call("conv", "x, c -> 4", k=1, groups=3), lambda: nn.Conv1d(1, 4, 1, groups=3), (1, 1, 9)),
    (call("maxpool", "x", k=3, pad=2), lambda: nn.MaxPool1d(3, padding=2), (1, 1, 9)),
    (call("maxpool", "x", k=3, pad=2, dilation=2), lambda: nn.MaxPool1d(3, padding=2, dilation=2), (1, 1, 9)),
    (call("avgpool", "x", k=4), lambda: nn.AvgPool1d(4), (1, 1, 3)),
    (call("conv_transpose", "x, c -> 1", k=2, stride=2, output_padding=2),
     lambda: nn.ConvTranspose1d(1, 1, 2, 2, output_padding=2), (1, 1, 3)),
    (call("conv_transpose", "x, c -> 1", k=1, pad=1), lambda: nn.ConvTranspose1d(1, 1, 1, padding=1), (1, 1, 1)),
])
def test_archc_reports_an_error_where_torch_raises(op, make, shape):
    text = program([("n", shape[0]), ("c", shape[1]), ("l", shape[2])], op)
    assert isinstance(theirs(make, shape), Exception)
    assert isinstance(ours(text), ArchError)
