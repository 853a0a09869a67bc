"""What each kernel of a Plan moves and computes, and a roofline estimate of its time on a device.

A kernel reads from memory every value it uses that another kernel computed
(once, however many of its ops use it) and the parameters and buffers its ops
own, and writes the values the plan says cross into another kernel or leave
the graph. A view moves nothing: a kernel reads the part of the tensor a view
looks at (all of it for a rearrange, one piece for a split, the small tensor
an `expand` broadcasts), and a kernel whose output leaves through a view
writes the tensor under it.
Run eagerly, one kernel per op, every op reads its inputs and writes its
output (`ops.costs.bytes_moved`); the difference is the memory traffic fusion
saves. FLOPs are counted in the `full` convention (every kind of work costs:
docs/costs.md), since the roofline is about the work a kernel does, not about
matching FlopCounterMode.

The estimate of one kernel is the roofline: max(bytes / bandwidth, FLOPs /
peak), peak for the dtype's arithmetic (tensor cores for 16-bit floats on
contractions, the plain floating-point units otherwise). Device figures:
`DEVICES`, from the vendors' data sheets (dense, no sparsity).

>>> import archc
>>> from archc.passes.plan import plan
>>> g = archc.loads('block B() { in x: [n = 1024, c = 256]\\n y = relu(x)\\n out sigmoid(y) }').check().graph
>>> c = plan_costs(plan(g))
>>> c.eager_bytes, c.plan_bytes, c.eager_bytes - c.plan_bytes == 2 * 1024 * 256 * 4
(4194304, 2097152, True)
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from archc.ir.graph import Graph, Node
from archc.ir.plan import Plan
from archc.ops import costs as C
from archc.ops.registry import Op, Trait
from archc.shapes import sizes as S
from archc.shapes.sizes import Size
from archc.shapes.types import DTYPES, TensorType, TupleType


@dataclasses.dataclass(frozen=True)
class Device:
    """Peak figures of one accelerator (dense arithmetic, as the data sheet gives them)."""

    name: str
    bandwidth: float  # bytes per second, main memory
    tensor_flops: float  # FLOP/s of 16-bit float contractions on tensor cores
    float_flops: float  # FLOP/s of plain fp32 arithmetic
    source: str

    def peak(self, dtype: str, contraction: bool) -> float:
        """FLOP/s for work of this dtype: tensor cores for 16-bit float contractions."""
        return self.tensor_flops if contraction and DTYPES[dtype].bytes == 2 and DTYPES[dtype].is_float \
            else self.float_flops

    @property
    def ridge(self) -> float:
        """The arithmetic intensity (FLOP/byte) where fp32 work stops being memory-bound."""
        return self.float_flops / self.bandwidth


DEVICES: dict[str, Device] = {d.name: d for d in (
    Device("h100", 3.35e12, 989.4e12, 66.9e12, "NVIDIA H100 SXM5 80 GB: HBM3 3.35 TB/s, BF16/FP16 989.4 TFLOP/s, "
                                               "FP32 66.9 TFLOP/s"),
    Device("h200", 4.8e12, 989.4e12, 66.9e12, "NVIDIA H200 SXM 141 GB: HBM3e 4.8 TB/s, BF16/FP16 989.4 TFLOP/s, "
                                              "FP32 66.9 TFLOP/s"),
    Device("a100", 2.039e12, 312e12, 19.5e12, "NVIDIA A100 SXM4 80 GB: HBM2e 2.039 TB/s, BF16/FP16 312 TFLOP/s, "
                                              "FP32 19.5 TFLOP/s"),
)}


@dataclasses.dataclass(frozen=True)
class GroupCost:
    """One kernel of a plan: its ops, their .arch lines, and what it moves and computes."""

    name: str
    kind: str
    ops: tuple[str, ...]
    lines: tuple[str, ...]  # "file.arch:12", the .arch lines the kernel's ops come from
    read: Size
    written: Size
    flops: Size  # full convention
    contraction: bool  # does matmul/conv work: tensor cores apply at 16-bit

    @property
    def moved(self) -> Size:
        return S.add(self.read, self.written)


@dataclasses.dataclass(frozen=True)
class PlanCosts:
    plan: Plan
    groups: list[GroupCost]
    eager_read: Size
    eager_written: Size

    @property
    def eager_bytes(self) -> Size:
        return S.add(self.eager_read, self.eager_written)

    @property
    def plan_bytes(self) -> Size:
        return S.total(g.moved for g in self.groups)

    @property
    def kernels(self) -> list[GroupCost]:
        """The groups that run something: not the inputs (already in memory), not a group of views only."""
        g = self.plan.graph
        return [c for c, group in zip(self.groups, self.plan.groups)
                if c.kind != "input" and not all(g.node(i).op.has(Trait.VIEW) for i in group.nodes)]


def _source(g: Graph, i: int) -> int:
    """The value a view looks at (itself for any other op); dropout is a view at inference."""
    n = g.node(i)
    while n.op.has(Trait.VIEW) and n.inputs:
        n = g.node(n.inputs[0])
    return n.id


def _read_bytes(g: Graph, i: int) -> Size:
    """Reading value `i` from memory: its bytes, or fewer where it is a broadcast view (`expand`) of a
    smaller tensor; a slice (`split`, a tuple item) reads only its part."""
    mine, theirs = _nbytes(g.node(i)), _nbytes(g.node(_source(g, i)))
    if S.is_concrete(mine) and S.is_concrete(theirs):
        return min(int(mine), int(theirs))
    return mine


def _nbytes(n: Node) -> Size:
    return n.type.nbytes() if isinstance(n.type, (TensorType, TupleType)) else 0


def plan_costs(plan: Plan) -> PlanCosts:
    """Bytes and FLOPs of each group of `plan`, and of running the graph one op per kernel."""
    g = plan.graph
    costs: list[GroupCost] = []
    for group in plan.groups:
        members = set(group.nodes)
        nodes = [g.node(i) for i in group.nodes]
        reads = {i for n in nodes if not n.op.has(Trait.VIEW) for i in n.inputs if _source(g, i) not in members}
        read = S.total([_read_bytes(g, i) for i in sorted(reads)] +
                       [p.nbytes() for n in nodes if not n.op.has(Trait.SOURCE) for p in n.params])
        # a view that leaves the kernel is the tensor it looks at: the kernel writes that one, once
        out = {_source(g, n.id) for n in nodes if n.id in plan.written} & members
        written = S.total(_nbytes(g.node(i)) for i in sorted(out) if not g.node(i).op.has(Trait.SOURCE))
        flops = S.total(C.flops(_cost(g, n), "full") for n in nodes)
        if group.kind == "input":  # already in memory: nothing to run
            read, written, flops = 0, 0, 0
        costs.append(GroupCost(group.name, group.kind, tuple(n.op.name for n in nodes),
                               _lines(nodes), read, written, flops,
                               any(n.op.has(Trait.CONTRACTION) for n in nodes)))
    eager_read: list[Size] = []
    eager_written: list[Size] = []
    for n in g:
        if n.op is Op.INPUT or n.op.has(Trait.SOURCE):
            continue
        r, w = C.bytes_moved(n.op, _inputs(g, n), n.type, n.params)
        eager_read.append(r)
        eager_written.append(w)
    return PlanCosts(plan, costs, S.total(eager_read), S.total(eager_written))


def _lines(nodes: list[Node]) -> tuple[str, ...]:
    spans = sorted({(os.path.basename(n.span.file), n.span.line) for n in nodes})
    return tuple(f"{f}:{line}" for f, line in spans)


def _inputs(g: Graph, n: Node) -> list[TensorType]:
    return [t for t in (g.node(i).type for i in n.inputs) if isinstance(t, TensorType)]


def _cost(g: Graph, n: Node) -> Any:
    return C.node_cost(n, _inputs(g, n))


def seconds(cost: GroupCost, device: Device, dtype: str, values: dict[str, int] | None = None) -> float | None:
    """The roofline estimate of one kernel: max(bytes / bandwidth, FLOPs / peak); None if a size is free."""
    moved, flops = S.evaluate(cost.moved, values or {}), S.evaluate(cost.flops, values or {})
    if moved is None or flops is None:
        return None
    return max(moved / device.bandwidth, flops / device.peak(dtype, cost.contraction))
