"""Size arithmetic: Python ints when concrete, sympy expressions when symbolic.

Concrete sizes stay plain ints so a fully concrete check never touches sympy's
slow paths; symbolic ones are sympy expressions over positive integer symbols.
This module is the only place outside `shapes/` that other folders reach sympy
through (`dsl/` builds sizes with these functions).

>>> H = symbol("H")
>>> fmt(floordiv(add(H, -1), 2) + 1)
'⌊H/2 - 1/2⌋ + 1'
>>> to_str(floordiv(add(H, -1), 2) + 1)
'floor(H/2 - 1/2) + 1'
>>> floordiv(224, 4)
56
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeGuard, Union

if TYPE_CHECKING:
    import sympy
else:
    class _LazySympy:
        """Stands for the sympy module until first used. Importing sympy costs ~0.3 s
        and `archc flops` with concrete sizes never needs it: ints stay ints."""

        def __getattr__(self, name: str) -> Any:
            import sympy as module
            import sympy.printing.str  # noqa: F401 - _human() subclasses its printer
            globals()["sympy"] = module
            return getattr(module, name)

    sympy = _LazySympy()

Size = Union[int, "sympy.Expr"]


def _is_expr(x: object) -> TypeGuard[sympy.Expr]:
    """Whether `x` is a sympy expression; never imports sympy (nothing can be one before)."""
    module = sys.modules.get("sympy")
    return module is not None and isinstance(x, module.Expr)


@functools.cache
def symbol(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, integer=True, positive=True)


def is_concrete(x: object) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, int):
        return True
    return _is_expr(x) and x.is_Integer is True


def is_size(x: object) -> bool:
    if isinstance(x, bool):
        return False
    return isinstance(x, int) or _is_expr(x)


def norm(x: Size) -> Size:
    """Integers as ints; sympy integers too."""
    if _is_expr(x) and x.is_Integer:
        return int(x)
    return x


def add(a: Size, b: Size) -> Size:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    return norm(_round_to_multiple(sympy.Add(a, b)))


def _round_to_multiple(x: sympy.Expr) -> sympy.Expr:
    """`H + (-H mod m)` is `m·⌈H/m⌉` and `H - (H mod m)` is `m·⌊H/m⌋`: a size padded (or cropped) to a
    multiple, written as such, so the blocks of m it holds are ⌈H/m⌉ and not an unsimplified fraction.

    >>> H = symbol("H")
    >>> str(add(H, mod(-H, 4))), str(add(H, mul(-1, mod(H, 7))))
    ('4*ceiling(H/4)', '7*floor(H/7)')
    """
    if not isinstance(x, sympy.Add):
        return x
    for term in x.args:
        coeff, mod_ = term.as_coeff_Mul()
        if not isinstance(mod_, sympy.Mod) or coeff not in (1, -1):
            continue
        rest = x - term
        m = mod_.args[1]
        if coeff == 1 and sympy.Mod(-rest, m) == mod_:
            return m * sympy.ceiling(rest / m)
        if coeff == -1 and sympy.Mod(rest, m) == mod_:
            return m * sympy.floor(rest / m)
    return x


def mul(a: Size, b: Size) -> Size:
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    return norm(sympy.Mul(a, b))


def prod(xs: Iterable[Size | float]) -> Size:
    xs = tuple(xs)
    out = 1
    for x in xs:
        if not isinstance(x, int):
            if any(isinstance(y, float) for y in xs):  # 2.0 == 2 as a cache key: keep floats out
                return _prod_expr.__wrapped__(xs)
            return _prod_expr(xs)
        out *= x
    return out


# Symbolic shapes repeat (every layer of a stack has the same), and sympy's Mul
# is slow: products of a shape are remembered.
@functools.lru_cache(maxsize=1 << 14)
def _prod_expr(xs: tuple[Size | float, ...]) -> Size:
    out: Size = 1
    for x in xs:
        out = mul(out, x)
    return out


def total(xs: Iterable[Size]) -> Size:
    ints = 0
    counts: dict[Size, int] = {}  # equal terms (the same layer repeated) enter sympy's Add once, times a count
    for x in xs:
        if isinstance(x, int):
            ints += x
        else:
            counts[x] = counts.get(x, 0) + 1
    if not counts:
        return ints
    return norm(sympy.Add(ints, *(t if c == 1 else sympy.Mul(c, t) for t, c in counts.items())))


def floordiv(a: Size, b: Size) -> Size:
    """a // b; `(H + m - 1) // m` is kept as ⌈H/m⌉, the same number, so that it cancels against the
    ⌈H/m⌉ of a size padded to a multiple of m.

    >>> str(floordiv(add(symbol("H"), 3), 4)), str(floordiv(add(symbol("H"), 1), 4))
    ('ceiling(H/4)', 'floor(H/4 + 1/4)')
    """
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    if isinstance(b, int) and b > 1 and isinstance(a, sympy.Add):
        k, x = a.as_coeff_Add()
        if k == b - 1 and _integer_valued(x):
            return norm(sympy.ceiling(sympy.Rational(1, 1) * x / b))
    return norm(sympy.floor(sympy.Rational(1, 1) * a / b))


def _integer_valued(x: sympy.Expr) -> bool:
    """Whether x is a whole number for whole-number sizes (a polynomial with integer coefficients in
    symbols, floors, ceilings and Mods)."""
    poly = x.replace(lambda e: isinstance(e, (sympy.floor, sympy.ceiling, sympy.Mod)), lambda e: sympy.Dummy())
    try:
        return all(c.is_Integer for c in sympy.Poly(poly, *poly.free_symbols).coeffs()) if poly.free_symbols else \
            bool(poly.is_Integer)
    except sympy.PolynomialError:
        return False


def ceildiv(a: Size, b: Size) -> Size:
    if isinstance(a, int) and isinstance(b, int):
        return -((-a) // b)
    return norm(sympy.ceiling(sympy.Rational(1, 1) * a / b))


def maximum(a: Size, b: Size) -> Size:
    """The larger of two sizes (a sympy Max when it cannot be decided)."""
    if isinstance(a, int) and isinstance(b, int):
        return max(a, b)
    return norm(sympy.Max(a, b))


def floor(x: Size | float) -> Size:
    """The largest whole number not above `x` (an int, a float, or a fraction of sizes such as H/2)."""
    if isinstance(x, (int, float)):
        return math.floor(x)
    return norm(sympy.floor(x))


def ceil(x: Size | float) -> Size:
    """The smallest whole number not below `x`."""
    if isinstance(x, (int, float)):
        return math.ceil(x)
    return norm(sympy.ceiling(x))


def fft_work(n: Size, per: float) -> Size:
    """per · n · log2 n, the operations of a Fourier transform of n points: an integer for a number n
    (rounded), a sympy expression for a free one.

    >>> fft_work(8, 5.0), str(fft_work(symbol("L"), 2.5))
    (120, '5*L*log(L)/(2*log(2))')
    """
    if is_concrete(n):
        k = int(n)
        return round(per * k * math.log2(k)) if k > 1 else 0
    return sympy.Rational(str(per)) * n * sympy.log(n) / sympy.log(2)


def minimum(a: Size, b: Size) -> Size:
    """The smaller of two sizes (a sympy Min when it cannot be decided)."""
    if isinstance(a, int) and isinstance(b, int):
        return min(a, b)
    return norm(sympy.Min(a, b))


def truediv(a: Size, b: Size) -> Size | float:
    """Exact division: an int when it divides, a sympy rational when symbolic."""
    if isinstance(a, int) and isinstance(b, int):
        return a // b if b and a % b == 0 else a / b
    return norm(sympy.Mul(a, sympy.Pow(b, -1)))


def fraction(x: Size) -> tuple[Size, Size]:
    """A size as numerator and denominator: H/2 -> (H, 2), (H + 1)/4 -> (H + 1, 4), 7 -> (7, 1)."""
    if not _is_expr(x):
        return x, 1
    num, den = sympy.fraction(sympy.together(x))
    return norm(num), norm(den)


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


def nesting(x: Size) -> int:
    """How deep floors, ceilings and mods nest in a size: 0 for H, 1 for ⌊H/2⌋, 2 for ⌊(⌊H/2⌋ - 1)/2⌋ + 1.
    Each strided layer adds one; sympy's work on a size grows quickly with it.

    >>> H = symbol("H")
    >>> nesting(7), nesting(H), nesting(add(floordiv(add(floordiv(H, 2), -1), 2), 1))
    (0, 0, 2)
    """
    return _nesting(x) if _is_expr(x) else 0


@functools.lru_cache(maxsize=1 << 14)
def _nesting(x: sympy.Basic) -> int:
    inner = max((_nesting(a) for a in x.args), default=0)
    return inner + 1 if isinstance(x, (sympy.floor, sympy.ceiling, sympy.Mod)) else inner


def free_names(x: Size) -> set[str]:
    if isinstance(x, (int, float)):  # a float: a number compared with a size (`if H > 2.5`)
        return set()
    return set(_free_names(x))


# sympy recomputes `free_symbols` by walking the tree on every call, and reports
# evaluate the same expressions (one per repeated layer) at the same values
# again and again: both are remembered per expression.
@functools.lru_cache(maxsize=1 << 16)
def _free_names(x: sympy.Expr) -> frozenset[str]:
    return frozenset(s.name for s in x.free_symbols)


def subs(x: Size, values: dict[str, int]) -> Size:
    if isinstance(x, (int, float)) or not values:
        return x
    items = tuple(values.items())
    if any(isinstance(v, float) for _, v in items):  # 2.0 == 2 as a cache key: keep floats out
        return _subs.__wrapped__(x, items)
    return _subs(x, items)


@functools.lru_cache(maxsize=1 << 16)
def _subs(x: sympy.Expr, values: tuple[tuple[str, int], ...]) -> Size:
    vals = dict(values)  # by name, whatever the symbol's assumptions (codegen's parameters may be 0)
    mapping = {s: vals[s.name] for s in x.free_symbols if s.name in vals}
    return norm(x.xreplace(mapping)) if mapping else x


def evaluate(x: Size, values: dict[str, int]) -> int | None:
    """The integer value of a size under `values`, or None if still symbolic."""
    v = subs(x, values)
    if isinstance(v, (int, float)):  # a float only from a comparison of a size with a number
        return v  # type: ignore[return-value]
    if _is_expr(v) and v.is_number:
        # zoo or nan when a size divides by a zero size: no value to decide anything with
        return int(v) if v.is_real and v.is_finite else None
    return None


_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


@functools.cache
def _as_ceiling(x: sympy.Expr) -> sympy.Expr | None:
    """q/d where `x` is (q + d - 1)/d for a whole-number q and an integer d > 1, else None: then
    ⌊x⌋ = ⌈q/d⌉ (sympy writes ceil(H/2) of a size as floor(H/2 + 1/2))."""
    num, den = sympy.fraction(sympy.together(x))
    if not (den.is_Integer and int(den) > 1) or not num.free_symbols or not num.is_integer:
        return None
    d = int(den)
    const, _ = num.as_coeff_Add()
    if not const.is_Integer or int(const) != d - 1:
        return None
    return sympy.expand((num - (d - 1)) / d)


def _human() -> Any:
    """The printer of `fmt`, made on first use (it subclasses sympy's StrPrinter)."""

    class _HumanPrinter(sympy.printing.str.StrPrinter):
        """sympy's str form with ⌊x⌋, ⌈x⌉, · for products and superscript powers."""

        def _print_floor(self, e: sympy.Expr) -> str:
            up = _as_ceiling(e.args[0])
            if up is not None:  # ⌊(q + d - 1)/d⌋ is ⌈q/d⌉ for whole q: print what is meant
                return "⌈" + self._print(up) + "⌉"
            return "⌊" + self._print(e.args[0]) + "⌋"

        def _print_ceiling(self, e: sympy.Expr) -> str:
            return "⌈" + self._print(e.args[0]) + "⌉"

        def _print_Pow(self, e: sympy.Expr, rational: bool = False) -> str:  # noqa: N802
            b, p = e.args
            if p.is_Integer and 1 < int(p) < 10:
                base = self._print(b)
                if not (b.is_Symbol or b.is_Integer or isinstance(b, (sympy.floor, sympy.ceiling))):
                    base = f"({base})"
                return base + str(int(p)).translate(_SUPERSCRIPT)
            return super()._print_Pow(e, rational)

        def _print_Mul(self, e: sympy.Expr) -> str:  # noqa: N802
            return super()._print_Mul(e).replace("*", "·")

    return _HumanPrinter({"order": None})


def fmt(x: Size) -> str:
    """A compact human form: 'H/4', '⌊(H - 1)/2⌋ + 1', '24·L·d²', '56'."""
    if isinstance(x, int):
        return str(x)
    return _fmt_expr(x)


# Printing a sympy expression costs ~0.1-1 ms (sympy orders the terms each time),
# and the same axis sizes are printed for node after node: remember them.
@functools.lru_cache(maxsize=8192)
def _fmt_expr(x: sympy.Expr) -> str:
    return _human().doprint(x)


@functools.lru_cache(maxsize=8192)
def _str_expr(x: sympy.Expr) -> str:
    return sympy.sstr(x)


def to_str(x: Size) -> str:
    """A sympy-parsable form for JSON (`flops_expr`)."""
    return str(x) if isinstance(x, int) else _str_expr(x)


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


def subs_all(x: Any, values: dict[str, int]) -> Any:
    """`x` with `values` put in for free sizes wherever a size occurs in it: a size itself, or
    inside tuples, lists and dict values (a node's attributes); anything else is returned as is.

    >>> H = symbol("H")
    >>> subs_all({"map": ("chan", add(H, 1), None), "pads": ((floordiv(H, 2), 1),)}, {"H": 8})
    {'map': ('chan', 9, None), 'pads': ((4, 1),)}
    """
    if not values:
        return x
    if isinstance(x, bool):
        return x
    if is_size(x):
        return subs(x, values)
    if isinstance(x, tuple):
        return tuple(subs_all(v, values) for v in x)
    if isinstance(x, list):
        return [subs_all(v, values) for v in x]
    if isinstance(x, dict):
        return {k: subs_all(v, values) for k, v in x.items()}
    if dataclasses.is_dataclass(x) and not isinstance(x, type):  # an op's typed attributes
        return dataclasses.replace(x, **{f.name: subs_all(getattr(x, f.name), values)
                                         for f in dataclasses.fields(x) if f.init})
    return x


def symbol_name(x: object) -> str | None:
    """The name of a size that is one bare symbol, else None (for code generation, which never
    looks inside sympy): symbol_name(symbol("H")) == "H"; symbol_name(add(symbol("H"), 1)) is None."""
    if _is_expr(x) and x.is_Symbol:
        return str(x.name)
    return None
