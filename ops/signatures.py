"""The primitive operations a .arch file can call, and how their arguments bind.

One `OpSig` per callable name: which `Op` it builds, how many tensor inputs it
takes, and its other parameters with their kinds and defaults. `dsl.elaborate`
binds a call's arguments against this table; the shape, cost, lowering and
glyph rules live in tables of their own keyed by `Op` (shapes/rules.py,
shapes/costs.py, codegen/).

Parameter kinds:
  map    `chan -> 64` / `chan -> hid = 4*d`: an axis, its new size, an optional new name
  axis   one axis name;  axes: one name or a list of names
  size   an integer size;  sizes: one size or one per spatial axis
  pad    int | [p per axis] | [[before, after] per axis] | "same" | "valid"
  bool, float, str, number (int or float), renames (`a -> b` pairs),
  sizes_kw (any keyword = a size: the axis sizes of a rearrange pattern)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from archc.ir.graph import Op

REQUIRED = object()


@dataclasses.dataclass(frozen=True)
class ParamDef:
    name: str
    kind: str
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class OpSig:
    name: str
    op: Op
    tensors: int | tuple[int, int]  # exact count, or (min, max) for variadic
    params: tuple[ParamDef, ...] = ()
    doc: str = ""

    def param(self, name: str) -> ParamDef | None:
        for p in self.params:
            if p.name == name:
                return p
        return None


def P(name: str, kind: str, default: Any = REQUIRED, choices: tuple[str, ...] = ()) -> ParamDef:  # noqa: N802
    return ParamDef(name, kind, default, choices)


_conv_common = (
    P("k", "sizes"), P("stride", "sizes", 1), P("pad", "pad", 0), P("dilation", "sizes", 1),
    P("groups", "size", 1), P("bias", "bool", True), P("over", "axes", None),
)
_norm_eps = P("eps", "float", 1e-5)
_ACT_DOC = "elementwise; acts on every axis"

SIGNATURES: list[OpSig] = [
    OpSig("linear", Op.LINEAR, 1, (P("map", "map"), P("bias", "bool", True)),
          "a learned linear map on one axis; broadcasts over the rest"),
    OpSig("conv", Op.CONV, 1, (P("map", "map"),) + _conv_common,
          "convolution over the spatial axes `over` (default: the axes after the channel axis)"),
    OpSig("conv_transpose", Op.CONV_T, 1,
          (P("map", "map"),) + _conv_common + (P("output_padding", "sizes", 0),),
          "transposed convolution"),
    OpSig("maxpool", Op.MAXPOOL, 1,
          (P("k", "sizes"), P("stride", "sizes", None), P("pad", "pad", 0), P("dilation", "sizes", 1),
           P("ceil", "bool", False), P("over", "axes", None)),
          "max pooling over `over` (default: every axis after the first two)"),
    OpSig("avgpool", Op.AVGPOOL, 1,
          (P("k", "sizes"), P("stride", "sizes", None), P("pad", "pad", 0), P("ceil", "bool", False),
           P("count_include_pad", "bool", True), P("over", "axes", None)),
          "average pooling"),
    OpSig("adaptive_avgpool", Op.ADAPTIVE_AVGPOOL, 1, (P("out", "sizes"), P("over", "axes", None)),
          "adaptive average pooling to a fixed output size"),
    OpSig("adaptive_maxpool", Op.ADAPTIVE_MAXPOOL, 1, (P("out", "sizes"), P("over", "axes", None)),
          "adaptive max pooling to a fixed output size"),
    OpSig("mean", Op.MEAN, 1, (P("over", "axes"), P("keep", "bool", False)), "mean over axes"),
    OpSig("sum", Op.SUM, 1, (P("over", "axes"), P("keep", "bool", False)), "sum over axes"),
    OpSig("amax", Op.AMAX, 1, (P("over", "axes"), P("keep", "bool", False)), "maximum over axes"),
    OpSig("batchnorm", Op.BATCHNORM, 1,
          (P("axis", "axis", None), _norm_eps, P("momentum", "float", 0.1), P("affine", "bool", True),
           P("track_running_stats", "bool", True)),
          "batch normalisation of one channel axis (default: the second axis)"),
    OpSig("layernorm", Op.LAYERNORM, 1,
          (P("over", "axes", None), _norm_eps, P("affine", "bool", True), P("bias", "bool", True)),
          "layer normalisation over `over` (default: the last axis)"),
    OpSig("groupnorm", Op.GROUPNORM, 1,
          (P("groups", "size"), P("axis", "axis", None), _norm_eps, P("affine", "bool", True)),
          "group normalisation of a channel axis (default: the second axis)"),
    OpSig("rmsnorm", Op.RMSNORM, 1,
          (P("over", "axes", None), P("eps", "float", None), P("affine", "bool", True)),
          "RMS normalisation over `over` (default: the last axis)"),
    OpSig("relu", Op.RELU, 1, (), _ACT_DOC),
    OpSig("relu6", Op.RELU6, 1, (), _ACT_DOC),
    OpSig("gelu", Op.GELU, 1, (P("approximate", "str", "none", ("none", "tanh")),), _ACT_DOC),
    OpSig("silu", Op.SILU, 1, (), _ACT_DOC),
    OpSig("sigmoid", Op.SIGMOID, 1, (), _ACT_DOC),
    OpSig("tanh", Op.TANH, 1, (), _ACT_DOC),
    OpSig("hardswish", Op.HARDSWISH, 1, (), _ACT_DOC),
    OpSig("hardsigmoid", Op.HARDSIGMOID, 1, (), _ACT_DOC),
    OpSig("softmax", Op.SOFTMAX, 1, (P("axis", "axis"),), "softmax along one axis"),
    OpSig("dropout", Op.DROPOUT, 1, (P("p", "float", 0.5),), "dropout (identity at inference)"),
    OpSig("drop_path", Op.DROP_PATH, 1, (P("p", "float", 0.0), P("mode", "str", "row", ("row", "batch"))),
          "stochastic depth (identity at inference)"),
    OpSig("identity", Op.IDENTITY, 1, (), "passes its input through"),
    OpSig("add", Op.ADD, 2, (), "elementwise sum; axes broadcast by name"),
    OpSig("sub", Op.SUB, 2, (), "elementwise difference"),
    OpSig("mul", Op.MUL, 2, (), "elementwise product"),
    OpSig("scale", Op.SCALE, 1, (P("factor", "number"),), "multiply by a constant"),
    OpSig("einsum", Op.EINSUM, (1, 8), (P("spec", "str", None), P("over", "axes", None)),
          "contraction over named axes: a spec 'a b, b c -> a c' or over=[b]"),
    OpSig("rearrange", Op.REARRANGE, 1, (P("pattern", "str"), P("sizes", "sizes_kw", None)),
          "einops-style pattern over axis names: 'batch chan h w -> batch tok=(h w) chan'"),
    OpSig("rename", Op.RENAME, 1, (P("names", "renames"),), "renames axes: rename(x, tok -> seq)"),
    OpSig("flatten", Op.FLATTEN, 1, (P("over", "axes"), P("name", "axis", None)),
          "merges consecutive axes into one"),
    OpSig("concat", Op.CONCAT, (1, 64), (P("axis", "axis"),), "joins tensors along one axis"),
    OpSig("split", Op.SPLIT, 1,
          (P("axis", "axis"), P("parts", "size", None), P("sizes", "sizes", None)),
          "splits along one axis into `parts` equal pieces or pieces of `sizes`"),
    OpSig("expand", Op.EXPAND, 1, (P("sizes", "sizes_kw"),),
          "broadcasts size-1 axes: expand(t, batch = n)"),
    OpSig("embedding", Op.EMBEDDING, 1,
          (P("num", "size"), P("dim", "size"), P("axis", "axis", "chan")),
          "looks up integer ids; adds an axis of size `dim`"),
    OpSig("pixel_shuffle", Op.PIXEL_SHUFFLE, 1, (P("r", "size"),), "[.., C·r², H, W] -> [.., C, H·r, W·r]"),
    OpSig("pixel_unshuffle", Op.PIXEL_UNSHUFFLE, 1, (P("r", "size"),),
          "[.., C, H·r, W·r] -> [.., C·r², H, W]"),
    OpSig("upsample", Op.UPSAMPLE, 1,
          (P("scale", "sizes", None), P("size", "sizes", None),
           P("mode", "str", "nearest", ("nearest", "bilinear")), P("align_corners", "bool", False),
           P("over", "axes", None)),
          "nearest or bilinear resampling of the axes after the first two"),
    OpSig("attention", Op.ATTENTION, 3,
          (P("seq", "axis"), P("chan", "axis"), P("causal", "bool", False), P("scale", "float", None)),
          "scaled dot-product attention softmax(q·kᵀ·scale)·v over named axes"),
    OpSig("multihead_attention", Op.MHA, (1, 3),
          (P("heads", "size"), P("seq", "axis", None), P("chan", "axis", None), P("bias", "bool", True),
           P("dropout", "float", 0.0)),
          "nn.MultiheadAttention (packed in_proj_weight), self-attention by default"),
]

OPS: dict[str, OpSig] = {s.name: s for s in SIGNATURES}
