"""Size arithmetic: Python ints when concrete, sympy expressions when symbolic.

Concrete sizes stay plain ints so a fully concrete check never touches sympy's
slow paths; symbolic ones are sympy expressions over positive integer symbols.
This module is the only place outside `shapes/` that other folders reach sympy
through (`dsl/` builds sizes with these functions).

>>> H = symbol("H")
>>> fmt(floordiv(add(H, -1), 2) + 1)
'floor((H - 1)/2) + 1'
>>> floordiv(224, 4)
56
"""

from __future__ import annotations

import functools
import math

import sympy
import sympy.printing.str

Size = int | sympy.Expr


@functools.cache
def symbol(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, integer=True, positive=True)


def is_concrete(x: object) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, int):
        return True
    return isinstance(x, sympy.Expr) and x.is_Integer is True


def is_size(x: object) -> bool:
    if isinstance(x, bool):
        return False
    return isinstance(x, (int, sympy.Expr))


def norm(x: Size) -> Size:
    """Integers as ints; sympy integers too."""
    if isinstance(x, sympy.Expr) and x.is_Integer:
        return int(x)
    return x


def add(a: Size, b: Size) -> Size:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    return norm(sympy.Add(a, b))


def mul(a: Size, b: Size) -> Size:
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    return norm(sympy.Mul(a, b))


def prod(xs) -> Size:
    out: Size = 1
    for x in xs:
        out = mul(out, x)
    return out


def total(xs) -> Size:
    ints = 0
    syms = []
    for x in xs:
        if isinstance(x, int):
            ints += x
        else:
            syms.append(x)
    if not syms:
        return ints
    return norm(sympy.Add(ints, *syms))


def floordiv(a: Size, b: Size) -> Size:
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    return norm(sympy.floor(sympy.Rational(1, 1) * a / b))


def ceildiv(a: Size, b: Size) -> Size:
    if isinstance(a, int) and isinstance(b, int):
        return -((-a) // b)
    return norm(sympy.ceiling(sympy.Rational(1, 1) * a / b))


def truediv(a: Size, b: Size) -> Size | float:
    """Exact division: an int when it divides, a sympy rational when symbolic."""
    if isinstance(a, int) and isinstance(b, int):
        return a // b if b and a % b == 0 else a / b
    return norm(sympy.Mul(a, sympy.Pow(b, -1)))


def mod(a: Size, b: Size) -> Size:
    if isinstance(a, int) and isinstance(b, int):
        return a % b
    return norm(sympy.Mod(a, b))


def equal(a: Size, b: Size) -> bool | None:
    """True/False when decidable, None when it depends on free sizes."""
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    diff = sympy.expand(sympy.sympify(a) - sympy.sympify(b))
    if diff == 0:
        return True
    if diff.is_number:
        return False
    if diff.is_zero is False:
        return False
    return None


def compare(a: Size, op: str, b: Size) -> bool | None:
    if isinstance(a, int) and isinstance(b, int):
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b,
                "==": a == b, "!=": a != b}[op]
    if op in ("==", "!="):
        e = equal(a, b)
        return None if e is None else (e if op == "==" else not e)
    rel = {"<": sympy.Lt, "<=": sympy.Le, ">": sympy.Gt, ">=": sympy.Ge}[op](a, b)
    if rel is sympy.true:
        return True
    if rel is sympy.false:
        return False
    return None


def free_names(x: Size) -> set[str]:
    if isinstance(x, int):
        return set()
    return {s.name for s in x.free_symbols}


def subs(x: Size, values: dict[str, int]) -> Size:
    if isinstance(x, int) or not values:
        return x
    mapping = {symbol(k): v for k, v in values.items() if symbol(k) in x.free_symbols}
    return norm(x.xreplace(mapping)) if mapping else x


def evaluate(x: Size, values: dict[str, int]) -> int | None:
    """The integer value of a size under `values`, or None if still symbolic."""
    v = subs(x, values)
    if isinstance(v, int):
        return v
    if isinstance(v, sympy.Expr) and v.is_number:
        return int(v)
    return None


_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


class _HumanPrinter(sympy.printing.str.StrPrinter):
    """sympy's str form with ⌊x⌋, ⌈x⌉, · for products and superscript powers."""

    def _print_floor(self, e: sympy.Expr) -> str:
        return "⌊" + self._print(e.args[0]) + "⌋"

    def _print_ceiling(self, e: sympy.Expr) -> str:
        return "⌈" + self._print(e.args[0]) + "⌉"

    def _print_Pow(self, e: sympy.Expr, rational: bool = False) -> str:
        b, p = e.args
        if p.is_Integer and 1 < int(p) < 10:
            base = self._print(b)
            if not (b.is_Symbol or b.is_Integer or isinstance(b, (sympy.floor, sympy.ceiling))):
                base = f"({base})"
            return base + str(int(p)).translate(_SUPERSCRIPT)
        return super()._print_Pow(e, rational)

    def _print_Mul(self, e: sympy.Expr) -> str:
        return super()._print_Mul(e).replace("*", "·")


_HUMAN = _HumanPrinter({"order": None})


def fmt(x: Size) -> str:
    """A compact human form: 'H/4', '⌊(H - 1)/2⌋ + 1', '24·L·d²', '56'."""
    if isinstance(x, int):
        return str(x)
    return _HUMAN.doprint(x)


def to_str(x: Size) -> str:
    """A sympy-parsable form for JSON (`flops_expr`)."""
    return str(x) if isinstance(x, int) else sympy.sstr(x)


def divisor_period(x: Size) -> int:
    """A modulus m such that every floor/ceiling/Mod in `x` repeats with period m.

    Nested floors multiply (floor(floor(H/2)/2) has period 4). Capped at 2**16.
    """
    if isinstance(x, int):
        return 1
    return min(_period(x), 1 << 16)


def _period(e: sympy.Basic) -> int:
    if isinstance(e, (sympy.floor, sympy.ceiling, sympy.Mod)):
        q = 1
        for r in e.args[0].atoms(sympy.Rational):
            q = math.lcm(q, r.q)
        if isinstance(e, sympy.Mod) and e.args[1].is_Integer:
            q = math.lcm(q, int(e.args[1]))
        return min(q * _period(e.args[0]), 1 << 16)
    out = 1
    for a in e.args:
        out = min(math.lcm(out, _period(a)), 1 << 16)
    return out


def simplify_total(x: Size) -> Size:
    """A sum as sympy collects it: like terms merged, products left factored (readable)."""
    if isinstance(x, int):
        return x
    return norm(x)
