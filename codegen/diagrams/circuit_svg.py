"""SVG text of a circuit layout: one writer per kind of mark (`circuit_marks`), nothing placed here.

Every mark becomes one line of the document, in the layout's order; the look of each (strokes, radii,
colours that are not data) is decided here alone. Coordinates are written to 0.1 px, so the output is
byte-for-byte reproducible (the gallery and the circuit tests compare it).

>>> from archc.codegen.diagrams.circuit_marks import Dot
>>> element(Dot("copy", 10, 20.25))
'<circle class="copy" cx="10.0" cy="20.2" r="2.8" fill="#333"/>'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from typing import Any

from archc.codegen.diagrams import circuit_marks as M

ARROW = ' marker-end="url(#arrow)"'


def document(width: float, height: float, font_size: float, marks: Sequence[M.Mark]) -> str:
    """The whole SVG document: header, arrow marker, white background, then the marks."""
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" '
            'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" '
            f'font-size="{font_size}">\n'
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>\n'
            f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>\n')
    return head + "".join(element(m) + "\n" for m in marks) + "</svg>\n"


def element(m: M.Mark) -> str:
    """The SVG of one mark."""
    return WRITERS[type(m)](m)


def _text(m: M.Text) -> str:
    wt = f' font-weight="{m.weight}"' if m.weight != "normal" else ""
    return (f'<text x="{m.x:.1f}" y="{m.box.y + m.size * 0.85:.1f}" text-anchor="{m.anchor}" '
            f'font-size="{m.size:g}"{wt} fill="{m.fill}" class="{m.box.kind}">{escape(m.box.text)}</text>')


def _swatch(m: M.Swatch) -> str:
    return (f'<rect class="swatch" x="{m.x:.1f}" y="{m.y:.1f}" width="14" height="{m.h:g}" '
            f'fill="{m.fill}" stroke="#888" stroke-width="0.6"/>')


def _region(m: M.Region) -> str:
    return (f'<rect class="region" x="{m.x:.1f}" y="{m.y:.1f}" width="{m.w:.1f}" height="{m.h:.1f}" rx="6" '
            f'fill="{m.tint}" fill-opacity="0.75" stroke="#b9bfd3" stroke-width="0.8">'
            f'<title>{escape(m.path)}</title></rect>')


def _paren(m: M.Paren) -> str:
    return (f'<path class="paren" d="M{m.x:.1f},{m.top:.1f} Q{m.xc:.1f},{m.mid:.1f} {m.x:.1f},{m.bottom:.1f}" '
            'fill="none" stroke="#222" stroke-width="3"/>')


def _box3d(m: M.Box3D) -> str:
    d = m.depth
    return (f'<path d="M{m.x:.1f},{m.y:.1f} l{d},{-d} h{m.w:.1f} l{-d},{d} z" fill="#b8dc95" '
            f'stroke="#222" stroke-width="1.2"/>'
            f'<path d="M{m.x + m.w:.1f},{m.y:.1f} l{d},{-d} v{m.h:.1f} l{-d},{d} z" fill="#a9cf85" '
            f'stroke="#222" stroke-width="1.2"/>'
            f'<rect x="{m.x:.1f}" y="{m.y:.1f}" width="{m.w:.1f}" height="{m.h:.1f}" fill="{m.fill}" '
            f'stroke="#222" stroke-width="1.5"/>')


def _define_box(m: M.DefineBox) -> str:
    return (f'<g class="define-box" data-block="{escape(m.block)}" data-path="{escape(m.path)}">'
            f'<title>{escape(m.path)}</title>{_box3d(m.box)}</g>')


def _link(m: M.Link) -> str:
    d = f"M{m.x0:.1f},{m.y0:.1f} C{m.xm:.1f},{m.y0:.1f} {m.xm:.1f},{m.y1:.1f} {m.x1:.1f},{m.y1:.1f}"
    return f'<path class="link" d="{d}" fill="none" stroke="#444" stroke-width="1.2"/>'


# (class attribute, radius) of each kind of dot.
DOTS = {"copy": (' class="copy"', "2.8"), "join": ("", "3.5"), "diag": (' class="diag"', "3.2")}


def _dot(m: M.Dot) -> str:
    cls, r = DOTS[m.kind]
    return f'<circle{cls} cx="{m.x:.1f}" cy="{m.y:.1f}" r="{r}" fill="#333"/>'


def _separator(m: M.Separator) -> str:
    return (f'<line class="sep" x1="{m.x1:.1f}" y1="{m.y:.1f}" x2="{m.x2:.1f}" y2="{m.y:.1f}" '
            f'stroke="#444" stroke-dasharray="5,4"/>')


def _carry(c: M.Carry) -> str:
    curve = (f'<path class="carry" d="M{c.x0:.1f},{c.y0:.1f} C{c.xm:.1f},{c.y0:.1f} {c.xm:.1f},{c.y1:.1f} '
             f'{c.x1:.1f},{c.y1:.1f}" fill="none" stroke="#444" stroke-width="1.2"/>')
    return (f'{curve}<line x1="{c.x1:.1f}" y1="{c.y1:.1f}" x2="{c.x2:.1f}" y2="{c.y1:.1f}" stroke="#444" '
            f'stroke-width="1.2"{ARROW if c.arrow else ""}/>')


def _wire(m: M.WireMark) -> str:
    line = (f'<line x1="{m.x1:.1f}" y1="{m.y:.1f}" x2="{m.x2:.1f}" y2="{m.y:.1f}" stroke="#444" '
            f'stroke-width="1.2"{ARROW if m.arrow else ""}/>')
    carried = _carry(m.carry) if m.carry is not None else ""
    return f'<g class="wire" data-value="{m.value}" data-axis="{escape(m.axis)}">{line}{carried}</g>'


def _glyph_open(m: M.GlyphOpen) -> str:
    return f'<g class="glyph" data-item="{m.item}" data-op="{m.op}"><title>{escape(m.tip)}</title>'


def _cost_open(m: M.CostOpen) -> str:
    return (f'<g class="cost" data-item="{m.item}" data-value="{m.value}">'
            f'<rect x="{m.x:.1f}" y="{m.y:.1f}" width="{m.w:.1f}" height="{m.h:.1f}" rx="3" fill="{m.fill}" '
            'stroke="#999" stroke-width="0.5"/>')


def _contract_open(m: M.ContractOpen) -> str:
    return f'<g class="conv-contract"><rect x="{m.x:.1f}" y="{m.y:.1f}" width="20" height="18" fill="#ffffff"/>'


def _close(m: M.Close) -> str:
    return "</g>"


def _norm(m: M.NormCircle) -> str:
    return f'<circle cx="{m.x:.1f}" cy="{m.y:.1f}" r="8" fill="{m.fill}" stroke="#222" stroke-width="1.6"/>'


def _triangle(m: M.Triangle) -> str:
    return (f'<path d="M{m.x + 8:.1f},{m.y - 7:.1f} L{m.x - 8:.1f},{m.y:.1f} L{m.x + 8:.1f},{m.y + 7:.1f} z" '
            f'fill="{m.fill}" stroke="#222" stroke-width="1.4"/>')


def _bar(m: M.Bar) -> str:
    return (f'<rect x="{m.x - 3:.1f}" y="{m.y0 - 8:.1f}" width="6" height="{m.y1 - m.y0 + 16:.1f}" '
            f'fill="#222"/>')


def _linear(m: M.LinearBox) -> str:
    return f'<rect x="{m.x + 2:.1f}" y="{m.y - 9:.1f}" width="{m.w - 4:.1f}" height="18" fill="{m.fill}"/>'


def _op_box(m: M.OpBox) -> str:
    return (f'<rect x="{m.x:.1f}" y="{m.y:.1f}" width="{m.w:.1f}" height="{m.h:.1f}" '
            f'fill="{m.fill}" stroke="#222" stroke-width="{"2.4" if m.heavy else "1.4"}"/>')


def _cup(m: M.Cup) -> str:
    x, b = m.x, m.bulge
    return (f'<path class="cup" d="M{x:.1f},{m.y1:.1f} C{x + b:.1f},{m.y1:.1f} {x + b:.1f},{m.y2:.1f} '
            f'{x:.1f},{m.y2:.1f}" fill="none" stroke="#222" stroke-width="1.6"/>')


def _end_bar(m: M.EndBar) -> str:
    return (f'<line x1="{m.x:.1f}" y1="{m.y - 6:.1f}" x2="{m.x:.1f}" y2="{m.y + 6:.1f}" '
            f'stroke="#222" stroke-width="2"/>')


def _shade(m: M.Shade) -> str:
    return (f'<rect x="{m.x:.1f}" y="{m.y:.1f}" width="{m.w:.1f}" height="{m.h:.1f}" fill="{m.fill}" '
            'fill-opacity="0.5"/>')


def _attention(m: M.AttentionBox) -> str:
    return (f'<rect class="attention" x="{m.x:.1f}" y="{m.y:.1f}" width="{m.w:.1f}" height="{m.h:.1f}" rx="5" '
            f'fill="{m.fill}" fill-opacity="0.8"/>')


def _line(m: M.Line) -> str:
    return f'<line x1="{m.x1:.1f}" y1="{m.y:.1f}" x2="{m.x2:.1f}" y2="{m.y:.1f}" stroke="#444" stroke-width="1.2"/>'


def _conv_split(m: M.ConvSplit) -> str:
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in m.points)
    return f'<polygon class="conv-split" points="{points}" fill="#d4ebfb" stroke="#222" stroke-width="1.6"/>'


def _window(m: M.Window) -> str:
    return (f'<path class="window" d="M{m.x0:.1f},{m.y0:.1f} H{m.xh:.1f} C{m.c1:.1f},{m.y0:.1f} '
            f'{m.c2:.1f},{m.y1:.1f} {m.x1:.1f},{m.y1:.1f}" fill="none" stroke="#1f5f99" stroke-width="1.2"/>')


WRITERS: dict[type, Callable[[Any], str]] = {
    M.Text: _text, M.Swatch: _swatch, M.Region: _region, M.Paren: _paren, M.Box3D: _box3d,
    M.DefineBox: _define_box, M.Link: _link, M.Dot: _dot, M.Separator: _separator, M.WireMark: _wire,
    M.GlyphOpen: _glyph_open, M.CostOpen: _cost_open, M.ContractOpen: _contract_open, M.Close: _close,
    M.NormCircle: _norm, M.Triangle: _triangle, M.Bar: _bar, M.LinearBox: _linear, M.OpBox: _op_box,
    M.Cup: _cup, M.EndBar: _end_bar, M.Shade: _shade, M.AttentionBox: _attention, M.Line: _line,
    M.ConvSplit: _conv_split, M.Window: _window,
}
