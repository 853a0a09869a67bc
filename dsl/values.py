"""The values elaboration computes with, and the state every elaboration pass shares.

`TV` is a tensor value (the node producing it), `POISON` the value of an
expression that already failed, `ListV` an indexed list of values (a ModuleList
when it holds layers), `Frame` one block instance being elaborated. `State`
holds the elaborator's shared fields and the helpers every part of it uses; the
parts (expressions.py, calls.py, sequences.py, elaborate.py) are mixins over it.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any

from archc.diagnostics import ArchError, Diagnostic, DiagnosticBag, Span
from archc.dsl.loader import File, Program
from archc.grammar import ast
from archc.ir.graph import Graph
from archc.ir.limits import Limits
from archc.ir.limits import note as limit_note
from archc.ops.facets import ShapeError
from archc.shapes import sizes as S
from archc.shapes.types import TupleType

_FLOAT_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
              "//": operator.floordiv, "%": operator.mod, "**": operator.pow}

# The budgets (nodes, steps, block depth) are `ir.limits.Limits`, read per elaboration and checked
# after each statement.


@dataclasses.dataclass(frozen=True)
class TV:
    """A tensor value: the node that produces it."""

    id: int


class Poison:
    """The value of an expression that already failed; absorbs further errors."""


POISON = Poison()


@dataclasses.dataclass
class ListV:
    """`down[i] = ...` values: an indexed list, also a ModuleList when it holds layers."""

    items: dict[int, Any]

    def dense(self) -> list[Any] | None:
        """The elements in order, once elements 0 to n - 1 (and no others) are assigned; else None."""
        if sorted(self.items) != list(range(len(self.items))):
            return None
        return [self.items[i] for i in range(len(self.items))]


@dataclasses.dataclass(frozen=True, eq=False)
class BlockRef:
    """A block as a value: `Stage(x, Bottleneck, 3)` passes the block, and `unit(x, ...)` calls it (a
    parameter holding a block, as torchvision's ResNet takes its block class)."""

    block: ast.Block
    file: File

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BlockRef) and other.block is self.block

    def __hash__(self) -> int:
        return id(self.block)

    def __repr__(self) -> str:  # how code generation names it (`for unit=Bottleneck`) and keys its classes
        return self.block.name


@dataclasses.dataclass(frozen=True)
class Constraint:
    kind: str  # "equal" | "divisible" | "positive" | "assumed"
    lhs: Any
    rhs: Any
    what: str
    span: Span
    in_assert: bool = False  # "assumed" only: made while checking an `assert` (a requirement, not a branch)


class Abort(Exception):
    """Stops elaborating the current statement (its diagnostic is already recorded)."""


class OverBudget(ArchError):
    """Stops the whole elaboration: a limit of `ir.limits` ran out. An ArchError, so the handlers that
    give up on a failed compile give up on it too, and no `except Abort` carries on past it."""


@dataclasses.dataclass
class Frame:
    """One block instance being elaborated."""

    path: str
    block: ast.Block
    file: File
    env: dict[str, Any]
    modules: dict[str, Span]  # names of state-owning children, for duplicate checks
    outputs: list[Any] | None = None
    out_span: Span | None = None


def join(*parts: str) -> str:
    return ".".join(p for p in parts if p)



class State:
    """Fields shared by the elaborator's parts (set in `Elaborator.__init__`)."""

    program: Program
    overrides: dict[str, int | float | bool]
    symbolic: bool
    bag: DiagnosticBag
    constraints: list[Constraint]
    values: dict[str, int]
    depth: int
    asserting: int  # inside an `assert` (its conditions on free sizes are requirements)
    limits: Limits
    steps: int  # spent of limits.steps
    repeat: tuple[str, int, int, int] | None
    graph: Graph
    _sizes_env: dict[str, Any]
    _claimed: dict[str, Span]
    _scope: str = ""

    def spend(self, n: int, span: Span) -> None:
        """Charge `n` elaboration steps to the budget; over it, stop at `span` (OverBudget)."""
        self.steps += n
        if self.steps > self.limits.steps:
            self.over_budget("steps", f"elaborating this takes more than {self.limits.steps:,} steps "
                             "(a loop or a recursion expands too far)", span)

    def check_nodes(self, span: Span) -> None:
        """Stop at `span` (OverBudget) once the graph holds more nodes than the budget."""
        if len(self.graph) > self.limits.nodes:
            self.over_budget("nodes", f"the graph has more than {self.limits.nodes:,} nodes here", span)

    def _check_size_depth(self, t: Any, span: Span) -> None:
        """Stop at `span` (OverBudget) once a size of `t` nests floors and ceilings past the budget: a
        loop of strided layers run away (sympy's work on such a size grows fast with its depth)."""
        for item in t.items if isinstance(t, TupleType) else (t,):
            for ax in getattr(item, "axes", ()):
                if S.nesting(ax.size) > self.limits.size_depth:
                    self.over_budget("size_depth", f"the size of axis '{ax.name}' nests floors and ceilings more "
                                     f"than {self.limits.size_depth} deep here (each strided layer adds one)", span)

    def over_budget(self, name: str, message: str, span: Span) -> None:
        raise OverBudget([Diagnostic("error", "structure", message, span, ((limit_note(name), None),))])

    def type_of(self, v: TV) -> Any:
        return self.graph.node(v.id).type

    def _is_tensorish(self, v: Any) -> bool:
        if isinstance(v, (TV, Poison)):
            return True
        return isinstance(v, tuple) and all(self._is_tensorish(x) for x in v)

    def _flatten_tensors(self, vs: list[Any]) -> list[TV]:
        out: list[TV] = []
        for v in vs:
            if isinstance(v, TV):
                out.append(v)
            elif isinstance(v, tuple):
                out.extend(self._flatten_tensors(list(v)))
        return out

    def _kind(self, v: Any) -> str:
        if isinstance(v, TV):
            return f"a tensor {self.type_of(v)}"
        if isinstance(v, bool):
            return "a boolean"
        if isinstance(v, int):
            return f"the number {v}"
        if isinstance(v, float):
            return f"the number {v:g}"
        if isinstance(v, str):
            return f"the string \"{v}\""
        if isinstance(v, (list, tuple)):
            return "a list"
        if isinstance(v, ListV):
            if any(isinstance(x, TV) for x in v.items.values()):
                return "a list of tensors or layers"
            return f"a list with elements {sorted(v.items)} assigned"
        if S.is_size(v):
            return f"the size {S.fmt(v)}"
        if v is None:
            return "none"
        if isinstance(v, BlockRef):
            return f"the block '{v.block.name}'"
        return "nothing"

    def _require_equal(self, a: Any, b: Any, what: str, span: Span, notes: list | None = None) -> None:
        try:
            _RuleCtx(self, span, {}).require_equal(a, b, what)
        except ShapeError as err:
            self.bag.error(err.code, err.message, span, notes or [])
            raise Abort from None



class _RuleCtx:
    """What shape rules see: size requirements decided now or recorded as constraints."""

    def __init__(self, el: State, span: Span, arg_spans: dict[str, Span]):
        self.el = el
        self.span = span
        self.arg_spans = arg_spans

    def _where(self, arg: str | None) -> Span:
        return self.arg_spans.get(arg, self.span) if arg else self.span

    def _values_note(self, names: set[str]) -> str:
        vals = ", ".join(f"{n}={self.el.values[n]}" for n in sorted(names) if n in self.el.values)
        return f" (with {vals})" if vals else ""

    def require_equal(self, a: Any, b: Any, what: str, arg: str | None = None) -> None:
        r = S.equal(a, b)
        if r is True:
            return
        if r is False:
            raise ShapeError("axis-size", f"{what}: {S.fmt(a)} vs {S.fmt(b)}", arg)
        self.el.constraints.append(Constraint("equal", a, b, what, self._where(arg)))
        va, vb = S.evaluate(a, self.el.values), S.evaluate(b, self.el.values)
        if va is not None and vb is not None and va != vb:
            names = S.free_names(a) | S.free_names(b)
            raise ShapeError("constraint", f"{what} must be equal, but {S.fmt(a)} = {va} and "
                             f"{S.fmt(b)} = {vb}{self._values_note(names)}", arg)

    def require_divisible(self, a: Any, m: Any, what: str, arg: str | None = None) -> None:
        if S.is_concrete(a) and S.is_concrete(m):
            if int(m) != 0 and int(a) % int(m) != 0:
                raise ShapeError("axis-size", f"cannot divide {what}: {a} is not a multiple of {m}", arg)
            return
        r = S.equal(S.mod(a, m), 0)
        if r is True:
            return
        self.el.constraints.append(Constraint("divisible", a, m, what, self._where(arg)))
        va, vm = S.evaluate(a, self.el.values), S.evaluate(m, self.el.values)
        if va is not None and vm is not None and vm != 0 and va % vm != 0:
            raise ShapeError("constraint", f"cannot divide {what}: {S.fmt(a)} = {va} is not a multiple of "
                             f"{vm}{self._values_note(S.free_names(a) | S.free_names(m))}", arg)

    def require_positive(self, a: Any, what: str, arg: str | None = None) -> None:
        if S.is_concrete(a):
            if int(a) < 1:
                raise ShapeError("value", f"{what} would be {a}; the input is too small", arg)
            return
        self.el.constraints.append(Constraint("positive", a, 1, what, self._where(arg)))
        va = S.evaluate(a, self.el.values)
        if va is not None and va < 1:
            raise ShapeError("constraint", f"{what} would be {S.fmt(a)} = {va}"
                             f"{self._values_note(S.free_names(a))}; the input is too small", arg)


