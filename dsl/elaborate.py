"""Elaboration: the AST of a program becomes the typed graph.

Block calls are expanded in place (their nodes carry the block instance's path
as `scope`, and `Graph.modules` keeps the block tree); loops and `seq` steps
are unrolled; every primitive call becomes a node typed by its shape rule
(shapes/rules.py). Problems are collected, not raised one at a time: a failed
op yields a poison value that silently propagates, so one run reports every
independent error.

Sizes are Python ints when concrete and sympy expressions (through
`shapes.sizes`) when a free size is symbolic. Requirements on sizes that cannot
be decided (U-Net joins, divisibility) are recorded as `Constraint`s and, when
the free sizes have values, checked against those values on the spot.

>>> from archc.dsl.loader import load
>>> p = load("t.arch", 'block B() { in x: [n = 2, c = 3]\\n fc = linear(x, c -> 4)\\n out fc }')
>>> g = elaborate(p)
>>> str(g.node(g.outputs[0]).type), list(g.state_dict())
('[n=2, c=4]', ['fc.weight', 'fc.bias'])
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Any

from archc.diagnostics import ArchError, DiagnosticBag, Span, did_you_mean
from archc.dsl.calls import Calls
from archc.dsl.expressions import Expressions
from archc.dsl.loader import File, Program
from archc.dsl.sequences import Sequences
from archc.dsl.values import (  # noqa: F401 - re-exported for code generation's tracer
    POISON,
    TV,
    Abort,
    BlockRef,
    Constraint,
    Frame,
    ListV,
    Poison,
    State,
    _RuleCtx,
    join,
)
from archc.grammar import ast
from archc.ir.graph import Graph, ModuleInfo
from archc.ir.limits import current as current_limits
from archc.ir.limits import note as limit_note
from archc.ops.registry import Op
from archc.shapes import sizes as S
from archc.shapes.types import DTYPES, Axis, ParamSpec, TensorType, TupleType

_ROUNDS = re.compile(r" \((?:these (\d+) calls )?(\d+) times, each (?:call|round) inside the one before\)$")


def _fold_recursion(notes: tuple[tuple[str, Span | None], ...]) -> tuple[tuple[str, Span | None], ...]:
    """The notes with a last round of up to 8 calls that repeats the round before it folded into it:
    the round once, its outermost note counting the rounds. Applied at each note added, so a
    runaway recursion 64 calls deep gives one note (or one round), not 64."""
    def plain(note: tuple[str, Span | None]) -> tuple[str, Span | None]:
        return (_ROUNDS.sub("", note[0]), note[1])

    for k in range(1, 9):
        if len(notes) < 2 * k:
            break
        last, before = notes[-k:], notes[-2 * k:-k]
        if [plain(n) for n in last] != [plain(n) for n in before]:
            continue
        m = _ROUNDS.search(before[-1][0])
        rounds = int(m.group(2)) + 1 if m and int(m.group(1) or 1) == k else 2
        what = f" ({rounds} times, each call inside the one before)" if k == 1 else \
            f" (these {k} calls {rounds} times, each round inside the one before)"
        text, span = plain(before[-1])
        return notes[:-2 * k] + before[:-1] + ((text + what, span),)
    return notes


def size_name(ax: ast.AxisDecl) -> str | None:
    """The name an axis declaration's size is: `H` of `h = H`, the axis's own of a bare `batch`; None for
    an expression (`h = 2 * H`, `c = 3`)."""
    if isinstance(ax.size, ast.Var):
        return ax.size.name
    return ax.name if ax.size is None else None


class Elaborator(Expressions, Calls, Sequences):
    """AST -> typed graph. The parts live in expressions.py, calls.py and sequences.py."""

    def __init__(self, program: Program, overrides: dict[str, int | float | bool] | None = None,
                 symbolic: bool = False):
        self.program = program
        self.overrides = dict(overrides or {})
        self.symbolic = symbolic
        self.bag = DiagnosticBag()
        self.constraints: list[Constraint] = []
        self.values: dict[str, int] = {}  # values of free sizes, for deciding what symbols cannot
        self.depth = 0
        self.asserting = 0  # inside an `assert`: its conditions on free sizes are requirements, not branches
        self.limits = current_limits()
        self.steps = 0
        self.repeat: tuple[str, int, int, int] | None = None
        self.graph = Graph("")
        self._sizes_env: dict[str, Any] = {}
        self._claimed: dict[str, Span] = {}
        self._init_sizes()

    # ---- free sizes ------------------------------------------------------------

    def _init_sizes(self) -> None:
        for name, (decl, f) in self.program.sizes.items():
            default = None
            if decl.default is not None:
                frame = Frame("", ast.Block("<sizes>", (), (), False, decl.span, decl.span), f,
                              dict(self._sizes_env), {})
                try:
                    default = self.ev(decl.default, frame)
                except Abort:
                    continue
                if not S.is_concrete(default):
                    self.bag.error("value", f"the default of size '{name}' must be an integer",
                                   decl.default.span)
                    continue
                default = int(default)
            self._declare_size(name, default, decl.span)

    def _declare_size(self, name: str, default: int | None, span: Span) -> Any:
        value = self.overrides.pop(name, default)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            self.bag.error("set", f"size '{name}' must be a positive integer, got {value}", span)
            # Fall back on the default only if it is a size itself (`size H = 0` is not one).
            value = default if isinstance(default, int) and default >= 1 else None
        if value is not None:
            self.values[name] = value
        self.graph.sizes[name] = value
        sym = S.symbol(name) if self.symbolic or value is None else value
        self._sizes_env[name] = sym
        return sym

    # ---- entry -------------------------------------------------------------------

    def run(self, entry: str | None) -> Graph:
        block = self.program.entry_block(entry)
        file = self._file_of(block)
        self.graph.entry = block.name
        frame = Frame("", block, file, {}, {})
        self.graph.add_module(ModuleInfo("", "block", block.name, {}, block.span, None))
        self._bind_params(frame, block, {}, block.span, entry=True)
        self._set_input_sizes(frame, block)
        for name in list(self.overrides):
            self.bag.error("set", f"--set {name}: no free size or entry parameter has that name"
                           f"{did_you_mean(name, list(self.graph.sizes) + [p.name for p in block.params])}")
        self.overrides.clear()
        self._exec_block(frame, inputs=None, call_span=block.span)
        outs = frame.outputs or []
        self.graph.outputs = [v.id for v in self._flatten_tensors(outs)]
        self.graph.modules[""].args = {p.name: frame.env.get(p.name) for p in block.params}
        if not self.bag.errors and not self.graph.outputs:
            self.bag.error("structure", f"block '{block.name}' has no `out` statement", block.name_span)
        self.graph.constraints = self.constraints  # type: ignore[attr-defined]
        self.bag.raise_if_errors()
        return self.graph

    def _set_input_sizes(self, frame: Frame, block: ast.Block) -> None:
        """A free size that an entry input's axis introduces (`in x: [chan = cin]`, no `size cin`) takes
        its `--set` value too: declared now, before the unused `--set`s are refused."""
        for st in block.body:
            for ax in st.type.axes if isinstance(st, ast.In) and isinstance(st.type, ast.TensorTypeExpr) else ():
                name = size_name(ax)
                if name in self.overrides and name not in frame.env and name not in self._sizes_env:
                    self._declare_size(name, None, ax.span)

    def _entry_value(self, frame: Frame, p: ast.Param, value: Any) -> Any:
        """An entry parameter's `--set` value: a string given to a parameter whose default is a block
        names a block (`--set unit=Wide`)."""
        if not isinstance(value, str) or p.default is None:
            return value
        try:
            default = self.ev(p.default, frame)
        except Abort:
            return value
        if not isinstance(default, BlockRef):
            return value
        found = frame.file.namespace.get(value)
        if found is None:
            names = [n for n in frame.file.namespace if "." not in n]
            self.bag.error("set", f"--set {p.name}: no block named '{value}'{did_you_mean(value, names)}")
            return default
        return BlockRef(found[0], found[1])

    def _file_of(self, block: ast.Block) -> File:
        for f in self.program.files.values():
            if any(b is block for b in f.module.blocks):
                return f
        return self.program.root

    # ---- blocks ------------------------------------------------------------------

    def _bind_params(self, frame: Frame, block: ast.Block, given: dict[str, Any], span: Span,
                     entry: bool = False) -> None:
        seen = set()
        for p in block.params:
            if p.name in seen:
                self.bag.error("redefined", f"parameter '{p.name}' appears twice", p.span)
            seen.add(p.name)
            if entry and p.name in self.overrides:
                frame.env[p.name] = self._entry_value(frame, p, self.overrides.pop(p.name))
            elif p.name in given:
                frame.env[p.name] = given[p.name]
            elif p.default is not None:
                try:
                    frame.env[p.name] = self.ev(p.default, frame)
                except Abort:
                    frame.env[p.name] = POISON
            else:
                self.bag.error("arg", f"block '{block.name}' needs a value for parameter '{p.name}'",
                               span, [(f"'{p.name}' is declared here", p.span)])
                raise Abort

    def call_block(self, block: ast.Block, bfile: File, call: ast.Call, implicit: Any,
                   frame: Frame, path: str | None) -> Any:
        unnamed = path is None  # allowed for a block without layers: its ops are the caller's, inline
        at = frame.path if path is None else path
        self.spend(1, call.span)
        if self.depth >= self.limits.depth:
            self.bag.error("structure", f"blocks nest deeper than {self.limits.depth} (does '{block.name}' "
                           "call itself?)", call.span, [(limit_note("depth"), None)])
            raise Abort
        in_names = [s.name for s in block.body if isinstance(s, ast.In)]
        pnames = [p.name for p in block.params]
        tensors: list[Any] = [implicit] if implicit is not None else []
        given: dict[str, Any] = {}
        positional = [a for a in call.args if isinstance(a, ast.PosArg)]
        for a in call.args:
            if isinstance(a, ast.MapArg):
                self.bag.error("arg", f"block '{block.name}' takes no axis map `a -> b`", a.span)
                raise Abort
        n_tensor_pos = max(len(in_names) - len(tensors), 0)
        for a in call.args:
            if isinstance(a, ast.KwArg) and a.name in in_names:
                n_tensor_pos = min(n_tensor_pos, in_names.index(a.name) - len(tensors))
        for a in positional[:n_tensor_pos]:
            tensors.append(self.ev(a.value, frame))
        extra = positional[n_tensor_pos:]
        if len(extra) > len(pnames):
            self.bag.error("arg", f"block '{block.name}' takes {len(in_names)} tensor(s) and "
                           f"{len(pnames)} parameter(s), but {len(tensors) + len(positional)} "
                           "positional arguments were given", extra[len(pnames)].span)
            raise Abort
        for p, a in zip(pnames, extra):
            given[p] = self.ev(a.value, frame)
        for a in call.args:
            if not isinstance(a, ast.KwArg):
                continue
            if a.name in in_names:
                idx = in_names.index(a.name)
                while len(tensors) <= idx:
                    tensors.append(None)
                tensors[idx] = self.ev(a.value, frame)
            elif a.name in pnames:
                if a.name in given:
                    self.bag.error("arg", f"parameter '{a.name}' is given twice", a.span)
                given[a.name] = self.ev(a.value, frame)
            else:
                self.bag.error("arg", f"block '{block.name}' has no parameter '{a.name}'"
                               f"{did_you_mean(a.name, pnames + in_names)}", a.span)
                raise Abort
        if len(tensors) != len(in_names) or any(t is None for t in tensors):
            self.bag.error("arg", f"block '{block.name}' takes {len(in_names)} tensor input(s) "
                           f"({', '.join(in_names)}), got {len([t for t in tensors if t is not None])}",
                           call.span)
            raise Abort
        if any(isinstance(t, Poison) for t in tensors) or any(isinstance(v, Poison) for v in given.values()):
            return POISON
        inline = at == frame.path  # `out Block(...)`: the callee's layers are this block's
        inner = Frame(at, block, bfile, {}, {})
        if not inline:
            self._claim(frame, at, call.span)
            self.graph.add_module(ModuleInfo(at, "block", block.name, {}, call.span,
                                             self._parent_of(at), repeat=self._take_repeat()))
        self._bind_params(inner, block, given, call.span)
        if not inline:
            self.graph.modules[at].args = {p: inner.env.get(p) for p in pnames}
        layers: list[str] = []
        outer_claims = self._claimed
        if unnamed:
            self._claimed = {}  # the callee's own names, apart from the caller's
        self.depth += 1
        first_new = len(self.bag.items)
        try:
            self._exec_block(inner, tensors, call.span)
        finally:
            self.depth -= 1
            self._note_caller(first_new, block.name, call.span)
            if unnamed:
                layers = [p.rsplit(".", 1)[-1] for p in self._claimed]
                self._claimed = outer_claims
        if inner.outputs is None:
            self.bag.error("structure", f"block '{block.name}' has no `out` statement", block.name_span)
            raise Abort
        if unnamed and layers:
            self.bag.error("structure", f"a call of block '{block.name}' needs a name: it has layers "
                           f"({', '.join(repr(n) for n in layers[:3])}{', ...' if len(layers) > 3 else ''}): "
                           f"write `name = {call.func}(...)`", call.span)
            raise Abort
        return inner.outputs[0] if len(inner.outputs) == 1 else tuple(inner.outputs)

    def _note_caller(self, first: int, block: str, span: Span) -> None:
        """Errors inside a block instance say which call made it (innermost first). A recursion
        (a call, or a round of calls, made again inside itself) is noted once with a count."""
        for i in range(first, len(self.bag.items)):
            d = self.bag.items[i]
            notes = _fold_recursion(d.notes + ((f"in block '{block}' called here", span),))
            self.bag.items[i] = dataclasses.replace(d, notes=notes)

    def _exec_block(self, frame: Frame, inputs: list[Any] | None, call_span: Span) -> None:
        n_in = 0
        for stmt in frame.block.body:
            if isinstance(stmt, ast.In):
                self._input(frame, stmt, inputs[n_in] if inputs is not None else None, call_span)
                n_in += 1
        self._exec(frame, [s for s in frame.block.body if not isinstance(s, ast.In)])

    def _exec(self, frame: Frame, stmts: list | tuple) -> None:
        for stmt in stmts:
            self.spend(1, stmt.span)
            try:
                self._stmt(frame, stmt)
            except Abort:
                if isinstance(stmt, ast.Let):
                    self._poison_targets(frame, stmt)
            self.check_nodes(stmt.span)  # the innermost statement that grew the graph past the budget

    def _poison_targets(self, frame: Frame, stmt: ast.Let) -> None:
        """A failed `x = ...` leaves x poisoned, so its uses add no 'not defined' errors."""
        for t in stmt.targets:
            if t.index is None:
                frame.env[t.name] = POISON
                continue
            lst = frame.env.get(t.name)
            if not isinstance(lst, ListV):
                lst = frame.env[t.name] = ListV({})
            n_errors = len(self.bag.items)
            try:
                idx = self.ev(t.index, frame)
            except Abort:
                idx = None
            del self.bag.items[n_errors:]  # the index was already reported, if it is wrong
            if S.is_concrete(idx):
                lst.items[int(idx)] = POISON

    def _stmt(self, frame: Frame, stmt: Any) -> None:
        if isinstance(stmt, ast.Let):
            self._let(frame, stmt)
        elif isinstance(stmt, ast.Out):
            if frame.outputs is not None:
                self.bag.error("structure", "a block has one `out` statement; this is the second",
                               stmt.span, [("the first is here", frame.out_span)])
                raise Abort
            counter = [0]
            if stmt.name is not None:  # `out linear(...) as "head"`: a layer of this block, named
                assert stmt.name_span is not None
                if len(stmt.values) != 1:
                    self.bag.error("structure", f"`as \"name\"` names one layer; this `out` has {len(stmt.values)} "
                                   "values", stmt.name_span)
                    raise Abort
                path = join(frame.path, self._label(stmt.name, frame, stmt.name_span, "layer name"))
                frame.outputs = [self.ev(stmt.values[0], frame, path)]
            else:
                frame.outputs = [self._out_value(v, frame, counter) for v in stmt.values]
            frame.out_span = stmt.span
            for v in frame.outputs:
                if not self._is_tensorish(v):
                    self.bag.error("type", f"`out` takes tensors, not {self._kind(v)}", stmt.span)
        elif isinstance(stmt, (ast.ParamDecl, ast.BufferDecl)):
            self._state(frame, stmt)
        elif isinstance(stmt, ast.If):
            for test, body in stmt.branches:
                if self.truth(self.ev(test, frame), test.span):
                    self._exec(frame, body)
                    return
            self._exec(frame, stmt.orelse)
        elif isinstance(stmt, ast.For):
            for i in self._iterate(frame, stmt):
                frame.env[stmt.var] = i
                self._exec(frame, stmt.body)
        elif isinstance(stmt, ast.Assert):
            self.asserting += 1
            try:
                holds = self.truth(self.ev(stmt.test, frame), stmt.test.span)
            finally:
                self.asserting -= 1
            if not holds:
                self.bag.error("constraint", stmt.message or "assertion failed", stmt.span)
        elif isinstance(stmt, ast.In):
            self.bag.error("structure", "`in` statements belong at the top of a block body", stmt.span)

    def _out_value(self, v: ast.Expr, frame: Frame, counter: list[int]) -> Any:
        """A value of `out`: a sequence's steps and an inline block call's layers are the block's own;
        `out if c then seq(x) { ... } else x` is the value chosen, as if it were written alone."""
        while isinstance(v, ast.Cond):
            v = v.then if self.truth(self.ev(v.test, frame), v.test.span) else v.orelse
        if isinstance(v, ast.SeqExpr):
            return self._out_seq(v, frame, counter)
        if self._is_block_call(v, frame):
            return self.ev(v, frame, frame.path)
        return self.ev(v, frame)

    def _iterate(self, frame: Frame, loop: ast.For | ast.ForStep | ast.ListComp) -> Sequence[Any]:
        """What a `for` (or a list comprehension) binds its variable to, in order: `start..stop`, or a
        list's items."""
        if loop.items is None:
            assert loop.start is not None and loop.stop is not None
            return self._range(frame, loop.start, loop.stop, loop.span)
        v = self.ev(loop.items, frame)
        if isinstance(v, Poison):
            raise Abort
        if not isinstance(v, (list, tuple)):
            self.bag.error("type", f"a `for` runs over a range `start..stop` or a list, got {self._kind(v)}",
                           loop.items.span)
            raise Abort
        self.spend(len(v), loop.span)
        return list(v)

    def _range(self, frame: Frame, start: ast.Expr, stop: ast.Expr, span: Span) -> range:
        a, b = self.ev(start, frame), self.ev(stop, frame)
        for v, e in ((a, start), (b, stop)):
            if isinstance(v, Poison):
                raise Abort
            if not S.is_concrete(v):
                self.bag.error("type", f"a loop bound must be a concrete integer, got {self._kind(v)}", e.span)
                raise Abort
        steps = range(int(a), int(b))
        self.spend(max(int(b) - int(a), 0), span)  # the whole loop up front: one that cannot finish stops here
        return steps

    # ---- inputs and types -----------------------------------------------------------

    def _input(self, frame: Frame, stmt: ast.In, actual: Any, call_span: Span) -> None:
        decl = stmt.type
        if isinstance(decl, ast.TupleTypeExpr):
            self.bag.error("type", "tuple-typed inputs are written as several `in` statements", decl.span)
            raise Abort
        self._dtype(decl)
        if actual is None:  # the entry: the declaration defines the input
            axes = []
            for ax in decl.axes:
                if ax.name is None:
                    self.bag.error("type", "the entry's inputs need every axis spelled out, not `...`",
                                   ax.span)
                    raise Abort
                axes.append(Axis(ax.name, self._entry_size(frame, ax)))
            if len({a.name for a in axes}) != len(axes):
                self.bag.error("axis", "an axis name appears twice in the type", decl.span)
            t = TensorType(tuple(axes), decl.dtype or "f32")
            node = self.graph.add(Op.INPUT, (), {"name": stmt.name}, t, stmt.span, scope=frame.path,
                                  label=stmt.name)
            self.graph.inputs.append(node.id)
            frame.env[stmt.name] = TV(node.id)
            return
        if isinstance(actual, Poison):
            frame.env[stmt.name] = POISON
            return
        if not isinstance(actual, TV) or not isinstance(self.type_of(actual), TensorType):
            self.bag.error("type", f"input '{stmt.name}' of block '{frame.block.name}' must be a tensor, "
                           f"got {self._kind(actual)}", call_span, [("declared here", stmt.span)])
            raise Abort
        t = self.type_of(actual)
        assert isinstance(t, TensorType)
        frame.env[stmt.name] = actual
        self._match(frame, stmt, decl, t, call_span)

    def _entry_size(self, frame: Frame, ax: ast.AxisDecl) -> Any:
        assert ax.name is not None
        if ax.size is None or (isinstance(ax.size, ast.Var) and ax.size.name not in frame.env
                               and ax.size.name not in self._sizes_env):
            name = size_name(ax)
            assert name is not None
            if name in frame.env:  # a parameter of the entry block named like the axis: its value, a size
                return self._as_size(frame.env[name], ax.span, f"the size of axis '{ax.name}' (the parameter "
                                     f"'{name}')", 1)
            if name not in self._sizes_env:
                self._declare_size(name, None, ax.span)
            frame.env[name] = self._sizes_env[name]
            return frame.env[name]
        v = self.ev(ax.size, frame)
        return self._as_size(v, ax.size.span, f"the size of axis '{ax.name}'", 1)

    def _match(self, frame: Frame, stmt: ast.In, decl: ast.TensorTypeExpr, t: TensorType,
               call_span: Span) -> None:
        notes = [(f"'{stmt.name}' is declared here as {self._decl_str(decl)}", decl.span)]
        where = f"block '{frame.block.name}' expects {stmt.name}: {self._decl_str(decl)}, but got {t}"
        if decl.dtype is not None and decl.dtype != t.dtype:
            self.bag.error("type", where, call_span, notes)
            raise Abort
        ell = [i for i, a in enumerate(decl.axes) if a.name is None]
        if len(ell) > 1:
            self.bag.error("type", "a type has at most one `...`", decl.span)
            raise Abort
        if ell:
            head, tail = decl.axes[:ell[0]], decl.axes[ell[0] + 1:]
            if len(t.axes) < len(head) + len(tail):
                self.bag.error("axis", where, call_span, notes)
                raise Abort
            pairs = list(zip(head, t.axes[:len(head)])) + list(zip(tail, t.axes[len(t.axes) - len(tail):]))
        else:
            if len(decl.axes) != len(t.axes):
                self.bag.error("axis", where, call_span, notes)
                raise Abort
            pairs = list(zip(decl.axes, t.axes))
        for d, a in pairs:
            if d.name != a.name:
                self.bag.error("axis", f"{where}: axis '{a.name}' stands where '{d.name}' is expected",
                               call_span, notes)
                raise Abort
            name = d.name if d.size is None else (d.size.name if isinstance(d.size, ast.Var) else None)
            if name is not None and name not in frame.env and name not in self._sizes_env:
                frame.env[name] = a.size  # binds the size, e.g. `chan = cin` with cin unknown
                continue
            if d.size is None:
                continue  # a bare axis name matches any size
            want = self._as_size(self.ev(d.size, frame), d.size.span, f"the size of '{d.name}'")
            self._require_equal(a.size, want, f"axis '{a.name}' of {stmt.name} (block "
                                f"'{frame.block.name}' wants {S.fmt(want)})", call_span, notes)

    def _decl_str(self, decl: ast.TensorTypeExpr) -> str:
        parts = []
        for a in decl.axes:
            parts.append("..." if a.name is None else a.name)
        return "[" + ", ".join(parts) + "]"

    def _dtype(self, decl: ast.TensorTypeExpr) -> str:
        """The declared dtype (f32 when none is written); an unknown one is an error at the type."""
        if decl.dtype is not None and decl.dtype not in DTYPES:
            self.bag.error("type", f"unknown dtype '{decl.dtype}'{did_you_mean(decl.dtype, DTYPES)}; "
                           f"one of {', '.join(DTYPES)}", decl.span)
            raise Abort
        return decl.dtype or "f32"

    def _state(self, frame: Frame, stmt: ast.ParamDecl | ast.BufferDecl) -> None:
        """`param` (learned) and `buffer` (not learned) tensors: a state_dict entry and a source node."""
        learned = isinstance(stmt, ast.ParamDecl)
        what = "a learned tensor" if learned else "a buffer"
        decl = stmt.type
        if not isinstance(decl, ast.TensorTypeExpr):
            self.bag.error("type", f"{what} has one tensor type", decl.span)
            raise Abort
        dtype = self._dtype(decl)
        if learned and DTYPES[dtype].kind in ("int", "bool"):
            self.bag.error("type", f"a learned tensor is floating-point or complex, not {dtype}: "
                           f"declare integer or boolean state with `buffer {stmt.name}: {dtype}[...]`", decl.span)
            raise Abort
        persistent = True
        for opt in stmt.options if isinstance(stmt, ast.BufferDecl) else ():
            if opt.name != "persistent":
                self.bag.error("arg", f"a buffer has one option, `persistent = false`, not '{opt.name}'"
                               f"{did_you_mean(opt.name, ['persistent'])}", opt.span)
                raise Abort
            value = self.ev(opt.value, frame)
            if not isinstance(value, bool):
                self.bag.error("type", f"persistent is true or false, got {self._kind(value)}", opt.value.span)
                raise Abort
            persistent = value
        axes: list[Axis] = []
        for ax in decl.axes:
            if ax.name is None or ax.size is None:
                self.bag.error("type", "every axis of a learned tensor needs a size, as in [tok = 197]",
                               ax.span)
                raise Abort
            if any(a.name == ax.name for a in axes):
                self.bag.error("axis", f"axis '{ax.name}' appears twice in the type", ax.span)
                raise Abort
            axes.append(Axis(ax.name, self._as_size(self.ev(ax.size, frame), ax.size.span,
                                                    f"the size of '{ax.name}'", 1)))
        t = TensorType(tuple(axes), dtype)
        self._claim(frame, join(frame.path, stmt.name), stmt.span)
        init = self.ev(stmt.init, frame) if stmt.init is not None else "zeros"
        if init != "zeros" and (isinstance(init, bool) or not isinstance(init, (int, float))):
            self.bag.error("type", f"the initial value of {what} is a number, got {self._kind(init)}",
                           stmt.init.span if stmt.init is not None else stmt.span)
            raise Abort
        if isinstance(init, float) and not math.isfinite(init):
            self.bag.error("value", f"the initial value of {what} must be finite, got {init}",
                           stmt.init.span if stmt.init is not None else stmt.span)
            raise Abort
        spec = ParamSpec(stmt.name, t.shape, buffer=not learned, dtype=dtype, persistent=persistent)
        attrs = {"name": stmt.name, "init": init} | ({} if learned else {"persistent": persistent})
        node = self.graph.add(Op.PARAM if learned else Op.BUFFER, (), attrs, t, stmt.span,
                              path=frame.path or None, scope=frame.path, params=(spec,), label=stmt.name)
        frame.env[stmt.name] = TV(node.id)

    # ---- statements ---------------------------------------------------------------------

    def _let(self, frame: Frame, stmt: ast.Let) -> None:
        if stmt.name is not None:
            self._let_named(frame, stmt)
            return
        if len(stmt.targets) == 1:
            t = stmt.targets[0]
            if t.index is None:
                frame.env[t.name] = self.ev(stmt.value, frame, join(frame.path, t.name))
                return
            lst, idx = self._element(frame, t)
            list_path = join(frame.path, t.name)
            lst.items[idx] = self.ev(stmt.value, frame, join(list_path, str(idx)), list_path=list_path)
            return
        value = self.ev(stmt.value, frame)
        items = self._unpack(value, len(stmt.targets), stmt.span)
        for tgt, v in zip(stmt.targets, items):
            if tgt.index is not None:
                self.bag.error("structure", "unpacking into list elements is not supported", tgt.span)
                raise Abort
            frame.env[tgt.name] = v

    def _let_named(self, frame: Frame, stmt: ast.Let) -> None:
        """`x = Layer(x, d) as "layer{i}"`: the variable is `x`, the layer's name (its state_dict keys) is
        the template with the loop variables' values, as a quoted step label in a `seq`."""
        assert stmt.name is not None and stmt.name_span is not None
        if len(stmt.targets) != 1:
            self.bag.error("structure", "`as \"name\"` names one layer; this statement binds "
                           f"{len(stmt.targets)} names", stmt.name_span)
            raise Abort
        t = stmt.targets[0]
        path = join(frame.path, self._label(stmt.name, frame, stmt.name_span, "layer name"))
        if t.index is None:
            frame.env[t.name] = self.ev(stmt.value, frame, path)
            return
        lst, idx = self._element(frame, t)
        lst.items[idx] = self.ev(stmt.value, frame, path)

    def _element(self, frame: Frame, t: ast.Target) -> tuple[ListV, int]:
        """The list of `name[i] = ...` (a new one if `name` holds none) and the concrete index i."""
        assert t.index is not None
        idx = self.ev(t.index, frame)
        if not S.is_concrete(idx):
            self.bag.error("type", "a list index must be a concrete integer", t.index.span)
            raise Abort
        lst = frame.env.get(t.name)
        if not isinstance(lst, ListV):
            lst = frame.env[t.name] = ListV({})
        return lst, int(idx)

    def _unpack(self, value: Any, n: int, span: Span) -> list[Any]:
        if isinstance(value, Poison):
            return [POISON] * n
        if isinstance(value, TV) and isinstance(self.type_of(value), TupleType):
            tt = self.type_of(value)
            assert isinstance(tt, TupleType)
            if len(tt.items) != n:
                self.bag.error("type", f"cannot unpack {len(tt.items)} tensors into {n} names", span)
                raise Abort
            return [self._getitem(value, i, span) for i in range(n)]
        if isinstance(value, (tuple, list)):
            if len(value) != n:
                self.bag.error("type", f"cannot unpack {len(value)} values into {n} names", span)
                raise Abort
            return list(value)
        self.bag.error("type", f"cannot unpack {self._kind(value)} into {n} names", span)
        raise Abort

    def _getitem(self, value: TV, i: int, span: Span) -> TV:
        tt = self.type_of(value)
        assert isinstance(tt, TupleType)
        node = self.graph.add(Op.GETITEM, (value.id,), {"index": i}, tt.items[i], span,
                              scope=self._scope)
        return TV(node.id)

    # ---- module paths ---------------------------------------------------------------------

    _scope = ""

    def _claim(self, frame: Frame, path: str, span: Span) -> None:
        """Register a state-owning name; duplicate names are errors."""
        first = self._claimed.get(path)
        if first is not None:
            self.bag.error("redefined", f"'{path.rsplit('.', 1)[-1]}' already names a layer here; "
                           "pick another name", span, [("first defined here", first)])
            raise Abort
        self._claimed[path] = span

    def _parent_of(self, path: str) -> str | None:
        parent = path.rsplit(".", 1)[0] if "." in path else ""
        while parent not in self.graph.modules and parent:
            parent = parent.rsplit(".", 1)[0] if "." in parent else ""
        return parent

    def _take_repeat(self) -> tuple[str, int, int, int] | None:
        r, self.repeat = self.repeat, None
        return r


def elaborate(program: Program, entry: str | None = None,
              overrides: dict[str, int | float | bool] | None = None, symbolic: bool = False) -> Graph:
    """Build the typed graph of `entry` (default: the file's entry). Raises ArchError."""
    el = Elaborator(program, overrides, symbolic)
    try:
        return el.run(entry)
    except ArchError as e:
        seen = {id(d) for d in e.diagnostics}
        extra = [d for d in el.bag.items if id(d) not in seen]
        raise ArchError(extra + e.diagnostics) from None
    except Abort:
        el.bag.raise_if_errors()
        raise

