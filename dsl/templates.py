"""Block templates: one block instance elaborated on its own, as the class code generation emits.

The records (`BlockTrace`, ...) and the `TraceSource` protocol are in ir/templates.py; this
module produces them from a loaded program. A `Tracer` is an `Elaborator` that records the
boundaries of nested block calls and sequences and the block's decisions while it elaborates
one block with symbolic input sizes:

  - the entry block is elaborated as `archc check --symbolic` does it: its
    inputs are the declared types, in the free sizes (batch, H, W, ...);
  - any other block gets a fresh symbol per input axis (`x:h`), valued at the
    size the instance sees, so decisions the block makes on them are checked.

A symbol is *fixed* when a parameter shape depends on it (the input channels
of a conv): the emitted class is built for its value. Every other symbol is a
run-time size, read off the input's shape when forward needs it. `Templates`
turns what a tracer saw into records of plain facts (node ids for tensor
values, `BlockFacts` for the block's source), so code generation never reads
the AST.

>>> from archc.dsl.loader import load
>>> p = load("t.arch", 'block B(n = 4) { in x: [b = 2, c = 8]\\n fc = linear(x, c -> n)\\n out fc }')
>>> t = Templates(p).entry_trace()
>>> str(t.type_of(t.outputs[0])), sorted(t.fixed), t.block.params
('[b=2, c=4]', [], (ParamFact(name='n', default=4),))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from archc.diagnostics import ArchError, Diagnostic, Span
from archc.dsl.elaborate import POISON, TV, Abort, Elaborator, Frame, Poison, size_name
from archc.dsl.loader import File, Program
from archc.grammar import ast
from archc.ir.graph import Graph, ModuleInfo, Op
from archc.ir.templates import (
    AssertFact,
    BakeParams,
    Binary,
    BlockFacts,
    BlockTrace,
    BuiltAxis,
    CallRecord,
    Decision,
    InputFact,
    Lit,
    Name,
    Opaque,
    ParamExpr,
    ParamFact,
    SeqRecord,
    Unary,
    Value,
)
from archc.shapes import sizes as S
from archc.shapes.types import TensorType


@dataclasses.dataclass
class _Call:
    """A block call while it is traced (its outputs come when it ends)."""

    path: str
    block: ast.Block
    file: File
    args: dict[str, Any]
    inputs: list[Any]
    outputs: list[Any]
    start: int


@dataclasses.dataclass
class _Seq:
    path: str
    input: Any
    output: Any
    start: int


def _var_names(e: Any) -> set[str]:
    """The names an expression of the AST reads."""
    if isinstance(e, ast.Var):
        return {e.name}
    if isinstance(e, (list, tuple)):
        return set().union(*map(_var_names, e))
    if dataclasses.is_dataclass(e):
        return set().union(*(_var_names(getattr(e, f.name)) for f in dataclasses.fields(e)))
    return set()


class Tracer(Elaborator):
    """An elaborator that records block-call and sequence boundaries and the block's decisions."""

    def __init__(self, program: Program, overrides: dict[str, Any] | None = None, generic: bool = False,
                 concrete: set[str] | None = None, sized: bool = False) -> None:
        # `sized`: the free sizes that have values are those values (the entry built for the sizes `archc
        # check` used, where code generation needs a number), not symbols
        super().__init__(program, overrides, symbolic=not sized)
        self.generic = generic
        self.concrete = concrete or set()  # parameters a generic trace keeps at their values
        self.calls: dict[str, _Call] = {}
        self.seqs: dict[str, _Seq] = {}
        self.decisions: list[Decision] = []
        self.asserts: list[ast.Assert] = []  # the block's own top-level asserts that ran
        self._in_assert = False
        self.input_equalities: list[Any] = []
        self.params: dict[str, str] = {}  # parameter -> its symbol, for a generic trace
        self.root_frame: Frame | None = None
        self.outputs: list[Any] = []
        self.out_span: Span | None = None
        self.baked: set[str] = set()  # input sizes float arithmetic used: fixed, as a layer's shape makes them
        self.built_inputs: list[BuiltAxis] = []  # `sized`: the entry's input axes whose sizes it is built for

    def _exec_block(self, frame: Frame, inputs: list[Any] | None, call_span: Span) -> None:
        record = None
        if frame.path and frame.path not in self.calls and inputs is not None:  # inline calls at the root: own
            args = {p.name: frame.env.get(p.name) for p in frame.block.params}
            record = _Call(frame.path, frame.block, frame.file, args, list(inputs), [], len(self.graph))
            self.calls[frame.path] = record  # reserved now: an inline `out Block(...)` reuses the path
        super()._exec_block(frame, inputs, call_span)
        if record is not None:
            record.outputs = list(frame.outputs or [])

    def _input(self, frame: Frame, stmt: ast.In, actual: Any, call_span: Span) -> None:
        first = len(self.constraints)
        super()._input(frame, stmt, actual, call_span)
        if actual is None and not self.symbolic and isinstance(stmt.type, ast.TensorTypeExpr):
            # the entry, built for its sizes: which ones forward checks
            t = self.type_of(frame.env[stmt.name])
            for j, (decl, ax) in enumerate(zip(stmt.type.axes, t.axes)):
                names = {decl.name} if decl.size is None else _var_names(decl.size)
                if names & set(self.graph.sizes) and isinstance(ax.size, int):
                    self.built_inputs.append(BuiltAxis(stmt.name, j, ax.name, ax.size, size_name(decl)))
        if frame is self.root_frame:  # `in x: [chan = dim]`: the input size is the parameter
            self.input_equalities.extend(c for c in self.constraints[first:] if c.kind == "equal")

    def _as_float(self, v: Any, span: Span) -> float:
        """Float arithmetic on a size (`scale = (dim // heads) ** -0.5`): a class computes it for the
        values it is built for. A generic trace keeps the block's parameters in it at their values
        (the class is built for them); a size of a nested block's input (`x:chan`) makes the class
        specialised (one per input size), where the value is known. A free size of the program stays
        an error: the module is generated once for every value of it."""
        if isinstance(v, float) or S.is_concrete(v):
            return float(v)
        names = S.free_names(v)
        params = {n[1:] for n in names if n.startswith("@")}
        if params:
            raise BakeParams(params)
        value = S.evaluate(v, self.values)
        if not self.generic and value is not None and names and all(":" in n for n in names):
            self.baked |= names  # the class is built for these sizes, as for a layer's shape
            return float(value)
        return super()._as_float(v, span)

    def _decide(self, a: Any, op: str, b: Any, span: Span) -> bool:
        r = super()._decide(a, op, b, span)
        # the block's own code (or an inline `out Block(...)`), or a nested block's: that block's class
        # decides it, but where forward tests it (a condition on an input size) the sizes after the call
        # depend on it here too
        self.decisions.append(Decision(a, op, b, r, span, self._in_assert, self._scope != ""))
        return r

    def _stmt(self, frame: Frame, stmt: Any) -> None:
        if not isinstance(stmt, ast.Assert):
            return super()._stmt(frame, stmt)
        if self.root_frame is not None and frame is self.root_frame and stmt in frame.block.body:
            self.asserts.append(stmt)
        self._in_assert = True
        try:
            super()._stmt(frame, stmt)
        finally:
            self._in_assert = False

    def _range(self, frame: Frame, start: ast.Expr, stop: ast.Expr, span: Span) -> range:
        if self.generic:
            for e in (start, stop):
                v = self.ev(e, frame)
                names = S.free_names(v) if S.is_size(v) else set()
                if names and all(n.startswith("@") for n in names):
                    raise BakeParams({n[1:] for n in names})
        return super()._range(frame, start, stop, span)

    def _symbolic_params(self, frame: Frame, block: ast.Block) -> None:
        """A generic trace: every integer parameter becomes a symbol, valued for decisions."""
        from archc.shapes import pyexpr  # only here: `archc check` at concrete sizes never loads sympy
        for p in block.params:
            v = frame.env.get(p.name)
            unvalued = S.is_size(v) and not isinstance(v, int) and S.evaluate(v, self.values) is None
            if (isinstance(v, int) and not isinstance(v, bool) or unvalued) and p.name not in self.concrete:
                name = "@" + p.name
                frame.env[p.name] = pyexpr.param_symbol(name)
                if isinstance(v, int):  # a size without a value (`in x: [chan = cin]`, no `size cin`): none here
                    self.values[name] = v
                self.params[p.name] = name

    def _steps(self, steps: tuple, cur: Any, seq_path: str, counter: list[int], frame: Frame) -> Any:
        mine = seq_path not in self.seqs
        if mine:
            self.seqs[seq_path] = _Seq(seq_path, cur, None, len(self.graph))
        out = super()._steps(steps, cur, seq_path, counter, frame)
        if mine:
            self.seqs[seq_path].output = out
        return out

    def trace(self, block: ast.Block, bfile: File, args: dict[str, Any] | None,
              inputs: list[TensorType] | None) -> Graph:
        """Elaborate `block` at the root path; `args`/`inputs` None for the entry."""
        frame = Frame("", block, bfile, {}, {})
        self.root_frame = frame
        self.graph.entry = block.name
        self.graph.add_module(ModuleInfo("", "block", block.name, {}, block.span, None))
        tvs = None
        try:
            self._bind_params(frame, block, args or {}, block.span, entry=args is None)
            if args is None:
                self._set_input_sizes(frame, block)
                self.overrides.clear()
            if self.generic:
                self._symbolic_params(frame, block)
            if inputs is not None:
                names = [s.name for s in block.body if isinstance(s, ast.In)]
                tvs = []
                for name, t in zip(names, inputs):
                    node = self.graph.add(Op.INPUT, (), {"name": name}, t, block.span, label=name)
                    self.graph.inputs.append(node.id)
                    tvs.append(TV(node.id))
            self._exec_block(frame, tvs, block.span)
        except Abort:
            pass
        outs = frame.outputs or []
        self.graph.outputs = [v.id for v in self._flatten_tensors(outs)]
        self.graph.modules[""].args = {p.name: frame.env.get(p.name) for p in block.params}
        self.outputs = list(outs)
        self.out_span = frame.out_span
        self.graph.constraints = self.constraints  # type: ignore[attr-defined]
        self.bag.raise_if_errors()
        if not self.graph.outputs or any(isinstance(v, Poison) for v in outs):
            self.bag.error("structure", f"block '{block.name}' has no `out` statement", block.name_span)
            self.bag.raise_if_errors()
        return self.graph


class Templates:
    """The block templates of a loaded program (a `TraceSource`): its entry block (or `entry`)
    with the `--set` values `sets`, and every block instance it calls, each traced on its own."""

    def __init__(self, program: Program, entry: str | None = None, sets: Mapping[str, Any] | None = None,
                 dtype: str | None = None) -> None:
        self.program = program
        self.entry = entry
        self.sets = dict(sets or {})
        # the model's floating-point dtype: `archc build --dtype`, else the file's `dtype` declaration
        self.dtype = dtype or program.dtype
        self._facts: dict[int, BlockFacts] = {}  # id(ast.Block) -> its facts
        self._blocks: dict[int, tuple[ast.Block, File]] = {}  # id(facts) -> the block and its file
        self._asserts: dict[int, AssertFact] = {}  # id(ast.Assert) -> its fact

    def entry_trace(self, generic: bool = False, concrete: set[str] | None = None,
                    at: Mapping[str, int] | None = None, sized: bool = False) -> BlockTrace:
        """The entry block with its declared input types, in the free sizes (valued as `at` says, where it
        gives a value: the other outcome of a condition on them); `sized`: at their values instead."""
        block = self.program.entry_block(self.entry)
        bfile = _file_of(self.program, block)
        tr = Tracer(self.program, dict(self.sets) | dict(at or {}), generic, concrete, sized)
        tr.trace(block, bfile, None, None)
        return self._finish(tr, block, True)

    def call_trace(self, parent: BlockTrace, call: CallRecord, generic: bool = False,
                   concrete: set[str] | None = None, at: Mapping[str, int] | None = None,
                   branches: bool = False) -> BlockTrace:
        """The block of `call` (recorded in `parent`) on its own, with class-local sizes;
        `generic`: with its integer parameters (but `concrete`) as symbols too; `at`: values for
        some input sizes (`x:h`) other than the parent's; `branches`: a condition on an input size
        that no layer's shape fixes is left to forward, instead of building the class for the size."""
        block, bfile = self._blocks[id(call.block)]
        sizes_only = {k: v for k, v in self.sets.items() if k in self.program.sizes}
        tr = Tracer(self.program, sizes_only, generic, concrete)
        for name, value in parent.graph.sizes.items():  # a free size the entry's inputs introduced (`h = tokens`)
            if name not in tr.graph.sizes:
                tr._declare_size(name, value, block.span)
        inputs: list[TensorType] = []
        for fact, v in zip(call.block.inputs, call.inputs):
            t = parent.type_of(v)
            axes = []
            for ax in t.axes:
                sym = f"{fact.name}:{ax.name}"
                value = (at or {}).get(sym, S.evaluate(ax.size, parent.values))
                if value is not None:
                    tr.values[sym] = value
                axes.append(dataclasses.replace(ax, size=S.symbol(sym)))
            inputs.append(dataclasses.replace(t, axes=tuple(axes)))
        args = {k: _concrete(v, parent.values, generic) for k, v in call.args.items()}
        tr.trace(block, bfile, args, inputs)
        return self._finish(tr, block, False, branches)

    # ---- records -------------------------------------------------------------------------------

    def facts(self, block: ast.Block, bfile: File) -> BlockFacts:
        """What code generation needs from a block's source; one object per block."""
        got = self._facts.get(id(block))
        if got is None:
            params = tuple(ParamFact(p.name, _literal_default(p)) for p in block.params)
            inputs = tuple(InputFact(s.name, s.span) for s in block.body if isinstance(s, ast.In))
            got = BlockFacts(block.name, block.span, params, inputs, frozenset(_assigned_once(block.body)))
            self._facts[id(block)] = got
            self._blocks[id(got)] = (block, bfile)
        return got

    def _assert(self, st: ast.Assert) -> AssertFact:
        got = self._asserts.get(id(st))
        if got is None:
            got = self._asserts[id(st)] = AssertFact(_param_expr(st.test), st.message)
        return got

    def _finish(self, tr: Tracer, block: ast.Block, is_entry: bool, branches: bool = False) -> BlockTrace:
        assert tr.root_frame is not None
        fixed: set[str] = set(tr.baked)
        for n in tr.graph:
            for p in n.params:
                for d in p.shape:
                    fixed |= S.free_names(d)
        if not is_entry and not branches:  # `if cin == cout` in a nested block: the size it reads is an argument
            for dec in tr.decisions:
                if not dec.in_assert and not dec.nested:
                    fixed |= {n for v in (dec.a, dec.b) if S.is_size(v) for n in S.free_names(v) if ":" in n}
        args = {k: _concrete(v, tr.values, tr.generic) for k, v in tr.graph.modules[""].args.items()}
        calls = {path: CallRecord(path, self.facts(c.block, c.file), c.args, tuple(_value(x) for x in c.inputs),
                                  tuple(_value(x) for x in c.outputs), c.start) for path, c in tr.calls.items()}
        seqs = {path: SeqRecord(path, _value(s.input), _value(s.output), s.start) for path, s in tr.seqs.items()}
        # the block's variables that are symbolic sizes, in order (scalars to name, hints for sizes)
        env = {k: v for k, v in tr.root_frame.env.items() if S.is_size(v) and not isinstance(v, int)}
        return BlockTrace(self.facts(block, tr.root_frame.file), tr.graph, calls, seqs,
                          tuple(_value(v) for v in tr.outputs), dict(tr.values), frozenset(fixed), args, is_entry,
                          tr.out_span, tuple(tr.decisions), dict(tr.params), env,
                          tuple((c.lhs, c.rhs) for c in tr.input_equalities),
                          tuple(self._assert(st) for st in tr.asserts), tuple(tr.built_inputs))


def _value(v: Any) -> Value:
    """A tensor value as a node id (a tuple of them for a tuple)."""
    if isinstance(v, TV):
        return v.id
    if isinstance(v, (tuple, list)):
        return tuple(_value(x) for x in v)
    raise ValueError(f"not a tensor value: {v!r}")


def _param_expr(e: ast.Expr) -> ParamExpr:
    """An expression on parameters, as the plain tree code generation prints (an assert's test)."""
    if isinstance(e, (ast.Number, ast.Bool, ast.String)):
        return Lit(e.value)
    if isinstance(e, ast.Var):
        return Name(e.name)
    if isinstance(e, ast.BinOp):
        return Binary(e.op, _param_expr(e.left), _param_expr(e.right))
    if isinstance(e, ast.UnaryOp):
        return Unary(e.op, _param_expr(e.operand))
    return Opaque()


def _literal_default(p: ast.Param) -> int | float | None:
    """A parameter's default when the .arch writes it as a plain number (else no default)."""
    e = p.default
    if isinstance(e, ast.Number):
        return e.value
    if isinstance(e, ast.UnaryOp) and e.op == "-" and isinstance(e.operand, ast.Number):
        return -e.operand.value
    return None


def _assigned_once(body: tuple[Any, ...]) -> set[str]:
    """Names a block assigns exactly once, at its top level (`width = planes * ...`)."""
    counts: dict[str, int] = {}

    def visit(stmts: tuple[Any, ...], top: bool) -> None:
        for st in stmts:
            if isinstance(st, ast.Let):
                for t in st.targets:
                    counts[t.name] = counts.get(t.name, 0) + (1 if top and len(st.targets) == 1 else 2)
            elif isinstance(st, ast.If):
                for _, b in st.branches:
                    visit(b, False)
                visit(st.orelse, False)
            elif isinstance(st, ast.For):
                visit(st.body, False)
    visit(body, True)
    return {k for k, n in counts.items() if n == 1}


def _concrete(v: Any, values: dict[str, int], unvalued: bool = False) -> Any:
    """A parameter value with every size evaluated (parameters are built into the class); `unvalued`: a
    size without a value stays symbolic (a generic class takes it as a constructor argument)."""
    if isinstance(v, (list, tuple)):
        return type(v)(_concrete(x, values, unvalued) for x in v)
    if isinstance(v, (bool, str, float, type(None))) or isinstance(v, Poison) or v is POISON:
        return v
    if S.is_size(v):
        got = S.evaluate(v, values)
        if got is None and unvalued:
            return v
        if got is None:
            name = next((n for n in sorted(S.free_names(v)) if n not in values), S.fmt(v))
            raise ArchError([Diagnostic("error", "codegen", f"a block parameter is {S.fmt(v)}, and the size "
                                        f"'{name}' has no value, but the block's class is built for its parameters: "
                                        f"give it one (`size {name} = ...`, or `--set {name}=...`)")])
        return got
    return v


def _file_of(program: Program, block: ast.Block) -> File:
    for f in program.files.values():
        if any(b is block for b in f.module.blocks):
            return f
    return program.root
