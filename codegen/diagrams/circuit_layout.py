"""Where everything of a circuit diagram goes: columns in x, the header, regions, runs and wires.

`Builder` extends `circuit_lanes.Lanes` (items, lanes, rows) with pixels: each column's x from its
glyph's width and its labels' measured widths (`textwidth`), the title / legend / key rows, tinted
block regions with titles placed greedily in rows, and run parentheses; each column's links, wires,
carried copies and glyph are `circuit_items.draw_item`'s (glyphs from the table in `circuit_glyphs`).
The result is a `Layout`: plain data, its `marks` in drawing order (`circuit_marks`) and the boxes of
all its texts, which `circuit_svg` writes.

>>> import archc
>>> m = archc.loads('block B() { in x: [n = 2, c = 8]\\n fc = linear(x, c -> 4)\\n out relu(fc) }')
>>> lay = Builder(m.check().graph, (), None).build()
>>> [b.text for b in lay.texts if b.kind == "glyph"]
['x', 'L₊', '➤ReLU➤']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from archc.codegen.diagrams import circuit_marks as M
from archc.codegen.diagrams.circuit_glyphs import glyph_width
from archc.codegen.diagrams.circuit_items import draw_item
from archc.codegen.diagrams.circuit_lanes import CURVE, GAP, HEAD, Item, Lanes, slots, types
from archc.codegen.diagrams.circuit_marks import FS, Box, Wire
from archc.codegen.diagrams.graph import SCALE, _fmt_num
from archc.codegen.diagrams.textwidth import width
from archc.ir.graph import Graph, ModuleInfo
from archc.shapes.types import TensorType, TupleType

TITLE_H = 16     # one row of region titles / run labels
LEGEND_ROWS = 6  # entries per column of the legend
TINTS = ("#e8eaf6", "#fdf1dc", "#e6f2e6", "#f6e3ea", "#e3f1f6")


@dataclasses.dataclass
class Layout:
    """A circuit diagram laid out: its size, columns, wires, text boxes, and marks in drawing order."""

    width: float
    height: float
    items: list[Item]
    wires: list[Wire]
    texts: list[Box]             # every drawn text's box, in drawing order
    glyphs: list[str]            # item keys that got a glyph element
    collapsed: list[tuple[str, int]]
    marks: list[M.Mark]
    weights: dict[str, int] = dataclasses.field(default_factory=dict)  # annotate: item key -> its figure

    @property
    def summary(self) -> str:
        runs = "".join(f", {p} ×{n}" for p, n in self.collapsed)
        return f"{len(self.items)} columns, {len(self.wires)} wires{runs}"

    @property
    def body(self) -> list[str]:
        """The SVG elements, one per mark."""
        from archc.codegen.diagrams.circuit_svg import element
        return [element(m) for m in self.marks]

    def svg(self) -> str:
        from archc.codegen.diagrams.circuit_svg import document
        return document(self.width, self.height, FS, self.marks)


class Builder(Lanes):
    """Lays out the items of `Lanes` in pixels and records every mark (see the module docstring)."""

    def __init__(self, g: Graph, expand: Sequence[str], depth: int | None, annotate: str | None = None,
                 define: ModuleInfo | None = None, conv: str = "compact") -> None:
        super().__init__(g, expand, depth, annotate, define, conv)
        self.marks: list[M.Mark] = []
        self.wires: list[Wire] = []
        self.glyphs: list[str] = []

    def add(self, mark: M.Mark) -> None:
        self.marks.append(mark)

    def text(self, x: float, y: float, s: str, kind: str, anchor: str = "start", size: float = FS,
             weight: str = "normal", fill: str = "#222") -> None:
        """Text whose box's top-left is (x, y) (or top-centre with anchor middle), its width measured."""
        w = width(s, size, weight == "bold")
        x0 = x - w / 2 if anchor == "middle" else x
        self.add(M.Text(Box(x0, y, w, size, s, kind), x, anchor, size, weight, fill))

    # ---- labels --------------------------------------------------------------------------------

    def label(self, s: tuple[str, Any]) -> str:
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

    def shown(self, it: Item) -> list[bool]:
        """Per slot of `it`'s value: is its wire labelled? Yes at an input, at a block region's first column,
        on the diagram's outputs, where the value moves to another lane than its chain's, and where the
        axis is new or its size changed since the previous column of the chain (`inputs[0]`)."""
        here = slots(it.node.type)
        if (not it.inputs or it.key in self.fresh or it.node.id in self.g.outputs
                or it.lane != self.by_key[it.inputs[0]].lane):
            return [s is not None for s in here]
        before = {self.label(s) for s in slots(self.by_key[it.inputs[0]].node.type) if s is not None}
        return [s is not None and self.label(s) not in before for s in here]

    def figure(self, it: Item) -> str:
        """The annotation drawn under the glyph ('' without --annotate)."""
        if self.annotate is None:
            return ""
        return _fmt_num(self.weights.get(it.key, 0))

    # ---- --define: the block's box -----------------------------------------------------------------

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
        self.add(M.DefineBox(m.name, m.path, M.Box3D(x, y, w, h, d, "#cfe8b0")))
        for i, s in enumerate(lines):
            self.text(x + 12, y + 8 + i * TITLE_H, s, "define", weight="bold" if i == 0 else "normal")
        self.text(x + w + d + 14, y + h / 2 - 11, "=", "define", anchor="middle", size=22, weight="bold")
        return y + h

    # ---- geometry --------------------------------------------------------------------------------

    def lane_top(self, lane: int) -> float:
        return self.top + self.lane_off[lane]

    def row_y(self, lane: int, j: int) -> float:
        return self.lane_top(lane) + HEAD + 12 + j * GAP

    def wire_y(self, it: Item, j: int) -> float:
        return self.row_y(it.lane, j)

    def axis_y(self, it: Item, name: str) -> float | None:
        for j, s in enumerate(slots(it.node.type)):
            if s is not None and s[0] == name:
                return self.wire_y(it, j)
        return None

    def entry_x(self, col: int, right: float) -> float:
        """Where wires into column `col` leave their lane and start to curve (past the last column: the
        right edge, where outputs end in arrows)."""
        if col >= len(self.items):
            return right - 10
        return self.items[col].x - self.items[col].curve

    def _curve(self, it: Item) -> float:
        """Room for an item's input wires to change rows: wider the further they travel (lanes apart)."""
        rise = [abs(self.lane_off[self.src_lane(it, self.by_key[k])] - self.lane_off[it.lane]) for k in it.inputs]
        return CURVE + min(max(rise, default=0.0) * 0.12, 50.0)

    # ---- the whole diagram ---------------------------------------------------------------------------

    def build(self) -> Layout:
        self.place()
        self._mark_fresh()
        # Column widths: the glyph, then room for the labels of the value it makes, then a curve; a little
        # more where a block region starts or ends, so neighbouring regions keep apart.
        x = 20.0
        if self.define is not None:
            x += self._define_w() + 44  # the block's box and the "=" sign
        prev: tuple[str, ...] = ()
        for it in self.items:
            labels = [self.label(s) for s, on in zip(slots(it.node.type), self.shown(it)) if s is not None and on]
            it.w = glyph_width(self, it)
            here = self._containers(it)
            x += 8 * len(set(here) ^ set(prev))
            prev = here
            it.curve = self._curve(it)
            x += it.curve
            it.x = x
            x += it.w + (10 if it.module is not None else 4) + max((width(s, FS) for s in labels), default=0) + 8
        right = x + 40
        # Header: title, legend rows, then rows of region titles (assigned greedily, no overlap).
        y = self._header()
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
            draw_item(self, it, right)
        texts = [m.box for m in self.marks if isinstance(m, M.Text)]
        width_ = max(right, max((b.x + b.w for b in texts), default=0) + 20)
        collapsed = [(r.rep, len(r.elements)) for r in self.runs.values()]
        return Layout(width_, height, self.items, self.wires, texts, self.glyphs, collapsed, self.marks,
                      dict(self.weights))

    def _header(self) -> float:
        """The title, the legend of derived sizes (in columns) and the annotation's key; the y below them."""
        y = 8.0

        def typ(t: TensorType | TupleType) -> str:
            return " | ".join("[" + ", ".join(self.label((a.name, a.size)) for a in tt.axes) + "]" for tt in types(t))

        title = f"{self.g.entry}(" + ", ".join(
            f"{self.g.node(i).attrs.get('name', 'x')}: {typ(self.g.node(i).type)}" for i in self.g.inputs) + ")"
        self.text(20, y, title, "title", weight="bold")
        y += TITLE_H + 4
        if self.legend.rows:
            self.text(20, y, "Legend", "legend", weight="bold")
            y += TITLE_H
            # In columns of LEGEND_ROWS entries, so a long legend (U-Net: 16 derived sizes) stays short.
            entries = [f"{k} = {v}" for k, v in self.legend.rows]
            x = 28.0
            for i in range(0, len(entries), LEGEND_ROWS):
                column = entries[i:i + LEGEND_ROWS]
                for r, text in enumerate(column):
                    self.text(x, y + r * TITLE_H, text, "legend")
                x += max(width(t, FS) for t in column) + 28
            y += min(len(entries), LEGEND_ROWS) * TITLE_H + 4
        if self.annotate is not None and any(v > 0 for v in self.weights.values()):
            y = self._key(y)
        return y

    def _key(self, y: float) -> float:
        """The colour scale of the annotation, one swatch per step, under the legend; the y below it."""
        lo, hi = self.scale
        self.text(20, y, f"{self.annotate} per op (runs: all N)", "legend", weight="bold")
        y += TITLE_H
        x = 28.0
        for i, colour in enumerate(SCALE):
            self.add(M.Swatch(x, y, FS, colour))
            label = f"≥ {_fmt_num(10 ** (lo + (hi - lo) * i / len(SCALE)))}"
            self.text(x + 18, y, label, "legend")
            x += 18 + width(label, FS) + 12
        return y + TITLE_H + 4

    # ---- regions and runs ------------------------------------------------------------------------------

    def _parent(self, path: str) -> str:
        """The module holding module `path` ('' at the top)."""
        m = self.g.modules.get(path)
        return (m.parent or "") if m else path.rpartition(".")[0]

    def module_name(self, path: str, full: bool = True) -> str:
        """A module path as the source names it: `down[0]` for an element of a list, `layer1.0` for one of a
        sequence, the path otherwise. `full=False` shortens it for a region title: the container's last part
        only for an element (`1.0`, not `features.1.0`), else the module's own name."""
        up, _, name = path.rpartition(".")
        pm = self.g.modules.get(up) if path in self.g.modules and self._parent(path) == up else None
        if pm is None or pm.kind not in ("list", "seq"):
            return path if full else name
        base = up if full else up.rpartition(".")[2]
        return f"{base}[{name}]" if pm.kind == "list" else f"{base}.{name}"

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

    def _draw_regions(self, regions: list[tuple[str, float, float, int]], rows: list[int], y0: float,
                      bottom: float) -> None:
        for (path, x0, x1, d), row in zip(regions, rows):
            m = self.g.modules.get(path)
            name = self.module_name(path, full=False)
            if m is not None and m.kind == "block":
                title = f"{name} · {m.name}"
            else:
                title = f"{name} ({m.kind})" if m is not None else name
            ty = y0 + row * TITLE_H
            self.add(M.Region(x0, ty - 2, x1 - x0, bottom - ty - 2 - d * 3, TINTS[d % len(TINTS)], path))
            inset = 16 if path in self.runs else 4  # clear of the run's parenthesis
            room = x1 - x0 - 2 * inset  # clear of both parentheses of a run
            size = FS * 0.9
            while title and width(title, size) > room:
                title = title[:-2] + "…" if len(title) > 2 else ""
            if len(title) >= 2:
                self.text(x0 + inset, ty, title, "title", size=size, fill="#3a3f58")

    def _draw_run(self, path: str, x0: float, x1: float, top: float, bottom: float, label_y: float) -> None:
        run = self.runs[path]
        for x, sgn in ((x0 + 2, 1), (x1 - 2, -1)):
            h = bottom - top
            self.add(M.Paren(x + 8 * sgn, x - 8 * sgn, top, top + h / 2, bottom))
        first, lastm = self.g.modules[run.elements[0]], self.g.modules[run.elements[-1]]
        assert first.repeat is not None and lastm.repeat is not None
        label = f"{first.repeat[0]} = {first.repeat[1]}…{lastm.repeat[1]}  ×{len(run.elements)}"
        self.text(x1 - width(label, FS, True), label_y, label, "run", weight="bold")
