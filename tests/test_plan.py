"""Plans: the simple planner, the plan lint (and that it catches broken plans), the printer."""

from __future__ import annotations

import dataclasses

import pytest

import archc
from archc.ir.graph import Graph, Op
from archc.ir.plan import Group, Plan, lint_plan, print_plan
from archc.passes import run
from archc.passes.plan import plan

from conftest import EXAMPLES

SRC = """block B() {
  in x: [b = 2, c = 4, h = 8, w = 8]
  conv1 = conv(x, c -> 8, k = 3, pad = 1)
  a = relu(conv1)
  f = rearrange(a, "b c h w -> b h w c")
  g = sigmoid(f)
  out g * f
}"""


def graph(src: str = SRC) -> Graph:
    return archc.loads(src, "p.arch").check().graph


def test_views_join_their_producer_and_pointwise_chains_merge() -> None:
    p = plan(graph())
    assert [(gr.name, gr.kind, gr.nodes) for gr in p.groups] == [
        ("x", "input", (0,)), ("conv1", "conv", (1,)), ("a", "pointwise", (2, 3)), ("g", "pointwise", (4, 5))]
    assert p.written == {0, 1, 3, 5}
    assert lint_plan(p) == []


def test_a_value_used_twice_ends_the_chain() -> None:
    g = graph("block B() { in x: [c = 4]\n a = relu(x)\n b = sigmoid(a)\n c = tanh(b)\n out c + a }")
    p = plan(g)
    assert [gr.nodes for gr in p.groups] == [(0,), (1,), (2, 3, 4)]
    assert p.written == {0, 1, 4}


@pytest.mark.parametrize("name", ["resnet50.arch", "mobilenet_v2.arch", "vit_b_16.arch", "unet.arch",
                                  "convnext_tiny.arch", "transformer_encoder.arch"])
def test_examples_plan_cleanly(name: str) -> None:
    g = archc.load(str(EXAMPLES / name)).check().graph
    p = plan(g)
    assert lint_plan(p) == []
    assert sum(len(gr.nodes) for gr in p.groups) == len(g)
    folded = plan(run(g, ["fold_batchnorm", "drop_folded"]))
    assert lint_plan(folded) == [] and len(folded.groups) <= len(p.groups)


def test_resnet50_after_folding_has_no_batchnorm_kernels() -> None:
    g = archc.load(str(EXAMPLES / "resnet50.arch")).check().graph
    kinds = [gr.kind for gr in plan(g).groups]
    assert kinds.count("batchnorm") == 53
    kinds = [gr.kind for gr in plan(run(g, ["fold_batchnorm", "drop_folded"])).groups]
    assert kinds.count("batchnorm") == 0 and kinds.count("conv") == 53


# ---- the lint catches broken plans -------------------------------------------------------------


def broken(**change: object) -> Plan:
    return dataclasses.replace(plan(graph()), **change)  # type: ignore[arg-type]


def test_lint_catches_a_node_in_two_groups() -> None:
    p = plan(graph())
    groups = list(p.groups)
    groups[1] = Group("conv1", (1, 2), "conv")
    assert "%2 is in group conv1 and in group a" in lint_plan(dataclasses.replace(p, groups=groups))


def test_lint_catches_a_missing_node() -> None:
    p = plan(graph())
    groups = [gr if gr.name != "g" else Group("g", (4,), "pointwise") for gr in p.groups]
    assert lint_plan(dataclasses.replace(p, groups=groups)) == ["%5 is in no group"]


def test_lint_catches_a_bad_order() -> None:
    p = plan(graph())
    swapped = [p.groups[0], p.groups[2], p.groups[1], p.groups[3]]
    assert lint_plan(dataclasses.replace(p, groups=swapped)) == [
        "group a reads %1 of group conv1, which runs after it"]
    inside = [gr if gr.name != "a" else Group("a", (3, 2), "pointwise") for gr in p.groups]
    assert lint_plan(dataclasses.replace(p, groups=inside)) == ["in group a, %3 uses %2 before it is computed"]


def test_lint_catches_a_wrong_written_set() -> None:
    p = plan(graph())
    assert lint_plan(dataclasses.replace(p, written=p.written - {1})) == [
        "%1 is read by another group but is not written to memory"]
    assert lint_plan(dataclasses.replace(p, written=p.written | {2})) == [
        "%2 is written to memory but no other group reads it and it is no output"]


def test_lint_catches_unknown_nodes_and_duplicate_names() -> None:
    p = plan(graph())
    groups = list(p.groups) + [Group("x", (99,), "pointwise")]
    problems = lint_plan(dataclasses.replace(p, groups=groups))
    assert "two groups are named x" in problems and "group x has %99, which the graph does not have" in problems


# ---- the printer ----------------------------------------------------------------------------------


def test_print_plan() -> None:
    text = print_plan(plan(graph()))
    assert text.splitlines()[:4] == [
        "plan B: 4 groups, 4 values written to memory",
        "  group x (input) writes %0",
        '    %0 = input() {name="x"} : [b=2, c=4, h=8, w=8]  # p.arch:2',
        "  group conv1 (conv) reads %0, writes %1",
    ]
    assert "  group a (pointwise) reads %1, writes %3" in text
    assert "    %3 = rearrange(%2)" in text and text.endswith("  return %5\n")
    assert text == print_plan(plan(graph()))  # deterministic


def test_plan_reads_no_graph_mutably() -> None:
    g = graph()
    before = [(n.id, n.op, n.inputs) for n in g]
    plan(g)
    assert [(n.id, n.op, n.inputs) for n in g] == before and g.node(1).op is Op.CONV
