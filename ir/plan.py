"""A Plan: the nodes of a graph grouped into kernels, and the values written to memory between them.

Each `Group` is one kernel: the nodes it computes (ids of the graph, in order)
and a kind (what template would emit it: "pointwise", "conv", ...; "input" for
the values that are in memory before anything runs). The groups are listed in
the order the kernels run. A value stays in registers inside its group; it is
written to memory when another group reads it, or when it is an output of the
graph. `Plan.written` records those values, and `lint_plan` checks the record
against the groups, as the IR lint checks a graph:

  - every node of the graph is in exactly one group;
  - the groups are in a valid order: a group reads only values of groups before
    it (and, inside a group, a node only values computed before it);
  - `written` is exactly the set of values that cross a group boundary, plus the
    graph's outputs.

`print_plan` shows the groups with their nodes in the IR printer's form (op,
attributes, type and the `.arch` line).

>>> import archc
>>> from archc.passes.plan import plan
>>> p = plan(archc.loads('block B() { in x: [c = 4]\\n y = linear(x, c -> 8)\\n out sigmoid(relu(y)) }')
...          .check().graph)
>>> [(gr.name, gr.kind, gr.nodes) for gr in p.groups], sorted(p.written), lint_plan(p)
([('x', 'input', (0,)), ('y', 'matmul', (1, 2, 3))], [0, 3], [])
"""

from __future__ import annotations

import dataclasses

from archc.ir.graph import Graph
from archc.ir.printer import print_node


@dataclasses.dataclass(frozen=True)
class Group:
    """One kernel: the ids of the nodes it computes, in order, and its kind."""

    name: str
    nodes: tuple[int, ...]
    kind: str


@dataclasses.dataclass
class Plan:
    """The groups of `graph` in the order they run, and the values written to memory."""

    graph: Graph
    groups: list[Group]
    written: frozenset[int]


def crossing(g: Graph, groups: list[Group]) -> set[int]:
    """The values read by a group other than the one that computes them, plus the graph's outputs.

    >>> import archc
    >>> g = archc.loads('block B() { in x: [c = 4]\\n out relu(x) }').check().graph
    >>> sorted(crossing(g, [Group("x", (0,), "input"), Group("r", (1,), "pointwise")]))
    [0, 1]
    """
    where = {i: k for k, gr in enumerate(groups) for i in gr.nodes}
    out = set(g.outputs)
    for k, gr in enumerate(groups):
        for i in gr.nodes:
            if 0 <= i < len(g):
                out.update(src for src in g.node(i).inputs if where.get(src, k) != k)
    return out


def lint_plan(plan: Plan) -> list[str]:
    """Problems of a plan (empty means sound); see the module docstring for what is checked.

    >>> import archc
    >>> g = archc.loads('block B() { in x: [c = 4]\\n out relu(x) }').check().graph
    >>> lint_plan(Plan(g, [Group("r", (1,), "pointwise")], frozenset({1})))
    ['%0 is in no group', 'group r reads %0, which no group computes']
    """
    g, problems = plan.graph, []
    where: dict[int, int] = {}
    names: set[str] = set()
    for k, gr in enumerate(plan.groups):
        if gr.name in names:
            problems.append(f"two groups are named {gr.name}")
        names.add(gr.name)
        for i in gr.nodes:
            if not 0 <= i < len(g):
                problems.append(f"group {gr.name} has %{i}, which the graph does not have")
            elif i in where:
                problems.append(f"%{i} is in group {plan.groups[where[i]].name} and in group {gr.name}")
            else:
                where[i] = k
    problems += [f"%{n.id} is in no group" for n in g if n.id not in where]
    for k, gr in enumerate(plan.groups):
        done: set[int] = set()
        for i in gr.nodes:
            if not 0 <= i < len(g):
                continue
            for src in g.node(i).inputs:
                at = where.get(src)
                if at is None:
                    problems.append(f"group {gr.name} reads %{src}, which no group computes")
                elif at > k:
                    problems.append(f"group {gr.name} reads %{src} of group {plan.groups[at].name}, which runs "
                                    "after it")
                elif at == k and src not in done:
                    problems.append(f"in group {gr.name}, %{i} uses %{src} before it is computed")
            done.add(i)
    expected = crossing(g, plan.groups)
    for i in sorted(expected - plan.written):
        why = "is an output" if i in g.outputs else "is read by another group"
        problems.append(f"%{i} {why} but is not written to memory")
    for i in sorted(plan.written - expected):
        problems.append(f"%{i} is written to memory but no other group reads it and it is no output")
    return problems


def print_plan(plan: Plan) -> str:
    """The plan as text: per group its kind, the values it reads and writes, and its nodes as IR lines.

    >>> import archc
    >>> from archc.passes.plan import plan
    >>> print(print_plan(plan(archc.loads('block B() { in x: [c = 4]\\n out relu(x) }', 'b.arch').check().graph)))
    plan B: 2 groups, 2 values written to memory
      group x (input) writes %0
        %0 = input() {name="x"} : [c=4]  # b.arch:1
      group relu_1 (pointwise) reads %0, writes %1
        %1 = relu(%0) : [c=4]  # b.arch:2
      return %1
    <BLANKLINE>
    """
    g = plan.graph
    where = {i: k for k, gr in enumerate(plan.groups) for i in gr.nodes}
    lines = [f"plan {g.entry}: {len(plan.groups)} groups, {len(plan.written)} values written to memory"]
    for k, gr in enumerate(plan.groups):
        reads = sorted({s for i in gr.nodes if 0 <= i < len(g) for s in g.node(i).inputs if where.get(s) != k})
        writes = sorted(i for i in gr.nodes if i in plan.written)
        io = [", ".join(f"%{i}" for i in ids) for ids in (reads, writes)]
        head = " reads " + io[0] if reads else ""
        head += ("," if reads and writes else "") + (" writes " + io[1] if writes else "")
        lines.append(f"  group {gr.name} ({gr.kind}){head}")
        lines += [f"    {print_node(g.node(i))}" for i in gr.nodes if 0 <= i < len(g)]
    lines.append("  return " + ", ".join(f"%{i}" for i in g.outputs))
    return "\n".join(lines) + "\n"

