"""Core behaviour of the parser, elaborator, IR printer and lint on small programs."""

from __future__ import annotations

import pytest

import archc
from archc.diagnostics import ArchError
from archc.ir.lint import lint

from conftest import EXAMPLES, ROOT

MINI = str(ROOT / "tests" / "data" / "mini_resnet.arch")


def compile_text(text: str, **sets):
    return archc.loads(text, "t.arch").check(**sets).graph


def out_type(text: str, **sets) -> str:
    g = compile_text(text, **sets)
    return str(g.node(g.outputs[0]).type)


def errors_of(text: str, **sets) -> list[str]:
    with pytest.raises(ArchError) as e:
        compile_text(text, **sets)
    return [f"{d.span.line}:{d.code}:{d.message}" for d in e.value.diagnostics]


@pytest.mark.parametrize("src", sorted(EXAMPLES.glob("*.arch")) + [ROOT / "tests/data/mini_resnet.arch"],
                         ids=lambda p: p.stem)
def test_every_example_passes_lint(src) -> None:
    for symbolic in (False, True):
        g = archc.load(str(src)).check(symbolic=symbolic).graph
        assert lint(g) == []


def test_mini_resnet_shapes_and_keys() -> None:
    g = archc.load(MINI).check().graph
    assert str(g.node(g.outputs[0]).type) == "[batch=1, chan=1000]"
    keys = list(g.state_dict())
    assert keys[:2] == ["conv1.weight", "bn1.weight"]
    assert "layer1.0.downsample.0.weight" in keys and "layer1.1.downsample.0.weight" not in keys
    assert g.modules["layer1.2"].repeat == ("i", 2, 0, 3)


def test_linear_acts_on_a_middle_axis_and_broadcasts() -> None:
    assert out_type("block B() { in x: [n = 2, c = 8, t = 5]\n fc = linear(x, c -> d = 3)\n out fc }") == \
        "[n=2, d=3, t=5]"


def test_add_requires_same_axis_order() -> None:
    errs = errors_of("block B() { in a: [n = 1, h = 4, w = 4]\n in b: [n = 1, w = 4, h = 4]\n out a + b }")
    assert errs and "different order" in errs[0] and errs[0].startswith("3:axis")


def test_named_broadcast_of_a_learned_tensor() -> None:
    text = ("block B() { in x: [n = 2, c = 4, h = 3, w = 3]\n param s: [c = 4, h = 1, w = 1]\n out x * s }")
    assert out_type(text) == "[n=2, c=4, h=3, w=3]"
    g = compile_text(text)
    assert list(g.state_dict()) == ["s"]


def test_pattern_binding_infers_channels() -> None:
    text = """
block Proj(d) {
  in x: [n, c = cin]
  fc = linear(x, c -> d)
  out fc
}
block Top() {
  in x: [n = 2, c = 12]
  p = Proj(x, 5)
  out p
}"""
    g = compile_text(text)
    assert g.state_dict()["p.fc.weight"][0] == (5, 12)


def test_several_errors_are_reported_together() -> None:
    errs = errors_of("block B() { in x: [n = 1, c = 4]\n a = relu(y)\n b = softmax(x, axis = q)\n out x }")
    assert len(errs) == 2
    assert errs[0].startswith("2:name") and errs[1].startswith("3:axis")


def test_symbolic_sizes_stay_symbolic() -> None:
    text = "size N, L = 10\nblock B() { in x: [n = N, t = L, c = 4]\n fc = linear(x, c -> 8)\n out fc }"
    g = archc.loads(text, "t.arch").check(symbolic=True).graph
    assert str(g.node(g.outputs[0]).type) == "[n=N, t=L, c=8]"
    rep = archc.loads(text, "t.arch").flops(symbolic=True)
    assert str(rep.flops) == "64*L*N"


def test_set_overrides_a_size() -> None:
    text = "size L = 10\nblock B() { in x: [t = L, c = 4]\n fc = linear(x, c -> 8)\n out fc }"
    assert archc.loads(text, "t.arch").flops(L=3).flops == 2 * 3 * 4 * 8
