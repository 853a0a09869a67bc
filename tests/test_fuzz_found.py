"""Cases benchmarks/fuzz.py found (seed 7, 3,000 cases): each was a crash or a module that failed at run time,
and is now a located error."""

from __future__ import annotations

import pytest
import torch

import archc
from archc.diagnostics import ArchError


def test_split_into_a_free_number_of_parts_is_an_error_not_a_crash() -> None:
    src = ("size H = 8\nblock B() {\n  in ids: i64[n = 2, h = H]\n  layer = split(ids, axis = h, parts = H)\n"
           "  out layer\n}\n")
    m = archc.loads(src, "split.arch")
    assert len(m.check().graph.node(m.check().graph.outputs[0]).type.items) == 8  # H has a value: 8 parts
    with pytest.raises(ArchError) as e:  # symbolic: the number of tensors would depend on H
        m.check(symbolic=True)
    assert "parts is how many tensors split makes" in str(e.value)
    assert e.value.diagnostics[0].span.line == 4


@pytest.mark.parametrize("args,what", [("num = 0, dim = 4", "num"), ("num = 5, dim = 0", "dim")])
def test_an_empty_embedding_table_is_an_error(args: str, what: str) -> None:
    src = f"block B() {{\n  in ids: i64[n = 2, h = 8]\n  layer = embedding(ids, {args})\n  out layer\n}}\n"
    with pytest.raises(ArchError) as e:
        archc.loads(src, "emb.arch").check()
    assert f"{what} must be at least 1" in str(e.value) and e.value.diagnostics[0].span.line == 3


def test_upsample_by_a_size_builds() -> None:
    """(seed 11, then seed 101) `upsample(x, scale = H)` checks (H has a value); build once refused it (torch's
    scale_factor is a number): forward reads H off the input."""
    src = ("size H = 8\nblock B() {\n  in x: [n = 2, c = 4, h = H, w = H]\n"
           "  layer = upsample(x, scale = H, align_corners = true)\n  out layer\n}\n")
    m = archc.loads(src, "up.arch")
    m.check()
    assert "F.interpolate(x, scale_factor=H, mode='nearest')" in m.torch_source()
    for h in (3, 8):
        assert m.torch()()(torch.randn(2, 4, h, h)).shape == (2, 4, h * h, h * h)


@pytest.mark.parametrize("call,at", [("attention(x, x, x, seq = h, chan = h)", "chan = h"),
                                     ("multihead_attention(x, heads = 1, seq = h)", "seq = h")])
def test_attention_over_one_axis_for_seq_and_chan_is_an_error(call: str, at: str) -> None:
    """Found by the 100,000-case run (op program 8231): checked, then torch's movedim refused the repeated dim."""
    src = f"block B() {{\n  in x: [n = 2, c = 4, h = 8]\n  layer = {call}\n  out layer\n}}\n"
    with pytest.raises(ArchError) as e:
        archc.loads(src, "attn.arch").check()
    d = e.value.diagnostics[0]
    assert "seq and chan are one axis, 'h'" in d.message and (d.span.line, d.span.col) == (3, 11 + call.index(at))


def test_einsum_of_two_dtypes_is_an_error_not_a_failing_module() -> None:
    """Found by the 100,000-case run (FNO-2D mutant 3012, a complex weight declared real): checked, built,
    then torch.einsum refused c64 with f32 ('expected m1 and m2 to have the same dtype')."""
    src = ("block B() {\n  in x: c64[n = 2, c = 4]\n  param w: [c = 4, d = 3]\n"
           "  y = einsum(x, w, spec = \"n c, c d -> n d\")\n  out y\n}\n")
    with pytest.raises(ArchError) as e:
        archc.loads(src, "mix.arch").check()
    d = e.value.diagnostics[0]
    assert "the operands must have one dtype" in d.message and "c64[n=2, c=4]" in d.message and d.span.line == 4


def test_an_entry_parameter_named_like_an_axis_must_be_a_size() -> None:
    """Found by the 100,000-case run (MobileNetV2 mutant 34004: `batch = 0.2` a parameter of the entry, and
    `in x: [batch, ...]` took 0.2 as the axis' size): archc check crashed printing the legend."""
    src = "block B(batch = 0.2) {\n  in x: [batch, c = 4]\n  out x\n}\n"
    with pytest.raises(ArchError) as e:
        archc.loads(src, "p.arch").check()
    d = e.value.diagnostics[0]
    assert "the size of axis 'batch' (the parameter 'batch') must be an integer size" in d.message
    assert (d.span.line, d.span.col) == (2, 10)
    assert archc.loads(src.replace("0.2", "3"), "p.arch").check().graph is not None


def test_a_non_finite_block_parameter_default_is_valid_python() -> None:
    """Found by the 100,000-case run (GE-ResNet-50 mutant 51798: `stride = 11e999` as a default that every
    call overrides): the generated constructor said `stride: int = inf`, a NameError when imported."""
    src = ("block Inner(k, stride = 1e999) {\n  in x: [n, c]\n  fc = linear(x, c -> k)\n  out fc\n}\n"
           "block B() {\n  in x: [n = 2, c = 4]\n  a = Inner(x, 3, stride = 1)\n  b = Inner(x, 5, stride = 2)\n"
           "  out a\n}\n")
    source = archc.loads(src, "inf.arch").torch_source()
    compile(source, "gen.py", "exec")
    assert "= float('inf')" in source and "= inf" not in source


def test_multihead_attention_needs_one_batch_in_q_k_and_v() -> None:
    """Found by the second 100,000-case run (op program 6973): v with h = 1 where q and k have h = 8 (a batch
    axis, seq = n) checked, then nn.MultiheadAttention refused the shapes."""
    src = ("block B() {\n  in x: [n = 2, c = 4, h = 8, w = 8]\n  in z: [n = 2, c = 4, h = 1, w = 8]\n"
           "  layer = multihead_attention(x, x, z, heads = 2, seq = n)\n  out layer\n}\n")
    with pytest.raises(ArchError) as e:
        archc.loads(src, "mha.arch").check()
    assert "axis 'h' of q, k and v" in str(e.value) and e.value.diagnostics[0].span.line == 4


def test_an_entry_input_axis_of_size_zero_is_located() -> None:
    """(seed 139, FasterNet mutant 26944) `in x: [chan = 0]` checked, and the built module failed in torch (a
    conv of 0 channels): an axis's size is positive, as everywhere else."""
    with pytest.raises(ArchError) as e:
        archc.loads("block B() {\n  in x: [b = 1, chan = 0, h = 4]\n  out x\n}\n").check()
    d = e.value.diagnostics[0]
    assert "the size of axis 'chan' must be at least 1, got 0" in d.message and (d.span.line, d.span.col) == (2, 24)
