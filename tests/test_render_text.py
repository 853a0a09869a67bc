"""Text in circuit diagrams, measured with real font metrics (codegen/textwidth.py), not the layout's guess.

The circuit layout records an estimated box for every text it places; these tests measure each `<text>`
of the SVG itself from DejaVu Sans's advance widths and check, independently of that estimate, that no
text overlaps another text, another op's glyph, or a wire it does not sit on. The width table is
checked against the font files where they are installed.
"""

from __future__ import annotations

import importlib.util
import pathlib
import xml.etree.ElementTree as ET

import pytest

import archc
from archc.codegen.diagrams import circuit as C
from archc.codegen.diagrams.textwidth import CHARS, UNKNOWN, width

from conftest import EXAMPLES, ROOT

SVG = "{http://www.w3.org/2000/svg}"
SOURCES = sorted(EXAMPLES.glob("*.arch")) + [
    ROOT / "tests" / "data" / "mini_resnet.arch", ROOT / "benchmarks" / "resnet152.arch"]
SETS = {"transformer_encoder": {"L": 16}}
FONTS = pathlib.Path("/usr/share/fonts/truetype/dejavu")
CAP, DESC = 0.73, 0.24  # DejaVu Sans cap height and descent, in em: a text's ink above and below its baseline

Rect = tuple[float, float, float, float]  # x, y, w, h


def _hit(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _inside(a: Rect, b: Rect, slack: float = 1.0) -> bool:
    return (b[0] - slack <= a[0] and a[0] + a[2] <= b[0] + b[2] + slack
            and b[1] - slack <= a[1] and a[1] + a[3] <= b[1] + b[3] + slack)


def measure(svg: str) -> tuple[list[tuple[Rect, str, int]], list[tuple[Rect, int]], list[tuple[Rect, str]]]:
    """(texts, glyph shapes, wires) of a circuit SVG: each text's measured box, what it says and the glyph
    group it belongs to (-1: none); the box of every rect/circle in a glyph group; every wire segment."""
    texts: list[tuple[Rect, str, int]] = []
    shapes: list[tuple[Rect, int]] = []
    wires: list[tuple[Rect, str]] = []
    groups = 0

    def walk(el: ET.Element, group: int) -> None:
        nonlocal groups
        for ch in el:
            tag = ch.tag.removeprefix(SVG)
            g = group
            if tag == "g" and ch.get("class") == "glyph":
                groups += 1
                g = groups
            if tag == "text":
                size = float(ch.get("font-size") or C.FS)
                s = "".join(ch.itertext())
                w = width(s, size, bold=ch.get("font-weight") == "bold")
                x, y = float(ch.get("x", 0)), float(ch.get("y", 0))
                anchor = ch.get("text-anchor", "start")
                x0 = x - w / 2 if anchor == "middle" else x - w if anchor == "end" else x
                texts.append(((x0, y - CAP * size, w, (CAP + DESC) * size), s, g))
            elif tag == "rect" and g > 0:
                shapes.append(((float(ch.get("x", 0)), float(ch.get("y", 0)), float(ch.get("width", 0)),
                                float(ch.get("height", 0))), g))
            elif tag == "circle" and g > 0:
                r = float(ch.get("r", 0))
                shapes.append(((float(ch.get("cx", 0)) - r, float(ch.get("cy", 0)) - r, 2 * r, 2 * r), g))
            elif tag == "g" and ch.get("class") == "wire":
                for ln in ch.iter(f"{SVG}line"):
                    x1, x2, y1 = float(ln.get("x1", 0)), float(ln.get("x2", 0)), float(ln.get("y1", 0))
                    wires.append(((min(x1, x2), y1 - 0.6, abs(x2 - x1), 1.2), ch.get("data-axis", "")))
            walk(ch, g)

    walk(ET.fromstring(svg), -1)
    return texts, shapes, wires


def collisions(svg: str) -> list[str]:
    """Every text that overlaps another text, a shape of another glyph, or a wire without a shape of its
    own glyph behind it (a glyph's label on its own filled box hides the wire under it)."""
    texts, shapes, wires = measure(svg)
    out = []
    for i, (a, s, g) in enumerate(texts):
        out += [f"text {s!r} on text {t!r}" for b, t, _ in texts[i + 1:] if _hit(a, b)]
        out += [f"text {s!r} on the glyph of another op" for b, h in shapes if h != g and _hit(a, b)]
        backed = any(h == g and _inside(a, b) for b, h in shapes)
        if not backed:
            out += [f"text {s!r} on wire {axis}" for b, axis in wires if _hit(a, b)]
    return out


_cache: dict[tuple[str, str | None], str] = {}


def _svg(src: pathlib.Path, annotate: str | None) -> str:
    if (src.stem, annotate) not in _cache:
        g = archc.load(str(src)).check(**SETS.get(src.stem, {})).graph
        _cache[src.stem, annotate] = C.layout(g, annotate=annotate).svg()
    return _cache[src.stem, annotate]


@pytest.mark.parametrize("annotate", [None, "flops"])
@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_no_text_collides_measured_with_real_metrics(src: pathlib.Path, annotate: str | None) -> None:
    svg = _svg(src, annotate)
    texts, _, _ = measure(svg)
    assert len(texts) > 10
    assert not set("".join(s for _, s, _ in texts)) - set(CHARS), "a drawn character has no measured width"
    assert collisions(svg) == []


@pytest.mark.parametrize("src", ["tests/data/mini_resnet.arch", "examples/resnet50.arch"])
def test_block_definition_text_does_not_collide(src: str) -> None:
    """`--define Bottleneck`: the 3-D box, its parameters, "=" and the expansion beside it."""
    svg = C.layout(archc.load(str(ROOT / src)).check().graph, define="Bottleneck").svg()
    assert "Bottleneck" in svg
    assert collisions(svg) == []


def test_collisions_are_found() -> None:
    """The checker is not vacuous: overlapping texts, a text on another op's box, a bare text on a wire."""
    svg = ('<svg xmlns="http://www.w3.org/2000/svg">'
           '<text x="10" y="20" font-size="11">chan=64</text>'
           '<text x="50" y="22" font-size="11">h=56</text>'  # starts inside "chan=64" (50.0 px wide)
           '<g class="glyph"><rect x="100" y="0" width="20" height="40"/><text x="110" y="24" '
           'text-anchor="middle" font-size="11">★3</text></g>'
           '<text x="115" y="60" text-anchor="end" font-size="11">Max</text>'
           '<g class="wire" data-axis="w"><line x1="0" y1="57" x2="200" y2="57"/></g>'
           '<g class="glyph"><rect x="130" y="0" width="9" height="9"/></g>'
           '<text x="125" y="8" font-size="11">c</text>'
           '</svg>')
    found = collisions(svg)
    assert "text 'chan=64' on text 'h=56'" in found
    assert "text 'Max' on wire w" in found
    assert "text 'c' on the glyph of another op" in found
    assert not any("'★3'" in f for f in found)  # on its own box, over no wire
    assert width("★3", 11) == pytest.approx(11 * (896 + 636) / 1000)
    assert width("\u4e2d", 10) == UNKNOWN / 100


@pytest.mark.skipif(importlib.util.find_spec("PIL") is None or not (FONTS / "DejaVuSans.ttf").exists(),
                    reason="Pillow or the DejaVu fonts are not installed")
def test_width_table_matches_the_font_files() -> None:
    from PIL import ImageFont
    for bold, name in ((False, "DejaVuSans.ttf"), (True, "DejaVuSans-Bold.ttf")):
        font = ImageFont.truetype(str(FONTS / name), 1000)
        notdef = font.getlength("\U000f0000")
        for c in CHARS:
            assert font.getlength(c) != notdef or c == " ", f"{c!r} is not in {name}"
            assert width(c, 1000, bold) == pytest.approx(font.getlength(c), abs=0.5), (c, name)
        # Kerning is ignored: the sum of advances never falls short of the shaped text.
        for s in ("chan=768", "➤ReLU➤", "★3/2 Max", "batch=1", "AVATAR"):
            assert width(s, 1000, bold) >= font.getlength(s) - 0.5
