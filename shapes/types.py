"""Tensor types: ordered named axes with sizes, a dtype, and tuples of them.

A `TensorType` is what flows along an edge of the typed graph: its axes in
order, each with a name and a size (a Python int, or a sympy expression over
the free sizes), and an element dtype. `ParamSpec` is one state_dict entry an
op owns.

>>> t = TensorType((Axis("batch", 1), Axis("chan", 64)))
>>> str(t), t.size("chan")
('[batch=1, chan=64]', 64)
"""

from __future__ import annotations

import dataclasses

from archc.shapes import sizes
from archc.shapes.sizes import Size

DTYPE_BYTES = {"f32": 4, "f16": 2, "bf16": 2, "f64": 8, "i64": 8, "i32": 4, "i8": 1,
               "u8": 1, "bool": 1}


@dataclasses.dataclass(frozen=True)
class Axis:
    name: str
    size: Size

    def __str__(self) -> str:
        return f"{self.name}={sizes.fmt(self.size)}"


@dataclasses.dataclass(frozen=True)
class TensorType:
    axes: tuple[Axis, ...]
    dtype: str = "f32"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    @property
    def shape(self) -> tuple[Size, ...]:
        return tuple(a.size for a in self.axes)

    def has(self, name: str) -> bool:
        return any(a.name == name for a in self.axes)

    def index(self, name: str) -> int:
        for i, a in enumerate(self.axes):
            if a.name == name:
                return i
        raise KeyError(name)

    def size(self, name: str) -> Size:
        return self.axes[self.index(name)].size

    def numel(self) -> Size:
        return sizes.prod(self.shape)

    def nbytes(self) -> Size:
        return sizes.mul(self.numel(), DTYPE_BYTES[self.dtype])

    def with_size(self, name: str, size: Size, rename: str | None = None) -> TensorType:
        axes = tuple(Axis(rename or a.name, size) if a.name == name else a for a in self.axes)
        return dataclasses.replace(self, axes=axes)

    def __str__(self) -> str:
        inner = ", ".join(str(a) for a in self.axes)
        return f"{self.dtype}[{inner}]" if self.dtype != "f32" else f"[{inner}]"


@dataclasses.dataclass(frozen=True)
class TupleType:
    items: tuple[TensorType, ...]

    def __str__(self) -> str:
        return "(" + ", ".join(str(t) for t in self.items) + ")"

    def nbytes(self) -> Size:
        return sizes.total(t.nbytes() for t in self.items)


Type = TensorType | TupleType


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One entry of the state_dict that a node owns, relative to its module path."""

    name: str  # "weight", "bias", "running_mean", "in_proj_weight", ...
    shape: tuple[Size, ...]
    buffer: bool = False

    def numel(self) -> Size:
        return sizes.prod(self.shape)
