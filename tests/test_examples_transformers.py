"""The transformer examples (ViT-B/16, ConvNeXt-T, a transformer encoder) and
std.transformer, checked against their oracles: torchvision's state_dict keys
and measured figures (tests/conftest.py fixtures), and torch itself: the same
models written by hand in torch.nn, whose state_dicts and FlopCounterMode
counts the static figures must equal at other sizes and widths.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import archc
from archc import cli
from archc.analysis.report import analyze
from archc.api import compile_file
from archc.shapes import sizes as S
from archc.shapes.types import TensorType

from conftest import EXAMPLES
from torch_references import ConvNeXt, EncoderBlock

VIT = str(EXAMPLES / "vit_b_16.arch")
CONVNEXT = str(EXAMPLES / "convnext_tiny.arch")
ENCODER = str(EXAMPLES / "transformer_encoder.arch")
LAYER_ROWS = "transformer_encoder_layer(d_model=512,heads=8,d_ff=2048)"

# FlopCounterMode's ops for convolutions and linear layers; bmm is attention
# (nn.MultiheadAttention's products when it returns weights, or explicit q·kᵀ).
CONV_LINEAR_OPS = {"aten.convolution", "aten.mm", "aten.addmm"}


def keys_and_shapes(graph) -> dict[str, list[int]]:
    return {k: [int(n) for n in shape] for k, (shape, _) in graph.state_dict().items()}


def torch_keys_and_shapes(module: nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def torch_flops(module: nn.Module, *inputs: torch.Tensor) -> tuple[int, int]:
    """(conv + linear FLOPs, bmm FLOPs) that FlopCounterMode counts for one forward pass."""
    with FlopCounterMode(display=False) as counter:
        module(*inputs)
    counts = {str(op): n for op, n in counter.get_flop_counts().get("Global", {}).items()}
    unknown = set(counts) - CONV_LINEAR_OPS - {"aten.bmm"}
    assert not unknown, f"FlopCounterMode counted ops this test does not sort: {unknown}"
    return sum(counts.get(op, 0) for op in CONV_LINEAR_OPS), counts.get("aten.bmm", 0)


def output_shape(graph) -> list[int]:
    (out,) = graph.outputs
    t = graph.node(out).type
    assert isinstance(t, TensorType)
    return [int(n) for n in t.shape]


def sample_from(key: str) -> dict[str, int]:
    """'[2,3,128,128]' -> the free sizes of an image model."""
    n, _, h, w = json.loads(key)
    return {"batch": n, "H": h, "W": w}


# ---- ViT-B/16 ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def vit():
    return archc.load(VIT).check().graph


def test_vit_state_dict_is_torchvisions(vit, state_dict_keys) -> None:
    ref = state_dict_keys["vit_b_16"]
    sd = keys_and_shapes(vit)
    assert list(sd) == list(ref)  # same keys in the same order
    assert sd == ref
    assert not any(buffer for _, buffer in vit.state_dict().values())


def test_vit_params_and_flops(vit, figures) -> None:
    fig = figures["models"]["vit_b_16"]
    r = analyze(vit)
    assert r.params == fig["params"]
    assert r.buffers == fig["buffers_numel"]
    assert r.flops == fig["flops_conv_linear"]
    assert r.by_kind["attention"] == fig["flops_attention_matmuls"]
    assert output_shape(vit) == fig["output"]
    assert analyze(vit, "full").by_kind["attention"] == fig["flops_attention_matmuls"]


def test_vit_symbolic_flops_match_concrete() -> None:
    r = analyze(compile_file(VIT, symbolic=True).graph)
    assert S.free_names(r.flops) == {"batch", "H", "W"}
    for sizes in ({"batch": 1, "H": 224, "W": 224}, {"batch": 2, "H": 384, "W": 384},
                  {"batch": 3, "H": 160, "W": 224}):
        concrete = archc.load(VIT).flops(**sizes)
        assert S.evaluate(r.flops, sizes) == concrete.flops
        assert S.evaluate(r.by_kind["attention"], sizes) == concrete.by_kind["attention"]


def test_vit_rejects_an_image_that_is_not_whole_patches() -> None:
    with pytest.raises(archc.ArchError):
        archc.load(VIT).check(H=200)


# ---- ConvNeXt-T ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def convnext():
    return archc.load(CONVNEXT).check().graph


def test_convnext_state_dict_is_torchvisions(convnext, state_dict_keys) -> None:
    ref = state_dict_keys["convnext_tiny"]
    sd = keys_and_shapes(convnext)
    assert list(sd) == list(ref)
    assert sd == ref


def test_convnext_params_and_flops(convnext, figures) -> None:
    fig = figures["models"]["convnext_tiny"]
    r = analyze(convnext)
    assert r.params == fig["params"]
    assert r.buffers == fig["buffers_numel"]
    assert r.flops == fig["flops_conv_linear"]
    assert output_shape(convnext) == fig["output"]


def test_convnext_flops_at_other_sizes(figures) -> None:
    rows = figures["flops_conv_linear_at_other_sizes"]["convnext_tiny"]
    model = archc.load(CONVNEXT)
    symbolic = analyze(compile_file(CONVNEXT, symbolic=True).graph).flops
    for key, expected in rows.items():
        sizes = sample_from(key)
        assert model.flops(**sizes).flops == expected, key
        assert S.evaluate(symbolic, sizes) == expected, key


def test_convnext_stochastic_depth_grows_linearly(convnext) -> None:
    # torchvision: p = 0.1 * (index of the block over all stages) / (18 - 1)
    blocks = [m for m in convnext.modules.values() if m.name == "CNBlock"]
    assert len(blocks) == 18
    for i, m in enumerate(blocks):
        assert m.args["sd_prob"] == pytest.approx(0.1 * i / 17)


# ---- the transformer encoder --------------------------------------------------------


def test_encoder_layer_flops_match_figures(figures) -> None:
    model = archc.load(ENCODER)
    for key, expected in figures["flops_conv_linear_at_other_sizes"][LAYER_ROWS].items():
        n, length, d = json.loads(key)
        r = model.flops(num_layers=1, batch=n, L=length, d_model=d)
        assert r.flops == expected, key


def test_encoder_sequence_length_is_free() -> None:
    g = archc.load(ENCODER).check().graph
    assert g.sizes == {"batch": 1, "L": None}


def test_encoder_symbolic_flops_closed_form() -> None:
    g = compile_file(ENCODER, symbolic=True).graph
    torch_conv, full = analyze(g), analyze(g, "full")
    assert S.free_names(torch_conv.flops) == {"batch", "L"}
    model = archc.load(ENCODER)
    d, layers = 512, 6
    for n, length in ((1, 1), (1, 64), (2, 128), (3, 1000), (4, 77)):
        sizes = {"batch": n, "L": length}
        # 24·N·L·d² per layer in the linear layers (d_ff = 4d); 4·N·L²·d in attention.
        linear = layers * 24 * n * length * d * d
        attention = layers * 4 * n * length * length * d
        assert S.evaluate(torch_conv.flops, sizes) == linear == model.flops(**sizes).flops
        assert S.evaluate(torch_conv.by_kind["attention"], sizes) == attention
        assert S.evaluate(full.by_kind["attention"], sizes) == attention
        assert S.evaluate(full.flops, sizes) == model.flops("full", **sizes).flops
        assert S.evaluate(full.flops, sizes) > linear + attention  # plus norms, softmax, ...


def test_encoder_matches_torch_transformer_encoder() -> None:
    """Keys, shapes and FLOPs of torch.nn.TransformerEncoder at a small width."""
    d, heads, d_ff, layers, n, length = 64, 4, 96, 2, 2, 12
    ref = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, heads, d_ff, dropout=0.0, batch_first=True),
                                num_layers=layers, enable_nested_tensor=False)
    model = archc.load(ENCODER)
    sets = {"num_layers": layers, "d_model": d, "heads": heads, "d_ff": d_ff, "batch": n, "L": length}
    g = model.check(**sets).graph
    assert keys_and_shapes(g) == torch_keys_and_shapes(ref)
    r = analyze(g)
    assert r.params == sum(p.numel() for p in ref.parameters())
    linear, _ = torch_flops(ref, torch.randn(n, length, d))
    assert r.flops == linear
    assert output_shape(g) == [n, length, d]


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_variants_have_torchs_keys(norm_first, activation) -> None:
    src = f"""import std.transformer
block T() {{
  in x: [batch = 2, tok = 5, chan = 32]
  layer = TransformerEncoderLayer(x, 32, 4, 48, norm_first = {str(norm_first).lower()},
                                  activation = "{activation}")
  out layer
}}"""
    g = archc.loads(src, "t.arch").check().graph
    ref = nn.TransformerEncoderLayer(32, 4, 48, activation=activation, norm_first=norm_first, batch_first=True)
    assert {f"layer.{k}": v for k, v in torch_keys_and_shapes(ref).items()} == keys_and_shapes(g)
    ops = [n.op.value for n in g]
    assert ops.index("layernorm") < ops.index("multihead_attention") if norm_first else \
        ops.index("multihead_attention") < ops.index("layernorm")
    assert activation in ops


# ---- std.transformer: MultiHeadAttention from parts ---------------------------------


class PartsAttention(nn.Module):
    """The torch twin of std.transformer's MultiHeadAttention, with explicit products."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, dim = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(n, length, self.heads, dim // self.heads).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(dim // self.heads)
        a = torch.matmul(F.softmax(scores, dim=-1), v)
        return self.out_proj(a.transpose(1, 2).reshape(n, length, dim))


def _attention_program(block: str, dim: int, heads: int, n: int, length: int) -> str:
    call = (f"attn = MultiHeadAttention(x, {dim}, {heads})" if block == "parts"
            else f"attn = multihead_attention(x, heads = {heads})")
    return f"""import std.transformer
block T() {{
  in x: [batch = {n}, tok = {length}, chan = {dim}]
  {call}
  out attn
}}"""


@settings(max_examples=12, deadline=None)
@given(head_dim=st.integers(1, 8), heads=st.integers(1, 6), n=st.integers(1, 3), length=st.integers(1, 9))
def test_attention_from_parts_equals_torch_and_the_fused_op(head_dim, heads, n, length) -> None:
    dim = head_dim * heads
    parts = archc.loads(_attention_program("parts", dim, heads, n, length), "t.arch").check().graph
    fused = archc.loads(_attention_program("fused", dim, heads, n, length), "t.arch").check().graph
    ref = PartsAttention(dim, heads)
    assert keys_and_shapes(parts) == {f"attn.{k}": v for k, v in torch_keys_and_shapes(ref).items()}
    assert output_shape(parts) == output_shape(fused) == [n, length, dim]
    linear, attention = torch_flops(ref, torch.randn(n, length, dim))
    rp, rf = analyze(parts), analyze(fused)
    assert rp.flops == rf.flops == linear
    assert rp.by_kind["attention"] == rf.by_kind["attention"] == attention
    assert rp.params == rf.params == sum(p.numel() for p in ref.parameters())


def test_attention_from_parts_rejects_indivisible_heads() -> None:
    with pytest.raises(archc.ArchError):
        archc.loads(_attention_program("parts", 10, 3, 1, 4), "t.arch").check()


# ---- small ViT and ConvNeXt against hand-written torchvision twins --------------------


class TorchViT(nn.Module):
    """torchvision's VisionTransformer, reduced to what its state_dict and FLOPs depend on."""

    def __init__(self, image: int, patch: int, layers: int, heads: int, dim: int, mlp_dim: int, classes: int):
        super().__init__()
        self.patch = patch
        self.conv_proj = nn.Conv2d(3, dim, patch, patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.encoder = nn.Module()
        self.encoder.pos_embedding = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, dim))
        self.encoder.layers = nn.Sequential(OrderedDict(
            (f"encoder_layer_{i}", EncoderBlock(heads, dim, mlp_dim)) for i in range(layers)))
        self.encoder.ln = nn.LayerNorm(dim, eps=1e-6)
        self.heads = nn.Sequential(OrderedDict(head=nn.Linear(dim, classes)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.encoder.ln(self.encoder.layers(x + self.encoder.pos_embedding))
        return self.heads(x[:, 0])


def test_small_vit_matches_torch() -> None:
    image, patch, layers, heads, dim, mlp_dim, classes, n = 32, 8, 2, 4, 32, 64, 10, 2
    g = archc.load(VIT).check(H=image, W=image, batch=n, patch=patch, num_layers=layers, num_heads=heads,
                              dim=dim, mlp_dim=mlp_dim, num_classes=classes).graph
    ref = TorchViT(image, patch, layers, heads, dim, mlp_dim, classes)
    assert list(keys_and_shapes(g).items()) == list(torch_keys_and_shapes(ref).items())
    x = torch.randn(n, 3, image, image)
    assert output_shape(g) == list(ref(x).shape)
    linear, _ = torch_flops(ref, x)
    r = analyze(g)
    assert r.flops == linear
    assert r.by_kind["attention"] == layers * 4 * n * ((image // patch) ** 2 + 1) ** 2 * dim


def test_small_convnext_matches_torch() -> None:
    depths, dims, classes, n, h, w = [1, 2, 1, 1], [8, 16, 24, 32], 7, 2, 64, 96
    g = archc.load(CONVNEXT).check(H=h, W=w, batch=n, depths=depths, dims=dims, num_classes=classes).graph
    ref = ConvNeXt(depths, dims, classes)
    assert list(keys_and_shapes(g).items()) == list(torch_keys_and_shapes(ref).items())
    x = torch.randn(n, 3, h, w)
    assert output_shape(g) == list(ref(x).shape)
    linear, _ = torch_flops(ref, x)
    assert analyze(g).flops == linear


# ---- the command line ---------------------------------------------------------------


@pytest.mark.parametrize("path", [VIT, CONVNEXT, ENCODER], ids=lambda p: p.rsplit("/", 1)[-1])
def test_cli_exits_zero(path, capsys) -> None:
    for argv in (["check", path], ["flops", path], ["flops", path, "--symbolic", "--json"],
                 ["flops", path, "--convention", "full", "--depth", "1"]):
        assert cli.main(argv) == 0, argv
    capsys.readouterr()


def test_cli_encoder_json(capsys) -> None:
    assert cli.main(["flops", ENCODER, "--set", "num_layers=1", "--set", "L=64", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["entry"] == "TransformerEncoder"
    assert data["sizes"] == {"batch": 1, "L": 64}
    assert data["flops"] == 402653184
    assert cli.main(["flops", ENCODER, "--symbolic", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["flops"] is None  # L has no value
    assert set(data["flops_expr"].replace("*", " ").split()) == {"37748736", "L", "batch"}


# ---- std.transformer details and the language features the examples lean on ---------


def test_mlp_numbers_its_steps_like_torchvision() -> None:
    src = """import std.transformer
block T() {
  in x: [batch = 2, tok = 3, chan = 8]
  mlp = MLP(x, 8, 32, 0.1)
  out mlp
}"""
    g = archc.loads(src, "t.arch").check().graph
    assert keys_and_shapes(g) == {"mlp.0.weight": [32, 8], "mlp.0.bias": [32],
                                  "mlp.3.weight": [8, 32], "mlp.3.bias": [8]}
    steps = {m.path: m.name for m in g.modules.values() if m.parent == "mlp"}
    assert steps == {"mlp.0": "linear", "mlp.1": "gelu", "mlp.2": "dropout", "mlp.3": "linear",
                     "mlp.4": "dropout"}


def test_encoder_layer_rejects_an_unknown_activation() -> None:
    src = """import std.transformer
block T() {
  in x: [batch = 2, tok = 3, chan = 16]
  layer = TransformerEncoderLayer(x, 16, 4, activation = "silu")
  out layer
}"""
    with pytest.raises(archc.ArchError, match="activation"):
        archc.loads(src, "t.arch").check()


def test_keywords_as_names_where_the_grammar_allows() -> None:
    # `block` after an expression statement names a layer (torchvision's CNBlock.block),
    # `seq = tok` is attention's argument, and 0.1 * 0 is 0.0, not a division by zero.
    src = """block T(p = 0.1) {
  in x: [batch = 2, tok = 3, chan = 8]
  zero = p * 0
  block = seq(x) {
    linear(chan -> 8)
  }
  a = attention(block, block, block, seq = tok, chan = chan, scale = zero + 1.0)
  out a
}"""
    g = archc.loads(src, "t.arch").check().graph
    assert list(keys_and_shapes(g)) == ["block.0.weight", "block.0.bias"]
    assert [n.attrs.get("scale") for n in g if n.op.value == "attention"] == [1.0]
