"""Dead-value elimination: drop the nodes whose values no output needs.

The rule. A node stays when any of these holds:

  - its value reaches an output of the graph;
  - it is an input of the graph (the signature does not change);
  - it owns state_dict entries (`node.params`: a layer's weights, a `param`):
    dropping it would change the state_dict, so checkpoints would no longer
    load and the generated module would lose a layer its users expect.
    What such a node reads stays too, so the graph stays well formed.

Everything else (a stateless op whose value nobody reads, e.g. a value a block
computes and does not use) goes. Ids are renumbered; modules are kept as they are.

>>> import archc
>>> g = archc.loads('block B() { in x: [c = 4]\\n y = relu(x)\\n z = linear(y, c -> 2)\\n out x }').check().graph
>>> [n.op.value for n in dead_values(g)]
['input', 'relu', 'linear']
"""

from __future__ import annotations

from archc.ir.graph import Graph, Node
from archc.ir.rewrite import rewrite
from archc.passes.base import graph_pass, prop


def live_nodes(g: Graph) -> set[int]:
    """The ids of the nodes the rule above keeps.

    >>> import archc
    >>> sorted(live_nodes(archc.loads('block B() { in x: [c = 4]\\n y = relu(x)\\n out x }').check().graph))
    [0]
    """
    live = set(g.outputs) | set(g.inputs) | {n.id for n in g if n.params}
    for n in reversed(list(g)):
        if n.id in live:
            live.update(n.inputs)
    return live


@prop("no-dead-values", "every node reaches an output, is an input, or owns state")
def _no_dead(g: Graph) -> bool:
    return len(live_nodes(g)) == len(g)


@graph_pass("dead_values", requires=("linted",), ensures=("linted", "no-dead-values"))
def dead_values(g: Graph) -> Graph:
    """Drop the nodes whose values reach no output (state-owning nodes and inputs stay)."""
    live = live_nodes(g)

    def keep(n: Node) -> Node | None:
        return n if n.id in live else None
    return rewrite(g, keep)
