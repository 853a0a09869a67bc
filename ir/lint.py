"""IR lint: invariants every pass may rely on. Returns problems; empty means sound.

Checked: node ids are dense and topological; every edge carries its source's
type; every node's attributes are its op's typed attributes, and only ops the
elaborator types itself lack a shape rule; module paths exist and nest;
state_dict keys are unique; outputs exist.
"""

from __future__ import annotations

from archc.ir.graph import Graph
from archc.ops.registry import Op


def lint(g: Graph) -> list[str]:
    problems: list[str] = []
    for i, n in enumerate(g):
        if n.id != i:
            problems.append(f"%{n.id} is stored at position {i}")
        for src in n.inputs:
            if src >= n.id:
                problems.append(f"%{n.id} uses %{src}, which does not come before it")
        if n.op.shape is None and n.op.callable:
            problems.append(f"%{n.id}: op {n.op.value} has no shape rule")
        if not isinstance(n.attrs, n.op.attrs):
            problems.append(f"%{n.id}: attributes {type(n.attrs).__name__} are not {n.op.attrs.__name__}")
        if n.path is not None and n.path not in g.modules and n.op is not Op.PARAM:
            problems.append(f"%{n.id}: module path '{n.path}' is not in the module tree")
        if n.params and n.path is None and n.op is not Op.PARAM:
            problems.append(f"%{n.id}: owns parameters but has no module path")
    for u, v, slot, t in g.edges():
        if g.node(u).type != t:
            problems.append(f"edge %{u}->%{v} carries {t}, but %{u} is {g.node(u).type}")
        if g.node(v).inputs[slot] != u:
            problems.append(f"edge %{u}->%{v} slot {slot} disagrees with the node's inputs")
    for path, m in g.modules.items():
        if m.parent is not None and m.parent not in g.modules:
            problems.append(f"module '{path}' has a missing parent '{m.parent}'")
    keys: set[str] = set()
    for n in g:
        for p in n.params:
            key = f"{n.path}.{p.name}" if n.path else p.name
            if key in keys:
                problems.append(f"state_dict key '{key}' is defined twice")
            keys.add(key)
    for o in g.outputs:
        if not 0 <= o < len(g):
            problems.append(f"output %{o} does not exist")
    if not g.is_acyclic():
        problems.append("the graph has a cycle")
    return problems
