"""Turns the constraints recorded during elaboration into statements about free sizes.

A constraint in one free size is solved exactly by looking at residues: every
floor, ceiling and Mod in it repeats with a period m (`sizes.divisor_period`),
so checking m consecutive values far from the origin tells for which residues
it holds ("H must be divisible by 16"). Minimum sizes ("H >= 32") come from a
search over the monotone output-size expressions. Constraints in several free
sizes are reported as equations.
"""

from __future__ import annotations

import dataclasses

from archc.diagnostics import Span
from archc.shapes import sizes as S

SEARCH_LIMIT = 1 << 16


@dataclasses.dataclass(frozen=True)
class Derived:
    text: str  # "H must be divisible by 16"
    kind: str
    span: Span
    why: str  # what needed it


def _holds(c, values: dict[str, int]) -> bool | None:
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


def _expr_of(c) -> object:
    if c.kind == "equal":
        return S.add(c.lhs, S.mul(-1, c.rhs))
    if c.kind == "divisible":
        return S.mod(c.lhs, c.rhs)
    return c.lhs


def derive(constraints: list, defaults: dict[str, int]) -> list[Derived]:
    """Statements about free sizes implied by the recorded constraints, deduplicated."""
    out: list[Derived] = []
    seen: set[str] = set()
    for c in constraints:
        if c.kind == "assumed":
            a, op, b = c.lhs
            text = f"{S.fmt(a)} {op if c.rhs else _negate(op)} {S.fmt(b)} (assumed by a condition)"
            kind = "assumed"
        else:
            names = sorted(S.free_names(c.lhs) | S.free_names(c.rhs))
            if not names:
                continue
            text = _solve(c, names, defaults)
            if text is None:
                continue
            kind = c.kind
        if text not in seen:
            seen.add(text)
            out.append(Derived(text, kind, c.span, c.what))
    return out


def _negate(op: str) -> str:
    return {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}[op]


def _solve(c, names: list[str], defaults: dict[str, int]) -> str | None:
    if len(names) != 1:
        rel = {"equal": "=", "divisible": "divisible by", "positive": ">="}[c.kind]
        return f"{S.fmt(c.lhs)} {rel} {S.fmt(c.rhs)}"
    name = names[0]
    if c.kind == "positive":
        lo = _minimum(c, name)
        if lo is None:
            return f"{name} is too small for any value (needs {S.fmt(c.lhs)} >= 1)"
        return None if lo <= 1 else f"{name} >= {lo}"
    m = S.divisor_period(_expr_of(c))
    base = m * max(1, (SEARCH_LIMIT // 4) // max(m, 1))
    ok = [r for r in range(m) if _holds(c, {name: base + r})]
    if len(ok) == m:
        return None
    if not ok:
        return f"{S.fmt(c.lhs)} = {S.fmt(c.rhs)} fails for every {name}" if c.kind == "equal" else \
            f"{S.fmt(c.lhs)} divisible by {S.fmt(c.rhs)} fails for every {name}"
    step = _common_step(ok, m)
    if step is not None:
        r0 = ok[0] % step
        return f"{name} must be divisible by {step}" if r0 == 0 else f"{name} ≡ {r0} (mod {step})"
    return f"{name} mod {m} in {{{', '.join(map(str, ok))}}}"


def _common_step(ok: list[int], m: int) -> int | None:
    """The step s when `ok` is exactly one residue class modulo s."""
    for s in range(1, m + 1):
        if m % s:
            continue
        if len(ok) == m // s and all((r - ok[0]) % s == 0 for r in ok):
            return s
    return None


def _minimum(c, name: str) -> int | None:
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
