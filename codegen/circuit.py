"""The circuit style: a neural circuit diagram (Abbott, TMLR 2024) of the typed graph, drawn as SVG.

Left to right, columns alternate operations and data. Every value is a bundle
of horizontal wires in a *lane*, one wire per named axis. A wire is labelled
`name=size` (legend names for derived sizes) just after the op that makes it
when its axis is new or its size changed since the previous column of the same
value chain (the op's first input), and always at an input and at the first
column of each block region; the tensors of a tuple are separated by a dashed
line. An op's glyph (from
`codegen.glyphs`) covers only the wires of the axes it acts on; the others
run straight past it, which is how broadcasting is drawn. A value used twice
fans out at copy dots; joins merge wires at dots marked +. Blocks and
sequences are tinted titled regions; a run of identical repetition elements
(found as the graph style finds them) is drawn once inside large parentheses
with its index range and ×N; `depth` draws deeper modules as one 3-D box.

`define="Block"` draws a block's definition instead: a 3-D box titled with the
block's name and the parameter values of its first instance, an "=" sign, and
the circuit of that instance's ops alone (`define_graph`), its inputs drawn as
labelled input wires. `conv="expanded"` draws each convolution in expanded
form: a light-blue trapezoid ★ (with the stride) splits every spatial wire into
the output positions and a kernel-window wire labelled `k=…`, and a bold **L**
contracts the window wires and the channel wire into the output channel wire.

Layout is computed here, not by graphviz: `layout(g)` returns a `Layout`
whose `texts` are the boxes of every piece of drawn text (a character-width
estimate), so tests can check that no two intersect. Output is deterministic.

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

from archc.codegen.glyphs import GLYPHS, detail
from archc.codegen.graph import ANNOTATE, SCALE, Run, _colour, _costs, _fmt_num, fold
from archc.diagnostics import NO_SPAN, ArchError, Diagnostic, Span, did_you_mean
from archc.dsl.ir import Graph, ModuleInfo, Node, Op, TensorType, TupleType
from archc.shapes.legend import Legend

FS = 11          # font size of labels (px)
CW = 0.62 * FS   # estimated width of one character
GAP = 18         # vertical distance between the wires of a lane
HEAD = 18        # room above a lane's wires for floating glyphs (➤f➤, +, bars' names)
CURVE = 26       # horizontal room for a wire to change lanes before an op
TITLE_H = 16     # one row of region titles / run labels
WIN_FS = 8       # font size of the kernel-window labels of an expanded convolution
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
    end: int = 0           # column of the last consumer


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
        users: dict[str, list[int]] = {it.key: [] for it in self.items}
        for c, it in enumerate(self.items):
            it.col = c
            for s in it.inputs:
                users[s].append(c)
        last = len(self.items)
        for it in self.items:
            it.end = max(users[it.key], default=it.col)
            if it.key in self.outputs:
                it.end = last
        free: list[int] = []  # per lane: the column its current value ends at
        for it in self.items:
            lane = -1
            if it.inputs:
                src = self.by_key[it.inputs[0]]
                if src.end == it.col:
                    lane = src.lane
            if lane < 0:
                lane = next((i for i, f in enumerate(free) if f <= it.col and
                             not any(self.by_key[s].lane == i and self.by_key[s].end > it.col for s in it.inputs)),
                            len(free))
            if lane == len(free):
                free.append(0)
            free[lane] = it.end
            it.lane = lane
        self.lanes = max(len(free), 1)
        self.max_wires = max((len(_slots(it.node.type)) for it in self.items), default=1)

    def _label(self, s: tuple[str, Any]) -> str:
        return f"{s[0]}={self.legend.size_str(s[1])}"

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
                c = (m.parent or "") if m else c.rpartition(".")[0]

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
            return m.name if m else it.module
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
        """The label of each spatial axis's kernel-window wire."""
        k = it.node.attrs.get("kernel") or ()
        return [f"k={self.legend.size_str(x)}" for x in k]

    def _conv_parts(self, it: Item) -> tuple[float, float, float]:
        """Widths of an expanded convolution's trapezoid, window-wire stretch and **L**."""
        star = len(self._glyph_text(it)) * CW + 16
        win = max((len(s) for s in self._windows(it)), default=1) * WIN_FS * 0.62 + 26
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
        return max(len(s) for s in self._define_lines()) * CW * 1.1 + 24

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
        return self.top + lane * self.lane_h

    def wire_y(self, it: Item, j: int) -> float:
        return self.lane_top(it.lane) + HEAD + 12 + j * GAP

    def axis_y(self, it: Item, name: str) -> float | None:
        for j, s in enumerate(_slots(it.node.type)):
            if s is not None and s[0] == name:
                return self.wire_y(it, j)
        return None

    def build(self) -> Layout:
        self._place()
        self._mark_fresh()
        self.lane_h = HEAD + 12 + self.max_wires * GAP + 10
        # Column widths: the glyph, then room for the labels of the value it makes, then a curve.
        x = 20.0
        if self.define is not None:
            x += self._define_w() + 44  # the block's box and the "=" sign
        for it in self.items:
            labels = [self._label(s) for s, on in zip(_slots(it.node.type), self._shown(it)) if s is not None and on]
            it.w = max(22.0, len(self._glyph_text(it)) * CW + 12, len(self._figure(it)) * CW + 8)
            if self._expanded(it):
                it.w = max(it.w, sum(self._conv_parts(it)))
            x += CURVE
            it.x = x
            x += it.w + 4 + max((len(s) * CW for s in labels), default=0) + 8
        right = x + 40
        # Header: title, legend rows, then rows of region titles (assigned greedily, no overlap).
        y = 8.0
        title = f"{self.g.entry}(" + ", ".join(
            f"{self.g.node(i).attrs.get('name', 'x')}: {self.legend.type_str(self.g.node(i).type)}"
            for i in self.g.inputs) + ")"
        self._text(20, y, title, "title", weight="bold")
        y += TITLE_H + 4
        if self.legend.rows:
            self._text(20, y, "Legend", "legend", weight="bold")
            y += TITLE_H
            for k, v in self.legend.rows:
                self._text(28, y, f"{k} = {v}", "legend")
                y += TITLE_H
            y += 4
        if self.annotate is not None and any(v > 0 for v in self.weights.values()):
            y = self._key(y)
        regions = self._regions()
        rows = self._rows([(r[1], r[2]) for r in regions])
        self.top = y + (max(rows, default=-1) + 1) * TITLE_H + 6
        bottom = self.top + self.lanes * self.lane_h
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
        width = max(right, max((b.x + b.w for b in self.texts), default=0) + 20)
        collapsed = [(r.rep, len(r.elements)) for r in self.runs.values()]
        return Layout(width, height, self.items, self.wires, self.texts, self.glyphs, collapsed, self.body,
                      dict(self.weights))

    def _regions(self) -> list[tuple[str, float, float, int]]:
        """(module path, x0, x1, nesting depth) of every block / seq / list holding drawn columns."""
        span: dict[str, list[float]] = {}
        for it in self.items:
            c = it.module or self.conts[it.node.id]
            if it.module is not None:
                m = self.g.modules.get(it.module)
                c = (m.parent or "") if m else ""
            while c:
                m = self.g.modules.get(c)
                lo, hi = span.get(c, [it.x, it.x + it.w])
                span[c] = [min(lo, it.x), max(hi, it.x + it.w)]
                c = (m.parent or "") if m else c.rpartition(".")[0]
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
            while r < len(taken) and any(x0 < b and a < x1 for a, b in taken[r]):
                r += 1
            if r == len(taken):
                taken.append([])
            taken[r].append((x0, x1))
            out.append(r)
        return out

    # ---- drawing -----------------------------------------------------------------------------

    def _text(self, x: float, y: float, s: str, kind: str, anchor: str = "start", size: float = FS,
              weight: str = "normal", fill: str = "#222") -> None:
        """Text whose box's top-left is (x, y) (or top-centre with anchor middle)."""
        w = len(s) * size * 0.62
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
            x += 18 + len(label) * CW + 12
        return y + TITLE_H + 4

    def _draw_regions(self, regions: list, rows: list[int], y0: float, bottom: float) -> None:
        for (path, x0, x1, d), row in zip(regions, rows):
            m = self.g.modules.get(path)
            name = path.rpartition(".")[2]
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
            room = int((x1 - x0 - inset - 4) / (CW * 0.9))
            if room >= 2:
                title = title if len(title) <= room else title[:room - 1] + "…"
                self._text(x0 + inset, ty, title, "title", size=FS * 0.9, fill="#3a3f58")

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
        self._text(x1 - len(label) * CW, label_y, label, "run", weight="bold")

    def _draw_item(self, it: Item, right: float) -> None:
        slots = _slots(it.node.type)
        out_ys = [self.wire_y(it, j) for j in range(len(slots))]
        gl = GLYPHS[it.node.op]
        kind = "module" if it.module is not None else gl.kind
        # Incoming wires: each input's lane wires curve into this column's wires of the same axis.
        act = None if it.module is not None else acts(it.node)
        named = [s[0] for s in slots if s is not None]
        gy = [y for s, y in zip(slots, out_ys) if s is not None and (act is None or s[0] in act)]
        for key in it.inputs:
            src = self.by_key[key]
            last = src.end == it.col
            for j, s in enumerate(_slots(src.node.type)):
                y0 = self.wire_y(src, j)
                if s is None:
                    continue
                y1 = self.axis_y(it, s[0]) if s[0] in named else None
                if y1 is None:
                    y1 = (min(gy) + max(gy)) / 2 if gy else out_ys[0] if out_ys else y0
                xb = it.x - CURVE
                xm = xb + CURVE / 2
                d = f"M{xb:.1f},{y0:.1f} C{xm:.1f},{y0:.1f} {xm:.1f},{y1:.1f} {it.x:.1f},{y1:.1f}"
                self.body.append(f'<path class="link" d="{d}" fill="none" stroke="#444" stroke-width="1.2"/>')
                if not last:
                    self.body.append(f'<circle class="copy" cx="{xb:.1f}" cy="{y0:.1f}" r="2.8" fill="#333"/>')
        # Outgoing wires: from this column to the last consumer (or the right edge for an output).
        x_end = right - 10 if it.key in self.outputs else self.items[it.end].x - CURVE
        if it.end == it.col and it.key not in self.outputs:
            x_end = it.x + it.w  # an unused value: a stub
        arrow = ' marker-end="url(#arrow)"' if it.key in self.outputs else ""
        lx = it.x + it.w + 4
        shown = self._shown(it)
        for j, s in enumerate(slots):
            y = out_ys[j]
            if s is None:
                self.body.append(f'<line class="sep" x1="{it.x:.1f}" y1="{y:.1f}" x2="{x_end:.1f}" y2="{y:.1f}" '
                                 f'stroke="#444" stroke-dasharray="5,4"/>')
                continue
            label = self._label(s)
            self.wires.append(Wire(it.key, s[0], label, y, shown[j]))
            self.body.append(f'<g class="wire" data-value="{it.key}" data-axis="{escape(s[0])}">'
                             f'<line x1="{it.x:.1f}" y1="{y:.1f}" x2="{x_end:.1f}" y2="{y:.1f}" stroke="#444" '
                             f'stroke-width="1.2"{arrow}/></g>')
            if shown[j]:
                self._text(lx, y - 3 - FS, label, "wire", fill="#333")
        self._glyph(it, kind, out_ys, gy)

    def _glyph(self, it: Item, kind: str, ys: list[float], gy: list[float]) -> None:
        text = self._glyph_text(it)
        n = it.node
        tip = escape(" ".join(x for x in (it.module or n.path or n.label or n.op.value, n.op.value, detail(n)) if x))
        x, w = it.x, it.w
        cx = x + w / 2
        lt = self.lane_top(it.lane)
        shade = None if self.annotate is None else _colour(self.weights.get(it.key, 0), *self.scale)
        ink = "#ffffff" if shade in SCALE[-2:] else "#222"
        top, bot = (min(gy) - 8, max(gy) + 8) if gy else (ys[0] - 8, ys[-1] + 8)
        parts: list[str] = [f'<g class="glyph" data-item="{it.key}" data-op="{n.op.value}"><title>{tip}</title>']
        self.body.append("".join(parts))
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
                self.body.append(f'<path d="M{cx + 8:.1f},{y - 7:.1f} L{cx - 8:.1f},{y:.1f} '
                                 f'L{cx + 8:.1f},{y + 7:.1f} z" fill="{shade or "#ffffff"}" stroke="#222" '
                                 'stroke-width="1.4"/>')
        elif kind == "bar":
            self.body.append(f'<rect x="{cx - 3:.1f}" y="{ys[0] - 8:.1f}" width="6" height="{ys[-1] - ys[0] + 16:.1f}" '
                             f'fill="#222"/>')
            self._text(cx, lt + 2, text, "glyph", anchor="middle", size=FS - 1)
        elif kind == "linear":
            for y in gy:
                self.body.append(f'<rect x="{x + 2:.1f}" y="{y - 9:.1f}" width="{w - 4:.1f}" height="18" '
                                 f'fill="{shade or "#ffffff"}"/>')
                self._text(cx, y - 9, text, "glyph", anchor="middle", size=16, weight="bold", fill=ink)
        elif kind == "conv" and self._expanded(it):
            self._conv_expanded(it, text)
        elif kind == "module":
            self.body.append(f'<rect x="{x:.1f}" y="{top:.1f}" width="{w:.1f}" height="{bot - top:.1f}" '
                             f'fill="{shade or "#cfe8b0"}" stroke="#222" stroke-width="1.5"/>'
                             f'<path d="M{x:.1f},{top:.1f} l5,-5 h{w:.1f} v{bot - top:.1f} l-5,5" fill="#a9cf85" '
                             f'stroke="#222" stroke-width="1.2"/>')
            self._text(cx, (top + bot) / 2 - FS / 2, text, "glyph", anchor="middle", fill=ink)
        else:
            thick = "2.4" if kind in ("conv", "conv_t") else "1.4"
            fill = shade or GLYPHS[n.op].fill
            self.body.append(f'<rect x="{x:.1f}" y="{top:.1f}" width="{w:.1f}" height="{bot - top:.1f}" '
                             f'fill="{fill}" stroke="#222" stroke-width="{thick}"/>')
            self._text(cx, (top + bot) / 2 - FS / 2, text, "glyph", anchor="middle", fill=ink)
        self.body.append("</g>")
        self.glyphs.append(it.key)
        if self.annotate is not None:
            # The figure under the column's lowest wire (clear of all wires: they run right of x).
            v = self.weights.get(it.key, 0)
            fy = ys[-1] + 9 if ys else lt + HEAD + 12
            colour = shade or "#ffffff"
            tw = len(self._figure(it)) * CW * 0.9 + 6
            self.body.append(f'<g class="cost" data-item="{it.key}" data-value="{v}">'
                             f'<rect x="{cx - tw / 2:.1f}" y="{fy - 1:.1f}" width="{tw:.1f}" '
                             f'height="{FS * 0.9 + 2:.1f}" rx="3" fill="{colour}" stroke="#999" stroke-width="0.5"/>')
            self._text(cx, fy, self._figure(it), "cost", anchor="middle", size=FS * 0.9,
                       fill="#ffffff" if colour in SCALE[-2:] else "#222")
            self.body.append("</g>")


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
        top, bot = min(ys) - 9, max(ys) + 9
        self.body.append(f'<polygon class="conv-split" points="{x:.1f},{top + 5:.1f} {x + a:.1f},{top:.1f} '
                         f'{x + a:.1f},{bot:.1f} {x:.1f},{bot - 5:.1f}" fill="#d4ebfb" stroke="#222" '
                         'stroke-width="1.6"/>')
        self._text(x + a / 2, (top + bot) / 2 - FS / 2, text, "glyph", anchor="middle")
        xl = x + a + b
        for y, label in zip(ys, self._windows(it)):
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
