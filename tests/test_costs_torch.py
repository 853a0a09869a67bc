"""Static costs against torch: parameters, buffers, state_dict keys and FLOPs.

For each small .arch program the test writes the equivalent torch module by
hand, with its children named as the .arch bindings are, and asserts that
archc's parameter count equals `sum(p.numel() for p in module.parameters())`,
that the state_dicts have the same keys and shapes, and that archc's FLOPs in
the torch convention equal what `FlopCounterMode` counts on a real run.

Attention is the one place the conventions part: FlopCounterMode counts
nothing for `F.scaled_dot_product_attention` on CPU, nor for
`nn.MultiheadAttention`'s fused inference path, so archc reports the two
attention products as their own kind ("attention") and leaves them out of the
torch total. Those are checked against the products written out by hand.
"""

from __future__ import annotations

import pathlib

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import archc  # noqa: E402

from torch_references import UNet  # noqa: E402

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


class Wrap(nn.Module):
    """A torch module whose children carry the names of the .arch bindings."""

    def __init__(self, forward, **children: nn.Module):
        super().__init__()
        for name, child in children.items():
            self.add_module(name, child)
        self._forward = forward

    def forward(self, *xs):
        return self._forward(self, *xs)


def counted(fn, *xs) -> tuple[int, dict[str, int]]:
    """FlopCounterMode's total and its per-operator counts for one call."""
    with FlopCounterMode(display=False) as counter:
        fn(*xs)
    return counter.get_total_flops(), {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}


def state_dict_shapes(graph) -> dict[str, tuple[int, ...]]:
    return {k: tuple(int(s) for s in shape) for k, (shape, _) in graph.state_dict().items()}


def torch_state_dict_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def assert_costs_match(text: str, module: nn.Module, *shapes: tuple[int, ...], **sets) -> None:
    m = archc.loads(text)
    rep = m.flops(**sets)
    graph = rep.graph
    xs = [torch.randn(*s) for s in shapes]
    with torch.no_grad():
        total, per_op = counted(module, *xs)
        y = module(*xs)
    out = graph.node(graph.outputs[0]).type
    assert tuple(int(s) for s in out.shape) == tuple(y.shape)
    assert rep.params == sum(p.numel() for p in module.parameters())
    assert rep.buffers == sum(b.numel() for b in module.buffers())
    assert state_dict_shapes(graph) == torch_state_dict_shapes(module)
    assert rep.flops == total, f"archc {rep.flops} vs FlopCounterMode {total} {per_op}"


def block(ins: str, body: str) -> str:
    lines = [f"  in {x}" for x in ins.split(";")] + [f"  {b}" for b in body.strip().splitlines()]
    return "block T() {\n" + "\n".join(lines) + "\n}\n"


# ---- contractions ------------------------------------------------------------------------------

CASES = {
    "linear_last_axis": (
        block("x: [b = 2, t = 5, c = 8]", "fc = linear(x, c -> 6)\nout fc"),
        lambda: Wrap(lambda m, x: m.fc(x), fc=nn.Linear(8, 6)), [(2, 5, 8)]),
    "linear_middle_axis": (
        block("x: [b = 2, c = 8, t = 5]", "fc = linear(x, c -> 6, bias = false)\nout fc"),
        lambda: Wrap(lambda m, x: m.fc(x.transpose(1, 2)).transpose(1, 2), fc=nn.Linear(8, 6, bias=False)),
        [(2, 8, 5)]),
    "linear_rename_then_back": (
        block("x: [b = 3, c = 8]", "up = linear(x, c -> hid = 32)\ndown = linear(relu(up), hid -> c = 8)\nout down"),
        lambda: Wrap(lambda m, x: m.down(F.relu(m.up(x))), up=nn.Linear(8, 32), down=nn.Linear(32, 8)),
        [(3, 8)]),
    "einsum_batched_spec": (
        block("a: [n = 3, i = 4, j = 5]; b: [n = 3, j = 5, k = 6]",
              'y = einsum(a, b, spec = "n i j, n j k -> n i k")\nout y'),
        lambda: Wrap(lambda m, a, b: torch.einsum("nij,njk->nik", a, b)), [(3, 4, 5), (3, 5, 6)]),
    "einsum_over": (
        block("a: [i = 4, j = 5]; b: [j = 5, k = 6]", "y = einsum(a, b, over = [j])\nout y"),
        lambda: Wrap(lambda m, a, b: a @ b), [(4, 5), (5, 6)]),
    "einsum_two_contracted_axes": (
        block("a: [b = 2, h = 3, i = 4, d = 5]; c: [b = 2, h = 3, j = 6, d = 5]",
              'y = einsum(a, c, spec = "b h i d, b h j d -> b h i j")\nout y'),
        lambda: Wrap(lambda m, a, c: torch.einsum("bhid,bhjd->bhij", a, c)), [(2, 3, 4, 5), (2, 3, 6, 5)]),
    "conv_transpose_grouped": (
        block("x: [n = 2, c = 4, h = 5, w = 6]",
              "up = conv_transpose(x, c -> 6, k = 3, stride = 2, pad = 1, output_padding = 1, groups = 2)\n"
              "out up"),
        lambda: Wrap(lambda m, x: m.up(x), up=nn.ConvTranspose2d(4, 6, 3, 2, 1, output_padding=1, groups=2)),
        [(2, 4, 5, 6)]),
    "conv_transpose_1d_dilated": (
        block("x: [n = 1, c = 3, l = 7]", "up = conv_transpose(x, c -> 2, k = 3, stride = 3, dilation = 2, "
              "bias = false)\nout up"),
        lambda: Wrap(lambda m, x: m.up(x), up=nn.ConvTranspose1d(3, 2, 3, 3, dilation=2, bias=False)),
        [(1, 3, 7)]),
    "conv_grouped": (
        block("x: [n = 2, c = 4, h = 7, w = 6]", "conv1 = conv(x, c -> 8, k = 3, pad = 1, groups = 2)\nout conv1"),
        lambda: Wrap(lambda m, x: m.conv1(x), conv1=nn.Conv2d(4, 8, 3, padding=1, groups=2)), [(2, 4, 7, 6)]),
    "conv_depthwise": (
        block("x: [n = 1, c = 6, h = 9, w = 9]",
              "dw = conv(x, c -> 6, k = 3, stride = 2, pad = 1, groups = 6, bias = false)\n"
              "pw = conv(dw, c -> 10, k = 1)\nout pw"),
        lambda: Wrap(lambda m, x: m.pw(m.dw(x)), dw=nn.Conv2d(6, 6, 3, 2, 1, groups=6, bias=False),
                     pw=nn.Conv2d(6, 10, 1)), [(1, 6, 9, 9)]),
    "conv_depth_multiplier_3d": (
        block("x: [n = 1, c = 3, d = 4, h = 5, w = 6]",
              "conv1 = conv(x, c -> 6, k = [1, 3, 3], pad = [0, 1, 1], groups = 3)\nout conv1"),
        lambda: Wrap(lambda m, x: m.conv1(x), conv1=nn.Conv3d(3, 6, (1, 3, 3), padding=(0, 1, 1), groups=3)),
        [(1, 3, 4, 5, 6)]),
    # ---- normalisation: parameters and buffers, no FLOPs in the torch convention ----
    "batchnorm": (
        block("x: [n = 2, c = 4, h = 3, w = 5]", "bn = batchnorm(x)\nout bn"),
        lambda: Wrap(lambda m, x: m.bn(x), bn=nn.BatchNorm2d(4).eval()), [(2, 4, 3, 5)]),
    "batchnorm_1d_untracked": (
        block("x: [n = 3, c = 4]", "bn = batchnorm(x, track_running_stats = false)\nout bn"),
        lambda: Wrap(lambda m, x: m.bn(x), bn=nn.BatchNorm1d(4, track_running_stats=False)), [(3, 4)]),
    "layernorm_last_axis": (
        block("x: [b = 2, t = 5, c = 8]", "ln = layernorm(x)\nfc = linear(ln, c -> 4)\nout fc"),
        lambda: Wrap(lambda m, x: m.fc(m.ln(x)), ln=nn.LayerNorm(8), fc=nn.Linear(8, 4)), [(2, 5, 8)]),
    "layernorm_two_axes_no_bias": (
        block("x: [n = 2, c = 3, h = 4, w = 5]", "ln = layernorm(x, over = [h, w], bias = false)\nout ln"),
        lambda: Wrap(lambda m, x: m.ln(x), ln=nn.LayerNorm([4, 5], bias=False)), [(2, 3, 4, 5)]),
    "groupnorm": (
        block("x: [n = 2, c = 6, h = 4, w = 4]", "gn = groupnorm(x, groups = 3)\nout gn"),
        lambda: Wrap(lambda m, x: m.gn(x), gn=nn.GroupNorm(3, 6)), [(2, 6, 4, 4)]),
    "rmsnorm": (
        block("x: [b = 2, t = 3, c = 8]", "rms = rmsnorm(x)\nout rms"),
        lambda: Wrap(lambda m, x: m.rms(x), rms=nn.RMSNorm(8)), [(2, 3, 8)]),
    "conv_bn_relu_seq": (
        block("x: [n = 1, c = 3, h = 8, w = 8]",
              "stem = seq(x) {\n  conv(c -> 8, k = 3, stride = 2, pad = 1, bias = false)\n"
              "  batchnorm()\n  relu()\n}\nout stem"),
        lambda: Wrap(lambda m, x: m.stem(x), stem=nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU()).eval()), [(1, 3, 8, 8)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_costs_match_flop_counter(name):
    text, make, shapes = CASES[name]
    assert_costs_match(text, make(), *shapes)


def test_norms_cost_nothing_in_the_torch_convention_but_count_in_full():
    text, make, shapes = CASES["groupnorm"]
    m = archc.loads(text)
    assert m.flops().flops == 0
    # full: 4 per element plus 2 for the affine weight and bias (docs in shapes/costs.py)
    assert m.flops("full").flops == 6 * 2 * 6 * 4 * 4


# ---- attention -----------------------------------------------------------------------------------


ATTENTION = {
    # q, k, v of one shape: the default CPU kernel is the fused (flash) one, which FlopCounterMode
    # does not count; archc's torch total leaves the products out in the same way.
    "fused": (block("q: [b = 2, h = 3, tok = 4, d = 8]; k: [b = 2, h = 3, tok = 6, d = 8]; "
                    "v: [b = 2, h = 3, tok = 6, d = 8]", "y = attention(q, k, v, seq = tok, chan = d)\nout y"),
              [(2, 3, 4, 8), (2, 3, 6, 8), (2, 3, 6, 8)]),
    # v wider than q and k: torch falls back to the math kernel, whose bmm's it does count.
    "math": (block("q: [b = 2, tok = 4, d = 8]; k: [b = 2, tok = 6, d = 8]; v: [b = 2, tok = 6, d = 10]",
                   "y = attention(q, k, v, seq = tok, chan = d)\nout y"),
             [(2, 4, 8), (2, 6, 8), (2, 6, 10)]),
}


@pytest.mark.parametrize("name", sorted(ATTENTION))
def test_attention_products_are_their_own_kind(name):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    text, shapes = ATTENTION[name]
    rep = archc.loads(text).flops()
    q, k, v = (torch.randn(*s) for s in shapes)
    lq, lk, dk, dv = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    rows = q.numel() // (lq * dk)  # batch x heads

    def by_hand(q, k, v):
        scores = (q @ k.transpose(-1, -2)) * dk ** -0.5
        return scores.softmax(-1) @ v

    products, per_op = counted(by_hand, q, k, v)
    assert set(per_op) == {"aten.bmm"}
    assert products == 2 * rows * lq * lk * (dk + dv)  # Q·Kᵀ and A·V at 2 per multiply-add
    assert rep.by_kind["attention"] == products
    assert torch.allclose(F.scaled_dot_product_attention(q, k, v), by_hand(q, k, v), atol=1e-5)
    with sdpa_kernel(SDPBackend.MATH):
        assert counted(F.scaled_dot_product_attention, q, k, v)[0] == products
    default, _ = counted(F.scaled_dot_product_attention, q, k, v)
    assert default == (0 if name == "fused" else products)
    assert rep.flops == 0  # the torch total holds contractions other than attention: none here
    assert tuple(rep.graph.node(rep.graph.outputs[0]).type.shape) == (*q.shape[:-1], dv)


@pytest.mark.parametrize("lq, lk", [(5, 5), (3, 7)])
def test_multihead_attention_matches_nn_multihead_attention(lq, lk):
    b, d, heads = 2, 16, 4
    if lq == lk:
        text = block(f"x: [b = {b}, tok = {lq}, d = {d}]", f"attn = multihead_attention(x, heads = {heads})\nout attn")
    else:
        text = block(f"q: [b = {b}, tok = {lq}, d = {d}]; kv: [b = {b}, tok = {lk}, d = {d}]",
                     f"attn = multihead_attention(q, kv, kv, heads = {heads})\nout attn")
    rep = archc.loads(text).flops()
    mha = nn.MultiheadAttention(d, heads, batch_first=True).eval()
    q, kv = torch.randn(b, lq, d), torch.randn(b, lk, d)

    def run(q, kv):  # with grad on: under no_grad the fused inference path counts nothing at all
        return mha(q, kv, kv, need_weights=False)[0]

    total, per_op = counted(run, q, kv)
    assert rep.params == sum(p.numel() for p in mha.parameters())
    assert state_dict_shapes(rep.graph) == {f"attn.{k}": s for k, s in torch_state_dict_shapes(mha).items()}
    # FlopCounterMode sees the four projections and none of the attention products.
    assert total == rep.by_kind["linear"] == rep.flops == 2 * (b * lq * d * d * 2 + b * lk * d * d * 2)
    assert "aten.bmm" not in per_op
    assert rep.by_kind["attention"] == 2 * 2 * b * lq * lk * d  # Q·Kᵀ and A·V summed over heads

    def by_hand(q, kv):  # the same computation with the products written out
        w, bias = mha.in_proj_weight, mha.in_proj_bias
        qp = F.linear(q, w[:d], bias[:d])
        kp = F.linear(kv, w[d:2 * d], bias[d:2 * d])
        vp = F.linear(kv, w[2 * d:], bias[2 * d:])

        def split(t):
            return t.view(b, -1, heads, d // heads).transpose(1, 2)

        a = (split(qp) @ split(kp).transpose(-1, -2) * (d // heads) ** -0.5).softmax(-1)
        o = (a @ split(vp)).transpose(1, 2).reshape(b, lq, d)
        return mha.out_proj(o)

    with torch.no_grad():
        assert torch.allclose(by_hand(q, kv), run(q, kv), atol=1e-5)
    hand_total, hand_ops = counted(by_hand, q, kv)
    assert hand_ops["aten.bmm"] == rep.by_kind["attention"]
    assert hand_total == rep.by_kind["linear"] + rep.by_kind["attention"]


# ---- the U-Net example -----------------------------------------------------------------------------


def test_unet_example_matches_a_torch_unet():
    rep = archc.load(str(EXAMPLES / "unet.arch")).flops(H=64, W=96)
    with torch.device("meta"):  # shapes and FLOPs only: no memory, no arithmetic
        net = UNet().eval()
        x = torch.randn(1, 1, 64, 96)
    with torch.no_grad():
        total, _ = counted(net, x)
        y = net(x)
    assert tuple(int(s) for s in rep.graph.node(rep.graph.outputs[0]).type.shape) == tuple(y.shape) == (1, 2, 64, 96)
    # 31,036,546 for one input channel; with three, 31,037,698: the figure usually quoted for U-Net.
    assert rep.params == sum(p.numel() for p in net.parameters()) == 31_036_546
    assert state_dict_shapes(rep.graph) == torch_state_dict_shapes(net)
    assert rep.flops == total
