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


def test_a_permuting_rearrange_joins_the_chain_it_reorders() -> None:
    p = plan(graph())
    assert [(gr.name, gr.kind, gr.nodes) for gr in p.groups] == [
        ("x", "input", (0,)), ("conv1", "conv", (1,)), ("a", "pointwise", (2, 3)), ("g", "pointwise", (4, 5))]
    assert p.written == {0, 1, 3, 5}
    assert lint_plan(p) == []


def test_a_view_that_merges_axes_reads_memory() -> None:
    g = graph("block B() { in x: [b = 2, c = 4, h = 3]\n a = relu(x)\n f = flatten(a, over = [c, h], name = ch)\n"
              " out sigmoid(f) }")
    assert [(gr.kind, gr.nodes) for gr in plan(g).groups] == [
        ("input", (0,)), ("pointwise", (1,)), ("view", (2,)), ("pointwise", (3,))]


def test_a_value_used_twice_ends_the_chain() -> None:
    g = graph("block B() { in x: [c = 4]\n a = relu(x)\n b = sigmoid(a)\n c = tanh(b)\n out c + a }")
    p = plan(g)
    assert [gr.nodes for gr in p.groups] == [(0,), (1,), (2, 3, 4)]
    assert p.written == {0, 1, 4}


def kinds(src: str) -> list[tuple[str, tuple[int, ...]]]:
    return [(gr.kind, gr.nodes) for gr in plan(graph(src)).groups if gr.kind != "input"]


def test_linear_takes_bias_activation_residual_and_scale_as_epilogue() -> None:
    src = ("block B() { in x: [b = 2, t = 5, c = 8]\n param s: [c = 8] = 0.5\n"
           " y = linear(x, c -> 8)\n out x + gelu(y) * s }")
    assert kinds(src) == [("matmul", (2, 3, 4, 5))]


def test_norm_takes_a_prologue_and_an_epilogue() -> None:
    src = "block B() { in x: [b = 2, t = 5, c = 8]\n ln = layernorm(x + x)\n out relu(ln)  }"
    assert kinds(src) == [("norm", (1, 2, 3))]
    assert kinds("block B() { in x: [b = 2, c = 8]\n out softmax(x, axis = c) * 2.0 }") == [("norm", (1, 2))]


def test_conv_batchnorm_activation() -> None:
    one = ("block B() { in x: [b = 2, c = 8, h = 6, w = 6]\n"
           " c1 = conv(x, c -> 16, k = 1, bias = false)\n bn = batchnorm(c1)\n out relu6(bn) }")
    assert kinds(one) == [("matmul", (1, 2, 3))]
    dw = ("block B() { in x: [b = 2, c = 8, h = 6, w = 6]\n"
          " c1 = conv(x, c -> 8, k = 3, pad = 1, groups = 8)\n bn = batchnorm(c1)\n out relu(bn) }")
    assert kinds(dw) == [("window", (1, 2, 3))]
    dense = "block B() { in x: [b = 2, c = 8, h = 6, w = 6]\n c1 = conv(x, c -> 8, k = 3, pad = 1)\n out relu(c1) }"
    assert kinds(dense) == [("conv", (1,)), ("pointwise", (2,))]


def test_integer_tensors_do_not_fuse() -> None:
    assert kinds("block B() { in x: i64[c = 4]\n out x + x }") == [("add", (1,))]


@pytest.mark.parametrize("name", ["resnet50.arch", "mobilenet_v2.arch", "vit_b_16.arch", "unet.arch",
                                  "convnext_tiny.arch", "transformer_encoder.arch"])
def test_examples_plan_cleanly(name: str) -> None:
    g = archc.load(str(EXAMPLES / name)).check().graph
    p = plan(g)
    assert lint_plan(p) == []
    assert sum(len(gr.nodes) for gr in p.groups) == len(g)
    folded = plan(run(g, ["fold_batchnorm", "drop_folded"]))
    assert lint_plan(folded) == [] and len(folded.groups) <= len(p.groups)


def test_resnet50_batchnorms_fuse_into_the_kernels_before_them() -> None:
    g = archc.load(str(EXAMPLES / "resnet50.arch")).check().graph
    groups = plan(g).groups
    kinds = [gr.kind for gr in groups]
    assert "batchnorm" not in kinds
    # 1x1 convs (and the classifier) are matmuls with their batchnorm (+ relu) fused; 3x3 and 7x7 stay torch
    # convs, the batchnorm and relu after them one pointwise kernel
    assert kinds.count("matmul") == 34 and kinds.count("conv") == 20 and kinds.count("pointwise") == 20
    bn = [gr for gr in groups if any(g.node(i).op is Op.BATCHNORM for i in gr.nodes)]
    assert len(bn) == 53 and all(gr.kind in ("matmul", "pointwise") for gr in bn)


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
    swapped = [p.groups[0], p.groups[2], p.groups[1], *p.groups[3:]]
    assert lint_plan(dataclasses.replace(p, groups=swapped)) == [
        "group a reads %1 of group conv1, which runs after it"]
    inside = [gr if gr.name != "g" else Group("g", (5, 4), "pointwise") for gr in p.groups]
    assert lint_plan(dataclasses.replace(p, groups=inside)) == ["in group g, %5 uses %4 before it is computed"]


def test_lint_catches_a_wrong_written_set() -> None:
    p = plan(graph())
    assert lint_plan(dataclasses.replace(p, written=p.written - {1})) == [
        "%1 is read by another group but is not written to memory"]
    assert lint_plan(dataclasses.replace(p, written=p.written | {4})) == [
        "%4 is written to memory but no other group reads it and it is no output"]


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
