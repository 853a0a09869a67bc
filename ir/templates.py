"""Block templates: one block instance elaborated on its own, as code generation reads it.

Code generation needs, per block instance, what the typed graph of the whole
program does not keep: which tensors went into each nested block call and
sequence and which came out, sizes in the instance's *own* input sizes (so the
emitted class works at every input size), and the decisions the block took on
its parameters. The elaborator records that as a `BlockTrace` (dsl/templates.py
elaborates; this module only holds the records), made of a typed `Graph` and
plain facts: tensor values are node ids, sizes are ints or the expressions
`shapes/` prints, and what the generator needs from the block's source is a
`BlockFacts` (its name, span, parameters with their literal defaults, declared
inputs, the variables it assigns once), never the AST.

A generator asks a `TraceSource` for traces: the entry block's, or a recorded
call's (its block traced on its own). A *generic* trace keeps the integer
parameters symbolic (`@planes`), but those in `concrete`; one that cannot keep
a parameter symbolic raises `BakeParams` with the ones to give values.

>>> facts = BlockFacts("Net", Span("net.arch", 1, 1, 1, 4), (ParamFact("n", 4),), (), frozenset())
>>> facts.param_names
('n',)
>>> Binary("*", Name("n"), Lit(2))
Binary(op='*', left=Name(name='n'), right=Lit(value=2))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from archc.diagnostics import Span
from archc.ir.graph import Graph
from archc.shapes.sizes import Size

# A tensor value of a trace: the id of the node that produces it, or a tuple of values.
Value = int | tuple["Value", ...]


# ---- parameter expressions (a block's asserts) --------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Lit:
    """A literal number, boolean or string."""

    value: int | float | bool | str


@dataclasses.dataclass(frozen=True)
class Name:
    """A variable: a parameter, or a size of the program."""

    name: str


@dataclasses.dataclass(frozen=True)
class Binary:
    op: str  # + - * / // % ** == != < <= > >= and or
    left: ParamExpr
    right: ParamExpr


@dataclasses.dataclass(frozen=True)
class Unary:
    op: str  # - not
    operand: ParamExpr


@dataclasses.dataclass(frozen=True)
class Opaque:
    """Any other expression (a call, an index, a list): code generation does not print it."""


ParamExpr = Lit | Name | Binary | Unary | Opaque


@dataclasses.dataclass(frozen=True)
class AssertFact:
    """An `assert` of the block's own code: its test and its message."""

    test: ParamExpr
    message: str | None


# ---- what code generation needs from a block's source ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class ParamFact:
    """A block parameter and its default when the .arch writes it as a plain number (else None)."""

    name: str
    default: int | float | None


@dataclasses.dataclass(frozen=True)
class InputFact:
    """An `in` declaration: the input's name and the statement's span."""

    name: str
    span: Span


@dataclasses.dataclass(frozen=True, eq=False)
class BlockFacts:
    """A block definition as code generation sees it (one object per block: identity is the block)."""

    name: str
    span: Span
    params: tuple[ParamFact, ...]
    inputs: tuple[InputFact, ...]
    assigned_once: frozenset[str]  # names assigned exactly once, at the top level (`width = ...`)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)


# ---- the records of one trace ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CallRecord:
    """A block called at `path`: the tensors that went in and came out (in the trace's graph)."""

    path: str
    block: BlockFacts
    args: dict[str, Any]  # the parameters' values: numbers, sizes, strings, lists
    inputs: tuple[Value, ...]
    outputs: tuple[Value, ...]
    start: int  # the graph's length when the call began: orders it among the nodes


@dataclasses.dataclass(frozen=True)
class SeqRecord:
    """A sequence at `path` (the block's own path for `out seq(...)`): its input and output."""

    path: str
    input: Value
    output: Value
    start: int


@dataclasses.dataclass(frozen=True)
class Decision:
    """A condition of the block's own code that the sizes alone did not decide: `a op b` was `outcome`."""

    a: Any  # a size, or a number
    op: str
    b: Any
    outcome: bool
    span: Span
    in_assert: bool = False  # made while checking an `assert`: it does not change the layers
    nested: bool = False  # made in a nested block's code: its class decides it, unless forward reads the sizes


@dataclasses.dataclass(frozen=True)
class BuiltAxis:
    """An axis of the entry's input whose size the module is built for (an entry traced at its sizes)."""

    input: str
    index: int
    axis: str
    size: int
    name: str | None  # the free size the declaration names (`h = H`), for a hint


@dataclasses.dataclass(frozen=True)
class BlockTrace:
    """One block instance elaborated on its own, ready for code generation."""

    block: BlockFacts
    graph: Graph
    calls: dict[str, CallRecord]
    seqs: dict[str, SeqRecord]
    outputs: tuple[Value, ...]  # the block's `out` values
    values: dict[str, int]  # the value of every symbol that has one
    fixed: frozenset[str]  # symbols the parameters depend on: built in at construction
    args: dict[str, Any]  # the block's parameters, concrete
    is_entry: bool
    out_span: Span | None = None  # the block's `out` statement
    decisions: tuple[Decision, ...] = ()
    params: dict[str, str] = dataclasses.field(default_factory=dict)  # parameter -> symbol (generic)
    env: dict[str, Size] = dataclasses.field(default_factory=dict)  # the block's symbolic sizes at the end
    input_equalities: tuple[tuple[Size, Size], ...] = ()  # from matching `in` types: lhs == rhs
    asserts: tuple[AssertFact, ...] = ()  # the block's own top-level asserts that ran
    built_inputs: tuple[BuiltAxis, ...] = ()  # an entry built for its sizes: the input axes forward checks

    def type_of(self, value: Value) -> Any:
        """The type of a tensor value (a node id)."""
        assert isinstance(value, int), value
        return self.graph.node(value).type


class BakeParams(Exception):
    """A generic trace met a parameter it cannot keep symbolic (a loop bound): trace again with
    these parameters at their values."""

    def __init__(self, names: set[str]) -> None:
        super().__init__(", ".join(sorted(names)))
        self.names = names


@runtime_checkable
class TraceSource(Protocol):
    """Where a generator gets its traces (dsl/templates.py elaborates a loaded program)."""

    def entry_trace(self, generic: bool = False, concrete: set[str] | None = None,
                    at: Mapping[str, int] | None = None, sized: bool = False) -> BlockTrace:
        """The entry block with its declared input types, in the free sizes (valued by `at` where it
        gives a value); `sized`: the free sizes at their values, not symbols."""
        ...

    def call_trace(self, parent: BlockTrace, call: CallRecord, generic: bool = False,
                   concrete: set[str] | None = None, at: Mapping[str, int] | None = None,
                   branches: bool = False) -> BlockTrace:
        """The block of `call` (recorded in `parent`) on its own, with class-local input sizes;
        `generic`: with its integer parameters (but `concrete`) as symbols too; `at`: values of
        some input sizes (`x:h`); `branches`: a condition on an input size no layer's shape fixes
        stays a condition (forward tests it) instead of making the size a constructor argument."""
        ...

