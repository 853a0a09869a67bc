"""Elaboration of op calls: binding arguments against the op's attributes (`OpDef.params`), then applying
the op's shape rule and adding its node to the graph.

Part of the `Elaborator` (dsl/elaborate.py), a mixin over `values.State`.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from archc.diagnostics import Span, did_you_mean
from archc.dsl.values import (
    POISON,
    TV,
    Abort,
    BlockRef,
    Frame,
    Poison,
    State,
    _RuleCtx,
)
from archc.grammar import ast
from archc.ir.graph import ModuleInfo
from archc.ops.facets import ShapeError
from archc.ops.registry import BY_NAME, REQUIRED, OpDef
from archc.shapes import sizes as S
from archc.shapes.types import DTYPES, TupleType

if TYPE_CHECKING:
    from archc.dsl.loader import File


# Functions of numbers and sizes in expressions: name -> (fewest, most) arguments.
SIZE_FUNCTIONS = {"max": (2, 64), "min": (2, 64), "floor": (1, 1), "ceil": (1, 1), "round": (1, 1), "int": (1, 1),
                  "len": (1, 1)}
_KIND_WORDS = {"float": "floating-point", "complex": "complex", "int": "integer", "bool": "boolean"}
_AXIS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # an axis name written as a string or held by a value


class Calls(State):
    if TYPE_CHECKING:  # methods of the Elaborator's other parts that this part calls
        def ev(self, e: ast.Expr, frame: Frame, path: str | None = None, list_path: str | None = None) -> Any: ...
        def call_block(self, block: ast.Block, bfile: File, call: ast.Call, implicit: Any,
                       frame: Frame, path: str | None) -> Any: ...
        def _getitem(self, value: TV, i: int, span: Span) -> TV: ...
        def _claim(self, frame: Frame, path: str, span: Span) -> None: ...
        def _parent_of(self, path: str) -> str | None: ...
        def _take_repeat(self) -> tuple[str, int, int, int] | None: ...

    # ---- calls -------------------------------------------------------------------------------

    def _call(self, call: ast.Call, frame: Frame, implicit: Any, path: str | None,
              seq_step: bool = False) -> Any:
        held = frame.env.get(call.func)
        if isinstance(held, BlockRef):  # a parameter holding a block: `unit(x, planes)`
            return self.call_block(held.block, held.file, call, implicit, frame, path)
        found = frame.file.namespace.get(call.func)
        if found is not None:
            return self.call_block(found[0], found[1], call, implicit, frame, path)
        if call.func in SIZE_FUNCTIONS and call.func not in BY_NAME:
            return self._size_function(call, frame)
        sig = BY_NAME.get(call.func)
        if sig is None and call.func in frame.env and not isinstance(held, Poison):
            self.bag.error("type", f"'{call.func}' is {self._kind(held)}, not a block: only a block (or a variable "
                           "holding one) can be called", call.func_span)
            raise Abort
        if sig is None:
            names = list(BY_NAME) + list(frame.file.namespace) + list(SIZE_FUNCTIONS)
            self.bag.error("name", f"no op or block named '{call.func}'{did_you_mean(call.func, names)}",
                           call.func_span)
            raise Abort
        inputs, attrs, arg_spans = self._bind(sig, call, frame, implicit)
        if any(isinstance(v, Poison) for v in inputs):
            return POISON
        return self._apply(sig, inputs, attrs, call.span, frame, path, arg_spans, sig.name, seq_step)

    def _size_function(self, call: ast.Call, frame: Frame) -> Any:
        """max, min, floor, ceil, round and int of numbers and sizes (free sizes stay symbolic); len of a
        list."""
        arity = SIZE_FUNCTIONS[call.func]
        args = [a for a in call.args if isinstance(a, ast.PosArg)]
        if len(args) != len(call.args) or not arity[0] <= len(args) <= arity[1]:
            want = f"{arity[0]}" if arity[0] == arity[1] else f"{arity[0]} or more"
            self.bag.error("arg", f"{call.func} takes {want} number(s) or size(s), written without names", call.span)
            raise Abort
        if call.func == "len":  # of a list (or a string): how many items
            v = self.ev(args[0].value, frame)
            if isinstance(v, Poison):
                raise Abort
            if not isinstance(v, (list, tuple, str)):
                self.bag.error("type", f"len takes a list, got {self._kind(v)}", args[0].span)
                raise Abort
            return len(v)
        values = []
        for a in args:
            v = self.ev(a.value, frame)
            if isinstance(v, Poison):
                raise Abort
            if isinstance(v, bool) or not (isinstance(v, float) or S.is_size(v)):
                self.bag.error("type", f"{call.func} takes numbers and sizes, got {self._kind(v)}", a.span)
                raise Abort
            values.append(v)
        if call.func in ("max", "min"):
            out = values[0]
            for v in values[1:]:
                if isinstance(out, float) or isinstance(v, float):
                    out = max(out, v) if call.func == "max" else min(out, v)
                else:
                    out = S.maximum(out, v) if call.func == "max" else S.minimum(out, v)
            return out
        (v,) = values
        if call.func == "floor":
            return S.floor(v)
        if call.func == "ceil":
            return S.ceil(v)
        if not S.is_concrete(v) and not isinstance(v, float):
            self.bag.error("value", f"{call.func} needs a number, but {S.fmt(v)} depends on free sizes "
                           "(floor or ceil keep it symbolic)", call.span)
            raise Abort
        return round(v) if call.func == "round" else int(v)

    def _bind(self, sig: OpDef[Any], call: ast.Call, frame: Frame, implicit: Any
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
            # and a list's: concat([y[t = i * 8:(i + 1) * 8] for i in 0..4], axis = t)
            vs = list(v) if isinstance(v, (tuple, list)) and lo != hi else [v]
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
                    attrs.setdefault(p.name, []).append(self._rename_pair(a, frame))
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
                    sz = self._as_size(self.ev(a.value, frame), a.value.span, f"the size of axis '{a.name}'", 1)
                    given = attrs.setdefault(kw_sizes.name, {})
                    if a.name in given:
                        self.bag.error("arg", f"the size of '{a.name}' is given twice", a.span)
                        raise Abort
                    given[a.name] = sz
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

    def _axis_name(self, ex: Any, what: str, frame: Frame | None = None) -> str:
        """An axis written in an argument: `chan`, `"chan"`, or a value naming one as a string (a block
        parameter `ax = "tok"`: `linear(x, ax -> 384)` maps the axis `tok`; `dims[0]`). A bare name is the
        axis of that name unless it is a variable holding a string."""
        if isinstance(ex, ast.Var):
            held = frame.env.get(ex.name) if frame is not None else None
            return self._held_axis(held, ex, what) if isinstance(held, str) else ex.name
        if isinstance(ex, ast.String) and _AXIS_NAME.fullmatch(ex.value):
            return ex.value
        if frame is not None and not isinstance(ex, (ast.String, ast.KeyedItem, ast.EllipsisItem)):
            v = self.ev(ex, frame)
            if isinstance(v, Poison):
                raise Abort
            if isinstance(v, str):
                return self._held_axis(v, ex, what)
        self.bag.error("type", f"{what} must be an axis name, as in `chan`", ex.span)
        raise Abort

    def _held_axis(self, v: str, ex: Any, what: str) -> str:
        if not _AXIS_NAME.fullmatch(v):
            self.bag.error("type", f"{what} must be an axis name, got {self._kind(v)}", ex.span)
            raise Abort
        return v

    def _axis_names(self, ex: Any, what: str, frame: Frame) -> tuple[str, ...]:
        """Axes: one as `_axis_name` reads it, a list of them, or a value holding a list of names."""
        if isinstance(ex, ast.ListExpr):
            names = tuple(self._axis_name(x, what, frame) for x in ex.items)
        elif isinstance(ex, ast.String) or (isinstance(ex, ast.Var) and not isinstance(frame.env.get(ex.name), list)):
            names = (self._axis_name(ex, what, frame),)
        else:
            v = self.ev(ex, frame)
            if isinstance(v, Poison):
                raise Abort
            if isinstance(v, str):
                names = (self._held_axis(v, ex, what),)
            elif isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
                names = tuple(self._held_axis(x, ex, what) for x in v)
            else:
                self.bag.error("type", f"{what} must be axis names, as in `[h, w]`, got {self._kind(v)}", ex.span)
                raise Abort
        if not names:
            self.bag.error("arg", f"{what} needs at least one axis", ex.span)
            raise Abort
        return names

    def _map(self, a: ast.MapArg, frame: Frame) -> tuple[str, Any, str | None]:
        src = self._axis_name(a.source, "the left side of `->`", frame)
        size = self._as_size(self.ev(a.size, frame), a.size.span, "the right side of `->`")
        return (src, size, a.rename)

    def _rename_pair(self, a: ast.MapArg, frame: Frame) -> tuple[str, str]:
        if a.rename is not None:
            self.bag.error("arg", "rename takes `old -> new` pairs of axis names", a.span)
            raise Abort
        return (self._axis_name(a.source, "the old name", frame), self._axis_name(a.size, "the new name", frame))

    def _arg(self, sig: OpDef[Any], p: Any, ex: ast.Expr, frame: Frame) -> Any:
        kind = p.kind
        if kind == "axis":
            return self._axis_name(ex, f"'{p.name}' of {sig.name}", frame)
        if kind == "axes":
            return self._axis_names(ex, f"'{p.name}' of {sig.name}", frame)
        if kind in ("map", "renames"):
            self.bag.error("arg", f"'{p.name}' of {sig.name} is an axis map, as in `chan -> 64`", ex.span)
            raise Abort
        v = self.ev(ex, frame)
        if isinstance(v, Poison):
            raise Abort
        if v is None and p.default is None:  # `none` where the argument is optional: left out
            return None
        if kind == "size":
            return self._as_size(v, ex.span, f"'{p.name}' of {sig.name}")
        if kind == "sizes":
            if isinstance(v, list):
                return [self._as_size(x, ex.span, f"'{p.name}' of {sig.name}") for x in v]
            return self._as_size(v, ex.span, f"'{p.name}' of {sig.name}")
        if kind == "ints":  # whole numbers of either sign: shifts, offsets
            if isinstance(v, list):
                return [self._as_int(x, ex.span, f"'{p.name}' of {sig.name}") for x in v]
            return self._as_int(v, ex.span, f"'{p.name}' of {sig.name}")
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
            symbolic = kind == "number" and S.is_size(v)  # a size: `less(pos, value = L)`, read at run time
            if v is None or isinstance(v, bool) or not (isinstance(v, float) or S.is_concrete(v) or symbolic):
                self.bag.error("type", f"'{p.name}' of {sig.name} is a number, got {self._kind(v)}", ex.span)
                raise Abort
            if isinstance(v, float) and not math.isfinite(v):
                self.bag.error("value", f"'{p.name}' of {sig.name} must be a finite number, got {v}", ex.span)
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

    def _as_int(self, v: Any, span: Span, what: str) -> Any:
        """A whole number that may be negative (a shift); a free size is one only where it divides."""
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not S.is_size(v):
            self.bag.error("type", f"{what} must be a whole number, got {self._kind(v)}", span)
            raise Abort
        if S.is_concrete(v):
            return int(v)
        return self._as_size(v, span, what) if S.fraction(v)[1] != 1 else v

    def _as_size(self, v: Any, span: Span, what: str, minimum: int = 0) -> Any:
        """`v` as a size (`minimum` 1: an axis' size, which is positive); located errors otherwise."""
        if isinstance(v, Poison):
            raise Abort
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if isinstance(v, bool) or not S.is_size(v):
            self.bag.error("type", f"{what} must be an integer size, got {self._kind(v)}", span)
            raise Abort
        if S.is_concrete(v):
            if int(v) < minimum:
                need = "must not be negative" if minimum == 0 else f"must be at least {minimum}"
                self.bag.error("value", f"{what} {need}, got {v}", span)
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

    def _apply(self, op: OpDef[Any], inputs: list[Any], given: dict[str, Any], span: Span, frame: Frame,
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
        if op.dtypes is not None:
            for t in types:
                if DTYPES[t.dtype].kind not in op.dtypes:
                    kinds = " or ".join(_KIND_WORDS[k] for k in sorted(op.dtypes))
                    self.bag.error("type", f"{name or op.value} takes {kinds} tensors, not {t.dtype}: {t}", span)
                    return POISON
        ctx = _RuleCtx(self, span, arg_spans)
        assert op.shape is not None, f"{op.name} is typed by the elaborator, not called"
        try:
            out_type, params, attrs = op.shape(ctx, types, op.attrs(**given))
        except ShapeError as err:
            where = arg_spans.get(err.arg, span) if err.arg else span
            prefix = "" if "what" in given else f"{name or op.value}: "  # `a + b` needs no "add: "
            self.bag.error(err.code, prefix + err.message, where)
            return POISON
        self._check_size_depth(out_type, span)
        in_seq = path is not None and seq_step
        if (params or in_seq) and path is None:
            self.bag.error("structure", f"{name or op.value} has parameters and needs a name: write "
                           f"`{name or op.value}1 = {name or op.value}(...)`", span)
            return POISON
        owner = path if (params or in_seq) else None
        if owner is not None:
            self._claim(frame, owner, span)
            self.graph.add_module(ModuleInfo(owner, "op", op.value, attrs.as_dict(), span,
                                             self._parent_of(owner), repeat=self._take_repeat()))
        label = path.rsplit(".", 1)[-1] if path and not owner else ""
        node = self.graph.add(op, tuple(v.id for v in inputs), attrs, out_type, span, path=owner,
                              scope=frame.path, params=params, label=label)
        return TV(node.id)

