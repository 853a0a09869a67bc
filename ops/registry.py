"""The op registry: one `OpDef` per primitive operation, holding every facet of it.

An op is defined once, in one module of this package, by `define(OpDef(...))`:

  name, key   what .arch calls it (`conv_transpose`) and its attribute here (`Op.CONV_T`)
  attrs       a frozen dataclass of its typed attributes; the fields made with `arg()` are
              its .arch arguments (binding reads them), those made with `derived()` are
              filled in by the shape rule (kernel, strides, ...)
  traits      what kind of op it is (`Trait`), for passes, planners and reports
  shape       its shape rule      cost    its cost rule          (facets.py says their types)
  torch       its PyTorch lowering         glyph   its diagram glyph
  triton      the slot for its Triton lowering
  saves       what autograd keeps of it for backward in training (None: derived from its
              traits, for views and sources only; `saved_rule`)
  doc         the one line docs/language.md shows

Graph nodes carry their `OpDef` (`node.op`), so the elaborator, the cost report,
the code generators and the diagrams read facets off the node; nothing else in
archc keeps a table keyed by op. `ops/__init__.py` imports every module of this
package, so a new module that calls `define` is a new op: the recipe is in
ARCHITECTURE.md.

>>> import archc.ops
>>> Op.CONV.name, Op.CONV.glyph.kind, Trait.CONTRACTION in Op.CONV.traits
('conv', 'conv', True)
>>> [p.name for p in Op.LINEAR.params]
['map', 'bias']
>>> Op.LINEAR.attrs(map=("chan", 8, None)).bias
True
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator
from typing import Any, Generic, Protocol, TypeVar

from archc.ops.facets import CostRule, Glyph, SaveCtx, Saved, SavesRule, ShapeRule, TorchLowering, TritonLowering
from archc.shapes.types import TensorType, Type

FLOAT = frozenset({"float"})
REAL = frozenset({"float", "int"})
NUMBER = frozenset({"float", "int", "complex"})
FLOATING = frozenset({"float", "complex"})


class Trait(enum.Enum):
    SOURCE = "source"                # makes a value from nothing: an input or a learned tensor
    POINTWISE = "pointwise"          # each output element from the same-position input elements
    REDUCTION = "reduction"          # removes or summarises axes
    CONTRACTION = "contraction"      # a sum of products over an axis (matmul, conv, einsum)
    WINDOW = "window"                # slides a kernel window over spatial axes
    NORMALIZATION = "normalization"  # statistics over axes, then scale and shift
    MOVEMENT = "movement"            # moves or relabels data without arithmetic
    VIEW = "view"                    # no memory traffic at inference (a relabelling or identity)
    JOIN = "join"                    # combines several tensors elementwise
    RANDOM = "random"                # random in training mode (dropout)
    PARAMETERS = "parameters"        # may own state_dict entries
    ACTIVATION = "activation"        # an elementwise nonlinearity
    ATTENTION = "attention"          # softmax(q·k)·v
    SPECTRAL = "spectral"            # a Fourier transform over axes (fft, rfft and their inverses)


REQUIRED: Any = dataclasses.MISSING


def arg(kind: str, default: Any = REQUIRED, choices: tuple[str, ...] = ()) -> Any:
    """An .arch argument of an op. Kinds (how binding reads the value):

    map    `chan -> 64` / `chan -> hid = 4*d`: (axis, new size, new name or None)
    axis   one axis name;  axes: one name or a list of names
    size   an integer size;  sizes: one size or one per spatial axis
    ints   one whole number of either sign, or a list of them (shifts, offsets)
    pad    int | [p per axis] | [[before, after] per axis] | "same" | "valid"
    bool, float, str, number (int or float), renames (`a -> b` pairs),
    sizes_kw (any keyword = a size: the axis sizes of a rearrange pattern)
    """
    meta = {"kind": kind, "choices": choices}
    if default is REQUIRED:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def derived(default: Any = None) -> Any:
    """An attribute the shape rule fills in (resolved kernel, strides, ...); not an argument."""
    return dataclasses.field(default=default, metadata={"derived": True})


@dataclasses.dataclass(frozen=True)
class ParamDef:
    """One .arch argument of an op, as binding sees it."""

    name: str
    kind: str
    default: Any = REQUIRED
    choices: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Attrs:
    """Base of every op's attributes. Subclasses are frozen, keyword-only dataclasses.

    `items()` gives the arguments in declared order (what the IR printer shows);
    `get`/`[]` read a field by name, for the few readers that are generic over ops
    (the printer, diagram details).
    """

    @classmethod
    def params(cls) -> tuple[ParamDef, ...]:
        return _params(cls)

    def items(self) -> Iterator[tuple[str, Any]]:
        for p in _params(type(self)):
            yield p.name, getattr(self, p.name)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name, default)

    def __getitem__(self, name: str) -> Any:
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None

    def replace(self, **changes: Any) -> Any:
        return dataclasses.replace(self, **changes)


# Memo tables keyed by class (not functools.cache: mypy does not see a class object whose
# instances define __hash__ as Hashable).
_PARAMS: dict[type[Attrs], tuple[ParamDef, ...]] = {}
_BY_PARAM_NAME: dict[type[Attrs], dict[str, ParamDef]] = {}


def _params(cls: type[Attrs]) -> tuple[ParamDef, ...]:
    """The arguments of an attributes class, in declared order (computed once per class: binding
    reads them for every call)."""
    if cls not in _PARAMS:
        _PARAMS[cls] = tuple(ParamDef(f.name, f.metadata["kind"], f.default, f.metadata["choices"])
                             for f in dataclasses.fields(cls) if "kind" in f.metadata)
    return _PARAMS[cls]


def _by_name(cls: type[Attrs]) -> dict[str, ParamDef]:
    if cls not in _BY_PARAM_NAME:
        _BY_PARAM_NAME[cls] = {p.name: p for p in _params(cls)}
    return _BY_PARAM_NAME[cls]


@dataclasses.dataclass(frozen=True, kw_only=True)
class WindowAttrs(Attrs):
    """What a windowed op (convolution, pooling) resolves per spatial axis: the axes it slides over,
    and its kernel, strides, dilations and (before, after) padding; filled in by the shape rule."""

    spatial: tuple[str, ...] = derived(())
    kernel: tuple[Any, ...] = derived(())
    strides: tuple[Any, ...] = derived(())
    dilations: tuple[Any, ...] = derived(())
    pads: tuple[tuple[Any, Any], ...] = derived(())


@dataclasses.dataclass(frozen=True, kw_only=True)
class NoAttrs(Attrs):
    """The attributes of an op that takes no arguments (relu, add, ...)."""


A = TypeVar("A", bound=Attrs)


@dataclasses.dataclass(frozen=True, eq=False)
class OpDef(Generic[A]):
    """Everything archc knows about one primitive op (see the module docstring)."""

    key: str
    name: str
    attrs: type[A]
    tensors: int | tuple[int, int]  # exact count, or (min, max) for variadic
    traits: frozenset[Trait]
    shape: ShapeRule[A] | None  # None only where the elaborator types the node itself (input, param, ...)
    cost: CostRule[A]
    torch: TorchLowering[A]
    glyph: Glyph
    doc: str
    triton: TritonLowering | None = None
    saves: SavesRule[A] | None = None
    callable: bool = True  # can be called from .arch (not input, param, getitem, tuple)
    # The dtype families its tensor inputs may have ("float", "complex", "int", "bool"); None: any.
    # Checked before the shape rule, so `softmax` of i64 ids is an error at the call, not in torch.
    dtypes: frozenset[str] | None = None

    @property
    def value(self) -> str:
        return self.name

    @property
    def params(self) -> tuple[ParamDef, ...]:
        return _params(self.attrs)

    def param(self, name: str) -> ParamDef | None:
        return _by_name(self.attrs).get(name)

    def has(self, trait: Trait) -> bool:
        return trait in self.traits

    @property
    def saved_rule(self) -> SavesRule[A] | None:
        """Its saves rule: the one it defines, else the one its traits imply (a view or a source keeps
        nothing; a view shares its input's storage); None where neither says."""
        if self.saves is not None:
            return self.saves
        if Trait.SOURCE in self.traits:
            return _keeps_nothing
        if Trait.VIEW in self.traits and Trait.RANDOM not in self.traits:
            return _is_a_view
        return None

    def __repr__(self) -> str:
        return f"Op.{self.key}"


def _keeps_nothing(a: Any, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    return Saved()


def _is_a_view(a: Any, ins: list[TensorType], out: Type, ctx: SaveCtx) -> Saved:
    """Its input's storage, laid out as it (one piece of a split, `getitem`)."""
    if not ins:
        return Saved()
    known = ctx.layouts[0]
    if known is None or ctx.contiguous[0]:
        return Saved(view=0, contiguous=ctx.contiguous[0])
    return Saved(view=0, contiguous=False, order=known[0], loose=known[1], packed=known[2])


_BY_KEY: dict[str, OpDef[Any]] = {}
BY_NAME: dict[str, OpDef[Any]] = {}
"""Every op that .arch can call, by the name it is called by."""


class _Definition(Protocol):
    """What `define` is given. Not `OpDef[A]`: mypy would infer the `OpDef(...)` written inside
    the call from the call's generic context and let a rule typed for other attributes through;
    given this plain context, it infers A from the attributes and every rule together."""

    @property
    def key(self) -> str: ...


def define(op: _Definition) -> OpDef[Any]:
    """Register an op. Names and keys are unique."""
    if not isinstance(op, OpDef):
        raise TypeError(f"define() registers an OpDef, not {type(op).__name__}")
    if op.key in _BY_KEY or op.name in BY_NAME:
        raise ValueError(f"op {op.name} ({op.key}) is defined twice")
    _BY_KEY[op.key] = op
    if op.callable:
        BY_NAME[op.name] = op
    return op


class _OpNamespace(type):
    def __getattr__(cls, key: str) -> OpDef[Any]:
        try:
            return _BY_KEY[key]
        except KeyError:
            raise AttributeError(f"no op {key}") from None

    def __iter__(cls) -> Iterator[OpDef[Any]]:
        return iter(list(_BY_KEY.values()))

    def __len__(cls) -> int:
        return len(_BY_KEY)


class Op(metaclass=_OpNamespace):
    """Every op by its key (`Op.CONV`, `Op.CONV_T`, ...); iterating gives every `OpDef`."""
