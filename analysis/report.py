"""Cost and shape reports over a typed graph: per layer and in total.

`analyze(graph)` runs the cost rules of every node and sums them; the result
is plain data (ints and printed expressions) that the CLI prints as a table or
as JSON (docs/json.md documents the schema). Sizes stay symbolic where the
graph is symbolic; integer figures are then given at the free sizes' values.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from archc.ir.graph import Graph, Node
from archc.ops import costs as C
from archc.ops.registry import Op, Trait
from archc.shapes import sizes as S
from archc.shapes.constraints import Derived, derive
from archc.shapes.sizes import Size
from archc.shapes.types import TensorType


@dataclasses.dataclass
class Row:
    name: str
    op: str
    node: Node
    out: str
    params: Size
    buffers: Size
    flops: Size
    by_kind: dict[str, Size]
    full: Size
    read: Size
    written: Size

    @property
    def line(self) -> int:
        return self.node.span.line


@dataclasses.dataclass
class Report:
    graph: Graph
    convention: str
    rows: list[Row]
    params: Size
    buffers: Size
    flops: Size
    by_kind: dict[str, Size]
    param_bytes: Size  # learned parameters, each at its own dtype
    buffer_bytes: Size  # buffers (running statistics, index tables), persistent or not
    activation_bytes: Size
    read: Size
    written: Size
    constraints: list[Derived]

    @property
    def values(self) -> dict[str, int]:
        return {k: v for k, v in self.graph.sizes.items() if v is not None}

    def value(self, x: Size) -> int | None:
        """The integer value of a figure at the free sizes' values, if it has one."""
        return S.evaluate(x, self.values)


def row_names(graph: Graph) -> dict[int, str]:
    """A unique, readable name per node: its module path, else scope + label/op. A learned tensor or
    a buffer is named by its own state_dict key (`features.1.0.layer_scale`): its node's path is the
    block that owns it."""
    names: dict[int, str] = {}
    used: dict[str, int] = {}
    for n in graph:
        if n.op is Op.PARAM or n.op is Op.BUFFER:
            base = ".".join(p for p in (n.path, n.attrs["name"]) if p)
        else:
            base = n.path if n.path is not None else ".".join(p for p in (n.scope, n.label or n.op.value) if p)
        if base in used:
            used[base] += 1
            base = f"{base}#{used[base]}"
        else:
            used[base] = 0
        names[n.id] = base
    return names


def analyze(graph: Graph, convention: str = "torch") -> Report:
    rows = []
    names = row_names(graph)
    acts: list[Size] = []
    for n in graph:
        ins = [graph.node(i).type for i in n.inputs]
        tins = [t for t in ins if isinstance(t, TensorType)]
        cost = C.node_cost(n, tins)
        params, buffers = C.param_count(n.params)
        read, written = C.bytes_moved(n.op, tins, n.type, n.params)
        if not n.op.has(Trait.VIEW) or n.op is Op.INPUT:
            acts.append(n.type.nbytes())
        rows.append(Row(names[n.id], n.op.value, n, str(n.type), params, buffers,
                        C.flops(cost, convention), C.by_kind(cost, convention), C.flops(cost, "full"),
                        read, written))
    by_kind: dict[str, Size] = {}
    for k in C.KINDS:
        vals = [r.by_kind[k] for r in rows if k in r.by_kind]
        if vals:
            by_kind[k] = S.simplify_total(S.total(vals))
    constraints = derive(getattr(graph, "constraints", []),
                         {k: v for k, v in graph.sizes.items() if v is not None})
    return Report(
        graph, convention, rows,
        params=S.simplify_total(S.total(r.params for r in rows)),
        buffers=S.simplify_total(S.total(r.buffers for r in rows)),
        param_bytes=S.simplify_total(S.total(p.nbytes() for r in rows for p in r.node.params if not p.buffer)),
        buffer_bytes=S.simplify_total(S.total(p.nbytes() for r in rows for p in r.node.params if p.buffer)),
        flops=S.simplify_total(S.total(r.flops for r in rows)),
        by_kind=by_kind,
        activation_bytes=S.simplify_total(S.total(acts)),
        read=S.simplify_total(S.total(r.read for r in rows)),
        written=S.simplify_total(S.total(r.written for r in rows)),
        constraints=constraints,
    )


def _num(rep: Report, x: Size) -> int | None:
    return rep.value(x)


def to_json(rep: Report, layers: bool = True) -> dict[str, Any]:
    """The `archc flops --json` document (schema: docs/json.md)."""
    g = rep.graph
    doc: dict[str, Any] = {
        "entry": g.entry,
        "convention": rep.convention,
        "dtype": g.dtype,
        "sizes": dict(g.sizes),
        "inputs": [{"name": g.node(i).attrs["name"], "type": str(g.node(i).type)} for i in g.inputs],
        "outputs": [str(g.node(i).type) for i in g.outputs],
        "params": _num(rep, rep.params),
        "buffers": _num(rep, rep.buffers),
        "flops": _num(rep, rep.flops),
        "flops_by_kind": {k: _num(rep, v) for k, v in rep.by_kind.items()},
        "params_expr": S.to_str(rep.params),
        "flops_expr": S.to_str(rep.flops),
        "flops_by_kind_expr": {k: S.to_str(v) for k, v in rep.by_kind.items()},
        "param_bytes": _num(rep, rep.param_bytes),
        "buffer_bytes": _num(rep, rep.buffer_bytes),
        "activation_bytes": _num(rep, rep.activation_bytes),
        "bytes_read": _num(rep, rep.read),
        "bytes_written": _num(rep, rep.written),
        "constraints": [{"text": d.text, "kind": d.kind, "why": d.why,
                         "file": d.span.file, "line": d.span.line, "col": d.span.col}
                        for d in rep.constraints],
    }
    if layers:
        doc["layers"] = [_row_json(rep, r) for r in rep.rows if r.op != "input"]
    return doc


def _row_json(rep: Report, r: Row) -> dict[str, Any]:
    moved = S.add(r.read, r.written)
    full, mv = _num(rep, r.full), _num(rep, moved)
    return {
        "name": r.name,
        "op": r.op,
        "path": r.node.path,
        "scope": r.node.scope,
        "file": r.node.span.file,  # the line is in this file (an imported block's file, for instance)
        "line": r.line,
        "output": r.out,
        "params": _num(rep, r.params),
        "buffers": _num(rep, r.buffers),
        "flops": _num(rep, r.flops),
        "flops_expr": S.to_str(r.flops),
        "flops_by_kind": {k: _num(rep, v) for k, v in r.by_kind.items()},
        "bytes_read": _num(rep, r.read),
        "bytes_written": _num(rep, r.written),
        "intensity": round(full / mv, 3) if full is not None and mv else None,
    }


def module_key(node: Node, depth: int) -> str:
    """The first `depth` components of a node's module path (or scope); "(top)" for the entry's own ops."""
    src = node.path if node.path is not None else node.scope
    parts = src.split(".") if src else []
    return ".".join(parts[:depth]) or "(top)"


def group_rows(rep: Report, depth: int) -> list[tuple[str, list[Row]]]:
    """Rows grouped by the first `depth` components of their module path or scope."""
    groups: dict[str, list[Row]] = {}
    for r in rep.rows:
        if r.op != "input":
            groups.setdefault(module_key(r.node, depth), []).append(r)
    return list(groups.items())
