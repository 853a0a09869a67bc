"""One traced block instance as the body of an nn.Module class (see generate.py for the design).

`ClassBuilder` turns a `BlockTrace` (ir/templates.py) into a `Variant`: the class's constructor
signature, its `__init__` and `forward` as statements, and the decisions the
trace took (`stride != 1` was true). A *generic* trace has the block's integer
parameters as symbols, so the statements are written in them
(`nn.Conv2d(cin, planes, kernel_size=1, bias=False)`); a *specialised* one has
every value built in. `merge` joins the variants of one generic class, traced
for different parameter values, into one body with Python `if`s on the
decisions that tell them apart (`if stride != 1 or cin != 4 * planes:`).

Statements are `Lines` (one statement, possibly on several lines) and `If`;
`flatten` indents them into text lines for the template.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Sequence
from typing import Any

from archc.codegen.namespace import MODULE_ATTRIBUTES, Namespace, check_attribute, check_step_name
from archc.diagnostics import ArchError, Diagnostic, Span
from archc.ir.graph import Node
from archc.ir.templates import Binary, BlockTrace, CallRecord, Lit, Name, ParamExpr, Unary, Value
from archc.ops import torch_lowering as L
from archc.ops.registry import Op
from archc.shapes import pyexpr
from archc.shapes import sizes as S
from archc.shapes.types import DTYPES, TensorType, TupleType, Type

# torch's windowed modules on axes moved into their layout (ops/torch_lowering.py's `Moved`): each
# helper class by its base, all on the `MovedAxes` mixin and the `moved` function
MOVED = {f"{base}{n}d{kind}At": f"{'' if kind else 'nn.'}{base}{n}d{kind}"
         for base, kinds in (("Conv", ("", "Padded")), ("ConvTranspose", ("", "Cropped")), ("MaxPool", ("",)),
                             ("AvgPool", ("",)), ("AdaptiveAvgPool", ("",)), ("AdaptiveMaxPool", ("",)),
                             ("ConstantPad", ("",)))
         for kind in kinds for n in (1, 2, 3)} | {"UpsampleAt": "nn.Upsample", "PoolPaddedAt": "PoolPadded"}
HELPERS = ("moved", "MovedAxes", *MOVED,
           "StochasticDepth", "stochastic_depth", "Permute", "Reduce", "Scale", "LayerNormAt", "LinearAt",
           "MultiheadAttentionAt",
           "RMSNormAt", "GroupNormAt", "BatchNormAt", "cast_floats", "LayerNormOver", "RMSNormOver",
           "Conv1dPadded", "Conv2dPadded", "Conv3dPadded",
           "ConvTranspose1dCropped", "ConvTranspose2dCropped", "ConvTranspose3dCropped",
           "check_shape", "pool_padded", "PoolPadded",
           "FoldBatchNorm")


class Fallback(Exception):
    """A generic class is not possible for this block (yet): emit a specialised one."""


class NeedsFixed(Exception):
    """The entry's layers need free sizes of the program when they are built (`heads = H // 3`, a linear
    on an axis `chan = cin` of a free size): generate again with these sizes built in (constructor
    arguments, or values in a specialised class) and checked by forward."""

    def __init__(self, names: frozenset[str]) -> None:
        super().__init__(", ".join(sorted(names)))
        self.names = names


class Code(str):
    """Python source standing for a value (a parameter expression) in a lowering's output."""

    def __repr__(self) -> str:
        return str(self)


# ---- statements -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Lines:
    lines: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class If:
    cond: str
    then: tuple[Any, ...]
    orelse: tuple[Any, ...]


def flat_values(values: Sequence[Any]) -> list[int]:
    """Tensor values (node ids), a tuple of them (a nested block's outputs) spread out: Python returns
    `a, b` alike whether a block's outputs are two tensors or one tuple of two."""
    out: list[int] = []
    for v in values:
        out.extend(flat_values(v) if isinstance(v, (tuple, list)) else [v])
    return out


def _free_size(name: str) -> bool:
    """A free size of the program (`H`), not a block input's size (`x:h`) or a parameter (`@dim`)."""
    return ":" not in name and not name.startswith("@")


def flatten(stmts: tuple | list, indent: str = "") -> list[str]:
    out: list[str] = []
    for s in stmts:
        if isinstance(s, Lines):
            out.extend(indent + line for line in s.lines)
            continue
        if s.then:
            out.append(f"{indent}if {s.cond}:")
            out.extend(flatten(s.then, indent + "    "))
            if s.orelse:
                out.append(f"{indent}else:")
                out.extend(flatten(s.orelse, indent + "    "))
        else:
            out.append(f"{indent}if not ({s.cond}):")
            out.extend(flatten(s.orelse, indent + "    "))
    return out


# ---- what a class needs to say ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Cond:
    init: str  # in __init__'s names
    forward: str  # in forward's (self.stride)
    outcome: bool
    # a condition on an input size, read at run time (`h % 7 != 0`): both outcomes are traced, they must
    # build the same layers, and forward branches on it (`init` is then the forward text, for keys only)
    runtime: bool = False
    index: int = dataclasses.field(default=-1, compare=False)  # of the trace's decision it tests
    nested: bool = dataclasses.field(default=False, compare=False)  # a nested block's (which branches itself)


class RuntimeLayers(Exception):
    """The two outcomes of a condition on an input size build different layers: no one class does both."""

    def __init__(self, cond: str, span: Span, block: str):
        super().__init__(cond)
        self.cond, self.span, self.block = cond, span, block


@dataclasses.dataclass
class Variant:
    block: str
    base: str
    doc: str
    signature: tuple[tuple[str, str | None, str], ...]  # constructor arguments, defaults and types
    implied: tuple[tuple[int, int], ...]  # (input, axis) of each input-size argument, in order
    params: tuple[tuple[str, Any], ...]  # the block parameters among the arguments, with defaults
    locals: tuple[str, ...]  # `width = planes * ...`: assignments at the top of __init__
    init: tuple[Any, ...]
    forward: tuple[Any, ...] | None
    stored: tuple[str, ...]  # `self.stride = stride` lines that forward's conditions need
    args: str
    returns: str
    path: tuple[Cond, ...]
    guards: tuple[str, ...] = ()  # the block's asserts on its parameters, checked first
    size_checks: tuple[Any, ...] = ()  # the entry's: the sizes it is built for, first in forward (_pinned_checks)

    def body_key(self) -> tuple:
        return (self.base, self.signature, self.locals, self.init, self.forward, self.stored, self.args, self.returns)


@dataclasses.dataclass(frozen=True)
class ChildRef:
    """A class as its callers see it: its name and what its constructor takes."""

    name: str
    generic: bool
    implied: tuple[tuple[int, int], ...] = ()
    params: tuple[tuple[str, Any], ...] = ()
    arguments: tuple[tuple[str, str | None, str], ...] = ()  # the parameters' (name, default) in Python


def where(span: Span) -> str:
    """`file.arch:12` for comments: the file's base name (`std.vision` for the library)."""
    library = span.file.startswith("<") and span.file.endswith(">")  # <std.vision>
    name = span.file[1:-1] if library else os.path.basename(span.file)
    return f"{safe(name)}:{span.line}"


def safe(text: str) -> str:
    """Text from a .arch file made safe inside a comment or docstring: one line, no quotes."""
    return text.encode("unicode_escape").decode("ascii").replace('"', "'")


def cast_type(t: Any, dtype: str) -> Any:
    """`t` with its floating-point tensors in `dtype` (the model's; passes/dtype.py's rule). f32, the
    default, casts nothing: an f64 constant of an f32 model stays f64, as `archc check` types it."""
    if dtype == "f32":
        return t
    if isinstance(t, TupleType):
        return TupleType(tuple(cast_type(x, dtype) for x in t.items))
    if isinstance(t, TensorType) and DTYPES[t.dtype].is_float and t.dtype != dtype:
        return dataclasses.replace(t, dtype=dtype)
    return t


def tensor_type(t: Type) -> TensorType:
    """The type of a value that is one tensor (an input, a learned tensor)."""
    assert isinstance(t, TensorType), t
    return t


def fail(message: str, span: Span | None = None) -> ArchError:
    """The error of code generation: located at `span` when there is one."""
    d = Diagnostic("error", "codegen", message) if span is None else Diagnostic("error", "codegen", message, span)
    return ArchError([d])


class ClassBuilder:
    """Builds the Variant of one trace; `generic`: written in the block's integer parameters."""

    def __init__(self, gen: Any, tr: BlockTrace, generic: bool,
                 floats: dict[str, tuple[float, float]] | None = None) -> None:
        if getattr(gen, "fold_bn", False):  # `archc build --fold-bn`; the pass keeps node ids, which the trace uses
            from archc.passes.fold_bn import fold_batchnorm
            tr = dataclasses.replace(tr, graph=fold_batchnorm(tr.graph))
        self.gen, self.tr, self.g, self.generic = gen, tr, tr.graph, generic
        self.dtype: str = getattr(gen, "dtype", "f32")  # lowerings see the model's floating-point dtype
        self.floats = floats or {}  # float parameter -> (the stand-in value it was traced with, its value)
        self.float_locals: dict[str, str] = {}
        self.mods = self.g.modules
        self.node_at = {n.path: n for n in self.g if n.path is not None and not _state(n)}
        self.locals = Namespace(reserved={"self"} | set(HELPERS))
        self.sources: dict[str, tuple[str, int]] = {}  # run-time symbol -> (input variable, dim)
        self.prologue: list[Any] = []
        self.runtime: dict[str, str] = {}
        self.stored: dict[str, str] = {}  # symbol -> attribute name, for forward
        self.used_locals: dict[str, str] = {}  # scalar text -> its local assignment
        self.inplace = False  # read by the activation lowerings: may they overwrite their input?
        self.in_forward = False  # lowering an expression of forward, where __init__'s arguments are attributes
        self.first_input: str | None = None  # the forward's first tensor argument: the device of new tensors
        self._py_names = 0  # how many constructor arguments the expression `_py` wrote mentions
        self.own: set[int] = set()
        layer_names = set(self.mods[""].children) | {n.attrs["name"] for n in self.g if _state(n)}
        self.attrs = Namespace(reserved=layer_names | MODULE_ATTRIBUTES | {"self"})
        self._sizes()

    # ---- sizes: which symbol is what --------------------------------------------------------

    def _sizes(self) -> None:
        tr = self.tr
        self.fixed_values = {k: tr.values[k] for k in tr.fixed if k in tr.values}
        self.init_names: dict[str, str] = {}  # symbol -> Python name in __init__
        self.display: dict[str, str] = {}  # symbol -> name in comments
        self.subst: dict[str, Any] = {}  # input symbol -> the parameter expression it equals
        self.implied: list[tuple[str, int, int, Any]] = []  # (symbol, input, axis, value)
        self.scalar_text: dict[str, tuple[str, str]] = {}  # a generic class's scalars (_scalars)
        self.signature: list[tuple[str, str | None, str]] = []
        self.params: list[tuple[str, Any]] = []
        taken: set[str] = set()
        for i in self.g.inputs:
            for ax in tensor_type(self.g.node(i).type).axes:
                for name in sorted(pyexpr.free_names(ax.size)):
                    if ":" in name and name not in self.display:
                        short = name.split(":", 1)[1]
                        self.display[name] = short if short not in taken else name.replace(":", ".")
                        taken.add(self.display[name])
        if not self.generic:
            self._valueless_sizes()
            return
        ns = self.locals
        for p in tr.block.params:
            sym = tr.params.get(p.name)
            if p.name in self.floats:
                self.float_locals[p.name] = ns.name(("arg", p.name), p.name)
                self.params.append((p.name, self.floats[p.name][1] if tr.is_entry else p.default))
                continue
            if sym is None:
                continue
            local = ns.name(("arg", p.name), p.name)
            self.init_names[sym] = local
            self.display[sym] = p.name
            default = tr.values[sym] if tr.is_entry else p.default
            self.params.append((p.name, default))
        for lhs, rhs in tr.input_equalities:  # `in x: [chan = dim]`: the input size is the parameter
            for a, b in ((lhs, rhs), (rhs, lhs)):
                sym = S.symbol_name(a)
                if (sym is not None and ":" in sym and sym not in self.subst
                        and pyexpr.free_names(b) and all(n.startswith("@") for n in pyexpr.free_names(b))):
                    self.subst[sym] = b
        for k, i in enumerate(self.g.inputs):
            for j, ax in enumerate(tensor_type(self.g.node(i).type).axes):
                sym = S.symbol_name(ax.size)
                if sym is None:
                    continue
                name = sym
                if name in tr.fixed and name not in self.subst and name not in self.init_names:
                    hint = next((v for v, x in tr.env.items() if x == ax.size), None)
                    if hint is None and ":" not in name:
                        hint = name  # a free size of the entry: H, not the axis h
                    local = ns.name(("arg", name), hint or ax.name)
                    self.init_names[name] = local
                    self.display[name] = local
                    default = tr.values.get(name) if tr.is_entry else None
                    self.implied.append((name, k, j, default))
        for name in sorted(tr.fixed):
            if name in self.init_names or name in self.subst or name.startswith("@"):
                continue
            if ":" in name:
                continue  # an input size fixed only through another one; not printed
            if not tr.is_entry:
                raise Fallback(f"a parameter shape depends on the free size '{name}'")
            local = ns.name(("arg", name), name)
            self.init_names[name] = local
            self.display[name] = name
            self.implied.append((name, -1, -1, tr.values.get(name)))
        # defaults as Python literals (a default of 1e999 is float('inf'), not the name inf)
        self.signature = ([(self.init_names[s], None if d is None else L.lit(d), "int") for s, _, _, d in self.implied]
                          + [(self.float_locals.get(p) or self.init_names[self.tr.params[p]],
                              None if d is None else L.lit(d), "float" if p in self.floats else "int")
                             for p, d in self.params])
        if any(d is not None for _, d, _ in self.signature):  # Python: no required argument after a default
            first = next(i for i, (_, d, _) in enumerate(self.signature) if d is not None)
            if any(d is None for _, d, _ in self.signature[first:]):
                # no caller passes the entry's arguments by position: the required ones first, each default
                # kept; a nested class's callers pass every argument by position: no defaults then
                self.signature = (sorted(self.signature, key=lambda arg: arg[1] is not None) if tr.is_entry
                                  else [(n, None, t) for n, _, t in self.signature])
        self._scalars()

    def _valueless_sizes(self) -> None:
        """A specialised class builds in the sizes its layers need (`fixed_values`); those of the
        program's free sizes that have no value (`in x: [chan = cin]`, no `size cin = ...`) are
        constructor arguments without a default, as in a generic class."""
        for name in sorted(self.tr.fixed):
            if name in self.fixed_values or not _free_size(name):
                continue
            self.init_names[name] = self.display[name] = self.locals.name(("arg", name), name)
            self.implied.append((name, *(self._input_axis(name) or (-1, -1)), None))
        self.signature = [(self.init_names[s], None, "int") for s, _, _, _ in self.implied]

    def _input_axis(self, name: str) -> tuple[int, int] | None:
        """(input, axis) of the first input axis whose size is the symbol `name`; None if none is."""
        return next(((k, j) for k, i in enumerate(self.g.inputs)
                     for j, ax in enumerate(tensor_type(self.g.node(i).type).axes)
                     if S.symbol_name(ax.size) == name), None)

    def _scalars(self) -> None:
        """The block's own scalar variables (`width = planes * ...`), to name repeated expressions."""
        once = self.tr.block.assigned_once
        for name, v in self.tr.env.items():  # the symbolic sizes only
            if name not in once:
                continue  # rebound in a loop or a branch: its last value is no name for the others
            if S.symbol_name(v) is not None or name in self.tr.block.param_names:
                continue
            try:
                text = pyexpr.to_python(self._sub(v), self.init_names)
            except pyexpr.NotPrintable:
                continue
            if text not in self.scalar_text:
                self.scalar_text[text] = (self.locals.name(("scalar", name), name), text)

    def _sub(self, x: Any) -> Any:
        if isinstance(x, int) or not self.subst:
            return x
        for name, expr in self.subst.items():
            x = pyexpr.replace(x, name, expr)
        return x

    def const(self, x: Any, what: str) -> Any:
        """A value the module needs when it is built: an int, or Code in the constructor's arguments.

        In forward (`in_forward`: a stateless op's arguments, the factor of `F.pixel_shuffle`, a
        pooling window) the constructor's arguments are out of scope: the value is written in the
        attributes that keep them (`self.r`) and the sizes read off the inputs, as `size` does."""
        if self.in_forward:
            v = self._sub(x) if self.generic else pyexpr.substitute(x, self.fixed_values)
            if isinstance(v, int):
                return v
            if S.is_concrete(v):
                return int(v)
            return Code(self.size(x))
        v = self._sub(x) if self.generic else pyexpr.substitute(x, self.fixed_values)
        if isinstance(v, int):
            return v
        if S.is_concrete(v):
            return int(v)
        missing = {n for n in pyexpr.free_names(v) if n not in self.init_names}
        if missing:
            if self.tr.is_entry and not missing & self.tr.fixed and all(_free_size(n) for n in missing):
                raise NeedsFixed(frozenset(missing))
            raise L.Unsupported(f"{what} would be {self.fmt(x)}, which changes with the input size; "
                                "torch needs it when the module is built")
        text = pyexpr.to_python(v, self.init_names)
        if text in self.scalar_text:
            local, _ = self.scalar_text[text]
            self.used_locals[text] = local
            return Code(local)
        return Code(text)

    def size(self, x: Any) -> str:
        """A size forward computes: a literal, or read off an input's shape or a stored argument."""
        v = self._sub(x) if self.generic else pyexpr.substitute(x, self.fixed_values)
        if isinstance(v, int):
            return str(v)
        names = {}
        for s in sorted(pyexpr.free_names(v)):
            if s in self.init_names:
                names[s] = self._stored(s)
            elif s in self.sources:
                names[s] = self._runtime_var(s)
            else:
                raise L.Unsupported(f"the size {self.fmt(x)} changes with the input, and this block "
                                    f"cannot read '{self.display.get(s, s)}' off an input's shape")
        try:
            return pyexpr.to_python(v, names)
        except pyexpr.NotPrintable as e:
            raise L.Unsupported(str(e)) from None

    def _stored(self, sym: str) -> str:
        if sym not in self.stored:
            self.stored[sym] = self.attrs.name(("attr", sym), self.init_names[sym])
        return f"self.{self.stored[sym]}"

    def _runtime_var(self, s: str, hint: str | None = None) -> str:
        if s not in self.runtime:
            var, dim = self.sources[s]
            name = self.locals.name(("size", s), hint or self.display.get(s, s))
            self.runtime[s] = name
            self.prologue.append(Lines((f"{name} = {var}.shape[{dim}]",)))
        return self.runtime[s]

    def helper(self, name: str) -> None:
        self.gen.helpers.add(name)

    def device(self) -> str:
        return f", device={self.first_input}.device" if self.first_input else ""

    def fmt(self, x: Any) -> str:
        v = self._sub(x) if self.generic else pyexpr.substitute(x, self.fixed_values)
        return S.fmt(pyexpr.rename(v, self.display))

    def shape(self, t: Any) -> str:
        if isinstance(t, TupleType):
            return "(" + ", ".join(self.shape(x) for x in t.items) + ")"
        parts = []
        for ax in t.axes:
            size = self.fmt(ax.size)
            parts.append(ax.name if size == ax.name else f"{ax.name}={size}")
        dtype = "" if t.dtype == "f32" else t.dtype
        return f"{dtype}[{', '.join(parts)}]"

    # ---- decisions ------------------------------------------------------------------------------

    def _path(self) -> tuple[Cond, ...]:
        out: list[Cond] = []
        seen: set[str] = set()
        for index, d in enumerate(self.tr.decisions):
            if d.in_assert:
                continue  # checked by a guard (see _guards), or by archc check for the sizes given
            a, b = self._sub(d.a), self._sub(d.b)
            names = pyexpr.free_names(a) | pyexpr.free_names(b)
            runtime = sorted(n for n in names if n not in self.init_names and n not in self.fixed_values)
            if runtime:
                cond = self._runtime_cond(d, a, b, runtime, index)
                if cond.forward not in seen:  # decided before on this path (a pad in each of several blocks)
                    seen.add(cond.forward)
                    out.append(cond)
                continue
            if d.nested:
                continue  # built into the nested block's class
            if not self.generic:
                continue  # a specialised class: every decision is built in
            if not names <= set(self.init_names):
                raise Fallback("a decision on a size fixed only by other sizes")
            init = pyexpr.relation(a, d.op, b, self.init_names)
            if init in seen:
                continue  # decided before on this path
            seen.add(init)
            fwd = pyexpr.relation(a, d.op, b, {n: self._stored(n) for n in names})
            out.append(Cond(init, fwd, d.outcome))
        return tuple(out)

    def _block_name(self, sym: str) -> str | None:
        """The block's own name for an input size (`cin` of `in x: [chan = cin]`), if it gives one."""
        size = S.symbol(sym)
        return next((v for v, x in self.tr.env.items() if x == size and v.isidentifier()), None)

    def _runtime_cond(self, d: Any, a: Any, b: Any, runtime: list[str], index: int) -> Cond:
        """A condition on sizes forward reads off its inputs (`h % ws != 0`): forward tests it."""
        unreadable = [self.display.get(n, n) for n in runtime if n not in self.sources]
        if unreadable:
            raise self._fail(f"this condition on the size {', '.join(unreadable)} cannot be tested when the "
                             "module runs (the size cannot be read off an input's shape): fix it with --set",
                             d.span)
        # a constructor argument is read where it is kept (`self.ws`), though a layer's shape fixes it too
        built_in = {k: v for k, v in self.fixed_values.items() if k not in self.init_names}
        names = {n: self._runtime_var(n, self._block_name(n)) if n in self.sources else self._stored(n)
                 for n in sorted(pyexpr.free_names(a) | pyexpr.free_names(b)) if n not in built_in}
        a, b = (pyexpr.substitute(x, built_in) for x in (a, b))
        try:
            text = pyexpr.relation(a, d.op, b, names)
        except pyexpr.NotPrintable as e:
            raise self._fail(f"this condition on an input size cannot be written in Python: {e}", d.span) from None
        return Cond(text, text, d.outcome, runtime=True, index=index, nested=d.nested)

    def _guards(self) -> tuple[str, ...]:
        """The block's top-level asserts that speak of its parameters only, as checks in __init__."""
        out = []
        for st in self.tr.asserts:
            self._py_names = 0
            try:
                cond = self._py(st.test)[0]
            except L.Unsupported:
                continue  # about run-time sizes: `archc check` verified it for the sizes given
            if not self._py_names:
                continue  # about built-in values only: `archc check` verified it
            msg = st.message if st.message is not None else f"assertion failed: {cond}"
            line = f"if not ({cond}):\n    raise ValueError({(self.tr.block.name + ': ' + msg)!r})"
            if line not in out:
                out.append(line)
        return tuple(out)

    _PREC = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5, "-": 5,
             "*": 6, "/": 6, "//": 6, "%": 6, "**": 8}

    def _py(self, e: ParamExpr) -> tuple[str, int]:
        """An expression on parameters (an assert's test) as Python in __init__'s names (for guards)."""
        if isinstance(e, Lit):
            return repr(e.value), 9
        if isinstance(e, Name):
            if e.name in self.tr.params:
                self._py_names += 1
                return self.init_names[self.tr.params[e.name]], 9
            if e.name in self.float_locals:
                self._py_names += 1
                return self.float_locals[e.name], 9
            if e.name in self.tr.args:
                return L.lit(self.tr.args[e.name]), 9
            if e.name in self.init_names and e.name in self.program_sizes():
                self._py_names += 1
                return self.init_names[e.name], 9
            raise L.Unsupported(e.name)
        if isinstance(e, Binary) and e.op in self._PREC:
            prec = self._PREC[e.op]
            (lt, lp), (rt, rp) = self._py(e.left), self._py(e.right)
            left = lt if lp >= prec else f"({lt})"
            right = rt if rp > prec or (rp == prec and prec <= 2) else f"({rt})"
            return f"{left} {e.op} {right}", prec
        if isinstance(e, Unary):
            t, p = self._py(e.operand)
            if e.op == "not":
                return f"not {t if p >= 3 else f'({t})'}", 3
            return f"-{t if p >= 7 else f'({t})'}", 7
        raise L.Unsupported("expression")

    def program_sizes(self) -> set[str]:
        return set(self.tr.values) - {n for n in self.tr.values if ":" in n or n.startswith("@")}

    # ---- structure ----------------------------------------------------------------------------

    def _fail(self, message: str, span: Span | None) -> ArchError:
        return fail(f"{self.tr.block.name}: {message}", span)

    def _top(self, path: str) -> bool:
        """A module directly under the block, or an element of an indexed list directly under it."""
        info = self.mods.get(path)
        if info is None or info.parent is None:
            return False
        if info.parent == "":
            return True
        parent = self.mods.get(info.parent)
        return parent is not None and parent.kind == "list" and parent.parent == ""

    def _attr(self, path: str) -> str:
        """`self.conv1`, or `self.down[2]` for an element of a ModuleList."""
        head, _, index = path.partition(".")
        attr = f"self.{head}" if head.isidentifier() else f'getattr(self, "{head}")'  # `as "pre-logits"`
        return f"{attr}[{index}]" if index else attr

    def _fresh(self, node: Node) -> bool:
        """Whether `node`'s value is a new tensor no one else holds (a folded batchnorm: its layer's)."""
        while _folded(node):
            node = self.g.node(node.inputs[0])
        return node.op.torch.fresh

    def _fold_hooks(self, under: str | None) -> list[Any]:
        """`archc build --fold-bn`: for each batchnorm of this class folded into its layer (under the
        layer at `under`, or anywhere), a load_state_dict pre-hook that folds an unfolded state_dict."""
        out: list[Any] = []
        for n in self.g:
            fold = n.attrs.get("folded_bn") if n.scope == "" else None
            if fold is None or n.path is None:
                continue
            bn = fold["path"]
            if under is not None and bn != under and not bn.startswith(under + "."):
                continue
            self.helper("FoldBatchNorm")
            extra = ", transposed=True" if n.op is Op.CONV_T else ""
            out.append(Lines((f'self.register_load_state_dict_pre_hook(FoldBatchNorm("{n.path}", "{bn}", '
                              f"eps={fold['eps']!r}{extra}))  # {where(self.node_at[bn].span)}",)))
        return out

    def lower_module(self, node: Node) -> str:
        low = node.op.torch
        if low.module is None:
            raise self._fail(f"{node.op.value} cannot be a layer or a sequence step yet (no torch module "
                             "lowering); write it as its own statement", node.span)
        ins: list[Any] = [self.typed(i) for i in node.inputs]
        if len(ins) != 1 and node.op is not Op.MHA:
            raise self._fail(f"{node.op.value} with {len(ins)} inputs cannot be a sequence step", node.span)
        try:
            return low.module(node.attrs, ins, cast_type(node.type, self.dtype), self)
        except L.Unsupported as e:
            raise self._fail(str(e), node.span) from None

    def typed(self, value: int) -> Any:
        """The type of a value as its op's lowering sees it: in the model's dtype."""
        return cast_type(self.g.node(value).type, self.dtype)

    def child_call(self, call: CallRecord) -> str:
        ref: ChildRef = self.gen.class_of_call(self.tr, call, self.generic)
        if not ref.generic:
            if self.generic:
                raise Fallback(f"the nested block '{call.path}' has a specialised class")
            return f"{ref.name}()"
        args: list[str] = []
        for k, j in ref.implied:
            size = self.tr.type_of(call.inputs[k]).axes[j].size if k >= 0 else None
            if size is None:
                raise Fallback("a nested block needs a free size")
            args.append(str(self._const_at(call, size, "an input size of a nested block")))
        keywords = False
        for (pname, _), (argname, default, _) in zip(ref.params, ref.arguments):
            given = call.args[pname]
            v = Code(repr(given)) if isinstance(given, float) else \
                self._const_at(call, given, f"the parameter '{pname}'")
            text = repr(v) if isinstance(v, float) else str(v)
            if default is not None and text == default:
                keywords = True  # left out: later arguments go by name
                continue
            args.append(f"{argname}={text}" if keywords or default is not None else text)
            keywords = keywords or default is not None
        return f"{ref.name}({', '.join(args)})"

    def _const_at(self, call: CallRecord, x: Any, what: str) -> Any:
        try:
            return self.const(x, what)
        except L.Unsupported as e:
            if self.generic:
                raise Fallback(str(e)) from None
            raise self._fail(str(e), self.mods[call.path].span) from None

    def module_lines(self, path: str) -> list[str]:
        """The constructor expression of the layer at `path`, as lines."""
        info = self.mods[path]
        if info.kind == "op":
            node = self.node_at[path]
            note = f", batchnorm folded into {node.attrs['folded_into']}" if _folded(node) else ""
            return [f"{self.lower_module(node)}  # {where(info.span)}{note}"]
        if info.kind == "block":
            return [f"{self.child_call(self.tr.calls[path])}  # {where(info.span)}"]
        if info.kind == "list":
            kids = info.children
            if [k.rsplit(".", 1)[-1] for k in kids] != [str(i) for i in range(len(kids))]:
                raise self._fail(f"the list '{path}' must be filled at indices 0, 1, 2, ... in order", info.span)
            return [f"nn.ModuleList([  # {where(info.span)}"] + self._items([(None, k) for k in kids]) + ["])"]
        if info.kind == "seq":
            return self._seq_lines(path, info.children, "nn.Sequential(", info.span)
        raise self._fail(f"unknown module kind {info.kind}", info.span)

    def _seq_lines(self, path: str, kids: list[str], opening: str, span: Span) -> list[str]:
        labels = [k[len(path) + 1:] if path else k for k in kids]
        for label, k in zip(labels, kids):
            why = check_step_name(label)
            if why:
                raise self._fail(f"the step name {why}", self.mods[k].span)
        if labels == [str(i) for i in range(len(labels))]:
            return [f"{opening}  # {where(span)}"] + self._items([(None, k) for k in kids]) + [")"]
        self.gen.ordered_dict = True
        return ([f"{opening}OrderedDict([  # {where(span)}"]
                + self._items([(label, k) for label, k in zip(labels, kids)]) + ["]))"])

    def _items(self, items: list[tuple[str | None, str]]) -> list[str]:
        out: list[str] = []
        previous: Node | None = None
        for label, k in items:
            node = self.node_at.get(k) if self.mods[k].kind == "op" else None
            self.inplace = previous is not None and self._fresh(previous)
            try:
                lines = self.module_lines(k)
            finally:
                self.inplace = False
            previous = node
            if label is not None:
                lines = [f"({label!r}, {lines[0]}"] + lines[1:]
                lines[-1] = _before_comment(lines[-1], ")")
            lines[-1] = _before_comment(lines[-1], ",")
            out.extend("    " + line for line in lines)
        return out

    # ---- the class ------------------------------------------------------------------------------

    def build(self) -> Variant:
        tr = self.tr
        in_vars = []
        for i in self.g.inputs:
            n = self.g.node(i)
            var = self.locals.name(("value", i), n.attrs["name"])
            in_vars.append((i, var))
            for dim, ax in enumerate(tensor_type(n.type).axes):
                sym = S.symbol_name(ax.size)
                if sym is not None and sym not in self.fixed_values:
                    self.sources.setdefault(sym, (var, dim))
        path = self._path()
        seq = tr.seqs.get("")
        forward: tuple[Any, ...] | None
        if seq is not None:
            base, init, forward, returns = self._sequential(in_vars, seq)
        else:
            base = "nn.Module"
            init = [Lines(("super().__init__()",))] + self._param_lines()
            for p in self.mods[""].children:
                why = check_attribute(p)
                if why:
                    raise self._fail(f"the layer name {why}", self.mods[p].span)
                lines = self.module_lines(p)
                init.append(Lines((f"self.{p} = {lines[0]}",) + tuple(lines[1:])) if p.isidentifier()
                            else _add_module(p, lines))
                init += self._fold_hooks(p)
            body, returns = self._forward(in_vars, self._events(None), tr.outputs)
            forward = tuple(body)
        checks: list[Lines] = []
        if tr.is_entry and (getattr(self.gen, "pinned", None) or tr.built_inputs):
            checks = self._pinned_checks(in_vars)
            if checks:
                forward = tuple(checks) + (forward if forward is not None else
                                           (Lines((f"return super().forward({in_vars[0][1]})",)),))
        if tr.is_entry and self.dtype != "f32":
            init.append(self._cast_line())
        if self.gen.checks:  # `archc build --checks`: shape checks at the top and before the return
            from archc.codegen.torch.checks import add_checks  # it builds on this module
            forward = add_checks(self, in_vars, forward)
        locals_ = tuple(f"{local} = {text}" for text, local in
                        sorted(((t, loc) for t, loc in self.used_locals.items()), key=lambda x: x[1]))
        stored = [f"self.{attr} = {self.init_names[s]}" for s, attr in self.stored.items()]
        guards = self._guards() if self.generic else ()
        self.raw = Variant(tr.block.name, base, self._doc(), tuple(self.signature),
                           tuple((k, j) for _, k, j, _ in self.implied), tuple(self.params), locals_, tuple(init),
                           forward, tuple(stored), _signature(in_vars), returns, path, guards, tuple(checks))
        if not self.floats:
            return self.raw
        in_init, in_forward = {}, {}
        for name, (standin, _) in self.floats.items():
            local = self.float_locals[name]
            attr = self.attrs.name(("attr", "float", name), local)
            in_init[repr(standin)] = local
            in_forward[repr(standin)] = f"self.{attr}"
            stored.append(f"self.{attr} = {local}")
        return dataclasses.replace(self.raw, init=replace_text(self.raw.init, in_init),
                                   forward=replace_text(forward, in_forward) if forward is not None else None,
                                   stored=tuple(stored))

    def _pinned_checks(self, in_vars: list[tuple[int, str]]) -> list[Lines]:
        """The entry is built for the free sizes `gen.pinned` (its layers need them when they are created:
        `heads = H // 3`), which no parameter's shape shows to torch, or, traced at its sizes, for the sizes
        of `tr.built_inputs`: forward checks that its inputs have them."""
        out = []
        var_of = {self.g.node(i).attrs["name"]: var for i, var in in_vars}
        named: set[str] = set()
        for b in self.tr.built_inputs:
            if b.name is not None:
                if b.name in named:
                    continue  # one check a size: whether the inputs agree with each other is --checks' job
                named.add(b.name)
            var, got = var_of[b.input], f"{var_of[b.input]}.shape[{b.index}]"
            fix = f"archc build --set {b.name}={{{got}}}" if b.name else "archc build --set ..."
            out.append(Lines((f"if {got} != {b.size}:",
                              f"    raise ValueError(f\"{self.tr.block.name} is built for {var}'s axis '{b.axis}' = "
                              f"{b.size}, got {{{got}}}: \"",
                              f"                     f\"build it again with `{fix}`\")")))
        for name in sorted(getattr(self.gen, "pinned", ())):
            at = self._input_axis(name)
            if at is None:
                continue  # only in a compound size (`h = 2 * H`): torch sees the difference, or no input has it
            k, j = at
            var, axis = in_vars[k][1], tensor_type(self.g.node(in_vars[k][0]).type).axes[j].name
            got = f"{var}.shape[{j}]"
            if self.generic or name not in self.fixed_values:
                built = self._stored(name)
                shown, fix = f"{{{built}}}", f"construct it with {self.init_names[name]}={{{got}}}"
            else:
                built = shown = str(self.fixed_values[name])
                fix = f"build it again with `archc build --set {name}={{{got}}}`"
            out.append(Lines((f"if {got} != {built}:",
                              f"    raise ValueError({'f' if '{' in shown else ''}\"{self.tr.block.name} is built "
                              f"for {name} = {shown}, \"",
                              f"                     f\"but {var}'s axis '{axis}' is {{{got}}}: {fix}\")")))
        return out

    def _cast_line(self) -> Lines:
        """The entry's last constructor statement under a file's `dtype bf16`: every floating-point
        parameter and buffer in that dtype, as `model.to(torch.bfloat16)`; complex ones are kept
        (`.to` would drop their imaginary parts), through the `cast_floats` helper where there are some."""
        torch_dtype = DTYPES[self.dtype].torch
        note = f"  # the model's dtype, {self.dtype}"
        if any(DTYPES[p.dtype].kind == "complex" for n in self.g for p in n.params):
            self.helper("cast_floats")
            return Lines((f"cast_floats(self, {torch_dtype}){note}",))
        return Lines((f"self.to({torch_dtype}){note}",))

    def _doc(self) -> str:
        tr = self.tr
        if self.generic:
            baked = [f"{k}={safe(repr(v))}" for k, v in tr.args.items() if k not in tr.params and k not in self.floats]
            head = f"{tr.block.name} from {where(tr.block.span)}"
            if baked:
                head += f", for {', '.join(baked)}"
        else:
            args = ", ".join(f"{k}={safe(repr(v))}" for k, v in tr.args.items())
            head = f"{tr.block.name}({args}) from {where(tr.block.span)}"
        ins = ", ".join(f"{self.g.node(i).attrs['name']}: {self.shape(self.g.node(i).type)}"
                        for i in self.g.inputs)
        doc = f"{head}; input {ins}." if ins else f"{head}."
        built = sorted({(k, v) for k, v in self.fixed_values.items() if _free_size(k)}
                       | {(b.name, b.size) for b in tr.built_inputs if b.name})
        if (not self.generic or tr.built_inputs) and tr.is_entry and built:
            doc += " Built for " + ", ".join(f"{k}={v}" for k, v in built) + "."
        return doc

    def _param_lines(self) -> list[Any]:
        out: list[Any] = []
        for n in self.g:
            if not _state(n) or n.scope != "":
                continue
            name = n.attrs["name"]
            why = check_attribute(name)
            if why:
                raise self._fail(f"the parameter name {why}", n.span)
            dims = []
            t = tensor_type(n.type)
            for d in t.shape:
                try:
                    dims.append(str(self.const(d, "a parameter's shape")))
                except L.Unsupported as e:
                    raise self._fail(str(e), n.span) from None
            shape = ", ".join(dims)
            init = n.attrs.get("init", "zeros")
            dtype = DTYPES[t.dtype]
            kw = "" if dtype.name == "f32" else f", dtype={dtype.torch}"
            if init == "zeros":
                value = f"torch.zeros({shape}{kw})"
            elif isinstance(init, (int, float)) and not isinstance(init, bool):
                fill = repr(float(init)) if dtype.kind in ("float", "complex") else repr(int(init))
                value = f"torch.full(({shape}{',' if len(dims) == 1 else ''}), {fill}{kw})"
            else:
                raise self._fail(f"the initial value {init!r} of '{name}' is not lowered yet", n.span)
            if n.op is Op.BUFFER:
                persistent = "" if n.attrs.persistent else ", persistent=False"
                line = f"self.register_buffer({name!r}, {value}{persistent})"
            else:
                line = f"self.{name} = nn.Parameter({value})"
            out.append(Lines((f"{line}  # {where(n.span)}",)))
        return out

    def _sequential(self, in_vars: list, seq: Any) -> tuple[str, list, tuple | None, str]:
        steps = self._seq_lines("", list(self.mods[""].children), "super().__init__(", self.tr.block.span)
        lines = [Lines(tuple(steps)), *self._param_lines()]  # its own params and buffers: not steps
        pre = self._events(seq.start)
        direct = not pre and len(in_vars) == 1 and seq.input == in_vars[0][0]
        if pre and any(kind != "node" or obj.path is not None for kind, obj in pre):
            # Layers of the block before its sequence are children of the nn.Sequential too, so its forward
            # runs them: right only where they are the sequence's first steps, a chain from the input.
            if not self._chain_into(in_vars, pre, seq.input):
                raise self._fail("a block whose output is a sequence of a value its own layers compute is not "
                                 "lowered yet: give the sequence a name (`y = seq(...)` or `y = Block(...)`, "
                                 "then `out y`)", self.tr.block.span)
            direct = True
        if direct:
            return "nn.Sequential", lines + self._fold_hooks(None), None, "torch.Tensor"
        body, returns = self._forward(in_vars, pre, [seq.input])
        last = body[-1].lines[0].replace("return ", "return super().forward(", 1)
        body[-1] = Lines((_before_comment(last, ")"),))
        return "nn.Sequential", lines + self._fold_hooks(None), tuple(body), "torch.Tensor"

    def _chain_into(self, in_vars: list, pre: list, into: Any) -> bool:
        """`pre` is a chain of the block's own layers from its one input to `into` (so nn.Sequential's forward,
        which runs every child in order, computes exactly what the block does)."""
        if len(in_vars) != 1:
            return False
        value = in_vars[0][0]
        for kind, obj in pre:
            if kind != "node" or obj.path is None or "." in obj.path or tuple(obj.inputs) != (value,):
                return False
            value = obj.id
        return value == into

    def _events(self, before: int | None) -> list[tuple[str, Any]]:
        """The block's own work in order: stateless nodes, layer calls, nested blocks and sequences."""
        events: list[tuple[tuple[int, int], str, Any]] = []
        for n in self.g:
            if n.scope != "" or n.op is Op.INPUT or _state(n):
                continue
            if n.path is None or (self.mods[n.path].kind == "op" and self._top(n.path)):
                events.append(((n.id, 1), "node", n))
        for path, rec in self.tr.calls.items():
            if self.mods.get(path) is not None and self.mods[path].kind == "block" and self._top(path):
                events.append(((rec.start, 0), "call", rec))
        for path, seq in self.tr.seqs.items():
            if path and self.mods.get(path) is not None and self.mods[path].kind == "seq" and self._top(path):
                events.append(((seq.start, 0), "seq", seq))
        events.sort(key=lambda e: e[0])
        if before is not None:
            events = [e for e in events if e[0] < (before, 0)]
        return [(kind, obj) for _, kind, obj in events]

    def _forward(self, in_vars: list, events: list, outputs: Sequence[Value]) -> tuple[list[Any], str]:
        self.first_input = in_vars[0][1] if in_vars else None
        uses: dict[int, int] = {}
        for kind, obj in events:
            ids = (list(obj.inputs) if kind == "call" else [obj.input] if kind == "seq"
                   else list(obj.inputs))
            for i in ids:
                uses[i] = uses.get(i, 0) + (2 if kind == "node" and obj.op.torch.repeats else 1)
        out_ids = flat_values(outputs)  # `out Two(x)`, Two's outputs a tuple: returned as the block's own
        for v in out_ids:
            uses[v] = uses.get(v, 0) + 1
        self.own = {obj.id for kind, obj in events if kind == "node"}
        self.temps: dict[int, str] = {}  # value id -> the chain variable holding it (one use only)
        expr: dict[int, L.Expr] = {i: L.Expr(var) for i, var in in_vars}
        for n in self.g:
            if _state(n) and n.scope == "":
                expr[n.id] = L.Expr(f"self.{n.attrs['name']}")
        lines: list[Any] = []
        self.uses = uses
        for kind, obj in events:
            if kind == "node":
                self._node_line(obj, expr, uses, lines)
            else:
                self._module_call(kind, obj, expr, lines)
        shape = ", ".join(self.shape(self.tr.type_of(v)) for v in out_ids)
        at = where(self.tr.out_span or self.tr.block.span)
        lines.append(Lines((f"return {', '.join(expr[v].text for v in out_ids)}  # {shape}  {at}",)))
        returns = "torch.Tensor" if len(out_ids) == 1 else f"tuple[{', '.join(['torch.Tensor'] * len(out_ids))}]"
        return self.prologue + lines, returns

    def _node_line(self, n: Node, expr: dict, uses: dict, lines: list[Any]) -> None:
        if _folded(n):  # its layer computes the batchnorm's output: forward reads the layer's value
            expr[n.id] = expr[n.inputs[0]]
            if n.inputs[0] in self.temps:
                self.temps[n.id] = self.temps.pop(n.inputs[0])
            return
        low = n.op.torch
        args = [expr[i] for i in n.inputs]
        ins: list[Any] = [self.typed(i) for i in n.inputs]
        out = cast_type(n.type, self.dtype)
        self.in_forward = True
        try:
            if n.path is not None:
                why = check_attribute(n.path.split(".")[0])
                if why:
                    raise self._fail(f"the layer name {why}", n.span)
                mod = self._attr(n.path)
                if low.call is not None:
                    e = low.call(n.attrs, ins, out, self, mod, args)
                else:
                    e = L.Expr(f"{mod}({', '.join(a.text for a in args)})")
                hint = n.path.replace(".", "_")
            else:
                if low.forward is None:
                    raise L.Unsupported(f"{n.op.value} has no torch lowering yet")
                src = self.g.node(n.inputs[0]) if n.inputs else None
                self.inplace = (n.op.torch.inplace and src is not None and self._fresh(src)
                                and uses.get(src.id, 0) == 1 and src.id in self.own and src.type == n.type)
                try:
                    e = low.forward(n.attrs, ins, out, self, args)
                finally:
                    self.inplace = False
                hint = n.label or n.op.value
        except L.Unsupported as err:
            raise self._fail(str(err), n.span) from None
        finally:
            self.in_forward = False
        if n.path is None and not n.label and uses.get(n.id, 0) <= 1:
            expr[n.id] = e
            for i in n.inputs:  # an inlined op passes on the chain variable its input dies in
                if i in self.temps and uses.get(i, 0) == 1:
                    self.temps[n.id] = self.temps.pop(i)
                    break
            return
        var = self._variable(("value", n.id), hint, n.id, list(n.inputs), uses)
        lines.append(Lines((f"{var} = {e.text}  # {self.shape(n.type)}  {where(n.span)}",)))
        expr[n.id] = L.Expr(var)

    def _variable(self, key: Any, hint: str, value: int, inputs: list[int], uses: dict) -> str:
        """The local a value is stored in. A value used once goes into a chain variable (`out`),
        reusing the one of an input that dies here, as hand-written torch code does: a name that
        outlived its last use would keep that activation's memory alive until `forward` returns.
        Values used more than once keep the name the .arch file gives them."""
        if uses.get(value, 0) != 1:
            return self.locals.name(key, hint)
        for i in inputs:
            if i in self.temps and uses.get(i, 0) == 1:
                var = self.temps.pop(i)
                self.temps[value] = var
                return var
        var = self.locals.name(key, "out")
        self.temps[value] = var
        return var

    def _module_call(self, kind: str, rec: Any, expr: dict, lines: list[Any]) -> None:
        info = self.mods[rec.path]
        ins, outs = ([rec.input], [rec.output]) if kind == "seq" else (rec.inputs, flat_values(rec.outputs))
        call = f"{self._attr(rec.path)}({', '.join(expr[v].text for v in ins)})"
        hint = rec.path.replace(".", "_")
        if len(outs) == 1:
            if outs[0] in ins:  # the block returned its input (an outcome skipping its work): a new value,
                self.uses[outs[0]] -= 1  # which the uses after the call read
            names = [self._variable(("value", "call", rec.path, 0), hint, outs[0], list(ins), self.uses)]
        else:
            names = [self.locals.name(("value", "call", rec.path, i), f"{hint}_{i}") for i in range(len(outs))]
        shape = ", ".join(self.shape(self.tr.type_of(v)) for v in outs)
        lines.append(Lines((f"{', '.join(names)} = {call}  # {shape}  {where(info.span)}",)))
        for v, name in zip(outs, names):
            expr[v] = L.Expr(name)


def _state(node: Node) -> bool:
    """A tensor the module holds: a learned `param` (nn.Parameter) or a `buffer` (register_buffer)."""
    return node.op is Op.PARAM or node.op is Op.BUFFER


def _folded(node: Node) -> bool:
    """An identity that stands where a batchnorm was folded into its layer (passes/fold_bn.py)."""
    return node.op is Op.IDENTITY and node.attrs.get("folded_into") is not None


def replace_text(stmts: tuple | None, mapping: dict[str, str]) -> tuple:
    """The statements with each key of `mapping` replaced by its value (stand-in values -> names)."""
    def text(line: str) -> str:
        for k, v in mapping.items():
            line = line.replace(k, v)
        return line
    out: list[Any] = []
    for st in stmts or ():
        if isinstance(st, Lines):
            out.append(Lines(tuple(text(line) for line in st.lines)))
        else:
            out.append(If(text(st.cond), replace_text(st.then, mapping), replace_text(st.orelse, mapping)))
    return tuple(out)


def _signature(in_vars: list) -> str:
    return "".join(f", {var}: torch.Tensor" for _, var in in_vars)


def _before_comment(line: str, text: str) -> str:
    """Append `text` to the code of a line that may end in a `# comment`."""
    code, sep, comment = line.partition("  # ")
    return f"{code}{text}{sep}{comment}"


# ---- joining the variants of a generic class -----------------------------------------------------


@dataclasses.dataclass
class _Node:
    cond: Cond | None  # None: a leaf
    leaf: Variant | None = None
    then: _Node | None = None
    orelse: _Node | None = None


def _tree(vs: list[Variant], i: int) -> _Node:
    ended = [v for v in vs if len(v.path) == i]
    if ended:
        if len(ended) != len(vs) or len({v.body_key() for v in vs}) != 1:
            raise Fallback("two uses of the block take the same decisions but differ")
        return _Node(None, vs[0])
    conds = {(v.path[i].init, v.path[i].forward) for v in vs}
    if len(conds) != 1:
        raise Fallback("the uses of the block decide different things at the same point")
    first = vs[0].path[i]
    t = [v for v in vs if v.path[i].outcome]
    f = [v for v in vs if not v.path[i].outcome]
    return _Node(first, then=_tree(t, i + 1) if t else None, orelse=_tree(f, i + 1) if f else None)


def _render_init(node: _Node, block: str) -> tuple[Any, ...]:
    """__init__ for every traced case; a case no use of the block took is refused."""
    if node.cond is None:
        assert node.leaf is not None
        return node.leaf.init
    text = node.cond.init
    t = _render_init(node.then, block) if node.then else None
    f = _render_init(node.orelse, block) if node.orelse else None
    if node.cond.runtime:  # tested by forward only: both outcomes build the same layers (Generator.branches)
        if t is not None and f is not None and t != f:
            raise AssertionError(f"{block}: the outcomes of `{node.cond.forward}` build different layers")
        known = t if t is not None else f
        assert known is not None
        return known
    if t is None or f is None:
        known = t if t is not None else f
        assert known is not None
        msg = (f"{block}: generated for the uses in the .arch file, where `{node.cond.init}` is "
               f"{t is not None}; use it so in the .arch file and build again")
        guard = If(text, (), (Lines((f"raise ValueError({msg!r})",)),)) if t is not None else \
            If(text, (Lines((f"raise ValueError({msg!r})",)),), ())
        return (guard,) + known
    return _merge_if(text, t, f)


def _forward_tree(variants: list[Variant]) -> tuple:
    """forward for every traced case, testing only the conditions forward needs.

    A case __init__ refuses never reaches forward, so only the traced cases count: a
    condition is dropped when no two cases with different forwards agree on all the others."""
    obs = [({c.forward: c.outcome for c in v.path}, v.forward) for v in variants]
    order: list[str] = []
    for v in variants:
        for cond in v.path:
            if cond.forward not in order:
                order.append(cond.forward)

    def clash(conds: list[str]) -> bool:
        for i, (a, fa) in enumerate(obs):
            for b, fb in obs[i + 1:]:
                if codes(fa) != codes(fb) and all(a[c] == b[c] for c in conds if c in a and c in b):
                    return True
        return False

    needed = list(order)
    for c in order:
        rest = [x for x in needed if x != c]
        if not clash(rest):
            needed = rest

    def build(cases: list, conds: list[str]) -> tuple:
        texts = {codes(f) for _, f in cases}
        if len(texts) == 1:
            return functools.reduce(lambda x, y: tuple(map(join, x, y)), [f for _, f in cases])
        for i, c in enumerate(conds):
            t = [(a, f) for a, f in cases if a.get(c, True)]
            f = [(a, f) for a, f in cases if not a.get(c, False)]
            if t and f and (len(t) < len(cases) or len(f) < len(cases)):
                return _merge_if(c, build(t, conds[i + 1:]), build(f, conds[i + 1:]))
        raise Fallback("forward differs between cases no condition tells apart")

    return build(obs, needed)


_COMMENT = re.compile(r"^(.*?)  # (.*?)(?:  )?(\S+:\d+)$")  # `code  # [shape]  file.arch:12`


def _code(st: Any) -> Any:
    """A statement without its comments' shapes: two branches that run the same code on tensors of other
    sizes (after a pad on one of them) are one statement."""
    if isinstance(st, If):
        return ("if", st.cond, tuple(_code(x) for x in st.then), tuple(_code(x) for x in st.orelse))
    return tuple((m.group(1), m.group(3)) if (m := _COMMENT.match(line)) else line for line in st.lines)


def codes(stmts: tuple | None) -> tuple:
    return tuple(map(_code, stmts or ()))


def join(x: Any, y: Any) -> Any:
    """Two statements with the same code: one, whose comments keep only what both say."""
    if x == y:
        return x
    if isinstance(x, If):
        return If(x.cond, tuple(map(join, x.then, y.then)), tuple(map(join, x.orelse, y.orelse)))
    lines = []
    for lx, ly in zip(x.lines, y.lines):
        mx = _COMMENT.match(lx)
        lines.append(lx if lx == ly or mx is None else f"{mx.group(1)}  # {mx.group(3)}")
    return Lines(tuple(lines))


def _unify(a: tuple, b: tuple) -> tuple | None:
    """One statement list for two that differ only inside `if`s on the same conditions, or None."""
    if a == b:
        return a
    if len(a) != len(b):
        return None
    out = []
    for x, y in zip(a, b):
        if _code(x) == _code(y):
            out.append(join(x, y))
        elif isinstance(x, If) and isinstance(y, If) and x.cond == y.cond:
            then, orelse = _unify(x.then, y.then), _unify(x.orelse, y.orelse)
            if then is None or orelse is None:
                return None
            out.append(If(x.cond, then, orelse))
        else:
            return None
    return tuple(out)


def _merge_if(cond: str, a: tuple, b: tuple) -> tuple[Any, ...]:
    same = _unify(a, b)
    if same is not None:
        return same
    p = 0
    while p < min(len(a), len(b)) and _code(a[p]) == _code(b[p]):
        p += 1
    s = 0
    while s < min(len(a), len(b)) - p and _code(a[len(a) - 1 - s]) == _code(b[len(b) - 1 - s]):
        s += 1
    head = tuple(map(join, a[:p], b[:p]))
    tail = tuple(map(join, a[len(a) - s:], b[len(b) - s:]))
    return head + (If(cond, a[p:len(a) - s], b[p:len(b) - s]),) + tail


def _simplify(stmts: tuple) -> tuple:
    """After merging: `if c: X else: (if c2: X else: Y)` is `if c or c2: X else: Y`; likewise `and`. The
    statements both branches start (or end) with, the same code, are written once before (after) the `if`."""
    out: list[Any] = []
    for st in stmts:
        if isinstance(st, If):
            ma, mb = _simplify(st.then), _simplify(st.orelse)
            head: list[Any] = []
            tail: list[Any] = []
            while ma and mb and _code(ma[0]) == _code(mb[0]):
                head.append(join(ma[0], mb[0]))
                ma, mb = ma[1:], mb[1:]
            while ma and mb and _code(ma[-1]) == _code(mb[-1]):
                tail.insert(0, join(ma[-1], mb[-1]))
                ma, mb = ma[:-1], mb[:-1]
            out.extend(head)
            if not ma and not mb:
                out.extend(tail)
                continue
            st = If(st.cond, ma, mb)
            if len(mb) == 1 and isinstance(mb[0], If) and mb[0].then == ma:
                st = If(f"{_paren(st.cond)} or {_paren(mb[0].cond)}", ma, mb[0].orelse)
            elif len(ma) == 1 and isinstance(ma[0], If) and ma[0].orelse == mb:
                st = If(f"{_paren(st.cond, ' or ')} and {_paren(ma[0].cond, ' or ')}", ma[0].then, mb)
            out.append(st)
            out.extend(tail)
            continue
        out.append(st)
    return tuple(out)


_SIZE_READ = re.compile(r"^([A-Za-z_]\w*) = [A-Za-z_]\w*\.shape\[\d+\]$")


def _unused_sizes(stmts: tuple) -> tuple:
    """Without the sizes read off the inputs that nothing reads (a condition that merging found
    forward does not need)."""
    text = "\n".join(line.split("  # ")[0] for line in flatten(stmts))
    out = []
    for st in stmts:
        m = _SIZE_READ.match(st.lines[0]) if isinstance(st, Lines) and len(st.lines) == 1 else None
        if m and len(re.findall(rf"\b{m.group(1)}\b", text)) == 1:
            continue
        out.append(st)
    return tuple(out)


def _paren(cond: str, inner: str = " if ") -> str:
    return f"({cond})" if inner in cond or " if " in cond else cond


def merge(variants: list[Variant]) -> tuple[tuple, tuple | None, tuple[str, ...], tuple[str, ...], int]:
    """One body for all variants: (init, forward, locals, stored attributes)."""
    root = _tree(variants, 0)
    block = variants[0].block
    guards: list[Any] = []
    for v in variants:
        for g in v.guards:
            if Lines(tuple(g.split("\n"))) not in guards:
                guards.append(Lines(tuple(g.split("\n"))))
    init = tuple(guards) + _simplify(_render_init(root, block))
    forward = None if variants[0].forward is None else _unused_sizes(_simplify(_forward_tree(variants)))
    locals_ = tuple(sorted({x for v in variants for x in v.locals}))
    stored = tuple(sorted({x for v in variants for x in v.stored}))
    return init, forward, locals_, stored, len(guards)


def _add_module(name: str, lines: Any) -> Lines:
    """`self.add_module("pre-logits", nn.Linear(...))`: a layer whose name is not a Python name (a key
    of a real checkpoint, written `as "pre-logits"`)."""
    body = [f'self.add_module("{name}", {lines[0]}', *lines[1:]]
    code, sep, comment = body[-1].partition("  # ")
    body[-1] = f"{code}){sep}{comment}"
    return Lines(tuple(body))
