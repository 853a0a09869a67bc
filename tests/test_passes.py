"""Graph passes: the rewrite helper, the pass API, dead-value elimination, size binding, batchnorm folding."""

from __future__ import annotations

import dataclasses

import pytest

import archc
from archc.ir.graph import Graph, Op
from archc.ir.lint import lint
from archc.ir.printer import print_graph
from archc.ir.rewrite import Forward, rewrite
from archc.passes import PASSES, Pass, PassError, bind_sizes, dead_values, fold_batchnorm, run
from archc.passes.fold_bn import foldable
from archc.passes.sizes import is_concrete

from conftest import EXAMPLES


def graph(src: str, **kw: object) -> Graph:
    return archc.loads(src).check(**kw).graph  # type: ignore[arg-type]


def example(name: str, symbolic: bool = False) -> Graph:
    return archc.load(str(EXAMPLES / name)).check(symbolic=symbolic).graph


CONV_BN = """block Net() {
  in x: [b = 2, c = 3, h = 8, w = 8]
  conv1 = conv(x, c -> 8, k = 3, pad = 1, bias = false)
  bn1 = batchnorm(conv1)
  out relu(bn1)
}"""


# ---- rewrite ----------------------------------------------------------------------------------


def test_rewrite_copies_without_touching_the_input() -> None:
    g = example("resnet50.arch")
    before = print_graph(g)
    h = rewrite(g)
    assert print_graph(h) == before and h is not g
    assert h.modules == g.modules and h.modules is not g.modules
    assert all(a.attrs is not b.attrs for a, b in zip(g, h))
    with pytest.raises(dataclasses.FrozenInstanceError):  # attributes are immutable: sharing them is safe
        h.node(1).attrs.k = 99  # type: ignore[misc]
    h.modules[""].children.append("x")
    assert print_graph(g) == before and "x" not in g.modules[""].children


def test_rewrite_renumbers_and_forwards() -> None:
    g = graph("block B() { in x: [c = 4]\n a = relu(x)\n b = identity(a)\n c = identity(b)\n out sigmoid(c) }")
    h = rewrite(g, lambda n: Forward(n.inputs[0]) if n.op is Op.IDENTITY else n)
    assert [(n.id, n.op, n.inputs) for n in h] == [(0, Op.INPUT, ()), (1, Op.RELU, (0,)), (2, Op.SIGMOID, (1,))]
    assert h.outputs == [2] and h.inputs == [0] and lint(h) == []


def test_rewrite_refuses_a_use_of_a_dropped_node() -> None:
    g = graph("block B() { in x: [c = 4]\n a = relu(x)\n out sigmoid(a) }")
    with pytest.raises(ValueError, match="dropped"):
        rewrite(g, lambda n: None if n.op is Op.RELU else n)
    with pytest.raises(ValueError, match="input"):
        rewrite(g, lambda n: None if n.op is Op.INPUT else n)


# ---- the pass API --------------------------------------------------------------------------------


def test_passes_declare_requires_and_ensures() -> None:
    assert {"dead_values", "bind_sizes", "fold_batchnorm", "drop_folded"} <= set(PASSES)
    assert "bn-folded" in PASSES["fold_batchnorm"].ensures
    assert all(p.doc for p in PASSES.values())


def test_run_verifies_what_a_pass_promises() -> None:
    g = graph(CONV_BN)
    broken = Pass("broken", lambda g: g, ensures=("bn-folded",))
    with pytest.raises(PassError, match="broken ensures 'bn-folded'"):
        run(g, [broken])
    assert run(g, [broken], verify=False) is g
    cyclic = Pass("needs_concrete", lambda g: g, requires=("concrete",))
    with pytest.raises(PassError, match="requires 'concrete'"):
        run(example("resnet50.arch", symbolic=True), [cyclic])


# ---- dead values ----------------------------------------------------------------------------------


def test_dead_values_keeps_outputs_inputs_and_state() -> None:
    src = """block B() {
      in x: [b = 1, c = 4]
      in unused: [b = 1, c = 4]
      a = relu(x)
      dead = sigmoid(a)
      head = linear(dead, c -> 3)
      out a
    }"""
    g = graph(src)
    h = dead_values(g)
    # the linear owns weights: it stays, with the sigmoid it reads; nothing else was dead
    assert len(h) == len(g)
    src2 = src.replace("head = linear(dead, c -> 3)\n", "t = tanh(dead)\n")
    g2 = graph(src2)
    h2 = dead_values(g2)
    assert [n.op for n in h2] == [Op.INPUT, Op.INPUT, Op.RELU]
    assert h2.outputs == [2] and h2.inputs == [0, 1] and lint(h2) == []
    assert len(g2) == 5  # the input graph is unchanged


def test_dead_values_changes_no_example() -> None:
    for name in ("resnet50.arch", "mobilenet_v2.arch", "vit_b_16.arch"):
        g = example(name)
        h = run(g, ["dead_values"])
        assert print_graph(h) == print_graph(g)
        assert h.state_dict() == g.state_dict()


# ---- size binding ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet50.arch", "mobilenet_v2.arch", "unet.arch"])
def test_bind_sizes_matches_a_concrete_check(name: str) -> None:
    sym = example(name, symbolic=True)
    assert not is_concrete(sym)
    bound = run(sym, ["bind_sizes"])
    conc = example(name)
    assert is_concrete(bound) and lint(bound) == []
    assert [n.type for n in bound] == [n.type for n in conc]
    assert bound.state_dict() == conc.state_dict()
    assert print_graph(bound) == print_graph(conc)


def test_bind_sizes_takes_given_values() -> None:
    sym = example("resnet50.arch", symbolic=True)
    bound = bind_sizes(sym, {"H": 128, "W": 96})
    assert str(bound.node(bound.outputs[0]).type) == "[batch=1, chan=1000]"
    pool = next(n for n in bound if n.op is Op.MAXPOOL)
    assert pool.tensor_type.shape[2:] == (32, 24)
    assert bound.sizes == {"batch": 1, "H": 128, "W": 96}
    assert sym.sizes == {"batch": 1, "H": 224, "W": 224}


# ---- batchnorm folding -------------------------------------------------------------------------------


def test_fold_conv_bn() -> None:
    g = graph(CONV_BN)
    f = run(g, ["fold_batchnorm"])
    conv, bn = f.node(1), f.node(2)
    assert conv.attrs["bias"] is True and conv.attrs["folded_bn"] == {"path": "bn1", "eps": 1e-5}
    assert [p.name for p in conv.params] == ["weight", "bias"]
    assert bn.op is Op.IDENTITY and bn.params == () and bn.path == "bn1"
    assert f.modules["bn1"].name == "identity" and g.modules["bn1"].name == "batchnorm"
    assert list(f.state_dict()) == ["conv1.weight", "conv1.bias"]
    assert g.node(2).op is Op.BATCHNORM  # the input graph is unchanged
    d = run(f, ["drop_folded"])
    assert [n.op for n in d] == [Op.INPUT, Op.CONV, Op.RELU] and "bn1" not in d.modules
    assert "bn1" not in d.modules[""].children


@pytest.mark.parametrize("body, why", [
    ("conv1 = conv(x, c -> 8, k = 3)\n bn1 = batchnorm(conv1, track_running_stats = false)\n out bn1",
     "batch statistics"),
    ("conv1 = conv(x, c -> 8, k = 3)\n bn1 = batchnorm(conv1)\n out bn1 + conv1", "conv used twice"),
    ("conv1 = conv(x, c -> 8, k = 3)\n bn1 = batchnorm(conv1, axis = h)\n out bn1", "another axis"),
    ("r = relu(x)\n bn1 = batchnorm(r)\n out bn1", "not after a layer"),
    ("conv1 = conv_transpose(x, c -> 8, k = 2, stride = 2, groups = 1)\n bn1 = batchnorm(conv1)\n out bn1", ""),
])
def test_fold_only_where_the_rule_allows(body: str, why: str) -> None:
    g = graph("block B() { in x: [b = 1, c = 4, h = 8, w = 8]\n " + body + " }")
    expected = 1 if not why else 0
    assert len(foldable(g)) == expected, why
    f = fold_batchnorm(g)
    assert sum(n.op is Op.BATCHNORM for n in f) == 1 - expected


def test_fold_needs_one_block_instance() -> None:
    src = """block C() { in x: [b = 1, c = 4, h = 8, w = 8]
      conv = conv(x, c -> 8, k = 1)
      out conv }
    entry block B() { in x: [b = 1, c = 4, h = 8, w = 8]
      c = C(x)
      bn = batchnorm(c)
      out bn }"""
    assert foldable(graph(src)) == {}


@pytest.mark.parametrize("name, pairs", [("resnet50.arch", 53), ("mobilenet_v2.arch", 52)])
def test_fold_examples(name: str, pairs: int) -> None:
    g = example(name)
    assert sum(n.op is Op.BATCHNORM for n in g) == pairs
    f = run(g, ["fold_batchnorm", "drop_folded", "dead_values"])
    assert not any(n.op is Op.BATCHNORM for n in f)
    assert len(f) == len(g) - pairs and lint(f) == []
    sd, fsd = g.state_dict(), f.state_dict()
    assert not any(".running_mean" in k for k in fsd)
    assert len(fsd) == len(sd) - 5 * pairs + pairs  # weight, bias, two stats, a counter out; a bias in


def test_fold_keeps_ids_and_order() -> None:
    g = example("mobilenet_v2.arch")
    f = fold_batchnorm(g)
    assert [(n.id, n.inputs, n.type, n.path) for n in f] == [(n.id, n.inputs, n.type, n.path) for n in g]
    assert dataclasses.asdict(f.modules[""])["children"] == g.modules[""].children
