"""The ops the elaborator makes itself, not called from .arch: graph inputs, learned tensors, tuple items.

Their types come from declarations (`in x: [...]`, `param scale: [...]`) or
from the tuple they index, so they have no shape rule.

>>> import archc.ops
>>> Op.PARAM.callable, Op.BUFFER.attrs(name="idx").persistent, Op.GETITEM.attrs(index=1).index
(False, True, 1)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from archc.ops import costs as C
from archc.ops import glyphs as G
from archc.ops.facets import Expr, Glyph, TorchLowering
from archc.ops.registry import Attrs, Op, OpDef, Trait, arg, define
from archc.shapes.types import TensorType, Type


@dataclasses.dataclass(frozen=True, kw_only=True)
class InputAttrs(Attrs):
    name: str = arg("str")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParamAttrs(Attrs):
    name: str = arg("str")
    init: Any = arg("number", "zeros")  # a number to fill with, or "zeros"


@dataclasses.dataclass(frozen=True, kw_only=True)
class BufferAttrs(Attrs):
    name: str = arg("str")
    init: Any = arg("number", "zeros")
    persistent: bool = arg("bool", True)  # in the state_dict, as PyTorch's register_buffer(persistent=...)


@dataclasses.dataclass(frozen=True, kw_only=True)
class GetItemAttrs(Attrs):
    index: int = arg("size")


define(OpDef(
    key="INPUT", name="input", attrs=InputAttrs, tensors=0, traits=frozenset({Trait.SOURCE, Trait.VIEW}),
    shape=None, cost=C.free, torch=TorchLowering(), glyph=Glyph("input", "in", "#ffffff"),
    doc="an input of the entry block (`in x: [...]`)", callable=False))

define(OpDef(
    key="PARAM", name="param", attrs=ParamAttrs, tensors=0,
    traits=frozenset({Trait.SOURCE, Trait.VIEW, Trait.PARAMETERS}),
    shape=None, cost=C.free, torch=TorchLowering(), glyph=Glyph("param", "θ", G.LEARNED),
    doc="a learned tensor (`param cls: [chan = 768]`): class token, position embedding, layer scale",
    callable=False))

define(OpDef(
    key="BUFFER", name="buffer", attrs=BufferAttrs, tensors=0,
    traits=frozenset({Trait.SOURCE, Trait.VIEW, Trait.PARAMETERS}),
    shape=None, cost=C.free, torch=TorchLowering(), glyph=Glyph("param", "β", G.SHAPE),
    doc="state that is not learned (`buffer index: i64[n = 49] = 0`): in the state_dict unless "
        "`persistent = false`", callable=False))


def _getitem_forward(a: GetItemAttrs, ins: list[TensorType], out: Type, ctx: Any, args: list[Expr]) -> Expr:
    return Expr(f"{args[0].atom()}[{a.index}]")


define(OpDef(
    key="GETITEM", name="getitem", attrs=GetItemAttrs, tensors=1, traits=frozenset({Trait.MOVEMENT, Trait.VIEW}),
    shape=None, cost=C.free, torch=TorchLowering(forward=_getitem_forward), glyph=Glyph("bar", "[i]", G.SHAPE),
    doc="one tensor of a tuple (`a, b = split(...)`)", callable=False))

__all__ = ["Op"]
