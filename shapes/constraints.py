"""Turns the constraints recorded during elaboration into statements about free sizes.

A constraint in one free size is solved exactly by looking at residues: every
floor, ceiling and Mod in it repeats with a period m (`sizes.divisor_period`),
so checking m consecutive values far from the origin tells for which residues
it holds. Minimum sizes ("H >= 32") come from a search over the monotone
output-size expressions. The facts about one free size are then combined: the
allowed residues of every constraint are intersected (a U-Net's four skip
joins each allow only some residues mod 2, 4, 8 and 16; together they say
"H must be divisible by 16") and the largest minimum is kept. Constraints in
several free sizes are reported as equations.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Protocol

from archc.diagnostics import Span
from archc.shapes import sizes as S

SEARCH_LIMIT = 1 << 16
PIN_SEARCH = 1024  # how far to look for the few solutions of an equation with floors


class Constraint(Protocol):
    """What this module reads of a constraint recorded during elaboration (`dsl.values.Constraint`,
    a later stage): `lhs` and `rhs` are sizes; for "assumed", `lhs` is (size, operator, size) and
    `rhs` whether the condition held."""

    @property
    def kind(self) -> str: ...  # "equal" | "divisible" | "positive" | "assumed"
    @property
    def lhs(self) -> Any: ...
    @property
    def rhs(self) -> Any: ...
    @property
    def what(self) -> str: ...
    @property
    def span(self) -> Span: ...
    @property
    def in_assert(self) -> bool: ...  # "assumed" only: made by an `assert` (a requirement, not a branch)


@dataclasses.dataclass(frozen=True)
class Derived:
    text: str  # "H must be divisible by 16"
    kind: str
    span: Span
    why: str  # what needed it
    names: tuple[str, ...] = ()  # the free sizes it is about


def _holds(c: Constraint, values: dict[str, int]) -> bool | None:
    if c.kind == "equal":
        a, b = S.evaluate(c.lhs, values), S.evaluate(c.rhs, values)
        return None if a is None or b is None else a == b
    if c.kind == "divisible":
        a, m = S.evaluate(c.lhs, values), S.evaluate(c.rhs, values)
        return None if a is None or m is None else (m != 0 and a % m == 0)
    if c.kind == "positive":
        a = S.evaluate(c.lhs, values)
        return None if a is None else a >= 1
    return None


def _expr_of(c: Constraint) -> object:
    if c.kind == "equal":
        return S.add(c.lhs, S.mul(-1, c.rhs))
    if c.kind == "divisible":
        return S.mod(c.lhs, c.rhs)
    return c.lhs


def derive(constraints: Sequence[Constraint], defaults: dict[str, int]) -> list[Derived]:
    """Statements about free sizes implied by the recorded constraints, combined per size.

    Facts about one free size come out where that size is first constrained:
    its minimum ("H >= 16"), then its residues ("H must be divisible by 16"),
    each located at the constraint that made it as strict as it is.
    """
    order: list[Derived | str] = []  # a str stands for the combined facts of that free size
    per_size: dict[str, _Facts] = {}
    for c in constraints:
        if c.kind == "assumed":
            a, op, b = c.lhs
            why = "required by an assert" if c.in_assert else "assumed by a condition, which the generated module tests"
            text = f"{S.fmt(a)} {op if c.rhs else negate(op)} {S.fmt(b)} ({why})"
            names = tuple(sorted(S.free_names(a) | S.free_names(b)))
            order.append(Derived(text, "assumed", c.span, c.what, names))
            continue
        names = tuple(sorted(S.free_names(c.lhs) | S.free_names(c.rhs)))
        if not names:
            continue
        if len(names) > 1:
            lhs, rhs = c.lhs, c.rhs
            if c.kind == "equal" and S.fmt(rhs) < S.fmt(lhs):  # one spelling: "H = W", never "W = H"
                lhs, rhs = rhs, lhs
            rel = {"equal": "=", "divisible": "divisible by", "positive": ">="}[c.kind]
            order.append(Derived(f"{S.fmt(lhs)} {rel} {S.fmt(rhs)}", c.kind, c.span, c.what, names))
            continue
        name = names[0]
        if name not in per_size:
            per_size[name] = _Facts(name)
            order.append(name)
        per_size[name].add(c)
    out: list[Derived] = []
    seen: set[str] = set()
    for item in order:
        for d in per_size[item].derived() if isinstance(item, str) else [item]:
            if d.text not in seen:
                seen.add(d.text)
                out.append(d)
    return out


class _Facts:
    """What the constraints in one free size allow: a minimum and a set of residues."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.minimum: tuple[int, Constraint] | None = None  # (value, constraint)
        self.period = 1
        self.ok: set[int] = {0}  # allowed residues modulo `period`
        self.narrowed_by: Constraint | None = None  # the constraint that last narrowed the residues
        self.pinned: tuple[set[int], Constraint] | None = None  # the only values some equation allows
        self.hopeless: list[Derived] = []  # constraints no value satisfies
        self.apart: list[Derived] = []  # residue facts too fine-grained to combine

    def add(self, c: Constraint) -> None:
        if c.kind == "positive":
            lo = _minimum(c, self.name)
            if lo is None:
                self.hopeless.append(self._fact(f"{self.name} is too small for any value (needs "
                                                f"{S.fmt(c.lhs)} >= 1)", "positive", c))
            elif lo > 1 and (self.minimum is None or lo > self.minimum[0]):
                self.minimum = (lo, c)
            return
        m = S.divisor_period(_expr_of(c))
        base = m * max(1, (SEARCH_LIMIT // 4) // max(m, 1))
        ok = {r for r in range(m) if _holds(c, {self.name: base + r})}
        if len(ok) == m:
            return
        if not ok and c.kind == "equal":  # no residue works for large sizes: a few values may
            values = _solutions(c, self.name)
            if values:
                if self.pinned is not None:
                    values &= self.pinned[0]
                self.pinned = (values, c)
                return
        if not ok:
            rel = "=" if c.kind == "equal" else "divisible by"
            self.hopeless.append(self._fact(f"{S.fmt(c.lhs)} {rel} {S.fmt(c.rhs)} fails for every "
                                            f"{self.name}", c.kind, c))
            return
        period = math.lcm(self.period, m)
        if period > SEARCH_LIMIT:
            self.apart.append(self._fact(_residue_text(self.name, sorted(ok), m), "divisible", c))
            return
        combined = {r for r in range(period) if r % self.period in self.ok and r % m in ok}
        if len(combined) * self.period < len(self.ok) * period:
            self.narrowed_by = c
        self.period, self.ok = period, combined

    def _fact(self, text: str, kind: str, c: Constraint) -> Derived:
        return Derived(text, kind, c.span, c.what, (self.name,))

    def derived(self) -> list[Derived]:
        out = list(self.hopeless)
        if self.pinned is not None:
            values, c = self.pinned
            text = (f"{self.name} = {min(values)}" if len(values) == 1 else
                    f"{self.name} in {{{', '.join(map(str, sorted(values)))}}}" if values else
                    f"no {self.name} satisfies every equation on it")
            out.append(self._fact(text, "equal", c))
        if self.minimum is not None:
            lo, c = self.minimum
            out.append(self._fact(f"{self.name} >= {lo}", "positive", c))
        if self.narrowed_by is not None:
            if self.ok:
                text = _residue_text(self.name, sorted(self.ok), self.period)
            else:
                text = f"no {self.name} satisfies every constraint on it (they ask for different residues)"
            out.append(self._fact(text, "divisible", self.narrowed_by))
        return out + self.apart


def _solutions(c: Constraint, name: str) -> set[int]:
    """The positive values of `name` solving an equation that no large value solves."""
    import sympy  # here, not at the top: `archc flops` with concrete sizes never imports sympy
    expr = sympy.sympify(_expr_of(c))
    sym = S.symbol(name)
    if expr.is_polynomial(sym):
        return {int(v) for v in sympy.solve(expr, sym) if v.is_Integer and v > 0}
    return {v for v in range(1, PIN_SEARCH + 1) if _holds(c, {name: v})}


def _residue_text(name: str, ok: list[int], m: int) -> str:
    step = _common_step(ok, m)
    if step is not None:
        r0 = ok[0] % step
        return f"{name} must be divisible by {step}" if r0 == 0 else f"{name} ≡ {r0} (mod {step})"
    return f"{name} mod {m} in {{{', '.join(map(str, ok))}}}"


def explain(constraints: Sequence[Constraint], derived: list[Derived], span: Span,
            values: dict[str, int] | None = None) -> list[Derived]:
    """The derived facts behind the constraints recorded at `span`: the notes for an error there.

    A failed join in one free size is explained by that size's combined residue facts, a size
    that became too small by its minimum, a relation between several sizes by itself; facts
    about other sizes are left out. With the `values` that caused the error, only the
    constraints those values violate count.
    """
    here = [c for c in constraints if c.span == span and c.kind != "assumed"]
    violated = [c for c in here if values and _holds(c, values) is False]
    keep: set[int] = set()
    for c in violated or here:
        names = tuple(sorted(S.free_names(c.lhs) | S.free_names(c.rhs)))
        for i, d in enumerate(derived):
            if d.kind == "assumed" or d.names != names:
                continue
            if len(names) > 1 and d.span != c.span:
                continue
            if len(names) == 1 and (d.kind == "positive") != (c.kind == "positive"):
                continue
            keep.add(i)
    return [derived[i] for i in sorted(keep)]


def negate(op: str) -> str:
    """The comparison that holds where `op` does not: `==` for `!=`, `>=` for `<`."""
    return {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}[op]


def _common_step(ok: list[int], m: int) -> int | None:
    """The step s when `ok` is exactly one residue class modulo s."""
    for s in range(1, m + 1):
        if m % s:
            continue
        if len(ok) == m // s and all((r - ok[0]) % s == 0 for r in ok):
            return s
    return None


def _minimum(c: Constraint, name: str) -> int | None:
    """Smallest value of `name` making c hold (output sizes grow with the input)."""
    hi = 1
    while not _holds(c, {name: hi}):
        hi *= 2
        if hi > SEARCH_LIMIT:
            return None
    lo = hi // 2 if hi > 1 else 1
    while lo < hi:
        mid = (lo + hi) // 2
        if _holds(c, {name: mid}):
            hi = mid
        else:
            lo = mid + 1
    return lo
