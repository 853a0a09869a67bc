"""One item of a circuit diagram: the links of its inputs, its wires and their carried copies, its glyph.

`draw_item` adds the marks of one column to the `Builder` once the columns have their x: each input's
wires curve from their lane into the wires of the same axis (or the rows where they end), the item's
own wires run in its home lane to its first consumer, a value used again later is copied at dots and
carried in a lane of its own (named where it leaves and comes back), and the glyph comes from the
table in `circuit_glyphs`, followed by its --annotate figure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from archc.codegen.diagrams import circuit_marks as M
from archc.codegen.diagrams.circuit_glyphs import Frame, acts, draw_glyph, glyph_text, kind_of
from archc.codegen.diagrams.circuit_lanes import CURVE, HEAD, Item, slots
from archc.codegen.diagrams.circuit_marks import FS, Wire
from archc.codegen.diagrams.graph import SCALE, _colour
from archc.codegen.diagrams.textwidth import width
from archc.ops.glyphs import detail

if TYPE_CHECKING:
    from archc.codegen.diagrams.circuit_layout import Builder


def _target(b: Builder, it: Item, key: str, axis: str, ends: dict[tuple[str, str], int],
            named: list[str], gy: list[float], out_ys: list[float], y0: float) -> float:
    """Where the wire `axis` of input `key` enters `it`'s column."""
    if (key, axis) in ends:
        return b.row_y(it.lane, ends[key, axis])
    if axis in named:
        y = b.axis_y(it, axis)
        assert y is not None
        return y
    return (min(gy) + max(gy)) / 2 if gy else out_ys[0] if out_ys else y0


def draw_item(b: Builder, it: Item, right: float) -> None:
    """The marks of item `it`'s column: input links, output wires and carried copies, glyph, figure."""
    here = slots(it.node.type)
    out_ys = [b.wire_y(it, j) for j in range(len(here))]
    # Incoming wires: each input's wires (from its home or carried lane) curve into this column's
    # wires of the same axis, or into the rows where they end (reductions, contractions).
    act = None if it.module is not None else acts(it.node)
    named = [s[0] for s in here if s is not None]
    ends = b.ends[it.key]
    gy = [y for s, y in zip(here, out_ys) if s is not None and (act is None or s[0] in act)]
    if ends and kind_of(it) in ("reduce", "einsum"):
        gy = sorted(b.row_y(it.lane, r) for r in ends.values())
    merged: dict[float, int] = {}
    xb = it.x - it.curve
    xm = xb + it.curve / 2
    for key in it.inputs:
        src = b.by_key[key]
        lane = b.src_lane(it, src)
        for j, s in enumerate(slots(src.node.type)):
            if s is None:
                continue
            y0 = b.row_y(lane, j)
            y1 = _target(b, it, key, s[0], ends, named, gy, out_ys, y0)
            if (key, s[0]) not in ends:
                merged[y1] = merged.get(y1, 0) + 1
            b.add(M.Link(xb, y0, xm, it.x, y1))
            if lane == src.carry and it.col != src.end:
                b.add(M.Dot("copy", xb, y0))
    # Outgoing wires: in the home lane up to the first consumer (or the right edge for an output);
    # a value used again later is copied there (dots) and carried in its own lane to its last consumer.
    last = len(b.items)
    out = it.key in b.outputs
    x_home = it.x + it.w if it.first == it.col else b.entry_x(it.first, right)  # unused: a stub
    lx = it.x + it.w + (10 if it.module is not None else 4)  # clear of a 3-D box's side
    shown = b.shown(it)
    for j, s in enumerate(here):
        y = out_ys[j]
        if s is None:
            b.add(M.Separator(it.x, x_home, y))
            continue
        label = b.label(s)
        b.wires.append(Wire(it.key, s[0], label, y, shown[j]))
        b.add(M.WireMark(it.key, s[0], it.x, x_home, y, it.first == last, _carried(b, it, j, y, right, out)))
        if shown[j]:
            b.text(lx, y - 3 - FS, label, "wire", fill="#333")
    if it.carry is not None and it.first < last:
        xf = b.entry_x(it.first, right)
        for y in (y for s, y in zip(here, out_ys) if s is not None):
            b.add(M.Dot("copy", xf, y))
        _carry_names(b, it, xf + CURVE, right)
    _glyph(b, it, out_ys, gy, sorted(y for y, c in merged.items() if c > 1))


def _carried(b: Builder, it: Item, j: int, y: float, right: float, out: bool) -> M.Carry | None:
    """The carried copy of wire `j` of `it`: a curve from the copy dot to its lane, then a line."""
    if it.carry is None or it.first >= len(b.items):
        return None
    xf = b.entry_x(it.first, right)
    arrow = out and it.end >= len(b.items)
    return M.Carry(xf, xf + CURVE / 2, xf + CURVE, y, b.row_y(it.carry, j), b.entry_x(it.end, right), arrow)


def _value_name(b: Builder, it: Item) -> str:
    """What the source calls `it`'s value: its name, else the outermost module it is the output of
    (`inc`, `down[0]`), else ''."""
    n = it.node
    if n.label:
        return n.label
    path = it.module or n.path or ""
    name = ""
    while path:
        if b.last_node.get(path) == n.id and path in b.g.modules:
            name = path
        path = path.rpartition(".")[0]
    return b.module_name(name) if name else ""


def _carry_names(b: Builder, it: Item, x0: float, right: float) -> None:
    """Name a carried copy where it leaves ("→ inc") and where it comes back ("inc →"), as the paper's
    figures mark values saved to memory and loaded back, when the value has a name and there is room."""
    name = _value_name(b, it)
    assert it.carry is not None
    if not name:
        return
    y = b.row_y(it.carry, 0) - 3 - FS
    xe = b.entry_x(it.end, right)
    leaves, back = f"→ {name}", f"{name} →"
    wa, wb = width(leaves, FS), width(back, FS)
    if xe - x0 > wa + wb + 40:
        b.text(x0 + 6, y, leaves, "carry", fill="#555")
        b.text(xe - wb - 6, y, back, "carry", fill="#555")


def _glyph(b: Builder, it: Item, ys: list[float], gy: list[float], joins: list[float]) -> None:
    """The item's glyph (from the table in `circuit_glyphs`) in its group, then its --annotate figure."""
    n = it.node
    tip = " ".join(x for x in (it.module or n.path or n.label or n.op.value, n.op.value, detail(n)) if x)
    lt = b.lane_top(it.lane)
    shade = None if b.annotate is None else _colour(b.weights.get(it.key, 0), *b.scale)
    ink = "#ffffff" if shade in SCALE[-2:] else "#222"
    top, bot = (min(gy) - 8, max(gy) + 8) if gy else (ys[0] - 8, ys[-1] + 8) if ys else (lt + HEAD, lt + HEAD + 16)
    b.add(M.GlyphOpen(it.key, n.op.value, tip))
    frame = Frame(glyph_text(b, it), it.x + it.w / 2, lt, top, bot, shade, ink, ys, gy, joins)
    draw_glyph(b, it, frame)
    b.add(M.Close())
    b.glyphs.append(it.key)
    if b.annotate is not None and b.weights.get(it.key, 0) > 0:
        # The figure under the column's lowest wire (clear of all wires: they run right of x); ops that
        # cost nothing in this convention get none (their glyph stays unshaded).
        v = b.weights.get(it.key, 0)
        low = max([*ys, *(b.row_y(it.lane, r) for r in b.ends[it.key].values())], default=lt + HEAD + 3)
        fy = low + 9
        colour = shade or "#ffffff"
        tw = width(b.figure(it), FS * 0.9) + 6
        cx = it.x + it.w / 2
        b.add(M.CostOpen(it.key, v, cx - tw / 2, fy - 1, tw, FS * 0.9 + 2, colour))
        b.text(cx, fy, b.figure(it), "cost", anchor="middle", size=FS * 0.9,
                  fill="#ffffff" if colour in SCALE[-2:] else "#222")
        b.add(M.Close())
