"""Sizes as Python source: the integer expressions generated code computes at run time.

Code generators never see sympy (it stays inside `shapes/`); they ask this
module for the Python text of a size, naming each free symbol through a map
they provide. Exact divisions that the checker proved or required (`H/16`
with "H divisible by 16") print as floor divisions, which are then exact.

>>> from archc.shapes import sizes as S
>>> H, W = S.symbol("H"), S.symbol("W")
>>> to_python(S.add(S.floordiv(S.add(H, -1), 2), 1), {"H": "h"})
'(h - 1) // 2 + 1'
>>> to_python(S.mul(S.truediv(H, 16), S.truediv(W, 16)), {"H": "H", "W": "W"})
'H * W // 256'
>>> free_names(S.add(H, 3)), to_python(7, {})
({'H'}, '7')
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import sympy

from archc.shapes.sizes import Size

# Python precedence levels of the text produced (higher binds tighter).
_ATOM, _POW, _UNARY, _MUL, _ADD, _CMP, _NOT, _AND, _OR, _COND = 10, 9, 8, 7, 6, 5, 4, 3, 2, 1


class NotPrintable(ValueError):
    """The expression has a form generated code cannot compute (a non-integer value)."""


def free_names(x: Size) -> set[str]:
    """The names of the free symbols of a size."""
    if isinstance(x, int):
        return set()
    return {s.name for s in x.free_symbols}


def substitute(x: Size, values: Mapping[str, int]) -> Size:
    """Replace the named symbols by integers (the sizes fixed at construction)."""
    if isinstance(x, int):
        return x
    mapping = {s: values[s.name] for s in x.free_symbols if s.name in values}
    if not mapping:
        return x
    out = sympy.sympify(x.xreplace(mapping))
    return int(out) if out.is_Integer else out


def to_python(x: Size, names: Mapping[str, str]) -> str:
    """Python text of an integer size; `names` maps symbol names to Python names."""
    return _print(sympy.sympify(x) if not isinstance(x, int) else x, names)[0]


def _wrap(text_prec: tuple[str, int], need: int) -> str:
    text, prec = text_prec
    return f"({text})" if prec < need else text


def _print(e: Size, names: Mapping[str, str]) -> tuple[str, int]:
    if isinstance(e, int):
        return (str(e), _ATOM) if e >= 0 else (str(e), _UNARY)
    if e.is_Integer:
        return _print(int(e), names)
    if e.is_Symbol:
        if e.name not in names:
            raise NotPrintable(f"no run-time value for the size '{e.name}'")
        return names[e.name], _ATOM
    if e.is_Rational:
        raise NotPrintable(f"the size {e} is not an integer")
    if e.is_Add or e.is_Mul:
        return _print_linear(e, names)
    if e.is_Pow:
        base, exp = e.args
        if exp.is_Integer and int(exp) > 0:
            return f"{_wrap(_print(base, names), _POW + 1)} ** {int(exp)}", _POW
        raise NotPrintable(f"the size {e} is not an integer")
    if isinstance(e, sympy.floor):
        return _print_div(e.args[0], names, ceil=False)
    if isinstance(e, sympy.ceiling):
        return _print_div(e.args[0], names, ceil=True)
    if isinstance(e, sympy.Mod):
        a, b = e.args
        return f"{_wrap(_print(a, names), _MUL)} % {_wrap(_print(b, names), _MUL + 1)}", _MUL
    if isinstance(e, (sympy.Min, sympy.Max)):
        fn = "min" if isinstance(e, sympy.Min) else "max"
        return f"{fn}({', '.join(_print(a, names)[0] for a in e.args)})", _ATOM
    if isinstance(e, sympy.Piecewise):
        return _print_piecewise(e, names)
    raise NotPrintable(f"cannot write the size {e} as Python")


def _terms(e: sympy.Expr) -> list[tuple[sympy.Rational, sympy.Expr]]:
    """e as a sum of rational multiples of integer-valued products."""
    out = []
    for term in sympy.Add.make_args(sympy.expand(e) if e.is_Add else e):
        coeff, rest = term.as_coeff_Mul()
        out.append((sympy.Rational(coeff), rest))
    return out


def _print_linear(e: sympy.Expr, names: Mapping[str, str]) -> tuple[str, int]:
    """Sums and products; a common denominator q prints as one exact `// q`."""
    num, den = sympy.fraction(sympy.together(e))
    if den != 1 and not den.is_Integer:  # H/patch: exact where the checker required it
        return f"{_wrap(_print(num, names), _MUL)} // {_wrap(_print(den, names), _MUL + 1)}", _MUL
    terms = _terms(e)
    q = math.lcm(*(int(c.q) for c, _ in terms))
    if q != 1:
        numerator = sympy.Add(*(c * q * r for c, r in terms))
        return f"{_wrap(_print(numerator, names), _MUL)} // {q}", _MUL
    parts: list[tuple[bool, str, int]] = []  # (negative, text, precedence)
    for coeff, rest in sorted(terms, key=lambda t: (t[1].is_number, sympy.default_sort_key(t[1]))):
        c = int(coeff)
        if rest == 1:
            parts.append((c < 0, str(abs(c)), _ATOM))
            continue
        args = sympy.Mul.make_args(rest)
        if len(args) == 1 and abs(c) == 1:  # one factor: it only has to bind tighter than + and -
            text, prec = _print(args[0], names)
            parts.append((c < 0, f"({text})" if prec < _MUL else text, max(prec, _MUL)))
            continue
        factors = [_wrap(_print(f, names), _MUL + 1) for f in args]
        if abs(c) != 1:
            factors.insert(0, str(abs(c)))
        parts.append((c < 0, " * ".join(factors), _MUL))
    if len(parts) == 1:
        neg, text, prec = parts[0]
        if not neg:
            return text, prec
        return f"-{text}" if prec >= _UNARY else f"-({text})", _UNARY
    neg, text, prec = parts[0]
    out = (f"-{text}" if prec >= _UNARY else f"-({text})") if neg else text
    for neg, text, _ in parts[1:]:
        out += (" - " if neg else " + ") + text
    return out, _ADD


def _print_div(arg: sympy.Expr, names: Mapping[str, str], ceil: bool) -> tuple[str, int]:
    terms = _terms(arg)
    q = math.lcm(*(int(c.q) for c, _ in terms))
    numerator = sympy.Add(*(c * q * r for c, r in terms))
    if q == 1:
        return _print(numerator, names)
    if ceil:
        return f"-({_wrap(_print(-numerator, names), _MUL)} // {q})", _UNARY
    return f"{_wrap(_print(numerator, names), _MUL)} // {q}", _MUL


_REL = {sympy.GreaterThan: ">=", sympy.StrictGreaterThan: ">", sympy.LessThan: "<=",
        sympy.StrictLessThan: "<", sympy.Equality: "==", sympy.Unequality: "!="}


def _print_cond(c: sympy.Basic, names: Mapping[str, str]) -> str:
    for cls, op in _REL.items():
        if isinstance(c, cls):
            return f"{_wrap(_print(c.lhs, names), _ADD)} {op} {_wrap(_print(c.rhs, names), _ADD)}"
    raise NotPrintable(f"cannot write the condition {c} as Python")


def _print_piecewise(e: sympy.Piecewise, names: Mapping[str, str]) -> tuple[str, int]:
    *cases, (last, cond) = e.args
    if cond is not sympy.true:
        raise NotPrintable(f"the size {e} is not defined everywhere")
    text = _print(last, names)[0]
    for value, c in reversed(cases):
        text = f"{_wrap(_print(value, names), _OR)} if {_print_cond(c, names)} else {text}"
    return text, _COND


def rename(x: Size, names: Mapping[str, str]) -> Size:
    """The size with its symbols renamed (for display: `x:h` -> `h`)."""
    if isinstance(x, int):
        return x
    mapping = {s: sympy.Symbol(names[s.name], **s.assumptions0) for s in x.free_symbols if s.name in names}
    return x.xreplace(mapping) if mapping else x


def param_symbol(name: str) -> sympy.Symbol:
    """A block parameter as a symbol: an integer of either sign (a pad may be 0), unlike sizes."""
    return sympy.Symbol(name, integer=True)


def relation(a: Size, op: str, b: Size, names: Mapping[str, str]) -> str:
    """`a op b` as Python, for a condition on sizes: relation(H, '!=', 1, {'H': 'h'}) == 'h != 1'."""
    return f"{_wrap(_print(sympy.sympify(a), names), _ADD)} {op} {_wrap(_print(sympy.sympify(b), names), _ADD)}"


def replace(x: Size, name: str, value: Size) -> Size:
    """The size with the size symbol `name` replaced by `value` (an input size by the parameter
    expression it equals): replace(H + 1, "H", 2 * n) == 2 * n + 1."""
    from archc.shapes.sizes import symbol
    if isinstance(x, int) or name not in free_names(x):
        return x
    return x.xreplace({symbol(name): value})
