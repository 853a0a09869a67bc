"""Code generation accepts every program `archc check` accepts, even where torch needs a free size of the
program when the module is built (a layer's argument, a number of outputs): the entry takes the size as a
constructor argument, or is built for the sizes the check used, and forward checks its input has them."""

from __future__ import annotations

import pytest
import torch

import archc
from archc.codegen.torch import generate, load_class
from archc.dsl.templates import Templates

HEADS = """size N = 2, L = 6
block Net() {
  in x: [n = N, l = L, c = 12]
  attn = multihead_attention(x, heads = L // 3, seq = l, chan = c)
  out attn
}
"""


def test_a_layer_argument_from_a_free_size_makes_it_a_constructor_argument() -> None:
    """`heads = L // 3`: nn.MultiheadAttention needs it when built; L is an argument, checked in forward."""
    source = archc.loads(HEADS).torch_source()
    assert "def __init__(self, L: int = 6)" in source and "(12, L // 3" in source
    net_class = archc.loads(HEADS).torch()
    net = net_class()
    assert net(torch.randn(2, 6, 12)).shape == (2, 6, 12)
    with pytest.raises(ValueError, match=r"Net is built for L = 6, but x's axis 'l' is 9: construct it with L=9"):
        net(torch.randn(2, 9, 12))
    other = net_class(L=12)
    assert other.attn.num_heads == 4
    assert other(torch.randn(2, 12, 12)).shape == (2, 12, 12)


def test_a_specialised_entry_checks_the_size_it_is_built_for() -> None:
    """The same, in a class with every value built in (generic classes off)."""
    gen = generate(Templates(archc.loads(HEADS).program), generic=False)
    assert "def __init__(self) -> None" in gen.text and gen.built_for is None
    net = load_class(gen)()
    assert net(torch.randn(2, 6, 12)).shape == (2, 6, 12)
    with pytest.raises(ValueError, match=r"build it again with `archc build --set L=9`"):
        net(torch.randn(2, 9, 12))


def test_an_upsample_scale_that_is_a_free_size() -> None:
    """In forward, F.interpolate reads the size off the input; nn.Upsample (a `seq` step) takes it as an argument."""
    src = "size H = 4\nblock Net() {\n  in z: [n = 2, c = 3, h = 1, w = H]\n  out upsample(z, scale = H)\n}\n"
    net = archc.loads(src).torch()()
    assert "scale_factor=H" in archc.loads(src).torch_source()
    for w in (4, 5):
        assert net(torch.randn(2, 3, 1, w)).shape == (2, 3, w, w * w)
    steps = src.replace("out upsample(z, scale = H)", "out seq(z) {\n    upsample(scale = H)\n    relu()\n  }")
    net_class = archc.loads(steps).torch()
    assert net_class()(torch.randn(2, 3, 1, 4)).shape == (2, 3, 4, 16)
    assert net_class(H=5)(torch.randn(2, 3, 1, 5)).shape == (2, 3, 5, 25)
    with pytest.raises(ValueError, match="construct it with H=5"):
        net_class()(torch.randn(2, 3, 1, 5))


def test_a_number_of_outputs_from_a_free_size_builds_the_module_for_the_size() -> None:
    """`split(parts = H // 3)`: how many tensors forward returns depends on H, which Python cannot leave
    open: the module is built for H = 9, with a warning at the argument that says so."""
    src = "size H = 9\nblock Net() {\n  in x: [n = 2, c = 6, h = H]\n  out split(x, axis = c, parts = H // 3)\n}\n"
    with pytest.warns(UserWarning, match=r":4:26: the module is built for H=9 .*parts is how many tensors"):
        net = archc.loads(src).torch()()
    out = net(torch.randn(2, 6, 9))
    assert len(out) == 3 and all(t.shape == (2, 2, 9) for t in out)
    with pytest.raises(ValueError, match=r"axis 'h' = 9, got 6: build it again with `archc build --set H=6`"):
        net(torch.randn(2, 6, 6))


def test_a_free_size_without_a_value_is_a_required_constructor_argument(tmp_path) -> None:
    """`in x: [chan = cin]` with no `size cin`: a layer's shape needs it; a specialised entry takes it as an
    argument without a default, as a generic one does."""
    src = "block Net() {\n  in x: [b = 2, chan = cin]\n  fc = linear(x, chan -> 4)\n  out fc\n}\n"
    for generic in (True, False):
        gen = generate(Templates(archc.loads(src).program), generic=generic)
        assert "def __init__(self, cin: int) -> None" in gen.text
        net = load_class(gen)(cin=5)
        assert net(torch.randn(2, 5)).shape == (2, 4)


def test_the_cli_warns_where_the_module_is_built_for_the_sizes(tmp_path, capsys) -> None:
    from archc.cli import main
    path = tmp_path / "net.arch"
    path.write_text("size H = 9\nblock Net() {\n  in x: [n = 2, c = 6, h = H]\n"
                    "  out split(x, axis = c, parts = H // 3)\n}\n")
    assert main(["build", str(path), "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert f"{path}:4:26: warning: the module is built for H=9 (forward checks them)" in err
    assert "parts = H // 3)\n" in err and "^~~" in err


UNSIZED = """block Stem(cin, cout) {
  in x: [b, chan = cin, h]
  conv = conv(x, chan -> cout, k = 3, pad = 1)
  out conv
}
entry block Net() {
  in x: [b = 2, chan = cin, h = 8]
  stem = Stem(x, cin, 4)
  out stem
}
"""


def test_a_size_an_input_introduces_takes_set_and_passes_on_to_a_nested_block(tmp_path, capsys) -> None:
    """`in x: [chan = cin]` with no `size cin`: `--set cin=3` gives it a value (it was refused as an unknown
    name), and without one the entry takes it as a constructor argument without a default, which it passes
    on to the block it is given to (once a codegen error: the class is built for its parameters)."""
    from archc.cli import main
    path = tmp_path / "net.arch"
    path.write_text(UNSIZED)
    assert main(["check", str(path), "--set", "cin=3"]) == 0
    assert "cin=3" in capsys.readouterr().out
    source = archc.loads(UNSIZED).torch_source()
    assert "def __init__(self, cin: int) -> None" in source and "self.stem = Stem(cin, 4)" in source
    assert source.count("class Stem(") == 1
    net_class = archc.loads(UNSIZED).torch()
    for cin in (3, 5):
        net = net_class(cin=cin)
        assert net.stem.conv.in_channels == cin and net(torch.randn(2, cin, 8)).shape == (2, 4, 8)
    with_value = archc.loads(UNSIZED).torch(cin=3)
    assert with_value(cin=5)(torch.randn(2, 5, 8)).shape == (2, 4, 8)  # the constructor argument, passed on


def test_the_triton_target_of_a_module_built_for_its_sizes() -> None:
    """The Triton target plans its kernels at the sizes the module is built for where the program cannot be
    elaborated at every size (`split(parts = H // 3)`), and its fused forward checks them too."""
    pytest.importorskip("triton")
    src = ("size H = 9\nblock Net() {\n  in x: [n = 2, c = 6, h = H]\n"
           "  out split(relu(x), axis = c, parts = H // 3)\n}\n")
    with pytest.warns(UserWarning, match="built for H=9"):
        module = archc.loads(src).triton_module()
    assert module.kernels >= 1
    with pytest.warns(UserWarning, match="built for H=9"):
        net = archc.loads(src).triton()().eval()
    x = torch.randn(2, 6, 9)
    with torch.no_grad():
        got = net(x)
        assert all(torch.equal(a, b) for a, b in zip(got, net.forward_eager(x))) and len(got) == 3
        with pytest.raises(ValueError, match="build it again with `archc build --set H=6`"):
            net(torch.randn(2, 6, 6))


def test_the_entry_keeps_its_defaults_beside_a_size_without_a_value() -> None:
    """(fuzz seed 127, a GE-ResNet-50 mutant) A required argument (a size without a value) among arguments
    with defaults: the entry puts it first and keeps the others' defaults (they were all dropped, so
    `Net(cin=3)` failed for want of H and n)."""
    src = ("size H = 8\nblock Net(n = 4) {\n  in x: [b = 2, c = cin, h = H]\n  p = linear(x, h -> n)\n"
           "  q = linear(p, c -> 2)\n  out q\n}\n")
    source = archc.loads(src).torch_source()
    assert "def __init__(self, cin: int, H: int = 8, n: int = 4) -> None" in source
    assert archc.loads(src).torch()(cin=5)(torch.randn(2, 5, 8)).shape == (2, 2, 4)
