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


@dataclasses.dataclass(frozen=True)
class DType:
    """An element type: its .arch name, its size, its family and PyTorch's name for it."""

    name: str
    bytes: int
    kind: str  # "float" | "complex" | "int" | "bool"
    torch: str

    @property
    def is_float(self) -> bool:
        return self.kind == "float"


DTYPES: dict[str, DType] = {d.name: d for d in (
    DType("f32", 4, "float", "torch.float32"), DType("f16", 2, "float", "torch.float16"),
    DType("bf16", 2, "float", "torch.bfloat16"), DType("f64", 8, "float", "torch.float64"),
    DType("c64", 8, "complex", "torch.complex64"), DType("c128", 16, "complex", "torch.complex128"),
    DType("i64", 8, "int", "torch.int64"), DType("i32", 4, "int", "torch.int32"),
    DType("i16", 2, "int", "torch.int16"), DType("i8", 1, "int", "torch.int8"),
    DType("u8", 1, "int", "torch.uint8"), DType("bool", 1, "bool", "torch.bool"),
)}
"""Every dtype .arch knows, by name (`f32`, `bf16`, `c64`, `i64`, `bool`, ...)."""
DTYPE_BYTES = {name: d.bytes for name, d in DTYPES.items()}


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
    buffer: bool = False  # not learned: a running statistic, an index table, a mask
    dtype: str = "f32"
    persistent: bool = True  # in the state_dict (a non-persistent buffer is not, as in PyTorch)

    def numel(self) -> Size:
        return sizes.prod(self.shape)

    def nbytes(self) -> Size:
        return sizes.mul(self.numel(), DTYPE_BYTES[self.dtype])
