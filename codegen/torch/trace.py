"""Traces: one block instance elaborated on its own, as the class that code generation emits.

Code generation needs, per block instance, what the typed graph of the whole
program does not keep: which tensors went into each nested block call and
sequence and which came out, and sizes expressed in the instance's *own*
input sizes (so the emitted class works at every input size, and two
instances that differ only in where they sit in the network emit the same
class). A `Tracer` is an `Elaborator` that records those boundaries while it
elaborates one block with symbolic input sizes:

  - the entry block is elaborated as `archc check --symbolic` does it: its
    inputs are the declared types, in the free sizes (batch, H, W, ...);
  - any other block gets a fresh symbol per input axis (`x:h`), valued at the
    size the instance sees, so decisions the block makes on them are checked.

A symbol is *fixed* when a parameter shape depends on it (the input channels
of a conv): the emitted class is built for its value. Every other symbol is a
run-time size, read off the input's shape when forward needs it. A block whose
structure depends on a run-time size (`if h > 7 { ... }`) cannot become one
class; `check_decisions` reports it.

>>> from archc.dsl.loader import load
>>> p = load("t.arch", 'block B(n = 4) { in x: [b = 2, c = 8]\\n fc = linear(x, c -> n)\\n out fc }')
>>> t = trace_entry(p, None, {})
>>> str(t.graph.node(t.graph.outputs[0]).type), sorted(t.fixed)
('[b=2, c=4]', [])
"""

from __future__ import annotations

import dataclasses
from typing import Any

from archc.diagnostics import ArchError, Diagnostic, Span
from archc.dsl.elaborate import POISON, TV, Abort, Elaborator, Frame, Poison
from archc.dsl.loader import File, Program
from archc.grammar import ast
from archc.ir.graph import Graph, ModuleInfo, Op
from archc.shapes import pyexpr
from archc.shapes import sizes as S
from archc.shapes.types import TensorType


@dataclasses.dataclass
class CallRecord:
    """A block called at `path`: the tensors that went in and came out (in the tracer's graph)."""

    path: str
    block: ast.Block
    file: File
    args: dict[str, Any]
    inputs: list[Any]
    outputs: list[Any]
    start: int  # the graph's length when the call began: orders it among the nodes


@dataclasses.dataclass
class SeqRecord:
    """A sequence at `path` (the block's own path for `out seq(...)`): its input and output."""

    path: str
    input: Any
    output: Any
    start: int


@dataclasses.dataclass(frozen=True)
class Decision:
    """A condition of the block's own code that the sizes alone did not decide: `a op b` was `outcome`."""

    a: Any
    op: str
    b: Any
    outcome: bool
    span: Span
    in_assert: bool = False  # made while checking an `assert`: it does not change the layers


class BakeParams(Exception):
    """A generic trace met a parameter it cannot keep symbolic (a loop bound): trace again with
    these parameters at their values."""

    def __init__(self, names: set[str]):
        super().__init__(", ".join(sorted(names)))
        self.names = names


class Tracer(Elaborator):
    """An elaborator that records block-call and sequence boundaries and the block's decisions."""

    def __init__(self, program: Program, overrides: dict[str, Any] | None = None, generic: bool = False,
                 concrete: set[str] | None = None):
        super().__init__(program, overrides, symbolic=True)
        self.generic = generic
        self.concrete = concrete or set()  # parameters a generic trace keeps at their values
        self.calls: dict[str, CallRecord] = {}
        self.seqs: dict[str, SeqRecord] = {}
        self.decisions: list[Decision] = []
        self.asserts: list[ast.Assert] = []  # the block's own top-level asserts that ran
        self._in_assert = False
        self.input_equalities: list[Any] = []
        self.params: dict[str, str] = {}  # parameter -> its symbol, for a generic trace
        self.root_frame: Frame | None = None
        self.outputs: list[Any] = []
        self.out_span: Span | None = None

    def _exec_block(self, frame: Frame, inputs: list[Any] | None, call_span: Span) -> None:
        record = None
        if frame.path and frame.path not in self.calls and inputs is not None:  # inline calls at the root: own
            args = {p.name: frame.env.get(p.name) for p in frame.block.params}
            record = CallRecord(frame.path, frame.block, frame.file, args, list(inputs), [], len(self.graph))
            self.calls[frame.path] = record  # reserved now: an inline `out Block(...)` reuses the path
        super()._exec_block(frame, inputs, call_span)
        if record is not None:
            record.outputs = list(frame.outputs or [])

    def _input(self, frame: Frame, stmt: ast.In, actual: Any, call_span: Span) -> None:
        first = len(self.constraints)
        super()._input(frame, stmt, actual, call_span)
        if frame is self.root_frame:  # `in x: [chan = dim]`: the input size is the parameter
            self.input_equalities.extend(c for c in self.constraints[first:] if c.kind == "equal")

    def _decide(self, a: Any, op: str, b: Any, span: Span) -> bool:
        r = super()._decide(a, op, b, span)
        if self._scope == "":  # the block's own code (or an inline `out Block(...)`), not a nested block's
            self.decisions.append(Decision(a, op, b, r, span, self._in_assert))
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
                names = pyexpr.free_names(v) if S.is_size(v) else set()
                if names and all(n.startswith("@") for n in names):
                    raise BakeParams({n[1:] for n in names})
        return super()._range(frame, start, stop, span)

    def _symbolic_params(self, frame: Frame, block: ast.Block) -> None:
        """A generic trace: every integer parameter becomes a symbol, valued for decisions."""
        for p in block.params:
            v = frame.env.get(p.name)
            if isinstance(v, int) and not isinstance(v, bool) and p.name not in self.concrete:
                name = "@" + p.name
                frame.env[p.name] = pyexpr.param_symbol(name)
                self.values[name] = v
                self.params[p.name] = name

    def _steps(self, steps: tuple, cur: Any, seq_path: str, counter: list[int], frame: Frame) -> Any:
        mine = seq_path not in self.seqs
        if mine:
            self.seqs[seq_path] = SeqRecord(seq_path, cur, None, len(self.graph))
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


@dataclasses.dataclass
class Trace:
    """One traced block instance, ready for code generation."""

    block: ast.Block
    file: File
    graph: Graph
    calls: dict[str, CallRecord]
    seqs: dict[str, SeqRecord]
    outputs: list[Any]  # the block's `out` values (TVs, or tuples of TVs)
    values: dict[str, int]  # the value of every symbol that has one
    fixed: set[str]  # symbols the parameters depend on: built in at construction
    args: dict[str, Any]  # the block's parameters, concrete
    is_entry: bool
    out_span: Span | None = None  # the block's `out` statement
    decisions: list[Decision] = dataclasses.field(default_factory=list)
    params: dict[str, str] = dataclasses.field(default_factory=dict)  # parameter -> symbol (generic)
    env: dict[str, Any] = dataclasses.field(default_factory=dict)  # the block's variables at the end
    input_equalities: list[Any] = dataclasses.field(default_factory=list)  # from matching `in` types
    asserts: list[Any] = dataclasses.field(default_factory=list)

    def type_of(self, tv: TV) -> Any:
        return self.graph.node(tv.id).type


def _finish(tr: Tracer, block: ast.Block, bfile: File, is_entry: bool) -> Trace:
    fixed: set[str] = set()
    for n in tr.graph:
        for p in n.params:
            for d in p.shape:
                fixed |= pyexpr.free_names(d)
    args = {k: _concrete(v, tr.values) for k, v in tr.graph.modules[""].args.items()}
    env = dict(tr.root_frame.env) if tr.root_frame is not None else {}
    return Trace(block, bfile, tr.graph, tr.calls, tr.seqs, tr.outputs, dict(tr.values), fixed, args,
                 is_entry, tr.out_span, tr.decisions, dict(tr.params), env, list(tr.input_equalities),
                 list(tr.asserts))


def trace_entry(program: Program, entry: str | None, sets: dict[str, Any], generic: bool = False,
                concrete: set[str] | None = None) -> Trace:
    """Trace the entry block with its declared input types, in the free sizes."""
    block = program.entry_block(entry)
    bfile = _file_of(program, block)
    tr = Tracer(program, dict(sets), generic, concrete)
    tr.trace(block, bfile, None, None)
    return _finish(tr, block, bfile, True)


def trace_call(program: Program, sets: dict[str, Any], parent: Trace, call: CallRecord,
               generic: bool = False, concrete: set[str] | None = None) -> Trace:
    """Trace the block of `call` (recorded in `parent`) on its own, with class-local sizes;
    `generic`: with its integer parameters (but `concrete`) as symbols too."""
    sizes_only = {k: v for k, v in sets.items() if k in program.sizes}
    tr = Tracer(program, sizes_only, generic, concrete)
    inputs: list[TensorType] = []
    in_names = [s.name for s in call.block.body if isinstance(s, ast.In)]
    for name, tv in zip(in_names, call.inputs):
        t = parent.type_of(tv)
        axes = []
        for ax in t.axes:
            sym = f"{name}:{ax.name}"
            value = S.evaluate(ax.size, parent.values)
            if value is not None:
                tr.values[sym] = value
            axes.append(dataclasses.replace(ax, size=S.symbol(sym)))
        inputs.append(dataclasses.replace(t, axes=tuple(axes)))
    args = {k: _concrete(v, parent.values) for k, v in call.args.items()}
    tr.trace(call.block, call.file, args, inputs)
    return _finish(tr, call.block, call.file, False)


def _concrete(v: Any, values: dict[str, int]) -> Any:
    """A parameter value with every size evaluated (parameters are built into the class)."""
    if isinstance(v, (list, tuple)):
        return type(v)(_concrete(x, values) for x in v)
    if isinstance(v, (bool, str, float, type(None))) or isinstance(v, Poison) or v is POISON:
        return v
    if S.is_size(v):
        got = S.evaluate(v, values)
        if got is None:
            raise fail(f"a block parameter depends on a size with no value ({S.fmt(v)}); "
                       "give it one with --set")
        return got
    return v


def fail(message: str, span: Span | None = None) -> ArchError:
    """The error of code generation: located at `span` when there is one."""
    d = Diagnostic("error", "codegen", message) if span is None else Diagnostic("error", "codegen", message, span)
    return ArchError([d])


def _file_of(program: Program, block: ast.Block) -> File:
    for f in program.files.values():
        if any(b is block for b in f.module.blocks):
            return f
    return program.root
