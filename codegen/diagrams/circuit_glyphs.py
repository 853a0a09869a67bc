"""The glyph of each kind of op in a circuit diagram: its text, its width and its marks, in one table.

`STYLES` maps a glyph kind (`archc.ops.glyphs.GLYPHS[op].kind`, or "module" for a collapsed module's
box) to a `Style`: `text` (what the glyph says), `width` (its column's width, from the measured text),
`draw` (the marks it adds, given the wires it covers in a `Frame`) and `acts` (which wires it covers:
the others run straight past it). A kind not in the table is drawn as a box with its symbol.

>>> sorted(STYLES)[:6]
['attention', 'bar', 'conv', 'conv_t', 'dropout', 'einsum']
>>> STYLES["norm"].draw.__name__
'_draw_norm'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from archc.codegen.diagrams import circuit_marks as M
from archc.codegen.diagrams.circuit_lanes import GAP, Item, slots
from archc.codegen.diagrams.circuit_marks import FS
from archc.codegen.diagrams.textwidth import width
from archc.ir.graph import Node, Op
from archc.ops.glyphs import GLYPHS
from archc.shapes.types import TensorType

if TYPE_CHECKING:
    from archc.codegen.diagrams.circuit_layout import Builder

ATTN_W = 84      # width of an attention op drawn in full (cup, softmax, cup)
WIN_FS = 8       # font size of the kernel-window labels of an expanded convolution
POWERS = "⁰¹²³⁴⁵⁶⁷⁸⁹"


@dataclasses.dataclass(frozen=True)
class Frame:
    """What a glyph's drawing needs to know about its column."""

    text: str            # `glyph_text`
    cx: float            # the column's centre
    lane_top: float
    top: float           # the box around the wires it covers
    bot: float
    shade: str | None    # --annotate: its colour on the cost scale
    ink: str             # text colour on that shade
    ys: list[float]      # its output wires
    gy: list[float]      # the wires it covers (or, for reductions and einsums, the rows that end at it)
    joins: list[float]   # rows where wires of several inputs meet (drawn as dots by einsum, attention, bar)


def acts(n: Node) -> set[str] | None:
    """The axes of its first input that op `n` acts on (None: all of them; empty: none, it floats above)."""
    return STYLES.get(GLYPHS[n.op].kind, DEFAULT).acts(n)


def kind_of(it: Item) -> str:
    return "module" if it.module is not None else GLYPHS[it.node.op].kind


def glyph_text(b: Builder, it: Item) -> str:
    return STYLES.get(kind_of(it), DEFAULT).text(b, it)


def glyph_width(b: Builder, it: Item) -> float:
    """The width of an item's glyph: its text as drawn (size, weight) or its figure, at least 22 px."""
    w = STYLES.get(kind_of(it), DEFAULT).width(b, it, glyph_text(b, it))
    if b.annotate is not None and b.weights.get(it.key, 0) > 0:
        w = max(w, width(b.figure(it), FS * 0.9) + 10)
    w = max(22.0, w)
    if expanded(b, it):
        w = max(w, sum(conv_parts(b, it)))
    return w


def draw_glyph(b: Builder, it: Item, f: Frame) -> None:
    STYLES.get(kind_of(it), DEFAULT).draw(b, it, f)


# ---- which wires a glyph covers -----------------------------------------------------------------

def _acts_all(n: Node) -> set[str] | None:
    return None


def _acts_none(n: Node) -> set[str] | None:
    return set()  # it floats above the wires, which run on untouched


def _acts_map(n: Node) -> set[str] | None:
    """A linear map or embedding: the axis it maps."""
    m = n.attrs.get("map")
    return {m[0]} if m else None


def _over(n: Node) -> list[str]:
    over = n.attrs.get("over")
    return [over] if isinstance(over, str) else list(over or [])


def _acts_reduce(n: Node) -> set[str] | None:
    """A reduction or softmax: the axes it runs over."""
    ax = n.attrs.get("axis")
    return set(_over(n)) | ({ax} if isinstance(ax, str) else set(ax or []))


def _acts_norm(n: Node) -> set[str] | None:
    """A norm: its `over` axes, else the channel axis (batch and group norm) or the last one."""
    if _over(n):
        return set(_over(n))
    t = n.type
    if isinstance(t, TensorType) and t.axes:
        return {t.axes[1].name if n.op in (Op.BATCHNORM, Op.GROUPNORM) and len(t.axes) > 1 else t.axes[-1].name}
    return None


def _acts_spatial(n: Node) -> set[str] | None:
    """A convolution or pool: every axis but the first (batch)."""
    t = n.type
    if isinstance(t, TensorType) and len(t.axes) > 2:
        return {x.name for x in t.axes[1:]}
    return None


# ---- texts --------------------------------------------------------------------------------------

def _symbol(b: Builder, it: Item) -> str:
    return GLYPHS[it.node.op].symbol


def _module_text(b: Builder, it: Item) -> str:
    assert it.module is not None
    m = b.g.modules.get(it.module)
    if m is None:
        return it.module
    return m.name if m.kind == "block" and m.name else f"{it.module.rpartition('.')[2]} ({m.kind})"


def _input_text(b: Builder, it: Item) -> str:
    return str(it.node.attrs.get("name", "x"))


def _param_text(b: Builder, it: Item) -> str:
    return f"θ {it.node.attrs.get('name', '')}".strip()


def _linear_text(b: Builder, it: Item) -> str:
    return "L₊" if it.node.attrs.get("bias") else "L"


def _conv_text(b: Builder, it: Item) -> str:
    """★ with the kernel and stride (and T for a transposed convolution, the pool's symbol after a pool)."""
    kind, a, size = GLYPHS[it.node.op].kind, it.node.attrs, b.legend.size_str
    k = a.get("kernel") or ()
    ks = size(k[0]) if k and len(set(k)) == 1 else "×".join(size(x) for x in k)
    s = a.get("strides") or ()
    st = f"/{size(s[0])}" if s and any(x != 1 for x in s) else ""
    if expanded(b, it):
        return f"★{st}"  # the kernel labels the window wires
    text = f"★{ks}{st}" + (" T" if kind == "conv_t" else "")
    return f"{text} {GLYPHS[it.node.op].symbol}" if kind == "pool" else text


def _func_text(b: Builder, it: Item) -> str:
    return f"➤{GLYPHS[it.node.op].symbol}➤"


# ---- widths -------------------------------------------------------------------------------------

def _text_width(b: Builder, it: Item, text: str) -> float:
    return width(text, FS) + 14


def _linear_width(b: Builder, it: Item, text: str) -> float:
    return width(text, 16, True) + 8


def _func_width(b: Builder, it: Item, text: str) -> float:
    return width(text, FS, True) + 6


def _join_width(b: Builder, it: Item, text: str) -> float:
    return width(text, FS + 3, True) + 6


def _einsum_width(b: Builder, it: Item, text: str) -> float:
    return GAP * 0.7 + 10


def _attention_width(b: Builder, it: Item, text: str) -> float:
    return ATTN_W if b.attn(it) is not None else _text_width(b, it, text)


# ---- drawings -----------------------------------------------------------------------------------

def _draw_floating(b: Builder, it: Item, f: Frame) -> None:
    """A function (➤f➤), dropout, identity or input: its text above the wires, which run on untouched."""
    bold = kind_of(it) == "func"
    b.text(f.cx, f.lane_top + 2, f.text, "glyph", anchor="middle", weight="bold" if bold else "normal")


def _draw_join(b: Builder, it: Item, f: Frame) -> None:
    for y in f.ys:
        b.add(M.Dot("join", f.cx, y))
    b.text(f.cx, f.lane_top + 2, f.text, "glyph", anchor="middle", weight="bold", size=FS + 3)


def _draw_norm(b: Builder, it: Item, f: Frame) -> None:
    for y in f.gy:
        b.add(M.NormCircle(f.cx, y, f.shade or "#ffffff"))
    b.text(f.cx, f.lane_top + 2, f.text, "glyph", anchor="middle", size=FS - 1)


def _draw_softmax(b: Builder, it: Item, f: Frame) -> None:
    for y in f.gy:
        b.add(M.Triangle(f.cx, y, f.shade or "#ffffff"))


def _draw_bar(b: Builder, it: Item, f: Frame) -> None:
    b.add(M.Bar(f.cx, f.ys[0], f.ys[-1]))
    b.text(f.cx, f.lane_top + 2, f.text, "glyph", anchor="middle", size=FS - 1)
    _diagonals(b, it, f)


def _draw_linear(b: Builder, it: Item, f: Frame) -> None:
    for y in f.gy:
        b.add(M.LinearBox(it.x, y, it.w, f.shade or "#ffffff"))
        b.text(f.cx, y - 9, f.text, "glyph", anchor="middle", size=16, weight="bold", fill=f.ink)


def _draw_module(b: Builder, it: Item, f: Frame) -> None:
    b.add(M.Box3D(it.x, f.top, it.w, f.bot - f.top, 6, f.shade or "#cfe8b0"))
    b.text(f.cx, (f.top + f.bot) / 2 - FS / 2, f.text, "glyph", anchor="middle", fill=f.ink)


def _draw_box(b: Builder, it: Item, f: Frame) -> None:
    """Any other op: a box over the wires it acts on, filled with its glyph's colour (heavy for a conv)."""
    heavy = kind_of(it) in ("conv", "conv_t")
    b.add(M.OpBox(it.x, f.top, it.w, f.bot - f.top, f.shade or GLYPHS[it.node.op].fill, heavy))
    b.text(f.cx, (f.top + f.bot) / 2 - FS / 2, f.text, "glyph", anchor="middle", fill=f.ink)


def _diagonals(b: Builder, it: Item, f: Frame) -> None:
    for y in f.joins:  # wires of several inputs meeting on one axis: the same positions (diagonal), a dot
        b.add(M.Dot("diag", it.x, y))


def _cup(x: float, y1: float, y2: float) -> M.Cup:
    """Two wires ending at x joined by a cup: their axes are contracted (summed over together)."""
    return M.Cup(x, y1, y2, max((y2 - y1) * 0.6, 8.0))


def _draw_einsum(b: Builder, it: Item, f: Frame) -> None:
    """An einsum: no box, only its contracted wires, joined in cups (one per axis held by two operands)."""
    rows: dict[str, list[int]] = {}
    for (_k, a), r in b.ends[it.key].items():
        rows.setdefault(a, []).append(r)
    for rs in rows.values():
        ys = [b.row_y(it.lane, r) for r in sorted(rs)]
        for y1, y2 in zip(ys, ys[1:]):
            b.add(_cup(it.x, y1, y2))
        if len(ys) == 1:  # summed over in one operand only: the wire ends at a bar
            b.add(M.EndBar(it.x, ys[0]))
    if f.shade is not None:
        ys = [b.row_y(it.lane, r) for r in b.ends[it.key].values()] or [b.wire_y(it, 0)]
        b.add(M.Shade(it.x - 2, min(ys) - 8, it.w, max(ys) - min(ys) + 16, f.shade))
    _diagonals(b, it, f)


def _draw_attention(b: Builder, it: Item, f: Frame) -> None:
    """Scaled dot-product attention in full: q and k contracted over the feature axis (a cup), scaled by
    1/√d, a softmax ◁ on k's sequence wire, which then meets v's sequence wire in a second cup; the
    other axes of q, k and v are the same positions (diagonal: dots where their wires meet). With fewer
    than three distinct inputs: a box."""
    roles = b.attn(it)
    if roles is None:
        return _draw_box(b, it, f)
    ends = b.ends[it.key]
    q, k, v = roles
    seq, chan = it.node.attrs["seq"], it.node.attrs["chan"]
    y_qc, y_kc = b.row_y(it.lane, ends[q, chan]), b.row_y(it.lane, ends[k, chan])
    y_ks, y_vs = b.row_y(it.lane, ends[k, seq]), b.row_y(it.lane, ends[v, seq])
    x = it.x
    top = b.wire_y(it, 0) - 10
    b.add(M.AttentionBox(x - 4, top, it.w + 4, y_vs + 10 - top, f.shade or "#e8dcf0"))
    b.add(_cup(x, y_qc, y_kc))
    xs, x3 = x + ATTN_W * 0.5, x + ATTN_W - 22
    for y in (y_ks, y_vs):
        b.add(M.Line(x, x3, y))
    b.add(M.Triangle(xs, y_ks, "#ffffff"))
    b.add(_cup(x3, y_ks, y_vs))
    qt = b.by_key[b.key_of[it.node.inputs[0]]].node.type
    assert isinstance(qt, TensorType)
    d = next(a.size for a in qt.axes if a.name == chan)
    b.text(x + 16, y_qc + 1, f"÷√{b.legend.size_str(d)}", "glyph", size=9)
    _diagonals(b, it, f)


def expanded(b: Builder, it: Item) -> bool:
    """Whether `it` is a convolution drawn in expanded form (trapezoid ★, window wires, **L**)."""
    n = it.node
    return (b.conv == "expanded" and it.module is None and n.op == Op.CONV and bool(n.attrs.get("spatial"))
            and bool(n.attrs.get("map")) and isinstance(n.type, TensorType)
            and set(_conv_axes(it)) <= {s[0] for s in slots(n.type) if s is not None})


def _conv_axes(it: Item) -> list[str]:
    """The output channel axis, then the spatial axes, of a convolution."""
    axis, _size, rename = it.node.attrs["map"]
    return [rename or axis, *it.node.attrs["spatial"]]


def _windows(b: Builder, it: Item) -> list[str]:
    """The labels of the kernel-window wires: one per spatial axis, or one `k=3²` for a square kernel
    (the paper's `1²`), which leaves the trapezoid under the last spatial wire."""
    k: tuple[Any, ...] = tuple(it.node.attrs.get("kernel") or ())
    if len(k) > 1 and len(set(k)) == 1 and len(k) < len(POWERS):
        return [f"k={b.legend.size_str(k[0])}{POWERS[len(k)]}"]
    return [f"k={b.legend.size_str(x)}" for x in k]


def conv_parts(b: Builder, it: Item) -> tuple[float, float, float]:
    """Widths of an expanded convolution's trapezoid, window-wire stretch and **L**."""
    star = width(glyph_text(b, it), FS) + 16
    win = max((width(s, WIN_FS) for s in _windows(b, it)), default=8.0) + 26
    return max(star, 26.0), win, 24.0


def _draw_conv(b: Builder, it: Item, f: Frame) -> None:
    """A convolution: a heavy box, or in expanded form the trapezoid ★ that splits each spatial wire into
    the output positions and a window wire (labelled k=…) that the bold **L** contracts, with the channel
    wire, into the output channel wire."""
    if not expanded(b, it):
        return _draw_box(b, it, f)
    chan, *spatial = _conv_axes(it)
    yc = b.axis_y(it, chan)
    ys = [y for y in (b.axis_y(it, a) for a in spatial) if y is not None]
    assert yc is not None and len(ys) == len(spatial)  # `expanded` checked the axes
    a, w, _c = conv_parts(b, it)
    x = it.x
    top, bot = min(ys) - 9, max(ys) + GAP / 2 + 4  # the window wires leave through the right side
    b.add(M.ConvSplit(((x, top - 2), (x + a, top + 4), (x + a, bot), (x, bot + 4))))
    b.text(x + a / 2, (top + bot) / 2 - FS / 2, f.text, "glyph", anchor="middle")
    xl = x + a + w
    windows = _windows(b, it)
    for y, label in zip(ys[-len(windows):], windows):
        yw = y + GAP / 2
        b.add(M.Window(x + a, yw, xl - 12, xl - 4, xl - 8, xl, yc + 5))
        b.text(x + a + 3, yw + 0.5, label, "window", size=WIN_FS, fill="#1f5f99")
    b.add(M.ContractOpen(xl, yc - 9))
    b.text(xl + 10, yc - 9, "L", "glyph", anchor="middle", size=16, weight="bold")
    b.add(M.Close())


@dataclasses.dataclass(frozen=True)
class Style:
    """How one kind of glyph is drawn: its text, its width, its marks, and the wires it covers."""

    text: Callable[[Builder, Item], str] = _symbol
    width: Callable[[Builder, Item, str], float] = _text_width
    draw: Callable[[Builder, Item, Frame], None] = _draw_box
    acts: Callable[[Node], set[str] | None] = _acts_all


DEFAULT = Style()  # a kind missing from the table: a box with its symbol over all the wires
_FLOAT = Style(_func_text, _text_width, _draw_floating, _acts_none)

STYLES: dict[str, Style] = {
    "module": Style(_module_text, _text_width, _draw_module),
    "input": Style(_input_text, _text_width, _draw_floating),
    "param": Style(_param_text),
    "func": Style(_func_text, _func_width, _draw_floating, _acts_none),
    "dropout": _FLOAT,
    "identity": _FLOAT,
    "join": Style(_symbol, _join_width, _draw_join, _acts_none),
    "norm": Style(draw=_draw_norm, acts=_acts_norm),
    "softmax": Style(draw=_draw_softmax, acts=_acts_reduce),
    "reduce": Style(acts=_acts_reduce),
    "bar": Style(draw=_draw_bar),
    "linear": Style(_linear_text, _linear_width, _draw_linear, _acts_map),
    "embed": Style(acts=_acts_map),
    "einsum": Style(_symbol, _einsum_width, _draw_einsum),
    "attention": Style(_symbol, _attention_width, _draw_attention),
    "conv": Style(_conv_text, _text_width, _draw_conv, _acts_spatial),
    "conv_t": Style(_conv_text, acts=_acts_spatial),
    "pool": Style(_conv_text, acts=_acts_spatial),
}
