"""Copying a graph while dropping, forwarding or replacing nodes: the one way passes change a graph.

`Graph` is append-only, so a pass never edits one: it walks the old graph in
order and says, per node, what the new graph gets (`rewrite`):

  - the node itself, or a changed copy (`dataclasses.replace(node, attrs=...)`),
    its inputs still written in the *old* ids: it is appended with the next id
    and its inputs are remapped;
  - `Forward(old_id)`: the node disappears and its users read the value of
    `old_id` instead (an identity removed, an alias resolved);
  - `None`: the node disappears; no kept node or output may use it.

Ids are renumbered densely in the old order, so when nothing is dropped they are
unchanged (code generation relies on that: its traces record values by id).
The block tree (`modules`), `inputs`, `outputs` and `sizes` are carried over,
remapped; modules and attribute dicts are copied, so the new graph shares no
mutable state with the old one, which is never changed.

>>> import archc
>>> g = archc.loads('block B() { in x: [c = 4]\\n y = identity(x)\\n out relu(y) }').check().graph
>>> [(n.id, n.op.value, n.inputs) for n in g]
[(0, 'input', ()), (1, 'identity', (0,)), (2, 'relu', (1,))]
>>> h = rewrite(g, lambda n: Forward(n.inputs[0]) if n.op is Op.IDENTITY else n)
>>> [(n.id, n.op.value, n.inputs) for n in h], h.outputs, len(g)
([(0, 'input', ()), (1, 'relu', (0,))], [1], 3)
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

from archc.ir.graph import Graph, Node, Op  # noqa: F401 - Op for the examples

__all__ = ["Edit", "Forward", "drop_module", "rewrite"]


@dataclasses.dataclass(frozen=True)
class Forward:
    """The node is gone; its users read the value of the old node `to` instead."""

    to: int


Edit = Callable[[Node], "Node | Forward | None"]

# Fields `Graph.add` takes positionally; every other field of Node is passed by name,
# so a field added to Node later is carried over without changing this module.
_POSITIONAL = ("id", "op", "inputs", "attrs", "type", "span")


def rewrite(g: Graph, edit: Edit | None = None) -> Graph:
    """A new graph with `edit` applied to every node of `g` in order (see the module docstring).

    Raises ValueError when a kept node or an output uses a dropped node, or an input is dropped.

    >>> rewrite(Graph("Empty")).entry
    'Empty'
    """
    new = Graph(g.entry)
    ids: dict[int, int] = {}  # old id -> new id
    forwards: dict[int, int] = {}  # old id -> the old id whose value it now is
    for n in g:
        out = n if edit is None else edit(n)
        if isinstance(out, Forward):
            if out.to >= n.id:
                raise ValueError(f"%{n.id} forwards to %{out.to}, which does not come before it")
            forwards[n.id] = forwards.get(out.to, out.to)
            continue
        if out is None:
            if n.id in g.inputs:
                raise ValueError(f"%{n.id} is an input of the graph and cannot be dropped")
            continue
        inputs = tuple(_resolve(i, ids, forwards, f"%{n.id}") for i in out.inputs)
        rest = {f.name: getattr(out, f.name) for f in dataclasses.fields(Node) if f.name not in _POSITIONAL}
        kept = new.add(out.op, inputs, copy.deepcopy(out.attrs), out.type, out.span, **rest)
        ids[n.id] = kept.id
    new.modules = {path: dataclasses.replace(m, args=dict(m.args), children=list(m.children))
                   for path, m in g.modules.items()}
    new.inputs = [_resolve(i, ids, forwards, "the inputs") for i in g.inputs]
    new.outputs = [_resolve(i, ids, forwards, "the outputs") for i in g.outputs]
    new.sizes = dict(g.sizes)
    known = {"entry", "_nx", "_nodes", "modules", "inputs", "outputs", "sizes"}
    for k, v in vars(g).items():  # what others hung on the graph (a trace's constraints): shared
        if k not in known:
            setattr(new, k, v)
    return new


def _resolve(old: int, ids: dict[int, int], forwards: dict[int, int], user: str) -> int:
    old = forwards.get(old, old)
    if old not in ids:
        raise ValueError(f"{user} use %{old}, which the rewrite dropped")
    return ids[old]


def drop_module(g: Graph, path: str) -> None:
    """Remove the module at `path` (a layer whose node a pass removed) from `g`'s block tree, in place.

    Only for a graph a pass has just built (never its input).

    >>> import archc
    >>> g = archc.loads('block B() { in x: [b = 1, c = 4]\\n bn = batchnorm(x)\\n out bn }').check().graph
    >>> sorted(g.modules)
    ['', 'bn']
    >>> drop_module(g, "bn"); sorted(g.modules), g.modules[""].children
    ([''], [])
    """
    m = g.modules.pop(path, None)
    if m is not None and m.parent is not None and m.parent in g.modules:
        g.modules[m.parent].children = [c for c in g.modules[m.parent].children if c != path]
