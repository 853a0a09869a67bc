"""The Python API: load a .arch file, check it, count its costs.

>>> import archc
>>> m = archc.loads('block B() { in x: [n = 2, c = 8]\\n fc = linear(x, c -> 4)\\n out fc }')
>>> m.check().graph.node(m.check().graph.outputs[0]).type.names
('n', 'c')
>>> m.flops().flops
64
"""

from __future__ import annotations

import dataclasses
from typing import Any

from archc.diagnostics import ArchError, Diagnostic, SourceMap
from archc.dsl.elaborate import elaborate
from archc.dsl.ir import Graph
from archc.dsl.loader import Program, load as load_program
from archc.shapes.constraints import Derived, derive as derive_constraints


@dataclasses.dataclass
class Compiled:
    graph: Graph
    symbolic: bool
    constraints: list[Derived]

    @property
    def row_names(self) -> dict[int, str]:
        from archc.shapes.report import row_names
        return row_names(self.graph)


def _defaults(g: Graph) -> dict[str, int]:
    return {k: v for k, v in g.sizes.items() if v is not None}


def compile_program(program: Program, entry: str | None = None, sets: dict[str, Any] | None = None,
                    symbolic: bool = False, derive: bool = False) -> Compiled:
    """Elaborate a loaded program. With `derive`, a concrete run also derives the
    constraints on its free sizes from a symbolic run, and an error caused by
    concrete sizes gets those constraints as notes."""
    try:
        g = elaborate(program, entry, sets, symbolic)
    except ArchError as e:
        if derive and not symbolic:
            _annotate(e, program, entry, sets)
        raise
    if symbolic or not derive:
        return Compiled(g, symbolic, derive_constraints(getattr(g, "constraints", []), _defaults(g)))
    if not g.sizes:
        return Compiled(g, symbolic, [])
    try:
        gs = elaborate(program, entry, sets, True)
        cons = derive_constraints(getattr(gs, "constraints", []), _defaults(gs))
    except ArchError:
        cons = []
    return Compiled(g, symbolic, cons)


def _annotate(e: ArchError, program: Program, entry: str | None, sets: dict[str, Any] | None) -> None:
    if not any(d.code in ("axis-size", "constraint", "value") for d in e.diagnostics):
        return
    free_sets = dict(sets or {})
    for name in list(free_sets):
        if name in program.sizes:
            free_sets.pop(name)
    try:
        el_graph = elaborate(program, entry, free_sets, True)
    except ArchError:
        return
    derived = derive_constraints(getattr(el_graph, "constraints", []), {})
    if not derived:
        return
    notes = tuple((f"for all sizes this needs: {d.text}", d.span) for d in derived if d.kind != "assumed")
    if notes:
        first = e.diagnostics[0]
        e.diagnostics[0] = dataclasses.replace(first, notes=first.notes + notes)


def compile_file(path: str, entry: str | None = None, sets: dict[str, Any] | None = None,
                 symbolic: bool = False, sources: SourceMap | None = None, derive: bool = False) -> Compiled:
    """Load and elaborate `path`; diagnostics quote from `sources` (filled in here)."""
    try:
        program = load_program(path)
    except ArchError:
        raise
    if sources is not None:
        sources.texts.update(program.sources.texts)
    return compile_program(program, entry, sets, symbolic, derive)


class Model:
    """A loaded .arch program: `check()`, `flops()`, and (later) code generation."""

    def __init__(self, program: Program, entry: str | None = None):
        self.program = program
        self.entry = entry

    def check(self, symbolic: bool = False, **sets: Any) -> Compiled:
        return compile_program(self.program, self.entry, sets, symbolic)

    def flops(self, convention: str = "torch", symbolic: bool = False, **sets: Any):
        from archc.shapes.report import analyze
        return analyze(self.check(symbolic, **sets).graph, convention)

    def ir(self, **sets: Any) -> str:
        from archc.dsl.printer import print_graph
        return print_graph(self.check(**sets).graph)


def load(path: str, entry: str | None = None) -> Model:
    """Load a .arch file (and its imports). Raises ArchError with located diagnostics."""
    return Model(load_program(path), entry)


def loads(text: str, name: str = "<string>.arch", entry: str | None = None) -> Model:
    """Load .arch source text."""
    return Model(load_program(name, text), entry)


__all__ = ["ArchError", "Compiled", "Diagnostic", "Model", "load", "loads"]
