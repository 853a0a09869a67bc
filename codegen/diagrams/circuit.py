"""The circuit style: a neural circuit diagram (Abbott, TMLR 2024) of the typed graph, drawn as SVG.

Left to right, columns alternate operations and data. Every value is a bundle
of horizontal wires in a *lane*, one wire per named axis. A wire is labelled
`name=size` (legend names for derived sizes) just after the op that makes it
when its axis is new or its size changed since the previous column of the same
value chain (the op's first input), and always at an input and at the first
column of each block region; the tensors of a tuple are separated by a dashed
line. An op's glyph (from `codegen.glyphs`) covers only the wires of the axes
it acts on; the others run straight past it, which is how broadcasting is
drawn. The data path from the input keeps the top lane; a value used again
later is copied at dots and carried in a lane of its own (named where it
leaves and comes back) to a + join, a concat bar or a branch that takes it
over. Wires an op consumes end in rows under its output: a reduction's box,
an einsum's contractions joined in cups (operands meeting on a kept axis: a
dot), attention's q·k cup, softmax ◁ and second cup. Blocks and sequences are
tinted titled regions; a run of identical repetition elements (found as the
graph style finds them) is drawn once inside large parentheses with its index
range and ×N; `depth` draws deeper modules as one 3-D box.

`define="Block"` draws a block's definition instead: a 3-D box titled with the
block's name and the parameter values of its first instance, an "=" sign, and
the circuit of that instance's ops alone (`define_graph`), its inputs drawn as
labelled input wires. `conv="expanded"` draws each convolution in expanded
form: a light-blue trapezoid ★ (with the stride) splits every spatial wire into
the output positions and a kernel-window wire labelled `k=…`, and a bold **L**
contracts the window wires and the channel wire into the output channel wire.

Layout is computed here, not by graphviz: `layout(g)` returns a `Layout`
whose `texts` are the boxes of every piece of drawn text (measured with
`textwidth`), so tests can check that no two intersect. Output is deterministic.

>>> import archc
>>> m = archc.loads('block B() { in x: [n = 2, c = 8]\\n fc = linear(x, c -> 4)\\n out relu(fc) }')
>>> lay = layout(m.check().graph)
>>> [w.label for w in lay.wires]
['n=2', 'c=8', 'n=2', 'c=4', 'n=2', 'c=4']
>>> [w.label for w in lay.wires if w.shown]  # n=2 runs on unchanged past L; outputs are labelled
['n=2', 'c=8', 'c=4', 'n=2', 'c=4']
>>> lay.svg().startswith('<svg')
True
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from html import escape
from typing import Any

from archc.codegen.diagrams.graph import ANNOTATE, SCALE, Run, _colour, _costs, _fmt_num, fold
from archc.codegen.diagrams.textwidth import width
from archc.diagnostics import NO_SPAN, ArchError, Diagnostic, Span, did_you_mean
from archc.ir.graph import Graph, ModuleInfo, Node, Op
from archc.ops.glyphs import GLYPHS, detail
from archc.shapes.legend import Legend
from archc.shapes.types import TensorType, TupleType

FS = 11          # font size of labels (px)
GAP = 18         # vertical distance between the wires of a lane
HEAD = 18        # room above a lane's wires for floating glyphs (➤f➤, +, bars' names)
CURVE = 26       # horizontal room for a wire to change lanes before an op
TITLE_H = 16     # one row of region titles / run labels
ATTN_W = 84      # width of an attention op drawn in full (cup, softmax, cup)
WIN_FS = 8       # font size of the kernel-window labels of an expanded convolution
LEGEND_ROWS = 6  # entries per column of the legend
POWERS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
TINTS = ("#e8eaf6", "#fdf1dc", "#e6f2e6", "#f6e3ea", "#e3f1f6")


@dataclasses.dataclass(frozen=True)
class Box:
    """A drawn text: its top-left corner, width and height (estimated), and what it says."""

    x: float
    y: float
    w: float
    h: float
    text: str
    kind: str  # "wire" | "glyph" | "title" | "run" | "legend" | "cost" | "window" | "define"

    def hits(self, o: Box) -> bool:
        return self.x < o.x + o.w and o.x < self.x + self.w and self.y < o.y + o.h and o.y < self.y + self.h


@dataclasses.dataclass(frozen=True)
class Wire:
    value: str   # the item that produces it
    axis: str
    label: str   # "name=size"
    y: float
    shown: bool = True  # whether the label is drawn (see `_Builder._shown`)


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


@dataclasses.dataclass
class Layout:
    width: float
    height: float
    items: list[Item]
    wires: list[Wire]
    texts: list[Box]
    glyphs: list[str]            # item keys that got a glyph element
    collapsed: list[tuple[str, int]]
    body: list[str]              # the SVG elements
    weights: dict[str, int] = dataclasses.field(default_factory=dict)  # annotate: item key -> its figure

    @property
    def summary(self) -> str:
        runs = "".join(f", {p} ×{n}" for p, n in self.collapsed)
        return f"{len(self.items)} columns, {len(self.wires)} wires{runs}"

    def svg(self) -> str:
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width:.0f}" height="{self.height:.0f}" '
                f'viewBox="0 0 {self.width:.0f} {self.height:.0f}" '
                'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" '
                f'font-size="{FS}">\n'
                '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
                'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>\n'
                f'<rect width="{self.width:.0f}" height="{self.height:.0f}" fill="#ffffff"/>\n')
        return head + "".join(x + "\n" for x in self.body) + "</svg>\n"


def _types(t: TensorType | TupleType) -> tuple[TensorType, ...]:
    return t.items if isinstance(t, TupleType) else (t,)


def _slots(t: TensorType | TupleType) -> list[tuple[str, Any] | None]:
    """The wires of a value top to bottom: (axis, size), or None for a tuple's dashed separator."""
    out: list[tuple[str, Any] | None] = []
    for k, tt in enumerate(_types(t)):
        if k:
            out.append(None)
        out.extend((a.name, a.size) for a in tt.axes)
    return out


def acts(n: Node) -> set[str] | None:
    """The axes of its first input that op `n` acts on (None: all of them; empty: none, it floats above)."""
    kind = GLYPHS[n.op].kind
    a = n.attrs
    if kind in ("func", "dropout", "identity", "join"):
        return set()
    if kind in ("linear", "embed") and a.get("map"):
        return {a["map"][0]}
    over = a.get("over")
    over = [over] if isinstance(over, str) else list(over or [])
    if kind in ("reduce", "softmax"):
        ax = a.get("axis")
        return set(over) | ({ax} if isinstance(ax, str) else set(ax or []))
    if kind == "norm":
        if over:
            return set(over)
        t = n.type
        if isinstance(t, TensorType) and t.axes:
            return {t.axes[1].name if n.op in (Op.BATCHNORM, Op.GROUPNORM) and len(t.axes) > 1
                    else t.axes[-1].name}
        return None
    if kind in ("conv", "conv_t", "pool"):
        t = n.type
        if isinstance(t, TensorType) and len(t.axes) > 2:
            return {x.name for x in t.axes[1:]}
    return None


def define_graph(g: Graph, block: str) -> tuple[Graph, ModuleInfo]:
    """The first instance of block `block` in `g` (in elaboration order) as a graph of its own.

    It holds the nodes whose scope is the instance's path or below, with paths made relative to the
    instance; every value they read from outside becomes an input (`x`, or `x1`, `x2`, ... when
    there are several), and its outputs are the values used outside it. An unknown name is an
    ArchError with a did-you-mean.
    """
    inst = next((m for m in g.modules.values() if m.kind == "block" and m.name == block), None)
    if inst is None:
        names = sorted({m.name for m in g.modules.values() if m.kind == "block"})
        first = next(iter(g), None)
        span = Span(first.span.file, 1, 1, 1, 2) if first is not None else NO_SPAN
        known = f"; its blocks: {', '.join(names)}" if names else "; it instantiates no blocks"
        raise ArchError([Diagnostic("error", "name", f"--define: no instance of block '{block}' in "
                                    f"{g.entry}{did_you_mean(block, names)}{known}", span)])
    p = inst.path

    def within(s: str) -> bool:
        return not p or s == p or s.startswith(p + ".")

    def rel(s: str) -> str:
        return s[len(p) + 1:] if p and s.startswith(p + ".") else "" if s == p else s

    inside = [n for n in g if within(n.scope)]
    ids = {n.id for n in inside}
    outer = list(dict.fromkeys(i for n in inside for i in n.inputs if i not in ids))
    sub = Graph(block)
    sub.sizes = dict(g.sizes)
    new: dict[int, int] = {}
    for k, i in enumerate(outer):
        name = "x" if len(outer) == 1 else f"x{k + 1}"
        src = g.node(i)
        node = sub.add(Op.INPUT, (), {"name": name}, src.type, src.span, scope="", label=name)
        sub.inputs.append(node.id)
        new[i] = node.id
    used_outside = {i for n in g if n.id not in ids for i in n.inputs} | set(g.outputs)
    for n in inside:
        node = sub.add(n.op, tuple(new[i] for i in n.inputs), n.attrs, n.type, n.span,
                       path=rel(n.path) if n.path else n.path, scope=rel(n.scope), params=n.params, label=n.label)
        new[n.id] = node.id
        if n.id in g.inputs:
            sub.inputs.append(node.id)
        if n.id in used_outside:
            sub.outputs.append(node.id)
    if not sub.outputs and inside:
        sub.outputs.append(new[inside[-1].id])
    for path, m in g.modules.items():
        if path != p and within(path):
            sub.modules[rel(path)] = dataclasses.replace(
                m, path=rel(path), parent=rel(m.parent) if m.parent and m.parent != p else None,
                children=[rel(c) for c in m.children])
    return sub, inst


class _Builder:
    def __init__(self, g: Graph, expand: Sequence[str], depth: int | None, annotate: str | None = None,
                 define: ModuleInfo | None = None, conv: str = "compact"):
        self.g = g
        self.annotate = annotate
        self.define = define
        self.conv = conv
        self.legend = Legend((n.type for n in g), reserved=g.sizes)
        self.body: list[str] = []
        self.texts: list[Box] = []
        self.wires: list[Wire] = []
        self.glyphs: list[str] = []
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

    # ---- which columns are drawn ---------------------------------------------------------

    def _collect(self, expand: Sequence[str], depth: int | None) -> None:
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

    # ---- columns and lanes -----------------------------------------------------------------

    def _place(self) -> None:
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
                rows[it.carry] = max(rows[it.carry], len(_slots(it.node.type)))
        self.lane_rows = rows
        self.lane_off = [0.0]  # each lane's top below the first's; one more entry: the total height
        for lane in range(self.lanes):
            self.lane_off.append(self.lane_off[-1] + self._lane_h(lane))

    def _entry_x(self, col: int, right: float) -> float:
        """Where wires into column `col` leave their lane and start to curve (past the last column: the
        right edge, where outputs end in arrows)."""
        if col >= len(self.items):
            return right - 10
        return self.items[col].x - self.items[col].curve

    def _src_lane(self, it: Item, src: Item) -> int:
        """The lane `it` reads input `src` from: its home lane at its first consumer, its carried lane after."""
        return src.carry if src.carry is not None and it.col != src.first else src.lane

    def _label(self, s: tuple[str, Any]) -> str:
        """`name=size`, or just the name where the size is the free size of that name (`batch`, not
        `batch=batch`)."""
        size = self.legend.size_str(s[1])
        return s[0] if size == s[0] else f"{s[0]}={size}"

    def _mark_fresh(self) -> None:
        """The items that open a block region (the first drawn column inside it): they label every wire."""
        self.fresh: set[str] = set()
        seen: set[str] = set()
        for it in self.items:
            c = self.conts[it.node.id]
            if it.module is not None:
                m = self.g.modules.get(it.module)
                c = (m.parent or "") if m else ""
            while c:
                m = self.g.modules.get(c)
                if m is not None and m.kind == "block" and c not in seen:
                    seen.add(c)
                    self.fresh.add(it.key)
                c = self._parent(c)

    def _shown(self, it: Item) -> list[bool]:
        """Per slot of `it`'s value: is its wire labelled? Yes at an input, at a block region's first column,
        on the diagram's outputs, where the value moves to another lane than its chain's, and where the
        axis is new or its size changed since the previous column of the chain (`inputs[0]`)."""
        slots = _slots(it.node.type)
        if (not it.inputs or it.key in self.fresh or it.node.id in self.g.outputs
                or it.lane != self.by_key[it.inputs[0]].lane):
            return [s is not None for s in slots]
        before = {self._label(s) for s in _slots(self.by_key[it.inputs[0]].node.type) if s is not None}
        return [s is not None and self._label(s) not in before for s in slots]

    def _glyph_text(self, it: Item) -> str:
        n = it.node
        if it.module is not None:
            m = self.g.modules.get(it.module)
            if m is None:
                return it.module
            return m.name if m.kind == "block" and m.name else f"{it.module.rpartition('.')[2]} ({m.kind})"
        gl = GLYPHS[n.op]
        a = n.attrs
        if gl.kind == "input":
            return str(a.get("name", "x"))
        if gl.kind == "param":
            return f"θ {a.get('name', '')}".strip()
        if gl.kind == "linear":
            return "L₊" if a.get("bias") else "L"
        if gl.kind in ("conv", "conv_t", "pool"):
            k = a.get("kernel") or ()
            ks = self.legend.size_str(k[0]) if k and len(set(k)) == 1 else "×".join(self.legend.size_str(x) for x in k)
            s = a.get("strides") or ()
            st = f"/{self.legend.size_str(s[0])}" if s and any(x != 1 for x in s) else ""
            if self._expanded(it):
                return f"★{st}"  # the kernel labels the window wires
            text = f"★{ks}{st}" + (" T" if gl.kind == "conv_t" else "")
            return f"{text} {gl.symbol}" if gl.kind == "pool" else text
        if gl.kind in ("func", "dropout", "identity"):
            return f"➤{gl.symbol}➤"
        return gl.symbol

    def _expanded(self, it: Item) -> bool:
        """Whether `it` is a convolution drawn in expanded form (trapezoid ★, window wires, **L**)."""
        n = it.node
        return (self.conv == "expanded" and it.module is None and n.op == Op.CONV and bool(n.attrs.get("spatial"))
                and bool(n.attrs.get("map")) and isinstance(n.type, TensorType)
                and set(self._conv_axes(it)) <= {s[0] for s in _slots(n.type) if s is not None})

    def _conv_axes(self, it: Item) -> list[str]:
        """The output channel axis, then the spatial axes, of a convolution."""
        axis, _size, rename = it.node.attrs["map"]
        return [rename or axis, *it.node.attrs["spatial"]]

    def _windows(self, it: Item) -> list[str]:
        """The labels of the kernel-window wires: one per spatial axis, or one `k=3²` for a square kernel
        (the paper's `1²`), which leaves the trapezoid under the last spatial wire."""
        k: tuple = tuple(it.node.attrs.get("kernel") or ())
        if len(k) > 1 and len(set(k)) == 1 and len(k) < len(POWERS):
            return [f"k={self.legend.size_str(k[0])}{POWERS[len(k)]}"]
        return [f"k={self.legend.size_str(x)}" for x in k]

    def _conv_parts(self, it: Item) -> tuple[float, float, float]:
        """Widths of an expanded convolution's trapezoid, window-wire stretch and **L**."""
        star = width(self._glyph_text(it), FS) + 16
        win = max((width(s, WIN_FS) for s in self._windows(it)), default=8.0) + 26
        return max(star, 26.0), win, 24.0

    def _define_lines(self) -> list[str]:
        m = self.define
        assert m is not None
        return [m.name] + [f"{k} = {self._arg_str(v)}" for k, v in m.args.items()]

    def _arg_str(self, v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, (list, tuple)):
            inner = ", ".join(self._arg_str(x) for x in v)
            return f"[{inner}]" if isinstance(v, list) else f"({inner})"
        if isinstance(v, float):
            return f"{v:g}"
        try:
            return self.legend.size_str(v)
        except Exception:  # not a size: its plain text
            return str(v)

    def _define_w(self) -> float:
        return max(width(s, FS, i == 0) for i, s in enumerate(self._define_lines())) + 24

    def _draw_define(self) -> float:
        """The block's 3-D box (name and parameter values) and the "=" sign, left of the circuit; its bottom."""
        lines = self._define_lines()
        w, h, d = self._define_w(), len(lines) * TITLE_H + 16, 8
        x, y = 20.0, self.top + HEAD
        m = self.define
        assert m is not None
        self.body.append(f'<g class="define-box" data-block="{escape(m.name)}" data-path="{escape(m.path)}">'
                         f'<title>{escape(m.path)}</title>'
                         f'<path d="M{x:.1f},{y:.1f} l{d},{-d} h{w:.1f} l{-d},{d} z" fill="#b8dc95" '
                         f'stroke="#222" stroke-width="1.2"/>'
                         f'<path d="M{x + w:.1f},{y:.1f} l{d},{-d} v{h:.1f} l{-d},{d} z" fill="#a9cf85" '
                         f'stroke="#222" stroke-width="1.2"/>'
                         f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="#cfe8b0" '
                         f'stroke="#222" stroke-width="1.5"/></g>')
        for i, s in enumerate(lines):
            self._text(x + 12, y + 8 + i * TITLE_H, s, "define", weight="bold" if i == 0 else "normal")
        self._text(x + w + d + 14, y + h / 2 - 11, "=", "define", anchor="middle", size=22, weight="bold")
        return y + h

    def _figure(self, it: Item) -> str:
        """The annotation drawn under the glyph ('' without --annotate)."""
        if self.annotate is None:
            return ""
        return _fmt_num(self.weights.get(it.key, 0))

    # ---- geometry --------------------------------------------------------------------------

    def lane_top(self, lane: int) -> float:
        return self.top + self.lane_off[lane]

    def _lane_h(self, lane: int) -> float:
        return HEAD + 12 + (self.lane_rows[lane] - 1) * GAP + 22

    def row_y(self, lane: int, j: int) -> float:
        return self.lane_top(lane) + HEAD + 12 + j * GAP

    def wire_y(self, it: Item, j: int) -> float:
        return self.row_y(it.lane, j)

    def axis_y(self, it: Item, name: str) -> float | None:
        for j, s in enumerate(_slots(it.node.type)):
            if s is not None and s[0] == name:
                return self.wire_y(it, j)
        return None

    def _attn(self, it: Item) -> tuple[str, str, str] | None:
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
        slots = _slots(n.type)
        base = len(slots)
        kept = {s[0] for s in slots if s is not None}
        ends: dict[tuple[str, str], int] = {}
        roles = self._attn(it)
        if roles is not None:
            q, k, v = roles
            seq, chan = n.attrs["seq"], n.attrs["chan"]
            return {(q, chan): base, (k, chan): base + 1, (k, seq): base + 2, (v, seq): base + 3}
        if kind not in ("reduce", "einsum"):
            return ends
        sources = it.inputs[:1] if kind == "reduce" else it.inputs
        names = {k: [s[0] for s in _slots(self.by_key[k].node.type) if s is not None] for k in sources}
        gone = list(dict.fromkeys(a for k in sources for a in names[k] if a not in kept))
        for a in gone:
            for k in sources:
                if a in names[k]:
                    ends[(k, a)] = base + len(ends)
        return ends

    def _rows_of(self, it: Item) -> int:
        return max(len(_slots(it.node.type)) + len(self.ends[it.key]), 1)

    def _glyph_w(self, it: Item) -> float:
        """The width of an item's glyph: its text as drawn (size, weight), at least 22 px."""
        text = self._glyph_text(it)
        kind = "module" if it.module is not None else GLYPHS[it.node.op].kind
        if kind == "linear":
            w = width(text, 16, True) + 8
        elif kind == "func":
            w = width(text, FS, True) + 6
        elif kind == "join":
            w = width(text, FS + 3, True) + 6
        elif kind == "einsum":
            w = GAP * 0.7 + 10
        elif self._attn(it) is not None:
            w = ATTN_W
        else:
            w = width(text, FS) + 14
        if self.annotate is not None and self.weights.get(it.key, 0) > 0:
            w = max(w, width(self._figure(it), FS * 0.9) + 10)
        return max(22.0, w)

    def build(self) -> Layout:
        self._place()
        self._mark_fresh()
        # Column widths: the glyph, then room for the labels of the value it makes, then a curve; a little
        # more where a block region starts or ends, so neighbouring regions keep apart.
        x = 20.0
        if self.define is not None:
            x += self._define_w() + 44  # the block's box and the "=" sign
        prev: tuple[str, ...] = ()
        for it in self.items:
            labels = [self._label(s) for s, on in zip(_slots(it.node.type), self._shown(it)) if s is not None and on]
            it.w = self._glyph_w(it)
            if self._expanded(it):
                it.w = max(it.w, sum(self._conv_parts(it)))
            here = self._containers(it)
            x += 8 * len(set(here) ^ set(prev))
            prev = here
            it.curve = self._curve(it)
            x += it.curve
            it.x = x
            x += it.w + (10 if it.module is not None else 4) + max((width(s, FS) for s in labels), default=0) + 8
        right = x + 40
        # Header: title, legend rows, then rows of region titles (assigned greedily, no overlap).
        y = 8.0
        def typ(t: TensorType | TupleType) -> str:
            return " | ".join("[" + ", ".join(self._label((a.name, a.size)) for a in tt.axes) + "]" for tt in _types(t))

        title = f"{self.g.entry}(" + ", ".join(
            f"{self.g.node(i).attrs.get('name', 'x')}: {typ(self.g.node(i).type)}" for i in self.g.inputs) + ")"
        self._text(20, y, title, "title", weight="bold")
        y += TITLE_H + 4
        if self.legend.rows:
            self._text(20, y, "Legend", "legend", weight="bold")
            y += TITLE_H
            # In columns of LEGEND_ROWS entries, so a long legend (U-Net: 16 derived sizes) stays short.
            entries = [f"{k} = {v}" for k, v in self.legend.rows]
            x = 28.0
            for i in range(0, len(entries), LEGEND_ROWS):
                column = entries[i:i + LEGEND_ROWS]
                for r, text in enumerate(column):
                    self._text(x, y + r * TITLE_H, text, "legend")
                x += max(width(t, FS) for t in column) + 28
            y += min(len(entries), LEGEND_ROWS) * TITLE_H + 4
        if self.annotate is not None and any(v > 0 for v in self.weights.values()):
            y = self._key(y)
        regions = self._regions()
        rows = self._rows([(r[1], r[2]) for r in regions])
        self.top = y + (max(rows, default=-1) + 1) * TITLE_H + 6
        bottom = self.lane_top(self.lanes)
        runs = [(r, x0, x1) for (r, x0, x1, _d) in regions if r in self.runs]
        run_rows = self._rows([(x0, x1) for _r, x0, x1 in runs])
        height = bottom + (max(run_rows, default=-1) + 1) * TITLE_H + 14
        if self.define is not None:
            height = max(height, self._draw_define() + 14)
        self._draw_regions(regions, rows, y, bottom)
        for (path, x0, x1), row in zip(runs, run_rows):
            self._draw_run(path, x0, x1, y + rows[[r[0] for r in regions].index(path)] * TITLE_H,
                           bottom, bottom + 4 + row * TITLE_H)
        for it in self.items:
            self._draw_item(it, right)
        width_ = max(right, max((b.x + b.w for b in self.texts), default=0) + 20)
        collapsed = [(r.rep, len(r.elements)) for r in self.runs.values()]
        return Layout(width_, height, self.items, self.wires, self.texts, self.glyphs, collapsed, self.body,
                      dict(self.weights))

    def _curve(self, it: Item) -> float:
        """Room for an item's input wires to change rows: wider the further they travel (lanes apart)."""
        rise = [abs(self.lane_off[self._src_lane(it, self.by_key[k])] - self.lane_off[it.lane]) for k in it.inputs]
        return CURVE + min(max(rise, default=0.0) * 0.12, 50.0)

    def _parent(self, path: str) -> str:
        """The module holding module `path` ('' at the top)."""
        m = self.g.modules.get(path)
        return (m.parent or "") if m else path.rpartition(".")[0]

    def _containers(self, it: Item) -> tuple[str, ...]:
        """The module paths around an item's column, outermost first (a collapsed run's box included)."""
        c = self.conts[it.node.id]
        if it.module is not None:
            m = self.g.modules.get(it.module)
            c = it.module if it.module in self.runs else (m.parent or "") if m else ""
        out: list[str] = []
        while c:
            out.append(c)
            c = self._parent(c)
        return tuple(reversed(out))

    def _regions(self) -> list[tuple[str, float, float, int]]:
        """(module path, x0, x1, nesting depth) of every block / seq / list holding drawn columns (and of a
        collapsed run drawn as one box, so its parentheses show)."""
        span: dict[str, list[float]] = {}
        for it in self.items:
            for c in self._containers(it):
                lo, hi = span.get(c, [it.x, it.x + it.w])
                span[c] = [min(lo, it.x), max(hi, it.x + it.w)]
        # A list whose elements interleave with another module's (U-Net's `upconv[i]` between `up[i]`) gets
        # no region of its own: it would cover its neighbours; its elements' regions name it.
        for path in [p for p, m in self.g.modules.items() if m.kind == "list" and p in span]:
            lo, hi = span[path]
            up = self._parent(path)
            if any(q != path and self._parent(q) == up and lo < b and a < hi for q, (a, b) in span.items()):
                del span[path]
        out = []
        for path, (lo, hi) in span.items():
            d = path.count(".")
            pad = 6 + 6 * (4 - min(d, 4))
            out.append((path, lo - CURVE + 8 - pad / 2, hi + pad, d))
        out.sort(key=lambda r: (r[3], r[1]))
        return out

    @staticmethod
    def _rows(spans: list[tuple[float, float]]) -> list[int]:
        """Greedy rows so that no two spans sharing a row overlap in x."""
        taken: list[list[tuple[float, float]]] = []
        out = []
        for x0, x1 in spans:
            r = 0
            while r < len(taken) and any(x0 < b + 4 and a < x1 + 4 for a, b in taken[r]):
                r += 1
            if r == len(taken):
                taken.append([])
            taken[r].append((x0, x1))
            out.append(r)
        return out

    # ---- drawing -----------------------------------------------------------------------------

    def _text(self, x: float, y: float, s: str, kind: str, anchor: str = "start", size: float = FS,
              weight: str = "normal", fill: str = "#222") -> None:
        """Text whose box's top-left is (x, y) (or top-centre with anchor middle), its width measured."""
        w = width(s, size, weight == "bold")
        x0 = x - w / 2 if anchor == "middle" else x
        self.texts.append(Box(x0, y, w, size, s, kind))
        wt = f' font-weight="{weight}"' if weight != "normal" else ""
        self.body.append(f'<text x="{x:.1f}" y="{y + size * 0.85:.1f}" text-anchor="{anchor}" '
                         f'font-size="{size:g}"{wt} fill="{fill}" class="{kind}">{escape(s)}</text>')

    def _key(self, y: float) -> float:
        """The colour scale of the annotation, one swatch per step, under the legend; the y below it."""
        lo, hi = self.scale
        self._text(20, y, f"{self.annotate} per op (runs: all N)", "legend", weight="bold")
        y += TITLE_H
        x = 28.0
        for i, colour in enumerate(SCALE):
            self.body.append(f'<rect class="swatch" x="{x:.1f}" y="{y:.1f}" width="14" height="{FS:g}" '
                             f'fill="{colour}" stroke="#888" stroke-width="0.6"/>')
            label = f"≥ {_fmt_num(10 ** (lo + (hi - lo) * i / len(SCALE)))}"
            self._text(x + 18, y, label, "legend")
            x += 18 + width(label, FS) + 12
        return y + TITLE_H + 4

    def _draw_regions(self, regions: list, rows: list[int], y0: float, bottom: float) -> None:
        for (path, x0, x1, d), row in zip(regions, rows):
            m = self.g.modules.get(path)
            name = self._module_name(path, full=False)
            if m is not None and m.kind == "block":
                title = f"{name} · {m.name}"
            else:
                title = f"{name} ({m.kind})" if m is not None else name
            ty = y0 + row * TITLE_H
            tint = TINTS[d % len(TINTS)]
            self.body.append(f'<rect class="region" x="{x0:.1f}" y="{ty - 2:.1f}" width="{x1 - x0:.1f}" '
                             f'height="{bottom - ty - 2 - d * 3:.1f}" rx="6" fill="{tint}" fill-opacity="0.75" '
                             f'stroke="#b9bfd3" stroke-width="0.8"><title>{escape(path)}</title></rect>')
            inset = 16 if path in self.runs else 4  # clear of the run's parenthesis
            room = x1 - x0 - 2 * inset  # clear of both parentheses of a run
            size = FS * 0.9
            while title and width(title, size) > room:
                title = title[:-2] + "…" if len(title) > 2 else ""
            if len(title) >= 2:
                self._text(x0 + inset, ty, title, "title", size=size, fill="#3a3f58")

    def _draw_run(self, path: str, x0: float, x1: float, top: float, bottom: float, label_y: float) -> None:
        run = self.runs[path]
        for x, sgn in ((x0 + 2, 1), (x1 - 2, -1)):
            h = bottom - top
            self.body.append(f'<path class="paren" d="M{x + 8 * sgn:.1f},{top:.1f} Q{x - 8 * sgn:.1f},'
                             f'{top + h / 2:.1f} {x + 8 * sgn:.1f},{bottom:.1f}" fill="none" stroke="#222" '
                             f'stroke-width="3"/>')
        first, lastm = self.g.modules[run.elements[0]], self.g.modules[run.elements[-1]]
        assert first.repeat is not None and lastm.repeat is not None
        label = f"{first.repeat[0]} = {first.repeat[1]}…{lastm.repeat[1]}  ×{len(run.elements)}"
        self._text(x1 - width(label, FS, True), label_y, label, "run", weight="bold")

    def _target(self, it: Item, key: str, axis: str, ends: dict[tuple[str, str], int],
                named: list[str], gy: list[float], out_ys: list[float], y0: float) -> float:
        """Where the wire `axis` of input `key` enters `it`'s column."""
        if (key, axis) in ends:
            return self.row_y(it.lane, ends[key, axis])
        if axis in named:
            y = self.axis_y(it, axis)
            assert y is not None
            return y
        return (min(gy) + max(gy)) / 2 if gy else out_ys[0] if out_ys else y0

    def _draw_item(self, it: Item, right: float) -> None:
        slots = _slots(it.node.type)
        out_ys = [self.wire_y(it, j) for j in range(len(slots))]
        gl = GLYPHS[it.node.op]
        kind = "module" if it.module is not None else "attention_full" if self._attn(it) else gl.kind
        # Incoming wires: each input's wires (from its home or carried lane) curve into this column's
        # wires of the same axis, or into the rows where they end (reductions, contractions).
        act = None if it.module is not None else acts(it.node)
        named = [s[0] for s in slots if s is not None]
        ends = self.ends[it.key]
        gy = [y for s, y in zip(slots, out_ys) if s is not None and (act is None or s[0] in act)]
        if ends and kind in ("reduce", "einsum"):
            gy = sorted(self.row_y(it.lane, r) for r in ends.values())
        merged: dict[float, int] = {}
        xb = it.x - it.curve
        xm = xb + it.curve / 2
        for key in it.inputs:
            src = self.by_key[key]
            lane = self._src_lane(it, src)
            for j, s in enumerate(_slots(src.node.type)):
                if s is None:
                    continue
                y0 = self.row_y(lane, j)
                y1 = self._target(it, key, s[0], ends, named, gy, out_ys, y0)
                if (key, s[0]) not in ends:
                    merged[y1] = merged.get(y1, 0) + 1
                d = f"M{xb:.1f},{y0:.1f} C{xm:.1f},{y0:.1f} {xm:.1f},{y1:.1f} {it.x:.1f},{y1:.1f}"
                self.body.append(f'<path class="link" d="{d}" fill="none" stroke="#444" stroke-width="1.2"/>')
                if lane == src.carry and it.col != src.end:
                    self.body.append(f'<circle class="copy" cx="{xb:.1f}" cy="{y0:.1f}" r="2.8" fill="#333"/>')
        # Outgoing wires: in the home lane up to the first consumer (or the right edge for an output);
        # a value used again later is copied there (dots) and carried in its own lane to its last consumer.
        last = len(self.items)
        out = it.key in self.outputs
        x_home = it.x + it.w if it.first == it.col else self._entry_x(it.first, right)  # unused: a stub
        arrow = ' marker-end="url(#arrow)"'
        lx = it.x + it.w + (10 if it.module is not None else 4)  # clear of a 3-D box's side
        shown = self._shown(it)
        for j, s in enumerate(slots):
            y = out_ys[j]
            if s is None:
                self.body.append(f'<line class="sep" x1="{it.x:.1f}" y1="{y:.1f}" x2="{x_home:.1f}" y2="{y:.1f}" '
                                 f'stroke="#444" stroke-dasharray="5,4"/>')
                continue
            label = self._label(s)
            self.wires.append(Wire(it.key, s[0], label, y, shown[j]))
            line = (f'<line x1="{it.x:.1f}" y1="{y:.1f}" x2="{x_home:.1f}" y2="{y:.1f}" stroke="#444" '
                    f'stroke-width="1.2"{arrow if it.first == last else ""}/>')
            self.body.append(f'<g class="wire" data-value="{it.key}" data-axis="{escape(s[0])}">{line}'
                             f'{self._carried(it, j, y, right, out)}</g>')
            if shown[j]:
                self._text(lx, y - 3 - FS, label, "wire", fill="#333")
        if it.carry is not None and it.first < last:
            xf = self._entry_x(it.first, right)
            for y in (y for s, y in zip(slots, out_ys) if s is not None):
                self.body.append(f'<circle class="copy" cx="{xf:.1f}" cy="{y:.1f}" r="2.8" fill="#333"/>')
            self._carry_names(it, xf + CURVE, right)
        self._glyph(it, kind, out_ys, gy, sorted(y for y, c in merged.items() if c > 1))

    def _value_name(self, it: Item) -> str:
        """What the source calls `it`'s value: its name, else the outermost module it is the output of
        (`inc`, `down[0]`), else ''."""
        n = it.node
        if n.label:
            return n.label
        path = it.module or n.path or ""
        name = ""
        while path:
            if self.last_node.get(path) == n.id and path in self.g.modules:
                name = path
            path = path.rpartition(".")[0]
        return self._module_name(name) if name else ""

    def _module_name(self, path: str, full: bool = True) -> str:
        """A module path as the source names it: `down[0]` for an element of a list, `layer1.0` for one of a
        sequence, the path otherwise. `full=False` shortens it for a region title: the container's last part
        only for an element (`1.0`, not `features.1.0`), else the module's own name."""
        up, _, name = path.rpartition(".")
        pm = self.g.modules.get(up) if path in self.g.modules and self._parent(path) == up else None
        if pm is None or pm.kind not in ("list", "seq"):
            return path if full else name
        base = up if full else up.rpartition(".")[2]
        return f"{base}[{name}]" if pm.kind == "list" else f"{base}.{name}"

    def _carry_names(self, it: Item, x0: float, right: float) -> None:
        """Name a carried copy where it leaves ("→ inc") and where it comes back ("inc →"), as the paper's
        figures mark values saved to memory and loaded back, when the value has a name and there is room."""
        name = self._value_name(it)
        assert it.carry is not None
        if not name:
            return
        y = self.row_y(it.carry, 0) - 3 - FS
        xe = self._entry_x(it.end, right)
        a, b = f"→ {name}", f"{name} →"
        wa, wb = width(a, FS), width(b, FS)
        if xe - x0 > wa + wb + 40:
            self._text(x0 + 6, y, a, "carry", fill="#555")
            self._text(xe - wb - 6, y, b, "carry", fill="#555")

    def _carried(self, it: Item, j: int, y: float, right: float, out: bool) -> str:
        """The carried copy of wire `j` of `it`: a curve from the copy dot to its lane, then a line."""
        if it.carry is None or it.first >= len(self.items):
            return ""
        xf = self._entry_x(it.first, right)
        yc = self.row_y(it.carry, j)
        xe = self._entry_x(it.end, right)
        arrow = ' marker-end="url(#arrow)"' if out and it.end >= len(self.items) else ""
        xm = xf + CURVE / 2
        curve = (f'<path class="carry" d="M{xf:.1f},{y:.1f} C{xm:.1f},{y:.1f} {xm:.1f},{yc:.1f} '
                 f'{xf + CURVE:.1f},{yc:.1f}" fill="none" stroke="#444" stroke-width="1.2"/>')
        return (f'{curve}<line x1="{xf + CURVE:.1f}" y1="{yc:.1f}" x2="{xe:.1f}" y2="{yc:.1f}" stroke="#444" '
                f'stroke-width="1.2"{arrow}/>')

    def _cup(self, x: float, y1: float, y2: float) -> str:
        """Two wires ending at x joined by a cup: their axes are contracted (summed over together)."""
        b = max((y2 - y1) * 0.6, 8.0)
        return (f'<path class="cup" d="M{x:.1f},{y1:.1f} C{x + b:.1f},{y1:.1f} {x + b:.1f},{y2:.1f} '
                f'{x:.1f},{y2:.1f}" fill="none" stroke="#222" stroke-width="1.6"/>')

    def _glyph(self, it: Item, kind: str, ys: list[float], gy: list[float], joins: list[float]) -> None:
        text = self._glyph_text(it)
        n = it.node
        tip = escape(" ".join(x for x in (it.module or n.path or n.label or n.op.value, n.op.value, detail(n)) if x))
        x, w = it.x, it.w
        cx = x + w / 2
        lt = self.lane_top(it.lane)
        shade = None if self.annotate is None else _colour(self.weights.get(it.key, 0), *self.scale)
        ink = "#ffffff" if shade in SCALE[-2:] else "#222"
        top, bot = (min(gy) - 8, max(gy) + 8) if gy else (ys[0] - 8, ys[-1] + 8) if ys else (lt + HEAD, lt + HEAD + 16)
        self.body.append(f'<g class="glyph" data-item="{it.key}" data-op="{n.op.value}"><title>{tip}</title>')
        if kind in ("func", "dropout", "identity", "input"):
            self._text(cx, lt + 2, text, "glyph", anchor="middle", weight="bold" if kind == "func" else "normal")
        elif kind == "join":
            for y in ys:
                self.body.append(f'<circle cx="{cx:.1f}" cy="{y:.1f}" r="3.5" fill="#333"/>')
            self._text(cx, lt + 2, text, "glyph", anchor="middle", weight="bold", size=FS + 3)
        elif kind == "norm":
            for y in gy:
                self.body.append(f'<circle cx="{cx:.1f}" cy="{y:.1f}" r="8" fill="{shade or "#ffffff"}" stroke="#222" '
                                 f'stroke-width="1.6"/>')
            self._text(cx, lt + 2, text, "glyph", anchor="middle", size=FS - 1)
        elif kind == "softmax":
            for y in gy:
                self.body.append(self._triangle(cx, y, shade))
        elif kind == "bar":
            self.body.append(f'<rect x="{cx - 3:.1f}" y="{ys[0] - 8:.1f}" width="6" height="{ys[-1] - ys[0] + 16:.1f}" '
                             f'fill="#222"/>')
            self._text(cx, lt + 2, text, "glyph", anchor="middle", size=FS - 1)
        elif kind == "linear":
            for y in gy:
                self.body.append(f'<rect x="{x + 2:.1f}" y="{y - 9:.1f}" width="{w - 4:.1f}" height="18" '
                                 f'fill="{shade or "#ffffff"}"/>')
                self._text(cx, y - 9, text, "glyph", anchor="middle", size=16, weight="bold", fill=ink)
        elif kind == "einsum":
            self._contractions(it, shade)
        elif kind == "attention_full":
            self._attention(it, shade)
        elif kind == "conv" and self._expanded(it):
            self._conv_expanded(it, text)
        elif kind == "module":
            d = 6
            self.body.append(f'<path d="M{x:.1f},{top:.1f} l{d},{-d} h{w:.1f} l{-d},{d} z" fill="#b8dc95" '
                             f'stroke="#222" stroke-width="1.2"/>'
                             f'<path d="M{x + w:.1f},{top:.1f} l{d},{-d} v{bot - top:.1f} l{-d},{d} z" '
                             f'fill="#a9cf85" stroke="#222" stroke-width="1.2"/>'
                             f'<rect x="{x:.1f}" y="{top:.1f}" width="{w:.1f}" height="{bot - top:.1f}" '
                             f'fill="{shade or "#cfe8b0"}" stroke="#222" stroke-width="1.5"/>')
            self._text(cx, (top + bot) / 2 - FS / 2, text, "glyph", anchor="middle", fill=ink)
        else:
            thick = "2.4" if kind in ("conv", "conv_t") else "1.4"
            fill = shade or GLYPHS[n.op].fill
            self.body.append(f'<rect x="{x:.1f}" y="{top:.1f}" width="{w:.1f}" height="{bot - top:.1f}" '
                             f'fill="{fill}" stroke="#222" stroke-width="{thick}"/>')
            self._text(cx, (top + bot) / 2 - FS / 2, text, "glyph", anchor="middle", fill=ink)
        if kind in ("einsum", "attention_full", "bar"):
            for y in joins:  # wires of several inputs meeting on one axis: the same positions (diagonal), a dot
                self.body.append(f'<circle class="diag" cx="{x:.1f}" cy="{y:.1f}" r="3.2" fill="#333"/>')
        self.body.append("</g>")
        self.glyphs.append(it.key)
        if self.annotate is not None and self.weights.get(it.key, 0) > 0:
            # The figure under the column's lowest wire (clear of all wires: they run right of x); ops that
            # cost nothing in this convention get none (their glyph stays unshaded).
            v = self.weights.get(it.key, 0)
            low = max([*ys, *(self.row_y(it.lane, r) for r in self.ends[it.key].values())], default=lt + HEAD + 3)
            fy = low + 9
            colour = shade or "#ffffff"
            tw = width(self._figure(it), FS * 0.9) + 6
            self.body.append(f'<g class="cost" data-item="{it.key}" data-value="{v}">'
                             f'<rect x="{cx - tw / 2:.1f}" y="{fy - 1:.1f}" width="{tw:.1f}" '
                             f'height="{FS * 0.9 + 2:.1f}" rx="3" fill="{colour}" stroke="#999" stroke-width="0.5"/>')
            self._text(cx, fy, self._figure(it), "cost", anchor="middle", size=FS * 0.9,
                       fill="#ffffff" if colour in SCALE[-2:] else "#222")
            self.body.append("</g>")

    @staticmethod
    def _triangle(cx: float, y: float, shade: str | None) -> str:
        return (f'<path d="M{cx + 8:.1f},{y - 7:.1f} L{cx - 8:.1f},{y:.1f} L{cx + 8:.1f},{y + 7:.1f} z" '
                f'fill="{shade or "#ffffff"}" stroke="#222" stroke-width="1.4"/>')

    def _contractions(self, it: Item, shade: str | None) -> None:
        """An einsum: no box, only its contracted wires, joined in cups (one per axis held by two operands)."""
        rows: dict[str, list[int]] = {}
        for (_k, a), r in self.ends[it.key].items():
            rows.setdefault(a, []).append(r)
        for rs in rows.values():
            ys = [self.row_y(it.lane, r) for r in sorted(rs)]
            for y1, y2 in zip(ys, ys[1:]):
                self.body.append(self._cup(it.x, y1, y2))
            if len(ys) == 1:  # summed over in one operand only: the wire ends at a bar
                self.body.append(f'<line x1="{it.x:.1f}" y1="{ys[0] - 6:.1f}" x2="{it.x:.1f}" y2="{ys[0] + 6:.1f}" '
                                 f'stroke="#222" stroke-width="2"/>')
        if shade is not None:
            ys = [self.row_y(it.lane, r) for r in self.ends[it.key].values()] or [self.wire_y(it, 0)]
            self.body.append(f'<rect x="{it.x - 2:.1f}" y="{min(ys) - 8:.1f}" width="{it.w:.1f}" '
                             f'height="{max(ys) - min(ys) + 16:.1f}" fill="{shade}" fill-opacity="0.5"/>')

    def _attention(self, it: Item, shade: str | None) -> None:
        """Scaled dot-product attention in full: q and k contracted over the feature axis (a cup), scaled by
        1/√d, a softmax ◁ on k's sequence wire, which then meets v's sequence wire in a second cup; the
        other axes of q, k and v are the same positions (diagonal: dots where their wires meet)."""
        ends = self.ends[it.key]
        q, k, v = self._attn(it) or ("", "", "")
        seq, chan = it.node.attrs["seq"], it.node.attrs["chan"]
        y_qc, y_kc = self.row_y(it.lane, ends[q, chan]), self.row_y(it.lane, ends[k, chan])
        y_ks, y_vs = self.row_y(it.lane, ends[k, seq]), self.row_y(it.lane, ends[v, seq])
        x = it.x
        top = self.wire_y(it, 0) - 10
        self.body.append(f'<rect class="attention" x="{x - 4:.1f}" y="{top:.1f}" width="{it.w + 4:.1f}" '
                         f'height="{y_vs + 10 - top:.1f}" rx="5" fill="{shade or "#e8dcf0"}" fill-opacity="0.8"/>')
        self.body.append(self._cup(x, y_qc, y_kc))
        xs, x3 = x + ATTN_W * 0.5, x + ATTN_W - 22
        for y in (y_ks, y_vs):
            self.body.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x3:.1f}" y2="{y:.1f}" stroke="#444" '
                             'stroke-width="1.2"/>')
        self.body.append(self._triangle(xs, y_ks, None))
        self.body.append(self._cup(x3, y_ks, y_vs))
        self._text(x + 16, y_qc + 1, f"÷√{self.legend.size_str(self._chan_size(it, chan))}", "glyph", size=9)

    def _chan_size(self, it: Item, chan: str) -> Any:
        q = self.by_key[self.key_of[it.node.inputs[0]]].node.type
        assert isinstance(q, TensorType)
        return next(a.size for a in q.axes if a.name == chan)


    def _conv_expanded(self, it: Item, text: str) -> None:
        """A convolution in expanded form: the trapezoid ★ splits each spatial wire into the output positions
        and a window wire (labelled k=…) that the bold **L** contracts, with the channel wire, into the output
        channel wire."""
        chan, *spatial = self._conv_axes(it)
        yc = self.axis_y(it, chan)
        ys = [y for y in (self.axis_y(it, a) for a in spatial) if y is not None]
        assert yc is not None and len(ys) == len(spatial)  # `_expanded` checked the axes
        a, b, _c = self._conv_parts(it)
        x = it.x
        top, bot = min(ys) - 9, max(ys) + GAP / 2 + 4  # the window wires leave through the right side
        self.body.append(f'<polygon class="conv-split" points="{x:.1f},{top - 2:.1f} {x + a:.1f},{top + 4:.1f} '
                         f'{x + a:.1f},{bot:.1f} {x:.1f},{bot + 4:.1f}" fill="#d4ebfb" stroke="#222" '
                         'stroke-width="1.6"/>')
        self._text(x + a / 2, (top + bot) / 2 - FS / 2, text, "glyph", anchor="middle")
        xl = x + a + b
        windows = self._windows(it)
        for y, label in zip(ys[-len(windows):], windows):
            yw = y + GAP / 2
            xm = xl - 12
            self.body.append(f'<path class="window" d="M{x + a:.1f},{yw:.1f} H{xm:.1f} C{xl - 4:.1f},{yw:.1f} '
                             f'{xl - 8:.1f},{yc + 5:.1f} {xl:.1f},{yc + 5:.1f}" fill="none" stroke="#1f5f99" '
                             'stroke-width="1.2"/>')
            self._text(x + a + 3, yw + 0.5, label, "window", size=WIN_FS, fill="#1f5f99")
        self.body.append(f'<g class="conv-contract"><rect x="{xl:.1f}" y="{yc - 9:.1f}" width="20" height="18" '
                         f'fill="#ffffff"/>')
        self._text(xl + 10, yc - 9, "L", "glyph", anchor="middle", size=16, weight="bold")
        self.body.append("</g>")


CONV = ("compact", "expanded")


def layout(g: Graph, expand: Sequence[str] = (), depth: int | None = None,
           annotate: str | None = None, define: str | None = None, conv: str = "compact") -> Layout:
    """Lay out and draw `g` as a neural circuit diagram (see the module docstring).

    `annotate` ("flops", "params" or "bytes") writes each column's figure from `shapes.report` under
    its glyph (a run's column: all N elements) and shades the glyph on graph.py's scale, with a key.
    `define` names a block: draw its definition (its first instance's ops) instead of the whole graph.
    `conv` is "compact" (one ★ box per convolution) or "expanded".
    """
    if annotate is not None and annotate not in ANNOTATE:
        raise ValueError(f"annotate must be one of {ANNOTATE}")
    if conv not in CONV:
        raise ValueError(f"conv must be one of {CONV}")
    inst = None
    if define is not None:
        g, inst = define_graph(g, define)
    return _Builder(g, expand, depth, annotate, inst, conv).build()


def render(g: Graph, out: str, expand: Sequence[str] = (), depth: int | None = None,
           annotate: str | None = None, define: str | None = None, conv: str = "compact") -> Layout:
    """Write the diagram to `out`: .svg as text; .png/.pdf through cairosvg (`pip install archc[circuit]`)."""
    lay = layout(g, expand, depth, annotate, define, conv)
    text = lay.svg()
    ext = os.path.splitext(out)[1].lower()
    if ext == ".svg":
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
        return lay
    if ext not in (".png", ".pdf"):
        raise ArchError([Diagnostic("error", "io", f"cannot write '{ext or out}' in the circuit style: "
                                    "use .svg, .png or .pdf")])
    try:
        import cairosvg
    except ImportError:
        raise ArchError([Diagnostic("error", "io", "PNG/PDF output of the circuit style needs cairosvg "
                                    "(pip install cairosvg); .svg works without it")]) from None
    write = cairosvg.svg2png if ext == ".png" else cairosvg.svg2pdf
    write(bytestring=text.encode("utf-8"), write_to=out)
    return lay
