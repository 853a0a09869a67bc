"""multihead_attention on axes in any layout builds (issue 11: what checks also builds): the generated
MultiheadAttentionAt moves q, k and v into nn.MultiheadAttention's [batch, seq, chan] and the output back,
with the same state_dict; outputs equal torch's module on the permuted inputs."""

from __future__ import annotations

import pathlib

import pytest

import archc

torch = pytest.importorskip("torch")

LAYOUTS = {  # axes of the input: a batch b, a second batch g, the sequence tok, the features c
    "channels first": ["b", "c", "tok"],
    "sequence last, batch last": ["c", "tok", "b"],
    "two batch axes apart": ["b", "tok", "g", "c"],
    "features between": ["g", "c", "b", "tok"],
    "unbatched, features first": ["c", "tok"],
}
SIZES = {"b": 2, "g": 3, "c": 8, "tok": 5}


def _module(axes: list[str], kind: str) -> tuple[archc.Model, str]:
    shape = ", ".join(f"{n} = {SIZES[n]}" for n in axes)
    inputs = {"self": "  in x: [{s}]\n", "kv": "  in x: [{s}]\n  in m: [{s}]\n",
              "three": "  in x: [{s}]\n  in m: [{s}]\n  in n: [{s}]\n"}[kind].format(s=shape)
    args = {"self": "x", "kv": "x, m, m", "three": "x, m, n"}[kind]
    src = (f"block Net() {{\n{inputs}  att = multihead_attention({args}, heads = 2, seq = tok, chan = c)\n"
           "  out att\n}\n")
    return archc.loads(src, "mha.arch"), src


@pytest.mark.parametrize("kind", ["self", "kv", "three"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_any_layout_equals_torch_on_permuted_inputs(layout: str, kind: str) -> None:
    axes = LAYOUTS[layout]
    model, _ = _module(axes, kind)
    source = model.torch_source()
    assert "MultiheadAttentionAt(8, 2, dims=" in source
    torch.manual_seed(0)
    net = model.torch()().eval()
    n_in = {"self": 1, "kv": 2, "three": 3}[kind]
    xs = [torch.randn(*(SIZES[a] for a in axes)) for _ in range(n_in)]
    others = [a for a in axes if a not in ("tok", "c")]
    order = [axes.index(a) for a in others] + [axes.index("tok"), axes.index("c")]

    def to_torch(t: torch.Tensor) -> torch.Tensor:
        t = t.permute(order)
        return t.reshape(-1, SIZES["tok"], SIZES["c"])

    ref = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    ref.load_state_dict(net.att.state_dict(), strict=True)
    q, k, v = (xs * 3)[:3] if kind == "self" else (xs[0], xs[1], xs[1]) if kind == "kv" else xs
    want = ref(to_torch(q), to_torch(k), to_torch(v), need_weights=False)[0]
    want = want.reshape(*(SIZES[a] for a in others), SIZES["tok"], SIZES["c"])
    want = want.permute([order.index(d) for d in range(len(order))])
    with torch.no_grad():
        got = net(*xs)
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-6), (got - want).abs().max()


def test_torch_layouts_keep_torch_module() -> None:
    model, _ = _module(["b", "tok", "c"], "self")
    assert "nn.MultiheadAttention(8, 2, batch_first=True)" in model.torch_source()


def test_the_triton_target_agrees() -> None:
    """The Triton target keeps the moved attention a torch call beside its kernels (TRITON_INTERPRET=1)."""
    from archc.codegen.torch.generate import load_class
    model = archc.load(str(pathlib.Path(__file__).parent / "data" / "memory" / "mha_layouts.arch"))
    eager = model.torch()().eval()
    fused = load_class(model.triton_module().generated, "archc_triton_mha_layouts")().eval()
    fused.load_state_dict(eager.state_dict(), strict=True)
    g = model.check().graph
    xs = [torch.randn(*[int(a.size) for a in g.node(i).type.axes]) for i in g.inputs]
    with torch.no_grad():
        for want, got in zip(eager(*xs), fused(*xs)):
            assert torch.allclose(want, got, atol=1e-5)
