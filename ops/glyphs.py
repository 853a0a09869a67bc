"""The diagram glyph of every op, in one table keyed by `Op` (both diagram styles use it).

A `Glyph` says how an op is drawn: its `kind` (the shape family of a neural
circuit diagram: a learned map **L**, a convolution ★, a pooling ★ then Max/𝔼,
an elementwise function ➤f➤, a norm circle, a softmax ◁, a reshape/concat bar,
a + join, ...), the `symbol` written on it, and the `fill` colour of its box in
the graph style. `detail(node)` is the short text of the attributes that matter
to a reader (kernel, stride, the resized axis, the axes acted on).

>>> GLYPHS[Op.CONV].kind, GLYPHS[Op.SOFTMAX].symbol
('conv', '◁')
>>> all(op in GLYPHS for op in Op)
True
"""

from __future__ import annotations

import dataclasses

from archc.ir.graph import Node, Op
from archc.shapes import sizes as S


@dataclasses.dataclass(frozen=True)
class Glyph:
    kind: str    # input | param | linear | conv | conv_t | pool | reduce | norm | func | softmax
    #              | dropout | join | bar | einsum | attention | embed | identity
    symbol: str  # what the circuit style writes on the glyph; the graph style's op mark
    fill: str    # box colour in the graph style


_LEARNED = "#dbe9f7"
_CONV = "#cfe3f4"
_POOL = "#e4eef7"
_FUNC = "#fff2cc"
_NORM = "#e2f0d9"
_SHAPE = "#eeeeee"
_JOIN = "#fbe5d6"
_ATTN = "#e8dcf0"

GLYPHS: dict[Op, Glyph] = {
    Op.INPUT: Glyph("input", "in", "#ffffff"),
    Op.PARAM: Glyph("param", "θ", _LEARNED),
    Op.LINEAR: Glyph("linear", "L", _LEARNED),
    Op.CONV: Glyph("conv", "★", _CONV),
    Op.CONV_T: Glyph("conv_t", "★T", _CONV),
    Op.MAXPOOL: Glyph("pool", "Max", _POOL),
    Op.AVGPOOL: Glyph("pool", "𝔼", _POOL),
    Op.ADAPTIVE_AVGPOOL: Glyph("pool", "𝔼", _POOL),
    Op.ADAPTIVE_MAXPOOL: Glyph("pool", "Max", _POOL),
    Op.MEAN: Glyph("reduce", "𝔼", _POOL),
    Op.SUM: Glyph("reduce", "Σ", _POOL),
    Op.AMAX: Glyph("reduce", "Max", _POOL),
    Op.BATCHNORM: Glyph("norm", "BN", _NORM),
    Op.LAYERNORM: Glyph("norm", "LN", _NORM),
    Op.GROUPNORM: Glyph("norm", "GN", _NORM),
    Op.RMSNORM: Glyph("norm", "RMS", _NORM),
    Op.RELU: Glyph("func", "ReLU", _FUNC),
    Op.RELU6: Glyph("func", "ReLU6", _FUNC),
    Op.GELU: Glyph("func", "GELU", _FUNC),
    Op.SILU: Glyph("func", "SiLU", _FUNC),
    Op.SIGMOID: Glyph("func", "σ", _FUNC),
    Op.TANH: Glyph("func", "tanh", _FUNC),
    Op.HARDSWISH: Glyph("func", "hswish", _FUNC),
    Op.HARDSIGMOID: Glyph("func", "hσ", _FUNC),
    Op.SOFTMAX: Glyph("softmax", "◁", _FUNC),
    Op.DROPOUT: Glyph("dropout", "drop", "#f5f5f5"),
    Op.DROP_PATH: Glyph("dropout", "droppath", "#f5f5f5"),
    Op.IDENTITY: Glyph("identity", "id", "#f5f5f5"),
    Op.ADD: Glyph("join", "+", _JOIN),
    Op.SUB: Glyph("join", "−", _JOIN),
    Op.MUL: Glyph("join", "×", _JOIN),
    Op.SCALE: Glyph("func", "·c", _FUNC),
    Op.EINSUM: Glyph("einsum", "∪", _LEARNED),
    Op.REARRANGE: Glyph("bar", "⇄", _SHAPE),
    Op.RENAME: Glyph("bar", "rename", _SHAPE),
    Op.FLATTEN: Glyph("bar", "flatten", _SHAPE),
    Op.CONCAT: Glyph("bar", "concat", _SHAPE),
    Op.SPLIT: Glyph("bar", "split", _SHAPE),
    Op.GETITEM: Glyph("bar", "[i]", _SHAPE),
    Op.TUPLE: Glyph("bar", "( , )", _SHAPE),
    Op.EXPAND: Glyph("bar", "expand", _SHAPE),
    Op.EMBEDDING: Glyph("embed", "E", _LEARNED),
    Op.PIXEL_SHUFFLE: Glyph("bar", "shuffle", _SHAPE),
    Op.PIXEL_UNSHUFFLE: Glyph("bar", "unshuffle", _SHAPE),
    Op.UPSAMPLE: Glyph("bar", "↑", _SHAPE),
    Op.ATTENTION: Glyph("attention", "Attn", _ATTN),
    Op.MHA: Glyph("attention", "MHA", _ATTN),
}


def _sz(x: object) -> str:
    return S.fmt(x) if not isinstance(x, str) else x  # type: ignore[arg-type]


def _times(xs: tuple) -> str:
    return "×".join(_sz(x) for x in xs)


def detail(node: Node) -> str:
    """The attributes a reader needs, read from the node's attributes (not from its op):

    kernel and stride for windows, the resized axis of a map, the axes acted on.
    """
    a = node.attrs
    parts: list[str] = []
    if a.get("kernel"):
        parts.append(_times(a["kernel"]))
        strides: tuple = a.get("strides") or ()
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
