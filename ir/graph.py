"""The typed graph: archc's one IR.

A `Graph` holds `Node`s (one operation each, with attributes, a source span and
the module path it belongs to) in topological order; every node produces one
value whose type is a `TensorType` (ordered named axes with sizes and a dtype)
or a `TupleType`. Edges carry those types. networkx stays behind this class:
passes call `Graph` methods, never networkx directly.

Block structure survives elaboration in `Graph.modules`: one `ModuleInfo` per
block instance, sequence or list, keyed by its dotted path ("layer1.0.conv1"),
which is also the state_dict prefix of the parameters under it.

>>> g = Graph("Net")
>>> len(g), g.entry
(0, 'Net')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from archc.diagnostics import Span
from archc.ops.registry import Attrs, Op, OpDef
from archc.shapes.sizes import Size
from archc.shapes.types import ParamSpec, TensorType, Type

__all__ = ["Graph", "ModuleInfo", "Node", "Op", "OpDef"]  # Op: the ops a graph's nodes refer to


@dataclasses.dataclass
class Node:
    id: int
    op: OpDef[Any]
    inputs: tuple[int, ...]
    attrs: Any  # the op's typed attributes: an instance of op.attrs
    type: Type
    span: Span
    path: str | None = None  # module path when the node owns parameters (state_dict prefix)
    scope: str = ""  # path of the innermost enclosing block instance ("" = the entry)
    params: tuple[ParamSpec, ...] = ()
    label: str = ""  # the user's name for the value, when it has one

    @property
    def tensor_type(self) -> TensorType:
        assert isinstance(self.type, TensorType)
        return self.type


@dataclasses.dataclass
class ModuleInfo:
    """A block instance, a numbered sequence or an indexed list, at a dotted path."""

    path: str
    kind: str  # "block" | "seq" | "list" | "op"
    name: str  # block name, or the op name for kind "op"
    args: dict[str, Any]
    span: Span
    parent: str | None
    children: list[str] = dataclasses.field(default_factory=list)
    # For elements of a repetition: (loop variable, index, start, stop).
    repeat: tuple[str, int, int, int] | None = None


class Graph:
    """A typed dataflow graph with the block tree it was elaborated from."""

    def __init__(self, entry: str):
        self.entry = entry
        self._nx: Any = None  # the networkx view, built on first use (see `_g`)
        self._nodes: list[Node] = []
        self.modules: dict[str, ModuleInfo] = {}
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.sizes: dict[str, int | None] = {}  # free sizes and the values they were given
        self.dtype = "f32"  # the floating-point dtype of values and parameters (`dtype bf16`, --dtype)

    def add(self, op: OpDef[Any], inputs: tuple[int, ...], attrs: Attrs | dict[str, Any], type: Type,
            span: Span, **kw: Any) -> Node:
        """Append a node; `attrs` is the op's attributes, or a dict of them to build them from."""
        if isinstance(attrs, dict):
            attrs = op.attrs(**attrs)
        node = Node(len(self._nodes), op, tuple(inputs), attrs, type, span, **kw)
        self._nodes.append(node)
        self._nx = None
        return node

    @property
    def _g(self) -> Any:
        """The graph as a networkx MultiDiGraph (edge key = input slot, data `type`).

        Built lazily from the node list: importing networkx costs ~0.1 s, and
        `check`/`flops` never need it."""
        if self._nx is None:
            import networkx as nx
            g = nx.MultiDiGraph()
            for n in self._nodes:
                g.add_node(n.id)
                for slot, src in enumerate(n.inputs):
                    g.add_edge(src, n.id, key=slot, type=self._nodes[src].type)
            self._nx = g
        return self._nx

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def node(self, i: int) -> Node:
        return self._nodes[i]

    def users(self, i: int) -> list[int]:
        return sorted({v for _, v in self._g.out_edges(i)})

    def edges(self) -> Iterator[tuple[int, int, int, Type]]:
        """(source, destination, input slot, type) for every edge."""
        for u, v, k, d in self._g.edges(keys=True, data=True):
            yield u, v, k, d["type"]

    def is_acyclic(self) -> bool:
        import networkx as nx
        return bool(nx.is_directed_acyclic_graph(self._g))

    def add_module(self, info: ModuleInfo) -> None:
        self.modules[info.path] = info
        if info.parent is not None and info.parent in self.modules:
            self.modules[info.parent].children.append(info.path)

    def state_dict(self) -> dict[str, tuple[tuple[Size, ...], bool]]:
        """Every parameter and persistent buffer, as PyTorch's state_dict has them:
        full key -> (shape, is_buffer), in PyTorch's order: each module's own parameters, then its
        own buffers, then its submodules, each in the order they were defined."""
        entries: list[tuple[tuple[str, ...], tuple[Size, ...], bool]] = []
        for n in self._nodes:
            for p in n.params:
                if p.persistent:
                    key = f"{n.path}.{p.name}" if n.path else p.name
                    entries.append((tuple(key.split(".")), p.shape, p.buffer))
        out: dict[str, tuple[tuple[Size, ...], bool]] = {}

        def visit(prefix: tuple[str, ...], items: list[tuple[tuple[str, ...], tuple[Size, ...], bool]]) -> None:
            own = [e for e in items if len(e[0]) == len(prefix) + 1]
            for e in sorted(own, key=lambda e: e[2]):  # stable: parameters, then buffers
                out[".".join(e[0])] = (e[1], e[2])
            children: dict[str, list[tuple[tuple[str, ...], tuple[Size, ...], bool]]] = {}
            for e in items:
                if len(e[0]) > len(prefix) + 1:
                    children.setdefault(e[0][len(prefix)], []).append(e)
            for name, sub in children.items():
                visit(prefix + (name,), sub)

        visit((), entries)
        return out
