"""The .arch abstract syntax tree: frozen dataclasses, one per grammar rule.

Every node has a `span` pointing at its source text. The tree is built by
`grammar.parser.parse`; `dsl.elaborate` turns it into the typed graph.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.diagnostics import Span

# ---- expressions ------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    value: int | float
    span: Span


@dataclass(frozen=True)
class String:
    value: str
    span: Span


@dataclass(frozen=True)
class Bool:
    value: bool
    span: Span


@dataclass(frozen=True)
class NoneLit:
    """`none`: no value, for an optional argument (an op's `stop = none` is its default)."""

    span: Span


@dataclass(frozen=True)
class Var:
    name: str
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * / // % ** == != < <= > >= and or
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class UnaryOp:
    op: str  # - not
    operand: Expr
    span: Span


@dataclass(frozen=True)
class Cond:
    test: Expr
    then: Expr
    orelse: Expr
    span: Span


@dataclass(frozen=True)
class Index:
    value: Expr
    index: Expr
    span: Span


@dataclass(frozen=True)
class AxisSlice:
    """`h = start:stop:step` (any part may be left out), or `h = i` (one position) in `x[...]`."""

    axis: str
    start: Expr | None
    stop: Expr | None
    step: Expr | None
    is_range: bool  # False for `h = i`
    span: Span


@dataclass(frozen=True)
class Slicing:
    """`x[h = 0:4, w = ::2]`: Python's slicing of named axes (the `slice` op, one per axis)."""

    value: Expr
    items: tuple[AxisSlice, ...]
    span: Span


@dataclass(frozen=True)
class ListSlice:
    """`widths[1:3]`, `dims[::-1]`: Python's slicing of a list (a tensor is sliced by axis name)."""

    value: Expr
    start: Expr | None
    stop: Expr | None
    step: Expr | None
    span: Span


@dataclass(frozen=True)
class ListComp:
    """`[2 * w for w in widths if w > 8]`: a list, one element per item (or integer of `start..stop`)."""

    element: Expr
    var: str
    start: Expr | None  # `for i in start..stop`; both None when iterating over `items`
    stop: Expr | None
    items: Expr | None
    cond: Expr | None
    span: Span


@dataclass(frozen=True)
class TupleExpr:
    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class KeyedItem:
    """`name = expr` inside a list: an axis with its size, in a type or pattern."""

    key: str
    value: Expr
    span: Span


@dataclass(frozen=True)
class EllipsisItem:
    span: Span


@dataclass(frozen=True)
class ListExpr:
    items: tuple[Expr | KeyedItem | EllipsisItem, ...]
    span: Span


@dataclass(frozen=True)
class PosArg:
    value: Expr
    span: Span


@dataclass(frozen=True)
class KwArg:
    name: str
    value: Expr
    span: Span


@dataclass(frozen=True)
class MapArg:
    """`chan -> 64` or `chan -> hidden = 4*d`: an axis map (rename optional)."""

    source: Expr
    size: Expr
    rename: str | None
    span: Span


Arg = PosArg | KwArg | MapArg


@dataclass(frozen=True)
class Call:
    func: str  # dotted name
    args: tuple[Arg, ...]
    span: Span
    func_span: Span


# ---- sequences ----------------------------------------------------------------


@dataclass(frozen=True)
class CallStep:
    call: Call
    label: str | None  # name (or "{i}"-template) of the step, else numbered
    span: Span


@dataclass(frozen=True)
class SeqStep:
    steps: tuple[Step, ...]
    label: str | None
    span: Span


@dataclass(frozen=True)
class ForStep:
    var: str
    start: Expr | None  # `for i in start..stop`; both None when iterating over `items`
    stop: Expr | None
    steps: tuple[Step, ...]
    span: Span
    items: Expr | None = None  # `for d in dims`: a list's items


@dataclass(frozen=True)
class IfStep:
    test: Expr
    then: tuple[Step, ...]
    orelse: tuple[Step, ...]
    span: Span


Step = CallStep | SeqStep | ForStep | IfStep


@dataclass(frozen=True)
class SeqExpr:
    input: Expr
    steps: tuple[Step, ...]
    span: Span


Expr = (Number | String | Bool | NoneLit | Var | BinOp | UnaryOp | Cond | Index | Slicing | ListSlice | TupleExpr
        | ListExpr | ListComp | Call | SeqExpr)

# ---- types --------------------------------------------------------------------


@dataclass(frozen=True)
class AxisDecl:
    name: str | None  # None for `...`
    size: Expr | None
    span: Span


@dataclass(frozen=True)
class TensorTypeExpr:
    dtype: str | None
    axes: tuple[AxisDecl, ...]
    span: Span


@dataclass(frozen=True)
class TupleTypeExpr:
    items: tuple[TypeExpr, ...]
    span: Span


TypeExpr = TensorTypeExpr | TupleTypeExpr

# ---- statements ---------------------------------------------------------------


@dataclass(frozen=True)
class In:
    name: str
    type: TypeExpr
    span: Span


@dataclass(frozen=True)
class Out:
    values: tuple[Expr, ...]
    span: Span
    name: str | None = None  # `out ... as "head"`: the layer's name (one value only)
    name_span: Span | None = None


@dataclass(frozen=True)
class Target:
    name: str
    index: Expr | None
    span: Span


@dataclass(frozen=True)
class Let:
    targets: tuple[Target, ...]
    value: Expr
    span: Span
    name: str | None = None  # `... as "layer{i}"`: the layer's name (a template of loop variables)
    name_span: Span | None = None


@dataclass(frozen=True)
class ParamDecl:
    name: str
    type: TypeExpr
    init: Expr | None
    span: Span


@dataclass(frozen=True)
class If:
    branches: tuple[tuple[Expr, tuple[Stmt, ...]], ...]
    orelse: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class For:
    var: str
    start: Expr | None  # `for i in start..stop`; both None when iterating over `items`
    stop: Expr | None
    body: tuple[Stmt, ...]
    span: Span
    items: Expr | None = None  # `for d in dims`: a list's items


@dataclass(frozen=True)
class Assert:
    test: Expr
    message: str | None
    span: Span


@dataclass(frozen=True)
class BufferDecl:
    """`buffer index: i64[n = 49] = 0, persistent = false`: state that is not learned."""

    name: str
    type: TypeExpr
    init: Expr | None
    options: tuple[KwArg, ...]
    span: Span


Stmt = In | Out | Let | ParamDecl | BufferDecl | If | For | Assert

# ---- files ----------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class Block:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    entry: bool
    span: Span
    name_span: Span


@dataclass(frozen=True)
class SizeDecl:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class DtypeDecl:
    """`dtype bf16`: the floating-point dtype of the file's values and parameters."""

    name: str
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Import:
    path: str  # "file.arch" (relative) or a library name like "std.nn"
    is_file: bool
    alias: str | None
    span: Span


@dataclass(frozen=True)
class Module:
    file: str
    imports: tuple[Import, ...]
    sizes: tuple[SizeDecl, ...]
    blocks: tuple[Block, ...]
    span: Span
    dtypes: tuple[DtypeDecl, ...] = ()
