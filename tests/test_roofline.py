"""Bytes and FLOPs per kernel of a Plan, and the roofline estimate (analysis/roofline.py)."""

from __future__ import annotations

import pytest

import archc
from archc.analysis.report import analyze
from archc.analysis.roofline import DEVICES, GroupCost, plan_costs, seconds
from archc.ops.registry import Trait
from archc.passes.plan import plan
from archc.shapes import sizes as S

from conftest import EXAMPLES

NAMES = sorted(p.stem for p in EXAMPLES.glob("*.arch"))


@pytest.mark.parametrize("name", NAMES)
def test_eager_traffic_is_the_reports_and_fusion_only_saves(name: str) -> None:
    g = archc.load(str(EXAMPLES / f"{name}.arch")).check().graph
    costs, report = plan_costs(plan(g)), analyze(g, "full")
    assert costs.eager_bytes == report.read + report.written
    assert costs.plan_bytes <= costs.eager_bytes
    assert S.total(c.flops for c in costs.groups) == S.total(r.full for r in report.rows)


def test_a_fused_chain_saves_exactly_its_intermediates() -> None:
    """ResNet-50's plan fuses batchnorm (+ relu) into the 1x1 convs before them and each
    `relu(bn3 + shortcut)`: an intermediate in a kernel is never written nor read again."""
    g = archc.load(str(EXAMPLES / "resnet50.arch")).check().graph
    p = plan(g)
    costs = plan_costs(p)
    saved = 0
    for group in p.groups:
        inner = [i for i in group.nodes[:-1] if not g.node(i).op.has(Trait.VIEW) and i not in p.written]
        saved += sum(2 * g.node(i).type.nbytes() for i in inner)
    assert saved > 0 and costs.eager_bytes - costs.plan_bytes == saved


def test_the_roofline_is_the_slower_of_memory_and_arithmetic() -> None:
    h100 = DEVICES["h100"]
    memory_bound = GroupCost("a", "pointwise", ("relu",), ("m.arch:1",), 3.35e9, 0, 1, False)
    assert seconds(memory_bound, h100, "f32") == pytest.approx(1e-3)
    compute_bound = GroupCost("b", "conv", ("conv",), ("m.arch:1",), 0, 0, 989.4e9, True)
    assert seconds(compute_bound, h100, "bf16") == pytest.approx(1e-3)
    assert seconds(compute_bound, h100, "f32") == pytest.approx(989.4e9 / 66.9e12)
    assert seconds(GroupCost("c", "conv", (), (), 0, 0, 0, True), h100, "f32") == 0
    assert DEVICES["h200"].bandwidth > DEVICES["h100"].bandwidth > DEVICES["a100"].bandwidth
    assert 10 < h100.ridge < 30  # FLOP per byte where fp32 work turns compute-bound


def test_free_sizes_give_no_estimate_until_valued() -> None:
    g = archc.load(str(EXAMPLES / "transformer_encoder.arch")).check(symbolic=True).graph
    first = next(c for c in plan_costs(plan(g)).groups if c.kind != "input")
    assert seconds(first, DEVICES["a100"], "f32") is None
    assert seconds(first, DEVICES["a100"], "f32", {k: 2 for k in g.sizes}) is not None
