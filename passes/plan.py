"""The simple planner: Graph -> Plan (ir/plan.py), one kernel per op but for views and pointwise chains.

Rules, in graph order:

  - an input or a `param` starts a group of kind "input" (its value is in memory already);
  - a view (identity, rename, rearrange, flatten, expand, split, getitem, tuple)
    joins the group of the value it looks at: it moves no data of its own;
  - a pointwise op (activations, add, sub, mul, scale, dropout, drop_path) joins
    the group of an input that a pointwise group computes and that only this op
    reads (and is no output): a chain of such ops is one kernel, each
    intermediate value living in registers;
  - any other op starts a group of its own, of the op's kind.

The groups are put in an order where each reads only values of groups before it
(a topological order of the groups, earliest first node first), and the values
crossing group boundaries, plus the outputs, are the ones written to memory.
Fusing an epilogue into a conv or a reduction is for later planners.

>>> import archc
>>> g = archc.loads('block B() { in x: [c = 4]\\n a = relu(x)\\n out sigmoid(a) * a }').check().graph
>>> [(gr.kind, gr.nodes) for gr in plan(g).groups]
[('input', (0,)), ('pointwise', (1,)), ('pointwise', (2, 3))]
"""

from __future__ import annotations

import heapq

from archc.ir.graph import Graph, Node
from archc.ir.plan import Group, Plan, crossing
from archc.ops.registry import Trait


def plan(g: Graph) -> Plan:
    """Group the nodes of `g` into kernels by the rules above (a valid plan: `lint_plan` finds nothing).

    >>> import archc
    >>> g = archc.loads('block B() { in x: [b = 1, c = 4]\\n y = linear(x, c -> 8)\\n out relu(y) }').check().graph
    >>> [(gr.name, gr.kind) for gr in plan(g).groups]
    [('x', 'input'), ('y', 'linear'), ('relu_2', 'pointwise')]
    """
    users: dict[int, set[int]] = {}
    for n in g:
        for i in n.inputs:
            users.setdefault(i, set()).add(n.id)
    outputs = set(g.outputs)
    members: list[list[int]] = []
    kinds: list[str] = []
    heads: list[Node] = []
    group_of: dict[int, int] = {}

    def start(n: Node, kind: str) -> None:
        group_of[n.id] = len(members)
        members.append([n.id])
        kinds.append(kind)
        heads.append(n)

    for n in g:
        if n.op.has(Trait.SOURCE) or not n.inputs:
            start(n, "input" if n.op.has(Trait.SOURCE) else n.op.value)
        elif n.op.has(Trait.VIEW) and not n.op.has(Trait.RANDOM):
            group_of[n.id] = group_of[n.inputs[0]]
            members[group_of[n.id]].append(n.id)
        elif n.op.has(Trait.POINTWISE):
            into = next((group_of[i] for i in n.inputs if kinds[group_of[i]] == "pointwise"
                         and users.get(i) == {n.id} and i not in outputs), None)
            if into is None:
                start(n, "pointwise")
            else:
                group_of[n.id] = into
                members[into].append(n.id)
        else:
            start(n, n.op.value)
    order = _order(g, members, group_of)
    groups = [Group(name, tuple(members[k]), kinds[k]) for k, name in zip(order, _names([heads[k] for k in order]))]
    return Plan(g, groups, frozenset(crossing(g, groups)))


def _order(g: Graph, members: list[list[int]], group_of: dict[int, int]) -> list[int]:
    """The groups in a topological order of their dependencies, the earliest first node first."""
    needs: list[set[int]] = [set() for _ in members]
    for k, ids in enumerate(members):
        for i in ids:
            needs[k].update(group_of[s] for s in g.node(i).inputs if group_of[s] != k)
    waiting = [len(n) for n in needs]
    feeds: list[list[int]] = [[] for _ in members]
    for k, ns in enumerate(needs):
        for d in ns:
            feeds[d].append(k)
    ready = [(members[k][0], k) for k in range(len(members)) if not waiting[k]]
    heapq.heapify(ready)
    out: list[int] = []
    while ready:
        _, k = heapq.heappop(ready)
        out.append(k)
        for u in feeds[k]:
            waiting[u] -= 1
            if not waiting[u]:
                heapq.heappush(ready, (members[u][0], u))
    if len(out) != len(members):
        raise AssertionError("the planner made groups that depend on each other")
    return out


def _names(heads: list[Node]) -> list[str]:
    """A name per group from its first node: the user's name, the layer's path, or op_id; unique."""
    out: list[str] = []
    seen: set[str] = set()
    for n in heads:
        name = n.label or n.path or f"{n.op.value}_{n.id}"
        if name in seen:
            name = f"{name}_{n.id}"
        seen.add(name)
        out.append(name)
    return out
