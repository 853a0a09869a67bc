"""Columns and lanes of a circuit diagram: which items are drawn, in which lane, with how many rows.

The first half of the layout, in graph terms only (no pixels but the lanes' heights): `Lanes` folds the
graph as the graph style does (`graph.fold`), makes one `Item` per drawn column in graph order, and
colours chains of items into lanes (see `Lanes.place`). `circuit_layout` places them in x and draws.

>>> import archc
>>> m = archc.loads('block B() { in x: [n = 2, c = 8]\\n fc = linear(x, c -> 4)\\n out relu(fc) }')
>>> lanes = Lanes(m.check().graph, (), None)
>>> lanes.place()
>>> [(it.key, it.col, it.lane) for it in lanes.items], lanes.lanes
([('n0', 0, 0), ('n1', 1, 0), ('n2', 2, 0)], 1)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from archc.codegen.diagrams.graph import Run, _costs, fold
from archc.ir.graph import Graph, ModuleInfo, Node, Op
from archc.ops.glyphs import GLYPHS
from archc.shapes.legend import Legend
from archc.shapes.types import TensorType, TupleType

GAP = 18         # vertical distance between the wires of a lane
HEAD = 18        # room above a lane's wires for floating glyphs (➤f➤, +, bars' names)
CURVE = 26       # horizontal room for a wire to change lanes before an op


@dataclasses.dataclass
class Item:
    """One drawn column: an op node, or (with `depth`) a whole module drawn as a box."""

    key: str
    node: Node             # the op node, or the module's last node (whose value leaves the box)
    module: str | None     # set for a collapsed module
    inputs: list[str] = dataclasses.field(default_factory=list)  # producing items, by slot
    col: int = 0
    lane: int = 0
    x: float = 0.0         # left edge of the op column
    w: float = 0.0         # width of the glyph
    first: int = 0         # column of the first consumer (its value's wires run in `lane` up to there)
    end: int = 0           # column of the last consumer
    carry: int | None = None  # the lane its value is carried in from `first` to `end`, when used again later
    curve: float = 0.0     # room left of the column for its input wires to change rows


def types(t: TensorType | TupleType) -> tuple[TensorType, ...]:
    return t.items if isinstance(t, TupleType) else (t,)


def slots(t: TensorType | TupleType) -> list[tuple[str, Any] | None]:
    """The wires of a value top to bottom: (axis, size), or None for a tuple's dashed separator."""
    out: list[tuple[str, Any] | None] = []
    for k, tt in enumerate(types(t)):
        if k:
            out.append(None)
        out.extend((a.name, a.size) for a in tt.axes)
    return out


class Lanes:
    """The drawn items of `g` and their lanes; the state that the rest of the layout reads."""

    def __init__(self, g: Graph, expand: Sequence[str], depth: int | None, annotate: str | None = None,
                 define: ModuleInfo | None = None, conv: str = "compact"):
        self.g = g
        self.annotate = annotate
        self.define = define
        self.conv = conv
        self.legend = Legend((n.type for n in g), reserved=g.sizes)
        self._collect(expand, depth)
        self.last_node: dict[str, int] = {}  # module path -> its last node (the value leaving it)
        for n in g:
            path = n.path or n.scope
            while path:
                self.last_node[path] = n.id
                path = path.rpartition(".")[0]
        # Costs add up on whatever draws them (a run's drawn column carries all N elements).
        self.weights: dict[str, int] = {}
        if annotate is not None:
            costs = _costs(g, annotate)
            for n in g:
                k = self.key_of[n.id]
                self.weights[k] = self.weights.get(k, 0) + costs.get(n.id, 0)
        nonzero = [v for v in self.weights.values() if v > 0]
        self.scale = (math.log10(min(nonzero)), math.log10(max(nonzero))) if nonzero else (0.0, 0.0)

    def _collect(self, expand: Sequence[str], depth: int | None) -> None:
        """One item per drawn column, with its inputs as items (an edge inside a collapsed run is dropped)."""
        g = self.g
        f = fold(g, expand, depth)
        conts, draw, member, box = f.conts, f.draw, f.member, f.box
        self.runs: dict[str, Run] = f.run_of
        self.conts = conts

        def key(i: int) -> str:
            return f"m:{box[i]}" if i in box else f"n{draw[i]}"

        items: dict[str, Item] = {}
        for n in g:
            k = key(n.id)
            if k not in items:
                items[k] = Item(k, g.node(draw[n.id]), box.get(n.id))
            elif n.id in box and draw[n.id] == n.id:
                items[k].node = n  # a box's value is its last node's
        for n in g:
            k = key(n.id)
            if draw[n.id] != n.id and k.startswith("n"):
                continue  # a hidden element of a run: its rep draws it
            for src in n.inputs:
                if any(r == r2 and a != b for r, a in member[src] for r2, b in member[n.id]):
                    continue  # from one element of a run into the next: the ×N says it
                ks = key(src)
                if ks != k and ks not in items[k].inputs:
                    items[k].inputs.append(ks)
        self.items = list(items.values())
        self.by_key = items
        self.key_of = {n.id: key(n.id) for n in g}
        outs = {key(i) for i in g.outputs}
        self.outputs = [k for k in items if k in outs]

    def place(self) -> None:
        """Columns in graph order, then lanes. A value's wires run in its *home* lane from its column to its
        first consumer; a value used again later is copied there (dots) and *carried* in a lane of its own
        to its last consumer, as the paper draws a residual's skip wires below the block. An op continues
        the lane of an input whose first consumer it is (the chain of ops stays on one line), else takes
        over the carried lane of an input whose last consumer it is (a branch such as a downsample), else
        starts a new lane; among several inputs, one fed from a graph input wins over a parameter's (ViT's
        class token, a layer scale). Lanes are coloured like intervals: chains holding an input or an output first
        (the spine, top), then the others from the shortest, so nested skips stack without crossing."""
        users: dict[str, list[int]] = {it.key: [] for it in self.items}
        for col, it in enumerate(self.items):
            it.col = col
            for s in it.inputs:
                users[s].append(col)
        last = len(self.items)
        for it in self.items:
            us = users[it.key]
            out = it.key in self.outputs
            it.first = us[0] if us else last if out else it.col
            it.end = last if out else max(us, default=it.col)
        spans: list[list[int]] = []  # per chain: [first column, last column]
        spine: list[bool] = []
        home: dict[str, int] = {}    # item key -> the chain of its home segment
        carried: dict[str, int] = {}  # item key -> the chain its carried copy belongs to

        def chain(lo: int, hi: int, top: bool) -> int:
            spans.append([lo, hi])
            spine.append(top)
            return len(spans) - 1

        fed: set[int] = set()  # chains that carry data from a graph input (not from a parameter alone)
        for it in self.items:
            here = [home[s] for s in it.inputs if self.by_key[s].first == it.col]
            c: int | None = next((x for x in here if x in fed), here[0] if here else None)
            if c is None and it.inputs:
                src = self.by_key[it.inputs[0]]
                if src.key in carried and src.end == it.col:
                    c = carried[src.key]
            top = it.node.op == Op.INPUT or it.key in self.outputs
            if c is None:
                c = chain(it.col, it.first, top)
            if it.node.op == Op.INPUT or any(home[s] in fed or carried.get(s) in fed for s in it.inputs):
                fed.add(c)
            spans[c][1] = max(spans[c][1], it.first)
            spine[c] = spine[c] or top
            home[it.key] = c
            if it.end > it.first:
                carried[it.key] = chain(it.first, it.end, False)
        order = sorted(range(len(spans)), key=lambda c: (not spine[c], 0 if spine[c] else spans[c][1] - spans[c][0],
                                                         spans[c][0]))
        taken: list[list[tuple[float, float]]] = []
        lane_of: dict[int, int] = {}
        for c in order:
            lo, hi = spans[c][0], max(spans[c][1], spans[c][0] + 0.5)
            lane = next((i for i, t in enumerate(taken) if not any(lo < b and a < hi for a, b in t)), len(taken))
            if lane == len(taken):
                taken.append([])
            taken[lane].append((lo, hi))
            lane_of[c] = lane
        for it in self.items:
            it.lane = lane_of[home[it.key]]
            it.carry = lane_of[carried[it.key]] if it.key in carried else None
        self.lanes = max(len(taken), 1)
        self.ends = {it.key: self._end_rows(it) for it in self.items}
        rows = [1] * self.lanes
        for it in self.items:
            rows[it.lane] = max(rows[it.lane], self._rows_of(it))
            if it.carry is not None:
                rows[it.carry] = max(rows[it.carry], len(slots(it.node.type)))
        self.lane_rows = rows
        self.lane_off = [0.0]  # each lane's top below the first's; one more entry: the total height
        for lane in range(self.lanes):
            self.lane_off.append(self.lane_off[-1] + self._lane_h(lane))

    def _lane_h(self, lane: int) -> float:
        return HEAD + 12 + (self.lane_rows[lane] - 1) * GAP + 22

    def src_lane(self, it: Item, src: Item) -> int:
        """The lane `it` reads input `src` from: its home lane at its first consumer, its carried lane after."""
        return src.carry if src.carry is not None and it.col != src.first else src.lane

    def attn(self, it: Item) -> tuple[str, str, str] | None:
        """The items giving q, k and v of an attention op drawn in full (three distinct inputs), else None."""
        n = it.node
        if it.module is not None or n.op != Op.ATTENTION or len(n.inputs) != 3:
            return None
        q, k, v = (self.key_of[i] for i in n.inputs)
        return (q, k, v) if len({q, k, v}) == 3 and isinstance(n.type, TensorType) else None

    def _end_rows(self, it: Item) -> dict[tuple[str, str], int]:
        """Rows under an op's output wires where input wires end at it, keyed (input item, axis): the axes a
        reduction removes; an einsum's contracted axes, one row per operand holding it (consecutive rows of
        one axis meet in a cup); attention's q·k contraction over the feature axis and its sum over the
        key positions (k's sequence wire, through the softmax ◁, meets v's in a cup)."""
        n = it.node
        if it.module is not None:
            return {}
        kind = GLYPHS[n.op].kind
        here = slots(n.type)
        base = len(here)
        kept = {s[0] for s in here if s is not None}
        ends: dict[tuple[str, str], int] = {}
        roles = self.attn(it)
        if roles is not None:
            q, k, v = roles
            seq, chan = n.attrs["seq"], n.attrs["chan"]
            return {(q, chan): base, (k, chan): base + 1, (k, seq): base + 2, (v, seq): base + 3}
        if kind not in ("reduce", "einsum"):
            return ends
        sources = it.inputs[:1] if kind == "reduce" else it.inputs
        names = {k: [s[0] for s in slots(self.by_key[k].node.type) if s is not None] for k in sources}
        gone = list(dict.fromkeys(a for k in sources for a in names[k] if a not in kept))
        for a in gone:
            for k in sources:
                if a in names[k]:
                    ends[(k, a)] = base + len(ends)
        return ends

    def _rows_of(self, it: Item) -> int:
        return max(len(slots(it.node.type)) + len(self.ends[it.key]), 1)
