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
import operator
import re
from typing import Any

from archc.diagnostics import ArchError, DiagnosticBag, Span, did_you_mean
from archc.dsl.ir import DTYPE_BYTES, Axis, Graph, ModuleInfo, Op, TensorType, TupleType
from archc.dsl.loader import File, Program
from archc.dsl.ops import OPS, REQUIRED, OpSig
from archc.grammar import ast
from archc.shapes import sizes as S
from archc.shapes.rules import SHAPE_RULES, ShapeError

_FLOAT_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
              "//": operator.floordiv, "%": operator.mod, "**": operator.pow}

MAX_DEPTH = 64
MAX_NODES = 2_000_000
MAX_LOOP = 100_000


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


@dataclasses.dataclass(frozen=True)
class Constraint:
    kind: str  # "equal" | "divisible" | "positive" | "assumed"
    lhs: Any
    rhs: Any
    what: str
    span: Span


class Abort(Exception):
    """Stops elaborating the current statement (its diagnostic is already recorded)."""


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


class Elaborator:
    def __init__(self, program: Program, overrides: dict[str, int | float | bool] | None = None,
                 symbolic: bool = False):
        self.program = program
        self.overrides = dict(overrides or {})
        self.symbolic = symbolic
        self.bag = DiagnosticBag()
        self.constraints: list[Constraint] = []
        self.values: dict[str, int] = {}  # values of free sizes, for deciding what symbols cannot
        self.depth = 0
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
                frame.env[p.name] = self.overrides.pop(p.name)
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
        if path is None:
            self.bag.error("structure", f"a call of block '{block.name}' needs a name: write "
                           f"`name = {call.func}(...)`", call.span)
            raise Abort
        if self.depth >= MAX_DEPTH:
            self.bag.error("structure", f"blocks nest deeper than {MAX_DEPTH} (does '{block.name}' call "
                           "itself?)", call.span)
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
        inline = path == frame.path  # `out Block(...)`: the callee's layers are this block's
        inner = Frame(path, block, bfile, {}, {})
        if not inline:
            self._claim(frame, path, call.span)
            self.graph.add_module(ModuleInfo(path, "block", block.name, {}, call.span,
                                             self._parent_of(path), repeat=self._take_repeat()))
        self._bind_params(inner, block, given, call.span)
        if not inline:
            self.graph.modules[path].args = {p: inner.env.get(p) for p in pnames}
        self.depth += 1
        first_new = len(self.bag.items)
        try:
            self._exec_block(inner, tensors, call.span)
        finally:
            self.depth -= 1
            self._note_caller(first_new, block.name, call.span)
        if inner.outputs is None:
            self.bag.error("structure", f"block '{block.name}' has no `out` statement", block.name_span)
            raise Abort
        return inner.outputs[0] if len(inner.outputs) == 1 else tuple(inner.outputs)

    def _note_caller(self, first: int, block: str, span: Span) -> None:
        """Errors inside a block instance say which call made it (innermost first)."""
        for i in range(first, len(self.bag.items)):
            d = self.bag.items[i]
            self.bag.items[i] = dataclasses.replace(
                d, notes=d.notes + ((f"in block '{block}' called here", span),))

    def _exec_block(self, frame: Frame, inputs: list[Any] | None, call_span: Span) -> None:
        n_in = 0
        for stmt in frame.block.body:
            if isinstance(stmt, ast.In):
                self._input(frame, stmt, inputs[n_in] if inputs is not None else None, call_span)
                n_in += 1
        self._exec(frame, [s for s in frame.block.body if not isinstance(s, ast.In)])

    def _exec(self, frame: Frame, stmts: list | tuple) -> None:
        for stmt in stmts:
            try:
                self._stmt(frame, stmt)
            except Abort:
                if isinstance(stmt, ast.Let):
                    self._poison_targets(frame, stmt)
                continue

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
            frame.outputs = [self._out_seq(v, frame, counter) if isinstance(v, ast.SeqExpr)
                             else self.ev(v, frame, frame.path) if self._is_block_call(v, frame)
                             else self.ev(v, frame) for v in stmt.values]
            frame.out_span = stmt.span
            for v in frame.outputs:
                if not self._is_tensorish(v):
                    self.bag.error("type", f"`out` takes tensors, not {self._kind(v)}", stmt.span)
        elif isinstance(stmt, ast.ParamDecl):
            self._param(frame, stmt)
        elif isinstance(stmt, ast.If):
            for test, body in stmt.branches:
                if self.truth(self.ev(test, frame), test.span):
                    self._exec(frame, body)
                    return
            self._exec(frame, stmt.orelse)
        elif isinstance(stmt, ast.For):
            for i in self._range(frame, stmt.start, stmt.stop, stmt.span):
                frame.env[stmt.var] = i
                self._exec(frame, stmt.body)
        elif isinstance(stmt, ast.Assert):
            if not self.truth(self.ev(stmt.test, frame), stmt.test.span):
                self.bag.error("constraint", stmt.message or "assertion failed", stmt.span)
        elif isinstance(stmt, ast.In):
            self.bag.error("structure", "`in` statements belong at the top of a block body", stmt.span)

    def _range(self, frame: Frame, start: ast.Expr, stop: ast.Expr, span: Span) -> range:
        a, b = self.ev(start, frame), self.ev(stop, frame)
        for v, e in ((a, start), (b, stop)):
            if isinstance(v, Poison):
                raise Abort
            if not S.is_concrete(v):
                self.bag.error("type", f"a loop bound must be a concrete integer, got {self._kind(v)}", e.span)
                raise Abort
        if int(b) - int(a) > MAX_LOOP:
            self.bag.error("value", f"a loop of {int(b) - int(a)} steps is more than {MAX_LOOP}", span)
            raise Abort
        return range(int(a), int(b))

    # ---- inputs and types -----------------------------------------------------------

    def _input(self, frame: Frame, stmt: ast.In, actual: Any, call_span: Span) -> None:
        decl = stmt.type
        if isinstance(decl, ast.TupleTypeExpr):
            self.bag.error("type", "tuple-typed inputs are written as several `in` statements", decl.span)
            raise Abort
        if decl.dtype is not None and decl.dtype not in DTYPE_BYTES:
            self.bag.error("type", f"unknown dtype '{decl.dtype}'{did_you_mean(decl.dtype, DTYPE_BYTES)}",
                           decl.span)
            raise Abort
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
            name = ax.name if ax.size is None else ax.size.name  # type: ignore[union-attr]
            if name in frame.env:
                return frame.env[name]
            if name not in self._sizes_env:
                self._declare_size(name, None, ax.span)
            frame.env[name] = self._sizes_env[name]
            return frame.env[name]
        v = self.ev(ax.size, frame)
        return self._as_size(v, ax.size.span, f"the size of axis '{ax.name}'")

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

    def _param(self, frame: Frame, stmt: ast.ParamDecl) -> None:
        decl = stmt.type
        if not isinstance(decl, ast.TensorTypeExpr):
            self.bag.error("type", "a learned tensor has one tensor type", decl.span)
            raise Abort
        axes = []
        for ax in decl.axes:
            if ax.name is None or ax.size is None:
                self.bag.error("type", "every axis of a learned tensor needs a size, as in [tok = 197]",
                               ax.span)
                raise Abort
            axes.append(Axis(ax.name, self._as_size(self.ev(ax.size, frame), ax.size.span,
                                                    f"the size of '{ax.name}'")))
        t = TensorType(tuple(axes), decl.dtype or "f32")
        self._claim(frame, join(frame.path, stmt.name), stmt.span)
        from archc.dsl.ir import ParamSpec
        init = self.ev(stmt.init, frame) if stmt.init is not None else "zeros"
        node = self.graph.add(Op.PARAM, (), {"name": stmt.name, "init": init}, t, stmt.span,
                              path=frame.path or None, scope=frame.path,
                              params=(ParamSpec(stmt.name, t.shape),), label=stmt.name)
        frame.env[stmt.name] = TV(node.id)

    # ---- statements ---------------------------------------------------------------------

    def _let(self, frame: Frame, stmt: ast.Let) -> None:
        if len(stmt.targets) == 1:
            t = stmt.targets[0]
            if t.index is None:
                frame.env[t.name] = self.ev(stmt.value, frame, join(frame.path, t.name))
                return
            idx = self.ev(t.index, frame)
            if not S.is_concrete(idx):
                self.bag.error("type", "a list index must be a concrete integer", t.index.span)
                raise Abort
            lst = frame.env.get(t.name)
            if not isinstance(lst, ListV):
                lst = ListV({})
                frame.env[t.name] = lst
            list_path = join(frame.path, t.name)
            value = self.ev(stmt.value, frame, join(list_path, str(int(idx))), list_path=list_path)
            lst.items[int(idx)] = value
            return
        value = self.ev(stmt.value, frame)
        items = self._unpack(value, len(stmt.targets), stmt.span)
        for tgt, v in zip(stmt.targets, items):
            if tgt.index is not None:
                self.bag.error("structure", "unpacking into list elements is not supported", tgt.span)
                raise Abort
            frame.env[tgt.name] = v

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

    # ---- expressions ----------------------------------------------------------------------

    def ev(self, e: ast.Expr, frame: Frame, path: str | None = None, list_path: str | None = None) -> Any:
        """Evaluate an expression. `path` names the layer the outermost call may create."""
        self._scope = frame.path
        if isinstance(e, ast.Number):
            return e.value
        if isinstance(e, (ast.String, ast.Bool)):
            return e.value
        if isinstance(e, ast.Var):
            return self._lookup(e, frame)
        if isinstance(e, ast.Call):
            if list_path is not None and list_path not in self.graph.modules:
                self.graph.add_module(ModuleInfo(list_path, "list", "", {}, e.span, self._parent_of(list_path)))
            return self._call(e, frame, None, path)
        if isinstance(e, ast.SeqExpr):
            if list_path is not None and list_path not in self.graph.modules:
                self.graph.add_module(ModuleInfo(list_path, "list", "", {}, e.span, self._parent_of(list_path)))
            return self._seq(e, frame, path)
        if isinstance(e, ast.BinOp):
            return self._binop(e, frame)
        if isinstance(e, ast.UnaryOp):
            v = self.ev(e.operand, frame)
            if isinstance(v, Poison):
                return v
            if e.op == "not":
                return not self.truth(v, e.operand.span)
            if isinstance(v, TV):
                return self._scale(v, -1, e.span, frame)
            if isinstance(v, (int, float)) and not isinstance(v, bool) or S.is_size(v):
                return S.mul(-1, v) if S.is_size(v) else -v
            self.bag.error("type", f"cannot negate {self._kind(v)}", e.span)
            raise Abort
        if isinstance(e, ast.Cond):
            return self.ev(e.then if self.truth(self.ev(e.test, frame), e.test.span) else e.orelse, frame,
                           path)
        if isinstance(e, ast.Index):
            return self._index(e, frame)
        if isinstance(e, ast.TupleExpr):
            return tuple(self.ev(x, frame) for x in e.items)
        if isinstance(e, ast.ListExpr):
            out = []
            for x in e.items:
                if isinstance(x, (ast.KeyedItem, ast.EllipsisItem)):
                    self.bag.error("type", "`name = value` and `...` belong in tensor types, not in lists",
                                   x.span)
                    raise Abort
                out.append(self.ev(x, frame))
            return out
        raise AssertionError(f"unknown expression {type(e).__name__}")

    def _lookup(self, e: ast.Var, frame: Frame) -> Any:
        if e.name in frame.env:
            return frame.env[e.name]
        if e.name in self._sizes_env:
            return self._sizes_env[e.name]
        hint = did_you_mean(e.name, list(frame.env) + list(self._sizes_env) + ["true", "false"])
        extra = ""
        if not hint:
            axes = {a.name for v in frame.env.values() if isinstance(v, TV)
                    for a in getattr(self.type_of(v), "axes", ())}
            if e.name in axes:
                extra = f"; '{e.name}' is an axis: axes are named only where an op expects one"
        self.bag.error("name", f"'{e.name}' is not defined{hint}{extra}", e.span)
        raise Abort

    def _index(self, e: ast.Index, frame: Frame) -> Any:
        v = self.ev(e.value, frame)
        i = self.ev(e.index, frame)
        if isinstance(v, Poison) or isinstance(i, Poison):
            return POISON
        if not S.is_concrete(i):
            self.bag.error("type", f"an index must be a concrete integer, got {self._kind(i)}", e.index.span)
            raise Abort
        i = int(i)
        if isinstance(v, ListV):
            if i not in v.items:
                self.bag.error("name", f"element {i} of this list was never assigned"
                               f" (assigned: {sorted(v.items)})", e.span)
                raise Abort
            return v.items[i]
        if isinstance(v, TV) and isinstance(self.type_of(v), TupleType):
            tt = self.type_of(v)
            assert isinstance(tt, TupleType)
            if not -len(tt.items) <= i < len(tt.items):
                self.bag.error("value", f"index {i} is out of range for a tuple of {len(tt.items)}", e.span)
                raise Abort
            return self._getitem(v, i % len(tt.items), e.span)
        if isinstance(v, (tuple, list)):
            if not -len(v) <= i < len(v):
                self.bag.error("value", f"index {i} is out of range for {len(v)} items", e.span)
                raise Abort
            return v[i]
        self.bag.error("type", f"cannot index {self._kind(v)}", e.span)
        raise Abort

    def _binop(self, e: ast.BinOp, frame: Frame) -> Any:
        if e.op in ("and", "or"):
            left = self.truth(self.ev(e.left, frame), e.left.span)
            if (e.op == "and" and not left) or (e.op == "or" and left):
                return left
            return self.truth(self.ev(e.right, frame), e.right.span)
        a, b = self.ev(e.left, frame), self.ev(e.right, frame)
        if isinstance(a, Poison) or isinstance(b, Poison):
            return POISON
        ta, tb = isinstance(a, TV), isinstance(b, TV)
        if ta or tb:
            return self._tensor_binop(e, a, b, frame)
        if e.op in ("==", "!=", "<", "<=", ">", ">="):
            if isinstance(a, str) or isinstance(b, str) or isinstance(a, bool) or isinstance(b, bool):
                if e.op in ("==", "!="):
                    return (a == b) == (e.op == "==")
                self.bag.error("type", f"cannot order {self._kind(a)} and {self._kind(b)}", e.span)
                raise Abort
            self._number(a, e.left.span)
            self._number(b, e.right.span)
            r = S.compare(a, e.op, b)
            if r is None:
                r = self._decide(a, e.op, b, e.span)
            return r
        self._number(a, e.left.span)
        self._number(b, e.right.span)
        try:
            if isinstance(a, float) or isinstance(b, float):
                if not (S.is_concrete(a) or isinstance(a, float)) or not (S.is_concrete(b) or isinstance(b, float)):
                    self.bag.error("type", "a symbolic size cannot be mixed with a fraction", e.span)
                    raise Abort
                fa, fb = float(a), float(b)
                r = _FLOAT_OPS[e.op](fa, fb)  # only the chosen one: 0.1 * 0 must not divide by 0
                if isinstance(r, complex) or r != r:  # (-8.0) ** 0.5 is complex; inf - inf is nan
                    self.bag.error("value", f"this arithmetic has no real result ({fa:g} {e.op} {fb:g})", e.span)
                    raise Abort
                return r
            if e.op in ("/", "//", "%") and S.is_concrete(b) and int(b) == 0:
                self.bag.error("value", "division by zero", e.span)
                raise Abort
            if e.op == "**":
                if not (S.is_concrete(b) and 0 <= int(b) <= 64):
                    self.bag.error("value", "an exponent must be an integer from 0 to 64", e.right.span)
                    raise Abort
                out: Any = 1
                for _ in range(int(b)):
                    out = S.mul(out, a)
                return out
            fn = {"+": S.add, "-": lambda x, y: S.add(x, S.mul(-1, y)), "*": S.mul,
                  "/": S.truediv, "//": S.floordiv, "%": S.mod}[e.op]
            return fn(a, b)
        except (OverflowError, ZeroDivisionError, ValueError) as exc:
            self.bag.error("value", f"arithmetic failed: {exc}", e.span)
            raise Abort from None

    def _number(self, v: Any, span: Span) -> None:
        if isinstance(v, bool) or not (isinstance(v, float) or S.is_size(v)):
            self.bag.error("type", f"expected a number, got {self._kind(v)}", span)
            raise Abort

    def _decide(self, a: Any, op: str, b: Any, span: Span) -> bool:
        va, vb = S.evaluate(a, self.values), S.evaluate(b, self.values)
        if va is None or vb is None:
            free = sorted((S.free_names(a) | S.free_names(b)) - set(self.values))
            if not free:  # every size has a value, and still no number: a division by a zero size
                self.bag.error("value", "this condition has no value at these sizes (a division by zero?)",
                               span)
                raise Abort
            self.bag.error("value", f"this condition depends on the free size(s) {', '.join(free)}, "
                           f"which have no value; give one with --set {free[0]}=...", span)
            raise Abort
        r = S.compare(va, op, vb)
        assert r is not None
        self.constraints.append(Constraint("assumed", (a, op, b), r, "a condition on free sizes", span))
        return r

    def truth(self, v: Any, span: Span) -> bool:
        if isinstance(v, Poison):
            raise Abort
        if isinstance(v, bool):
            return v
        self.bag.error("type", f"a condition must be true or false, got {self._kind(v)}", span)
        raise Abort

    def _tensor_binop(self, e: ast.BinOp, a: Any, b: Any, frame: Frame) -> Any:
        ta, tb = isinstance(a, TV), isinstance(b, TV)
        if ta and tb:
            op = {"+": Op.ADD, "-": Op.SUB, "*": Op.MUL}.get(e.op)
            if op is None:
                self.bag.error("type", f"'{e.op}' is not defined between tensors (use +, - or *)", e.span)
                raise Abort
            what = {"+": "sum", "-": "difference", "*": "product"}[e.op]
            return self._apply(Op.ADD if op is Op.ADD else op, [a, b], {"what": what}, e.span, frame, None, {})
        t, other = (a, b) if ta else (b, a)
        if e.op == "*" or (e.op == "/" and ta):
            if not isinstance(other, (int, float)) or isinstance(other, bool):
                self.bag.error("type", f"a tensor can be scaled by a number, not by {self._kind(other)}", e.span)
                raise Abort
            factor = 1 / other if e.op == "/" else other
            return self._scale(t, factor, e.span, frame)
        self.bag.error("type", f"'{e.op}' between a tensor and {self._kind(other)} is not defined", e.span)
        raise Abort

    def _scale(self, t: TV, factor: float, span: Span, frame: Frame) -> Any:
        return self._apply(Op.SCALE, [t], {"factor": factor}, span, frame, None, {})

    # ---- calls -------------------------------------------------------------------------------

    def _call(self, call: ast.Call, frame: Frame, implicit: Any, path: str | None,
              seq_step: bool = False) -> Any:
        found = frame.file.namespace.get(call.func)
        if found is not None:
            return self.call_block(found[0], found[1], call, implicit, frame, path)
        sig = OPS.get(call.func)
        if sig is None:
            names = list(OPS) + list(frame.file.namespace)
            self.bag.error("name", f"no op or block named '{call.func}'{did_you_mean(call.func, names)}",
                           call.func_span)
            raise Abort
        inputs, attrs, arg_spans = self._bind(sig, call, frame, implicit)
        if any(isinstance(v, Poison) for v in inputs):
            return POISON
        return self._apply(sig.op, inputs, attrs, call.span, frame, path, arg_spans, sig.name, seq_step)

    def _bind(self, sig: OpSig, call: ast.Call, frame: Frame, implicit: Any
              ) -> tuple[list[Any], dict[str, Any], dict[str, Span]]:
        tensors: list[Any] = [implicit] if implicit is not None else []
        lo, hi = (sig.tensors, sig.tensors) if isinstance(sig.tensors, int) else sig.tensors
        pos = [a for a in call.args if isinstance(a, ast.PosArg)]
        i = 0
        while i < len(pos) and len(tensors) < hi:
            ex = pos[i].value
            if len(tensors) >= lo and self._looks_like_param(ex, frame):
                break
            v = self.ev(ex, frame)
            if lo != hi and isinstance(v, TV) and isinstance(self.type_of(v), TupleType):
                # a variadic op takes a tuple's tensors: concat(split(x, ...), axis = chan)
                v = tuple(self._getitem(v, j, pos[i].span) for j in range(len(self.type_of(v).items)))
            vs = list(v) if isinstance(v, tuple) and lo != hi else [v]
            for x in vs:
                if not isinstance(x, (TV, Poison)):
                    self.bag.error("type", f"{sig.name} expects a tensor here, got {self._kind(x)}",
                                   pos[i].span)
                    raise Abort
            tensors.extend(vs)
            i += 1
        if len(tensors) < lo:
            self.bag.error("arg", f"{sig.name} takes {lo} tensor input(s), got {len(tensors)}", call.span)
            raise Abort
        attrs: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        free_params = [p for p in sig.params if p.kind != "sizes_kw"]
        rest = pos[i:]
        for a in call.args:
            if isinstance(a, ast.MapArg):
                p = next((p for p in sig.params if p.kind in ("map", "renames")), None)
                if p is None:
                    self.bag.error("arg", f"{sig.name} takes no axis map `a -> b`", a.span)
                    raise Abort
                if p.kind == "renames":
                    attrs.setdefault(p.name, []).append(self._rename_pair(a))
                else:
                    if p.name in attrs:
                        self.bag.error("arg", f"{sig.name} takes one axis map", a.span)
                        raise Abort
                    attrs[p.name] = self._map(a, frame)
                spans[p.name] = a.span
        positional_params = [p for p in free_params if p.name not in attrs]
        if len(rest) > len(positional_params):
            self.bag.error("arg", f"{sig.name} got {len(rest) - len(positional_params)} positional argument(s) "
                           "too many; name the optional ones, as in k=3", rest[len(positional_params)].span)
            raise Abort
        for p, a in zip(positional_params, rest):
            attrs[p.name] = self._arg(sig, p, a.value, frame)
            spans[p.name] = a.span
        kw_sizes = next((p for p in sig.params if p.kind == "sizes_kw"), None)
        for a in call.args:
            if not isinstance(a, ast.KwArg):
                continue
            p = sig.param(a.name)
            if p is None or p.kind == "sizes_kw":
                if kw_sizes is not None:
                    sz = self._as_size(self.ev(a.value, frame), a.value.span, f"'{a.name}'")
                    (attrs.setdefault(kw_sizes.name, {}))[a.name] = sz
                    spans[kw_sizes.name] = a.span
                    continue
                self.bag.error("arg", f"{sig.name} has no argument '{a.name}'"
                               f"{did_you_mean(a.name, [q.name for q in sig.params])}", a.span)
                raise Abort
            if p.name in attrs:
                self.bag.error("arg", f"argument '{a.name}' is given twice", a.span)
                raise Abort
            attrs[p.name] = self._arg(sig, p, a.value, frame)
            spans[p.name] = a.span
        for p in sig.params:
            if p.name not in attrs:
                if p.default is REQUIRED:
                    example = {"map": "chan -> 64", "axis": "chan", "axes": "[h, w]", "str": '"..."'}.get(
                        p.kind, "3")
                    self.bag.error("arg", f"{sig.name} needs '{p.name}'"
                                   + ("" if p.kind == "map" else f" (as in {p.name}={example})")
                                   + (" (an axis map like `chan -> 64`)" if p.kind == "map" else ""),
                                   call.span)
                    raise Abort
                attrs[p.name] = p.default
        return tensors, attrs, spans

    def _looks_like_param(self, ex: ast.Expr, frame: Frame) -> bool:
        if isinstance(ex, (ast.String, ast.Number, ast.Bool, ast.ListExpr)):
            return True
        if isinstance(ex, ast.Var) and ex.name not in frame.env:
            return True
        return False

    def _axis_name(self, ex: Any, what: str) -> str:
        if isinstance(ex, ast.Var):
            return ex.name
        if isinstance(ex, ast.String) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ex.value):
            return ex.value
        self.bag.error("type", f"{what} must be an axis name, as in `chan`", ex.span)
        raise Abort

    def _map(self, a: ast.MapArg, frame: Frame) -> tuple[str, Any, str | None]:
        src = self._axis_name(a.source, "the left side of `->`")
        size = self._as_size(self.ev(a.size, frame), a.size.span, "the right side of `->`")
        return (src, size, a.rename)

    def _rename_pair(self, a: ast.MapArg) -> tuple[str, str]:
        if a.rename is not None:
            self.bag.error("arg", "rename takes `old -> new` pairs of axis names", a.span)
            raise Abort
        return (self._axis_name(a.source, "the old name"), self._axis_name(a.size, "the new name"))

    def _arg(self, sig: OpSig, p: Any, ex: ast.Expr, frame: Frame) -> Any:
        kind = p.kind
        if kind == "axis":
            return self._axis_name(ex, f"'{p.name}' of {sig.name}")
        if kind == "axes":
            if isinstance(ex, ast.ListExpr):
                names = tuple(self._axis_name(x, f"'{p.name}' of {sig.name}") for x in ex.items)
                if not names:
                    self.bag.error("arg", f"'{p.name}' needs at least one axis", ex.span)
                    raise Abort
                return names
            return (self._axis_name(ex, f"'{p.name}' of {sig.name}"),)
        if kind in ("map", "renames"):
            self.bag.error("arg", f"'{p.name}' of {sig.name} is an axis map, as in `chan -> 64`", ex.span)
            raise Abort
        v = self.ev(ex, frame)
        if isinstance(v, Poison):
            raise Abort
        if kind == "size":
            return self._as_size(v, ex.span, f"'{p.name}' of {sig.name}")
        if kind == "sizes":
            if isinstance(v, list):
                return [self._as_size(x, ex.span, f"'{p.name}' of {sig.name}") for x in v]
            return self._as_size(v, ex.span, f"'{p.name}' of {sig.name}")
        if kind == "pad":
            if isinstance(v, str):
                if v not in ("same", "valid"):
                    self.bag.error("value", f"pad is a size, a list, \"same\" or \"valid\", not \"{v}\"", ex.span)
                    raise Abort
                return v
            if isinstance(v, list):
                return [[self._as_size(y, ex.span, "pad") for y in x] if isinstance(x, list)
                        else self._as_size(x, ex.span, "pad") for x in v]
            return self._as_size(v, ex.span, "pad")
        if kind == "bool":
            if not isinstance(v, bool):
                self.bag.error("type", f"'{p.name}' of {sig.name} is true or false, got {self._kind(v)}", ex.span)
                raise Abort
            return v
        if kind in ("float", "number"):
            if v is None or isinstance(v, bool) or not (isinstance(v, float) or S.is_concrete(v)):
                self.bag.error("type", f"'{p.name}' of {sig.name} is a number, got {self._kind(v)}", ex.span)
                raise Abort
            return float(v) if kind == "float" else (int(v) if S.is_concrete(v) else v)
        if kind == "str":
            if not isinstance(v, str):
                self.bag.error("type", f"'{p.name}' of {sig.name} is a string, got {self._kind(v)}", ex.span)
                raise Abort
            if p.choices and v not in p.choices:
                self.bag.error("value", f"'{p.name}' of {sig.name} is one of "
                               f"{', '.join(repr(c) for c in p.choices)}, not {v!r}"
                               f"{did_you_mean(v, p.choices)}", ex.span)
                raise Abort
            return v
        raise AssertionError(kind)

    def _as_size(self, v: Any, span: Span, what: str) -> Any:
        if isinstance(v, Poison):
            raise Abort
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not S.is_size(v):
            self.bag.error("type", f"{what} must be an integer size, got {self._kind(v)}", span)
            raise Abort
        if S.is_concrete(v):
            if int(v) < 0:
                self.bag.error("value", f"{what} must not be negative, got {v}", span)
                raise Abort
            return int(v)
        if not all(s.is_integer for s in v.free_symbols) or (v.is_integer is False):
            self.bag.error("value", f"{what} is not a whole number: {S.fmt(v)}", span)
            raise Abort
        num, den = S.fraction(v)
        if den != 1:  # H / 2 is a size only where H is even: say so, as a concrete H would
            try:
                _RuleCtx(self, span, {}).require_divisible(num, den, f"{S.fmt(num)} by {S.fmt(den)} in {what}")
            except ShapeError as err:
                self.bag.error(err.code, err.message, span)
                raise Abort from None
        return v

    # ---- applying an op ---------------------------------------------------------------------------

    def _apply(self, op: Op, inputs: list[Any], attrs: dict[str, Any], span: Span, frame: Frame,
               path: str | None, arg_spans: dict[str, Span], name: str = "", seq_step: bool = False) -> Any:
        types = []
        for v in inputs:
            if isinstance(v, Poison):
                return POISON
            if not isinstance(v, TV):
                self.bag.error("type", f"{name or op.value} expects tensors, got {self._kind(v)}", span)
                raise Abort
            t = self.type_of(v)
            if isinstance(t, TupleType):
                self.bag.error("type", f"{name or op.value} expects a tensor, got a tuple {t}; index it or "
                               "unpack it first", span)
                raise Abort
            types.append(t)
        ctx = _RuleCtx(self, span, arg_spans)
        try:
            out_type, params = SHAPE_RULES[op](ctx, types, attrs)
        except ShapeError as err:
            where = arg_spans.get(err.arg, span) if err.arg else span
            prefix = "" if "what" in attrs else f"{name or op.value}: "  # `a + b` needs no "add: "
            self.bag.error(err.code, prefix + err.message, where)
            return POISON
        attrs.pop("what", None)
        if len(self.graph) >= MAX_NODES:
            self.bag.error("structure", f"the graph has more than {MAX_NODES} nodes", span)
            raise Abort
        in_seq = path is not None and seq_step
        if (params or in_seq) and path is None:
            self.bag.error("structure", f"{name or op.value} has parameters and needs a name: write "
                           f"`{name or op.value}1 = {name or op.value}(...)`", span)
            return POISON
        owner = path if (params or in_seq) else None
        if owner is not None:
            self._claim(frame, owner, span)
            self.graph.add_module(ModuleInfo(owner, "op", op.value, dict(attrs), span,
                                             self._parent_of(owner), repeat=self._take_repeat()))
        label = path.rsplit(".", 1)[-1] if path and not owner else ""
        node = self.graph.add(op, tuple(v.id for v in inputs), attrs, out_type, span, path=owner,
                              scope=frame.path, params=params, label=label)
        return TV(node.id)

    # ---- sequences ----------------------------------------------------------------------------------

    def _seq(self, e: ast.SeqExpr, frame: Frame, path: str | None) -> Any:
        if path is None:
            self.bag.error("structure", "a seq needs a name: write `name = seq(x) { ... }`", e.span)
            raise Abort
        cur = self.ev(e.input, frame)
        if isinstance(cur, Poison):
            return cur
        self._claim(frame, path, e.span)
        self.graph.add_module(ModuleInfo(path, "seq", "", {}, e.span, self._parent_of(path),
                                         repeat=self._take_repeat()))
        return self._steps(e.steps, cur, path, [0], frame)

    def _is_block_call(self, e: ast.Expr, frame: Frame) -> bool:
        """`out Block(...)`: an unnamed block call in `out` names its layers under the
        calling block itself, as a subclass inherits its parent's attributes
        (`ResNet50` is `ResNet([3, 4, 6, 3])`, with ResNet's state_dict keys)."""
        return isinstance(e, ast.Call) and e.func in frame.file.namespace

    def _out_seq(self, e: ast.SeqExpr, frame: Frame, counter: list[int]) -> Any:
        """`out seq(x) { ... }`: the steps are numbered under the block itself, as the
        children of an nn.Sequential subclass are (torchvision's MLPBlock,
        Conv2dNormActivation): `mlp = MLP(...)` owns mlp.0, mlp.1, ..."""
        cur = self.ev(e.input, frame)
        if isinstance(cur, Poison):
            return cur
        return self._steps(e.steps, cur, frame.path, counter, frame)

    def _steps(self, steps: tuple, cur: Any, seq_path: str, counter: list[int], frame: Frame) -> Any:
        for st in steps:
            if isinstance(cur, Poison):
                return cur
            try:
                cur = self._step(st, cur, seq_path, counter, frame)
            except Abort:
                return POISON
        return cur

    def _step(self, st: Any, cur: Any, seq_path: str, counter: list[int], frame: Frame) -> Any:
        if isinstance(st, ast.ForStep):
            out = cur
            for i in self._range(frame, st.start, st.stop, st.span):
                frame.env[st.var] = i
                self.repeat = (st.var, i, int(self.ev(st.start, frame)), int(self.ev(st.stop, frame)))
                out = self._steps(st.steps, out, seq_path, counter, frame)
                self.repeat = None
            return out
        if isinstance(st, ast.IfStep):
            chosen = st.then if self.truth(self.ev(st.test, frame), st.test.span) else st.orelse
            return self._steps(chosen, cur, seq_path, counter, frame)
        label = self._label(st.label, frame, st.span) if st.label is not None else None
        if label is None:
            label = str(counter[0])
            counter[0] += 1
        path = join(seq_path, label)
        if isinstance(st, ast.SeqStep):
            self._claim(frame, path, st.span)
            self.graph.add_module(ModuleInfo(path, "seq", "", {}, st.span, self._parent_of(path),
                                             repeat=self._take_repeat()))
            return self._steps(st.steps, cur, path, [0], frame)
        assert isinstance(st, ast.CallStep)
        out = self._call(st.call, frame, cur, path, seq_step=True)
        if isinstance(out, TV) and not isinstance(self.type_of(out), TensorType):
            self.bag.error("type", "a seq step must give one tensor", st.span)
            raise Abort
        if not isinstance(out, (TV, Poison)):
            self.bag.error("type", f"a seq step must give one tensor, got {self._kind(out)}", st.span)
            raise Abort
        return out

    def _label(self, template: str, frame: Frame, span: Span) -> str:
        def sub(m: re.Match) -> str:
            v = frame.env.get(m.group(1))
            if v is None or not S.is_concrete(v):
                self.bag.error("name", f"'{{{m.group(1)}}}' in a step name must be a loop variable", span)
                raise Abort
            return str(int(v))
        label = re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", sub, template)
        if not re.fullmatch(r"[A-Za-z0-9_]+", label):
            self.bag.error("name", f"step name '{label}' must be letters, digits and _", span)
            raise Abort
        return label

    # ---- helpers ------------------------------------------------------------------------------------

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
            return "a list of layers"
        if S.is_size(v):
            return f"the size {S.fmt(v)}"
        return "nothing"

    def _require_equal(self, a: Any, b: Any, what: str, span: Span, notes: list | None = None) -> None:
        try:
            _RuleCtx(self, span, {}).require_equal(a, b, what)
        except ShapeError as err:
            self.bag.error(err.code, err.message, span, notes or [])
            raise Abort from None


class _RuleCtx:
    """What shape rules see: size requirements decided now or recorded as constraints."""

    def __init__(self, el: Elaborator, span: Span, arg_spans: dict[str, Span]):
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
