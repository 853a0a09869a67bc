"""Text widths for diagram layout, from the advance widths of DejaVu Sans (regular and bold).

The circuit style places every label itself, so it needs to know how wide a
text is without a browser. A flat "0.62 em per character" guess is 35% short
for bold glyph texts ("+", "➤GELU➤") and wide symbols (★, =, ×); this table holds
each character's real advance width in DejaVu Sans (the first family the SVGs
ask for, and a wide one, so Helvetica or Arial substitutes come out narrower).
Kerning is ignored, which only overestimates. A character not in the table
counts as 1 em.

The table was measured from DejaVuSans.ttf and DejaVuSans-Bold.ttf (PIL
`ImageFont.getlength` at 1000 px per em); `tests/test_render_text.py` re-measures
it where the fonts are installed.

>>> round(width("chan=64", 11), 1)  # "=" alone is 0.84 em; 7 × 0.62 em would say 47.7
50.0
>>> width("➤GELU➤", 14, bold=True) > 6 * 0.62 * 14
True
"""

from __future__ import annotations

# Every character with a measured width: printable ASCII, then the symbols diagrams use.
CHARS = "".join(chr(c) for c in range(32, 127)) + "·×θ…₊⇄★➤𝔼∪◁Σ−↑λαβγδεσμπτφψωᵀ₀₁₂₃₄₅₆₇₈₉⁰¹²³⁴⁵⁶⁷⁸⁹≥≤→←∗√∞′"

# Advance widths in thousandths of an em, one per character of CHARS.
_REGULAR = (
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636,
    636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632, 575, 775,
    752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390,
    337, 390, 838, 500, 500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612,
    635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838, 318, 838, 612, 1000, 528,
    838, 896, 838, 730, 732, 769, 632, 838, 838, 592, 659, 638, 592, 612, 541, 634, 636, 602, 602, 660,
    660, 837, 385, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401,
    401, 401, 401, 838, 838, 838, 838, 838, 637, 833, 227,
)
_BOLD = (
    348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696, 696,
    696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734, 830, 683, 683, 821,
    837, 372, 372, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812, 774, 1103, 771, 724, 725, 457,
    365, 457, 838, 500, 500, 675, 716, 593, 716, 678, 435, 716, 712, 343, 343, 665, 343, 1042, 712, 687,
    716, 716, 493, 595, 478, 712, 652, 924, 645, 652, 582, 712, 365, 712, 838, 380, 838, 687, 1000, 528,
    838, 896, 838, 686, 812, 769, 683, 838, 838, 633, 687, 716, 681, 687, 557, 779, 736, 791, 638, 782,
    794, 869, 430, 438, 438, 438, 438, 438, 438, 438, 438, 438, 438, 438, 438, 438, 438, 438, 438, 438,
    438, 438, 438, 838, 838, 838, 838, 838, 667, 833, 264,
)

_WIDTHS = {False: dict(zip(CHARS, _REGULAR)), True: dict(zip(CHARS, _BOLD))}
UNKNOWN = 1000  # a character outside the table: 1 em


def width(text: str, size: float, bold: bool = False) -> float:
    """The advance width of `text` at font size `size` (px), in px."""
    table = _WIDTHS[bold]
    return sum(table.get(c, UNKNOWN) for c in text) * size / 1000
