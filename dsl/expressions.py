"""Elaboration of expressions: values, arithmetic on sizes, tensor arithmetic.

Part of the `Elaborator` (dsl/elaborate.py), written as a mixin over
`values.State`; methods of the other parts are reached through `self`
(declared for the type checker at the top of the class: the parts are only complete together).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from archc.diagnostics import Span, did_you_mean
from archc.dsl.values import (
    _FLOAT_OPS,
    POISON,
    TV,
    Abort,
    BlockRef,
    Constraint,
    Frame,
    ListV,
    Poison,
    State,
)
from archc.grammar import ast
from archc.ir.graph import ModuleInfo
from archc.ops.registry import BY_NAME, Op, OpDef
from archc.shapes import sizes as S
from archc.shapes.types import TupleType


class Expressions(State):
    if TYPE_CHECKING:  # methods of the Elaborator's other parts that this part calls
        def _call(self, call: ast.Call, frame: Frame, implicit: Any, path: str | None,
                  seq_step: bool = False) -> Any: ...
        def _apply(self, op: OpDef[Any], inputs: list[Any], given: dict[str, Any], span: Span, frame: Frame,
                   path: str | None, arg_spans: dict[str, Span], name: str = "", seq_step: bool = False) -> Any: ...
        def _seq(self, e: ast.SeqExpr, frame: Frame, path: str | None) -> Any: ...
        def _getitem(self, value: TV, i: int, span: Span) -> TV: ...
        def _as_int(self, v: Any, span: Span, what: str) -> Any: ...
        def _parent_of(self, path: str) -> str | None: ...
        def _iterate(self, frame: Frame, loop: ast.For | ast.ForStep | ast.ListComp) -> Sequence[Any]: ...

    # ---- expressions ----------------------------------------------------------------------

    def ev(self, e: ast.Expr, frame: Frame, path: str | None = None, list_path: str | None = None) -> Any:
        """Evaluate an expression. `path` names the layer the outermost call may create."""
        self._scope = frame.path
        if isinstance(e, ast.Number):
            return e.value
        if isinstance(e, (ast.String, ast.Bool)):
            return e.value
        if isinstance(e, ast.NoneLit):
            return None
        if isinstance(e, ast.Slicing):
            return self._slicing(e, frame, path)
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
        if isinstance(e, ast.ListSlice):
            return self._list_slice(e, frame)
        if isinstance(e, ast.ListComp):
            return self._list_comp(e, frame)
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
            v = frame.env[e.name]
            items = v.dense() if isinstance(v, ListV) else None
            if items and not any(isinstance(x, (TV, ListV, Poison)) for x in items):
                return items  # `dims[i] = ...` of values: a plain list
            return v
        if e.name in self._sizes_env:
            return self._sizes_env[e.name]
        found = frame.file.namespace.get(e.name)
        if found is not None:  # a block as a value: `Stage(x, Bottleneck, 3)`
            return BlockRef(found[0], found[1])
        if e.name in BY_NAME:
            self.bag.error("name", f"'{e.name}' is an operation, and only blocks are values: write a block that "
                           f"calls {e.name} and pass the block", e.span)
            raise Abort
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

    def _list_slice(self, e: ast.ListSlice, frame: Frame) -> Any:
        """`widths[1:]`, `dims[::-1]`: Python's slicing of a list or tuple (bounds concrete integers)."""
        v = self.ev(e.value, frame)
        if isinstance(v, Poison):
            return v
        if isinstance(v, ListV):  # `skip[i] = ...` of tensors: a list once elements 0 to n - 1 are assigned
            items = v.dense()
            if items is None:
                self.bag.error("value", f"only elements {sorted(v.items)} of this list were assigned: a list is "
                               "sliced once elements 0 to n - 1 are", e.span)
                raise Abort
            v = items
        if isinstance(v, TV):
            self.bag.error("type", "a tensor is sliced by axis name (`x[h = 0:4]`), not by position", e.span)
            raise Abort
        if not isinstance(v, (list, tuple)):
            self.bag.error("type", f"only a list or a tuple can be sliced by position, not {self._kind(v)}", e.span)
            raise Abort
        bounds: list[int | None] = []
        for x in (e.start, e.stop, e.step):
            if x is None:
                bounds.append(None)
                continue
            i = self.ev(x, frame)
            if isinstance(i, Poison):
                return i
            if isinstance(i, bool) or not S.is_concrete(i):
                self.bag.error("type", f"a slice bound must be a concrete integer, got {self._kind(i)}", x.span)
                raise Abort
            bounds.append(int(i))
        if bounds[2] == 0:
            assert e.step is not None
            self.bag.error("value", "a slice step cannot be 0", e.step.span)
            raise Abort
        out = v[slice(*bounds)]
        return list(out) if isinstance(v, list) else tuple(out)

    def _list_comp(self, e: ast.ListComp, frame: Frame) -> Any:
        """`[2 * w for w in widths if w > 8]`: the element for each item (of a list or `start..stop`) the
        condition keeps; the variable is the comprehension's own (an outer one of that name is kept)."""
        items = self._iterate(frame, e)
        missing = object()
        outer = frame.env.get(e.var, missing)
        out: list[Any] = []
        try:
            for item in items:
                frame.env[e.var] = item
                if e.cond is not None and not self.truth(self.ev(e.cond, frame), e.cond.span):
                    continue
                v = self.ev(e.element, frame)
                if isinstance(v, Poison):
                    return v
                out.append(v)
        finally:
            if outer is missing:
                frame.env.pop(e.var, None)
            else:
                frame.env[e.var] = outer
        return out

    def _slicing(self, e: ast.Slicing, frame: Frame, path: str | None) -> Any:
        """`x[h = 0:4, w = ::2]`: one `slice` per axis, in the order written; `h = i` keeps position i
        and drops the axis (`x[h = -1]`: the last)."""
        t = self.ev(e.value, frame)
        if isinstance(t, Poison):
            return t
        if not isinstance(t, TV):
            self.bag.error("type", f"`[{e.items[0].axis} = ...]` slices a tensor's named axes, not "
                           f"{self._kind(t)}", e.span)
            raise Abort
        seen: dict[str, Span] = {}
        for item in e.items:
            if item.axis in seen:
                self.bag.error("arg", f"axis '{item.axis}' is sliced twice", item.span,
                               [("first here", seen[item.axis])])
                raise Abort
            seen[item.axis] = item.span
            given: dict[str, Any] = {"over": item.axis}
            spans: dict[str, Span] = {"over": item.span}
            for name, part in (("start", item.start), ("stop", item.stop), ("step", item.step)):
                if part is None:
                    continue
                v = self.ev(part, frame)
                if isinstance(v, Poison):
                    return v
                if v is None:  # `none`: as if left out
                    continue
                given[name] = self._as_int(v, part.span, f"the {name} of the slice of '{item.axis}'")
                spans[name] = part.span
            if not item.is_range:
                if "start" not in given:
                    self.bag.error("arg", f"`{item.axis} = none` picks no position; write `{item.axis} = :` "
                                   "for the whole axis", item.span)
                    raise Abort
                i = given["start"]
                given["stop"] = None if isinstance(i, int) and i == -1 else S.add(i, 1)
                given["keep"] = False
                spans["stop"] = spans["start"]
            last = item is e.items[-1]  # `y = x[...]` labels the last slice `y` in reports
            t = self._apply(Op.SLICE, [t], given, item.span, frame, path if last else None, spans)
            if isinstance(t, Poison):
                return t
        return t

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
        if e.op == "+" and isinstance(a, list) and isinstance(b, list):
            return a + b  # `widths + [512]`
        if e.op in ("==", "!=") and isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return self._equal(a, b, e) == (e.op == "==")  # `widths[1:] == [32, 64]`
        if e.op in ("==", "!=", "<", "<=", ">", ">="):
            if any(isinstance(v, (str, bool, BlockRef)) or v is None for v in (a, b)):
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
                fa, fb = self._as_float(a, e.span), self._as_float(b, e.span)
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

    def _equal(self, a: Any, b: Any, e: ast.BinOp) -> bool:
        """Two values compared as `==` compares them (lists item by item, in order)."""
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return len(a) == len(b) and all(self._equal(x, y, e) for x, y in zip(a, b))
        if isinstance(a, TV) or isinstance(b, TV):
            self.bag.error("type", "lists holding tensors cannot be compared", e.span)
            raise Abort
        if any(isinstance(v, (str, bool, list, tuple, BlockRef)) or v is None for v in (a, b)):
            return bool(a == b)
        r = S.compare(a, "==", b)
        return r if r is not None else self._decide(a, "==", b, e.span)

    def _as_float(self, v: Any, span: Span) -> float:
        """A side of float arithmetic (`dh ** -0.5`): a number, not a symbolic size (code generation's
        tracer gives sizes it knows their values: dsl/templates.py)."""
        if isinstance(v, float) or S.is_concrete(v):
            return float(v)
        self.bag.error("type", "a symbolic size cannot be mixed with a fraction", span)
        raise Abort

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
        self.constraints.append(Constraint("assumed", (a, op, b), r, "a condition on free sizes", span,
                                           self.asserting > 0))
        return r

    def truth(self, v: Any, span: Span) -> bool:
        if isinstance(v, Poison):
            raise Abort
        if isinstance(v, bool):
            return v
        hint = " (test it with `== none`)" if v is None else ""
        self.bag.error("type", f"a condition must be true or false, got {self._kind(v)}{hint}", span)
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
            if isinstance(other, bool) or not (isinstance(other, (int, float)) or S.is_size(other)):
                self.bag.error("type", f"a tensor can be scaled by a number or a size, not by {self._kind(other)}",
                               e.span)
                raise Abort
            if e.op == "/" and (S.is_concrete(other) or isinstance(other, float)) and float(other) == 0:
                self.bag.error("value", "division by zero", e.right.span)
                raise Abort
            if not isinstance(other, (int, float)):  # a size read at run time: `x / L`, `x * (H * W)`
                return self._apply(Op.SCALE, [t], {"factor": 1, "size": other, "divide": e.op == "/"}, e.span,
                                   frame, None, {})
            factor = 1 / other if e.op == "/" else other
            return self._scale(t, factor, e.span, frame)
        self.bag.error("type", f"'{e.op}' between a tensor and {self._kind(other)} is not defined", e.span)
        raise Abort

    def _scale(self, t: TV, factor: float, span: Span, frame: Frame) -> Any:
        return self._apply(Op.SCALE, [t], {"factor": factor}, span, frame, None, {})

