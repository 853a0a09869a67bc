"""Prints an AST back as .arch text (canonical layout).

`parse(format_module(m))` gives back `m` up to source spans: the round trip is a
property test (tests/test_roundtrip.py), which keeps the grammar and the AST
builder honest.

>>> from archc.grammar.parser import parse
>>> print(format_module(parse("block B(){in x:[n,c=3]\\nout relu(x)}", "b.arch")), end="")
block B() {
  in x: [n, c = 3]
  out relu(x)
}
"""

from __future__ import annotations

from archc.grammar import ast

# Binding strength of each binary operator (higher binds tighter), as in arch.lark.
_PREC = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4,
         "+": 5, "-": 5, "*": 6, "/": 6, "//": 6, "%": 6, "**": 8}
_ATOM = 9


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def expr(e: ast.Expr) -> str:
    return _expr(e)[0]


def _wrap(e: ast.Expr, need: int) -> str:
    text, prec = _expr(e)
    return f"({text})" if prec < need else text


def _expr(e: ast.Expr) -> tuple[str, int]:
    if isinstance(e, ast.Number):
        return repr(e.value) if isinstance(e.value, float) else str(e.value), _ATOM
    if isinstance(e, ast.String):
        return _quote(e.value), _ATOM
    if isinstance(e, ast.Bool):
        return ("true" if e.value else "false"), _ATOM
    if isinstance(e, ast.NoneLit):
        return "none", _ATOM
    if isinstance(e, ast.Var):
        return e.name, _ATOM
    if isinstance(e, ast.BinOp):
        p = _PREC[e.op]
        if p == 4:  # comparisons do not chain
            return f"{_wrap(e.left, 5)} {e.op} {_wrap(e.right, 5)}", p
        if e.op == "**":  # right side is a unary
            return f"{_wrap(e.left, _ATOM)} ** {_wrap(e.right, 7)}", p
        return f"{_wrap(e.left, p)} {e.op} {_wrap(e.right, p + 1)}", p
    if isinstance(e, ast.UnaryOp):
        if e.op == "not":
            return f"not {_wrap(e.operand, 3)}", 3
        return f"-{_wrap(e.operand, 7)}", 7
    if isinstance(e, ast.Cond):
        return f"if {expr(e.test)} then {expr(e.then)} else {expr(e.orelse)}", 0
    if isinstance(e, ast.Index):
        return f"{_wrap(e.value, _ATOM)}[{expr(e.index)}]", _ATOM
    if isinstance(e, ast.Slicing):
        return f"{_wrap(e.value, _ATOM)}[{', '.join(_axis_slice(x) for x in e.items)}]", _ATOM
    if isinstance(e, ast.TupleExpr):
        inner = ", ".join(expr(x) for x in e.items)
        return f"({inner},)" if len(e.items) == 1 else f"({inner})", _ATOM
    if isinstance(e, ast.ListExpr):
        return "[" + ", ".join(_item(x) for x in e.items) + "]", _ATOM
    if isinstance(e, ast.ListSlice):
        return f"{_wrap(e.value, _ATOM)}[{_bounds(e.start, e.stop, e.step)}]", _ATOM
    if isinstance(e, ast.ListComp):
        cond = f" if {expr(e.cond)}" if e.cond is not None else ""
        return f"[{expr(e.element)} for {e.var} in {_iter(e)}{cond}]", _ATOM
    if isinstance(e, ast.Call):
        return call(e), _ATOM
    if isinstance(e, ast.SeqExpr):
        return f"seq({expr(e.input)}) " + _steps(e.steps, 0), _ATOM
    raise TypeError(type(e).__name__)


def _axis_slice(x: ast.AxisSlice) -> str:
    if not x.is_range:
        assert x.start is not None, "a position is always written"
        return f"{x.axis} = {expr(x.start)}"
    return f"{x.axis} = {_bounds(x.start, x.stop, x.step)}"


def _bounds(start: ast.Expr | None, stop: ast.Expr | None, step: ast.Expr | None) -> str:
    """`start:stop:step` of a slice, the parts left out as written."""
    a, b = (expr(v) if v is not None else "" for v in (start, stop))
    return f"{a}:{b}" + (f":{expr(step)}" if step is not None else "")


def _item(x: ast.Expr | ast.KeyedItem | ast.EllipsisItem) -> str:
    if isinstance(x, ast.KeyedItem):
        return f"{x.key} = {expr(x.value)}"
    if isinstance(x, ast.EllipsisItem):
        return "..."
    return expr(x)


def _arg(a: ast.Arg) -> str:
    if isinstance(a, ast.KwArg):
        return f"{a.name} = {expr(a.value)}"
    if isinstance(a, ast.MapArg):
        rhs = f"{a.rename} = {expr(a.size)}" if a.rename else expr(a.size)
        return f"{expr(a.source)} -> {rhs}"
    return expr(a.value)


def call(c: ast.Call) -> str:
    return f"{c.func}(" + ", ".join(_arg(a) for a in c.args) + ")"


def _label(label: str) -> str:
    return label if label.isidentifier() else _quote(label)


def _steps(steps: tuple[ast.Step, ...], depth: int) -> str:
    pad = "  " * (depth + 1)
    lines = ["{"]
    for s in steps:
        lines.append(pad + _step(s, depth + 1))
    lines.append("  " * depth + "}")
    return "\n".join(lines)


def _iter(s: ast.For | ast.ForStep | ast.ListComp) -> str:
    """What a `for` (or a comprehension) runs over: `start..stop`, or a list's items."""
    if s.items is not None:
        return expr(s.items)
    assert s.start is not None and s.stop is not None, "a range has both ends"
    return f"{expr(s.start)}..{expr(s.stop)}"


def _step(s: ast.Step, depth: int) -> str:
    if isinstance(s, ast.CallStep):
        return (f"{_label(s.label)}: " if s.label is not None else "") + call(s.call)
    if isinstance(s, ast.SeqStep):
        return (f"{_label(s.label)}: " if s.label is not None else "") + "seq " + _steps(s.steps, depth)
    if isinstance(s, ast.ForStep):
        return f"for {s.var} in {_iter(s)} " + _steps(s.steps, depth)
    if isinstance(s, ast.IfStep):
        text = f"if {expr(s.test)} " + _steps(s.then, depth)
        return text + (" else " + _steps(s.orelse, depth) if s.orelse else "")
    raise TypeError(type(s).__name__)


def type_expr(t: ast.TypeExpr) -> str:
    if isinstance(t, ast.TupleTypeExpr):
        return "(" + ", ".join(type_expr(x) for x in t.items) + ")"
    axes = ", ".join("..." if a.name is None else (a.name if a.size is None else f"{a.name} = {expr(a.size)}")
                     for a in t.axes)
    return f"{t.dtype or ''}[{axes}]"


def _body(stmts: tuple[ast.Stmt, ...], depth: int) -> list[str]:
    pad = "  " * depth
    out: list[str] = []
    for s in stmts:
        if isinstance(s, ast.In):
            out.append(f"{pad}in {s.name}: {type_expr(s.type)}")
        elif isinstance(s, ast.Out):
            name = f" as {_quote(s.name)}" if s.name is not None else ""
            out.append(f"{pad}out " + ", ".join(expr(v) for v in s.values) + name)
        elif isinstance(s, ast.Let):
            tg = ", ".join(t.name if t.index is None else f"{t.name}[{expr(t.index)}]" for t in s.targets)
            name = f" as {_quote(s.name)}" if s.name is not None else ""
            out.append(f"{pad}{tg} = {_indent(expr(s.value), depth)}{name}")
        elif isinstance(s, ast.ParamDecl):
            init = f" = {expr(s.init)}" if s.init is not None else ""
            out.append(f"{pad}param {s.name}: {type_expr(s.type)}{init}")
        elif isinstance(s, ast.BufferDecl):
            init = f" = {expr(s.init)}" if s.init is not None else ""
            opts = "".join(f", {o.name} = {expr(o.value)}" for o in s.options)
            out.append(f"{pad}buffer {s.name}: {type_expr(s.type)}{init}{opts}")
        elif isinstance(s, ast.If):
            for i, (test, body) in enumerate(s.branches):
                out.append(f"{pad}{'if' if i == 0 else '} elif'} {expr(test)} {{")
                out.extend(_body(body, depth + 1))
            if s.orelse:
                out.append(f"{pad}}} else {{")
                out.extend(_body(s.orelse, depth + 1))
            out.append(f"{pad}}}")
        elif isinstance(s, ast.For):
            out.append(f"{pad}for {s.var} in {_iter(s)} {{")
            out.extend(_body(s.body, depth + 1))
            out.append(f"{pad}}}")
        elif isinstance(s, ast.Assert):
            msg = f", {_quote(s.message)}" if s.message is not None else ""
            out.append(f"{pad}assert {expr(s.test)}{msg}")
        else:
            raise TypeError(type(s).__name__)
    return out


def _indent(text: str, depth: int) -> str:
    return text.replace("\n", "\n" + "  " * depth)


def format_module(m: ast.Module) -> str:
    out: list[str] = []
    for imp in m.imports:
        target = _quote(imp.path) if imp.is_file else imp.path
        out.append(f"import {target}" + (f" as {imp.alias}" if imp.alias else ""))
    for d in m.dtypes:
        out.append(f"dtype {d.name}")
    if m.sizes:
        out.append("size " + ", ".join(s.name if s.default is None else f"{s.name} = {expr(s.default)}"
                                       for s in m.sizes))
    for b in m.blocks:
        if out:
            out.append("")
        params = ", ".join(p.name if p.default is None else f"{p.name} = {expr(p.default)}" for p in b.params)
        out.append(f"{'entry ' if b.entry else ''}block {b.name}({params}) {{")
        out.extend(_body(b.body, 1))
        out.append("}")
    return "\n".join(out) + "\n"
