"""What diagram glyphs share: the colour families, and the detail text of an op's attributes.

Each op's `Glyph` lives with its definition (`OpDef.glyph`); it says how the op
is drawn: its `kind` (the shape family of a neural circuit diagram: a learned
map **L**, a convolution ★, a pooling ★ then Max/𝔼,
an elementwise function ➤f➤, a norm circle, a softmax ◁, a reshape/concat bar,
a + join, ...), the `symbol` written on it, and the `fill` colour of its box in
the graph style. `detail(node)` is the short text of the attributes that matter
to a reader (kernel, stride, the resized axis, the axes acted on).

>>> import archc.ops
>>> GLYPHS[Op.CONV].kind, GLYPHS[Op.SOFTMAX].symbol
('conv', '◁')
>>> all(op in GLYPHS for op in Op)
True
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from archc.ops.facets import Glyph
from archc.ops.registry import Op, OpDef
from archc.shapes import sizes as S
from archc.shapes.sizes import Size

LEARNED = "#dbe9f7"
CONV = "#cfe3f4"
POOL = "#e4eef7"
FUNC = "#fff2cc"
NORM = "#e2f0d9"
SHAPE = "#eeeeee"
JOIN = "#fbe5d6"
ATTN = "#e8dcf0"

class _Glyphs(Mapping[OpDef[Any], Glyph]):
    """Every op's glyph, read off its definition (`GLYPHS[node.op]` is `node.op.glyph`)."""

    def __getitem__(self, op: OpDef[Any]) -> Glyph:
        return op.glyph

    def __iter__(self) -> Iterator[OpDef[Any]]:
        return iter(Op)

    def __len__(self) -> int:
        return len(Op)


GLYPHS = _Glyphs()


def _sz(x: object) -> str:
    return S.fmt(x) if not isinstance(x, str) else x


def _times(xs: tuple[object, ...]) -> str:
    return "×".join(_sz(x) for x in xs)


class _HasAttrs(Protocol):
    attrs: Any


def detail(node: _HasAttrs) -> str:
    """The attributes a reader needs, read from the node's attributes (not from its op):

    kernel and stride for windows, the resized axis of a map, the axes acted on.
    """
    a = node.attrs
    parts: list[str] = []
    if a.get("kernel"):
        parts.append(_times(a["kernel"]))
        strides: tuple[Size, ...] = a.get("strides") or ()
        if any(s != 1 for s in strides):
            parts.append("/" + _times(strides) if len(set(strides)) > 1 else f"/{_sz(strides[0])}")
        if a.get("groups", 1) != 1:
            parts.append(f"g={_sz(a['groups'])}")
    if a.get("map"):
        axis, size, rename = a["map"]
        parts.append(f"{axis}→{rename + '=' if rename else ''}{_sz(size)}")
    for key in ("over", "axis"):
        v = a.get(key)
        if v:
            parts.append("over " + (",".join(v) if isinstance(v, (list, tuple)) else str(v)))
    if a.get("pattern"):
        parts.append(str(a["pattern"]))
    if a.get("spec"):
        parts.append(str(a["spec"]))
    if a.get("heads"):
        parts.append(f"heads={_sz(a['heads'])}")
    if a.get("scale_factor"):
        parts.append(f"×{_sz(a['scale_factor'])}")
    return " ".join(parts)
