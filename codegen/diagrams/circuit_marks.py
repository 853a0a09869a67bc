"""What a circuit diagram draws, as plain data: the marks the layout places and `circuit_svg` writes.

A `Layout` holds its marks in drawing order (later marks paint over earlier ones). A mark says where
something goes and what it is (a wire, a copy dot, a norm's circle), in pixels, never how it looks in
SVG: strokes, radii and dash patterns are the emitter's. Marks that open a group (`GlyphOpen`,
`CostOpen`, `ContractOpen`) are closed by a later `Close`.

>>> t = Text(Box(10.0, 4.0, 30.5, 11, "relu", "glyph"), x=25.25)
>>> t.box.x + t.box.w
40.5
"""

from __future__ import annotations

import dataclasses

FS = 11  # the font size of labels (px)


@dataclasses.dataclass(frozen=True)
class Box:
    """A drawn text: its top-left corner, width and height (measured), and what it says."""

    x: float
    y: float
    w: float
    h: float
    text: str
    kind: str  # "wire" | "glyph" | "title" | "run" | "legend" | "cost" | "window" | "define" | "carry"

    def hits(self, o: Box) -> bool:
        return self.x < o.x + o.w and o.x < self.x + self.w and self.y < o.y + o.h and o.y < self.y + self.h


@dataclasses.dataclass(frozen=True)
class Wire:
    """An axis of a value drawn as a wire (a record for tests and tools, not a mark)."""

    value: str   # the item that produces it
    axis: str
    label: str   # "name=size"
    y: float
    shown: bool = True  # whether the label is drawn (see `circuit_layout.Builder.shown`)


@dataclasses.dataclass(frozen=True)
class Text:
    """A text whose box is `box`; `x` is where it is anchored (its left, or its centre with "middle")."""

    box: Box
    x: float
    anchor: str = "start"
    size: float = FS
    weight: str = "normal"
    fill: str = "#222"


@dataclasses.dataclass(frozen=True)
class Swatch:
    """One colour of the annotation key."""

    x: float
    y: float
    h: float
    fill: str


@dataclasses.dataclass(frozen=True)
class Region:
    """The tinted background of a block / sequence / list region."""

    x: float
    y: float
    w: float
    h: float
    tint: str
    path: str


@dataclasses.dataclass(frozen=True)
class Paren:
    """One large parenthesis of a run: from (x, top) through the control point (xc, mid) to (x, bottom)."""

    x: float
    xc: float
    top: float
    mid: float
    bottom: float


@dataclasses.dataclass(frozen=True)
class Box3D:
    """A 3-D box: front face (x, y, w, h) with a rim `depth` deep above and to its right."""

    x: float
    y: float
    w: float
    h: float
    depth: int
    fill: str


@dataclasses.dataclass(frozen=True)
class DefineBox:
    """`--define`: the block's 3-D box (its texts are separate marks)."""

    block: str
    path: str
    box: Box3D


@dataclasses.dataclass(frozen=True)
class Link:
    """An input wire curving from (x0, y0) into its column at (x1, y1), bending at xm."""

    x0: float
    y0: float
    xm: float
    x1: float
    y1: float


@dataclasses.dataclass(frozen=True)
class Dot:
    """A dot on a wire: "copy" (a value copied to be carried), "join" (a + join's inputs), "diag" (wires of
    several inputs meeting on one axis)."""

    kind: str
    x: float
    y: float


@dataclasses.dataclass(frozen=True)
class Separator:
    """The dashed line between the tensors of a tuple."""

    x1: float
    x2: float
    y: float


@dataclasses.dataclass(frozen=True)
class Carry:
    """A carried copy of a wire: a curve from (x0, y0) down or up to (x1, y1), then straight on to x2."""

    x0: float
    xm: float
    x1: float
    y0: float
    y1: float
    x2: float
    arrow: bool


@dataclasses.dataclass(frozen=True)
class WireMark:
    """The wire of one axis of a value, from x1 to x2 at y, and its carried copy if any."""

    value: str
    axis: str
    x1: float
    x2: float
    y: float
    arrow: bool
    carry: Carry | None


@dataclasses.dataclass(frozen=True)
class GlyphOpen:
    """Opens the group of an item's glyph; `tip` is its tooltip."""

    item: str
    op: str
    tip: str


@dataclasses.dataclass(frozen=True)
class CostOpen:
    """Opens the group of an --annotate figure, with its background (x, y, w, h)."""

    item: str
    value: int
    x: float
    y: float
    w: float
    h: float
    fill: str


@dataclasses.dataclass(frozen=True)
class ContractOpen:
    """Opens the group of an expanded convolution's **L**, with its white background at (x, y)."""

    x: float
    y: float


@dataclasses.dataclass(frozen=True)
class Close:
    """Closes the last group opened."""


@dataclasses.dataclass(frozen=True)
class NormCircle:
    x: float
    y: float
    fill: str


@dataclasses.dataclass(frozen=True)
class Triangle:
    """A softmax ◁ centred at (x, y)."""

    x: float
    y: float
    fill: str


@dataclasses.dataclass(frozen=True)
class Bar:
    """A concat / shape bar at x from the wire at y0 to the wire at y1."""

    x: float
    y0: float
    y1: float


@dataclasses.dataclass(frozen=True)
class LinearBox:
    """The background of one **L** of a linear map, over the wire at y."""

    x: float
    y: float
    w: float
    fill: str


@dataclasses.dataclass(frozen=True)
class OpBox:
    """The box of an op; `heavy` for convolutions."""

    x: float
    y: float
    w: float
    h: float
    fill: str
    heavy: bool


@dataclasses.dataclass(frozen=True)
class Cup:
    """Two wires ending at x joined by a cup bulging `bulge` to the right: their axes are contracted."""

    x: float
    y1: float
    y2: float
    bulge: float


@dataclasses.dataclass(frozen=True)
class EndBar:
    """A wire summed over in one operand only ends at this bar at (x, y)."""

    x: float
    y: float


@dataclasses.dataclass(frozen=True)
class Shade:
    """The --annotate shade behind an einsum's contractions."""

    x: float
    y: float
    w: float
    h: float
    fill: str


@dataclasses.dataclass(frozen=True)
class AttentionBox:
    x: float
    y: float
    w: float
    h: float
    fill: str


@dataclasses.dataclass(frozen=True)
class Line:
    """A plain wire inside a glyph (attention's sequence wires), from x1 to x2 at y."""

    x1: float
    x2: float
    y: float


@dataclasses.dataclass(frozen=True)
class ConvSplit:
    """An expanded convolution's trapezoid ★, corners clockwise from the top left."""

    points: tuple[tuple[float, float], ...]


@dataclasses.dataclass(frozen=True)
class Window:
    """A kernel-window wire: from (x0, y0) straight to xh, then curving (controls c1, c2) into (x1, y1)."""

    x0: float
    y0: float
    xh: float
    c1: float
    c2: float
    x1: float
    y1: float


Mark = (Text | Swatch | Region | Paren | DefineBox | Link | Dot | Separator | WireMark | GlyphOpen | CostOpen
        | ContractOpen | Close | NormCircle | Triangle | Bar | LinearBox | Box3D | OpBox | Cup | EndBar | Shade
        | AttentionBox | Line | ConvSplit | Window)
