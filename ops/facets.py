"""The types of an op's facets: what a shape rule, a cost rule, a lowering and a glyph are.

Nothing here is about one op in particular; `registry.OpDef` holds one value of
each of these per op, and the op modules of this package fill them in.

  shape rule   (ctx, input types, attrs) -> (output type, state_dict entries, attrs)
               attrs come back with the fields the rule derives (kernel, strides, ...);
               problems are raised as `ShapeError`, requirements on sizes go through `ctx`.
  cost rule    (attrs, input types, output type, state_dict entries) -> `Cost`
  lowering     `TorchLowering`: how the PyTorch target writes the op (module / forward / call)
  glyph        `Glyph`: how both diagram styles draw it
  saves rule   (attrs, input types, output type, `SaveCtx`) -> `Saved`: what autograd keeps for
               backward when the generated module trains (analysis/memory.py, docs/costs.md)

>>> Cost().add("conv", 6).add("bias", 0).units
{'conv': 6}
>>> Expr("a + b", ADD).atom()
'(a + b)'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from archc.shapes import sizes as S
from archc.shapes.sizes import Size
from archc.shapes.types import ParamSpec, TensorType, Type

A = TypeVar("A")
A_contra = TypeVar("A_contra", contravariant=True)

# ---- shape rules ------------------------------------------------------------------------------


class ShapeError(Exception):
    """A problem a shape rule found: an error code, a message in axis names, and the argument to point at."""

    def __init__(self, code: str, message: str, arg: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.arg = arg


class ShapeCtx(Protocol):
    """How a rule states requirements on sizes: decided now when concrete, recorded as constraints otherwise."""

    def require_equal(self, a: Size, b: Size, what: str, arg: str | None = None) -> None: ...
    def require_divisible(self, a: Size, m: Size, what: str, arg: str | None = None) -> None: ...
    def require_positive(self, a: Size, what: str, arg: str | None = None) -> None: ...


ShapeRule = Callable[[ShapeCtx, list[TensorType], A], tuple[Type, tuple[ParamSpec, ...], A]]

# ---- cost rules -------------------------------------------------------------------------------


@dataclasses.dataclass
class Cost:
    """Work by kind: multiply-adds of the contraction kinds, plain operation counts of the others."""

    units: dict[str, Size] = dataclasses.field(default_factory=dict)

    def add(self, kind: str, n: Size) -> Cost:
        if n != 0:
            self.units[kind] = S.add(self.units.get(kind, 0), n)
        return self


CostRule = Callable[[A, list[TensorType], Type, tuple[ParamSpec, ...]], Cost]

# ---- PyTorch lowering -------------------------------------------------------------------------

ATOM, MUL, ADD = 3, 2, 1  # precedence of an expression's text, for inlining


@dataclasses.dataclass(frozen=True)
class Expr:
    """A Python expression's text and how tightly it binds."""

    text: str
    prec: int = ATOM

    def atom(self) -> str:
        """The text, parenthesised unless it already binds like a name or a call."""
        return self.text if self.prec >= ATOM else f"({self.text})"

    def at(self, prec: int) -> str:
        return self.text if self.prec >= prec else f"({self.text})"


class Unsupported(Exception):
    """The op (with these attributes or this layout) has no lowering yet."""


class LowerCtx(Protocol):
    """What a lowering may ask of the class being built."""

    inplace: bool  # the op may overwrite its input (a fresh tensor no one else reads)

    def const(self, x: Any, what: str) -> int: ...
    def size(self, x: Any) -> str: ...
    def helper(self, name: str) -> None: ...
    def device(self) -> str:
        """`, device=x.device` for a tensor a lowering makes: the device of the block's first input, so the
        module runs where its inputs are ('' in a block without inputs)."""
        ...


ModuleFn = Callable[[A, list[TensorType], Type, LowerCtx], str]
ForwardFn = Callable[[A, list[TensorType], Type, LowerCtx, list[Expr]], Expr]
CallFn = Callable[[A, list[TensorType], Type, LowerCtx, str, list[Expr]], Expr]


@dataclasses.dataclass(frozen=True)
class TorchLowering(Generic[A_contra]):
    """How the PyTorch target writes an op.

    module   the text of an `nn.Module` performing the op (the attribute of an op with
             parameters, or a numbered step of a sequence: `nn.ReLU()` for a `relu()` step);
    forward  the expression of a stateless op in forward (`F.relu(x)`), from its inputs' texts;
    call     how forward calls the op's module (default `self.m(x)`);
    inplace  the op may overwrite its input, as torchvision's activations do;
    fresh    its output is always a new tensor (never a view or the input itself);
    repeats  it writes an input's text more than once (self-attention's q, k and v), so forward computes
             that input into a variable rather than inline it (once, and `q is k is v` holds).

    Contravariant in the attributes: a lowering for any `Attrs` (nn.Identity) serves every op.
    """

    module: ModuleFn[A_contra] | None = None
    forward: ForwardFn[A_contra] | None = None
    call: CallFn[A_contra] | None = None
    inplace: bool = False
    fresh: bool = False
    repeats: bool = False  # it writes an input's text more than once: that input gets a variable


# ---- training memory ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Kept:
    """A tensor an op allocates only to keep it for backward (statistics, a dropout mask, pooling
    indices, a contiguous copy): its element count and dtype."""

    elements: Size
    dtype: str


@dataclasses.dataclass(frozen=True)
class Saved:
    """What PyTorch's autograd keeps for an op's backward pass, for archc's own lowering of it (CPU).

    inputs      the tensor inputs it keeps (by index): their storages, so a view keeps its base
    output      it keeps its own output
    new         tensors it makes only to keep them (`Kept`)
    view        the output shares the storage of this input (a view, or the input itself); None:
                a new storage
    contiguous  the output is laid out densely in its storage (a permuted view is not); ops that
                reshape decide by it whether they copy
    order       where the output is not contiguous but is dense in another axis order, that order
                (batch-first multihead attention's [seq, batch, chan] memory: (1, 0, 2)); else None
    storage     where the output is a view of part of a new, larger storage (a transposed conv cropped
                after), that storage; None: the output's own size
    loose       the output's axes (by index) that do not fill the axis outside them in memory (a
                slice or a split narrowed them): with `order` (None: in order) a layout dense but for
                these gaps, which a reshape cannot merge across; not contiguous then
    packed      False where the innermost axis's elements are not adjacent (a slice left every k-th
                position, or one, of an axis inside it): reshapes merge it as they would a dense
                layout, but it is not contiguous
    Parameters and buffers an op keeps are state, not activations: they are not listed.

    >>> Saved(inputs=(0,)).inputs, Saved().view is None
    ((0,), True)
    """

    inputs: tuple[int, ...] = ()
    output: bool = False
    new: tuple[Kept, ...] = ()
    view: int | None = None
    contiguous: bool = True
    order: tuple[int, ...] | None = None
    storage: Kept | None = None
    loose: frozenset[int] = frozenset()
    packed: bool = True


class SaveCtx(Protocol):
    """What a saves rule may ask about its inputs, one entry per tensor input."""

    @property
    def grads(self) -> tuple[bool, ...]:
        """Whether each input requires grad (depends on a learned parameter)."""
        ...

    @property
    def contiguous(self) -> tuple[bool, ...]:
        """Whether each input is contiguous in its storage."""
        ...

    @property
    def orders(self) -> tuple[tuple[int, ...] | None, ...]:
        """For each input that is dense in another axis order, that order (`Saved.order`); else None."""
        ...

    @property
    def layouts(self) -> tuple[tuple[tuple[int, ...], frozenset[int], bool] | None, ...]:
        """Each input's layout where archc knows it: its axes in memory order, outermost first, its
        `loose` axes (dense: none) and whether it is `packed`; None where it does not (a broadcast)."""
        ...

    @property
    def sources(self) -> tuple[int, ...]:
        """Which value each input is (equal numbers: the same tensor, as `q is k` sees it)."""
        ...


SavesRule = Callable[[A, list[TensorType], Type, SaveCtx], Saved]

# ---- diagrams and kernels ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Glyph:
    """How both diagram styles draw an op.

    kind    the shape family of a neural circuit diagram: input | param | linear | conv | conv_t |
            pool | reduce | norm | func | softmax | dropout | join | bar | einsum | attention |
            embed | identity
    symbol  what the circuit style writes on the glyph; the graph style's op mark
    fill    box colour in the graph style
    """

    kind: str
    symbol: str
    fill: str


class TritonLowering(Protocol):
    """An op's Triton lowering: the expression of a pointwise op, computed in fp32 (the kernels' compute
    type), from the expressions of its inputs (`tl.maximum(v3, 0.0)` for relu of `v3`). The Triton
    target (codegen/triton) fuses chains of the ops that have one into one kernel (passes/plan.py)."""

    def __call__(self, attrs: Any, args: list[str], /) -> str: ...
