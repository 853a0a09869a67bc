"""A legend for derived sizes: short names for the symbolic sizes a graph computes.

Deep networks nest floors and ceilings (`⌊⌈⌈H/2⌉/2⌉/2⌋`); the legend names each
distinct derived size after its axis (`h1`, `h2`, ...) and writes each one in
terms of the earlier ones, the way a neural circuit diagram's legend reads
(`h2 = ⌈h1/2⌉`). Check output and diagrams share it.

>>> from archc.shapes.types import Axis, TensorType
>>> from archc.shapes import sizes as S
>>> H = S.symbol("H")
>>> h1 = S.floordiv(S.add(H, 1), 2)
>>> leg = Legend([TensorType((Axis("h", h1),)), TensorType((Axis("h", S.floordiv(S.add(h1, 1), 2)),))])
>>> leg.rows
[('h1', '⌈H/2⌉'), ('h2', '⌈h1/2⌉')]
>>> leg.type_str(TensorType((Axis("h", h1), Axis("c", 3))))
'[h=h1, c=3]'
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy

from archc.shapes import sizes as S
from archc.shapes.types import TensorType, TupleType


class Legend:
    def __init__(self, types: Iterable[TensorType | TupleType], reserved: Iterable[str] = ()):
        self.names: dict[sympy.Expr, str] = {}
        self.rows: list[tuple[str, str]] = []
        self._symbols: dict[sympy.Expr, sympy.Symbol] = {}
        taken = set(reserved)
        counters: dict[str, int] = {}
        for t in types:
            for tt in (t.items if isinstance(t, TupleType) else (t,)):
                for ax in tt.axes:
                    size = ax.size
                    if isinstance(size, int) or size.is_Symbol or size in self.names:
                        continue
                    n = counters.get(ax.name, 0) + 1
                    while f"{ax.name}{n}" in taken:
                        n += 1
                    counters[ax.name] = n
                    name = f"{ax.name}{n}"
                    taken.add(name)
                    self.rows.append((name, S.fmt(self.rewrite(size))))
                    self.names[size] = name
                    self._symbols[size] = sympy.Symbol(name, integer=True, positive=True)

    def rewrite(self, size: S.Size) -> S.Size:
        """`size` written with the legend's names for the derived sizes inside it."""
        if isinstance(size, int) or not self._symbols:
            return size
        # Replace the largest known subexpressions first: later rows contain earlier ones.
        out = size
        for expr in reversed(list(self._symbols)):
            out = out.xreplace({expr: self._symbols[expr]})
        return out

    def size_str(self, size: S.Size) -> str:
        if not isinstance(size, int) and size in self.names:
            return self.names[size]
        return S.fmt(self.rewrite(size))

    def type_str(self, t: TensorType | TupleType) -> str:
        if isinstance(t, TupleType):
            return "(" + ", ".join(self.type_str(x) for x in t.items) + ")"
        inner = ", ".join(f"{a.name}={self.size_str(a.size)}" for a in t.axes)
        return f"{t.dtype}[{inner}]" if t.dtype != "f32" else f"[{inner}]"
