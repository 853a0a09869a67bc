"""The pass API: a pass is a named Graph -> Graph function that declares what it needs and gives.

A pass never changes its input: it builds a new graph with `ir.rewrite.rewrite`.
Like torch.fx's passes, each says what must hold of the graph it gets
(`requires`) and what holds of the graph it returns (`ensures`), as names of
*properties* from `PROPERTIES`: each property is a check on a graph, so a
pipeline can verify its passes as it runs them (`run(..., verify=True)`, the IR
verifier switched on), and a pass that breaks its promise is caught where it
breaks it rather than in code generation.

>>> import archc
>>> g = archc.loads('block B() { in x: [c = 4]\\n y = relu(x)\\n out x }').check().graph
>>> len(g), len(run(g, ["dead_values"]))
(2, 1)
>>> PASSES["dead_values"].ensures
('linted', 'no-dead-values')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from archc.ir.graph import Graph

GraphFn = Callable[..., Graph]


@dataclasses.dataclass(frozen=True)
class Property:
    """A fact about a graph, with the check that decides it."""

    name: str
    doc: str
    check: Callable[[Graph], bool]


@dataclasses.dataclass(frozen=True)
class Pass:
    """A named graph transformation and the properties it requires and ensures."""

    name: str
    fn: GraphFn
    requires: tuple[str, ...] = ()
    ensures: tuple[str, ...] = ()
    doc: str = ""

    def __call__(self, g: Graph, **options: Any) -> Graph:
        return self.fn(g, **options)


PROPERTIES: dict[str, Property] = {}
PASSES: dict[str, Pass] = {}


def prop(name: str, doc: str) -> Callable[[Callable[[Graph], bool]], Callable[[Graph], bool]]:
    """Register a property check under `name` (used by `requires`/`ensures`).

    >>> "linted" in PROPERTIES
    True
    """
    def register(check: Callable[[Graph], bool]) -> Callable[[Graph], bool]:
        PROPERTIES[name] = Property(name, doc, check)
        return check
    return register


def graph_pass(name: str, requires: Sequence[str] = (), ensures: Sequence[str] = ()) -> Callable[[GraphFn], GraphFn]:
    """Register a Graph -> Graph function as the pass `name`; its docstring's first line is its doc.

    >>> {"bind_sizes", "dead_values"} <= set(PASSES)
    True
    """
    def register(fn: GraphFn) -> GraphFn:
        for p in (*requires, *ensures):
            if p not in PROPERTIES:
                raise ValueError(f"pass {name}: unknown property '{p}'")
        doc = (fn.__doc__ or "").strip().split("\n")[0]
        PASSES[name] = Pass(name, fn, tuple(requires), tuple(ensures), doc)
        return fn
    return register


class PassError(Exception):
    """A pass got a graph without a property it requires, or returned one without a property it ensures."""


def run(g: Graph, passes: Sequence[str | Pass], verify: bool = True, **options: Any) -> Graph:
    """Run passes in order (by name or as `Pass`); `options` go to the passes that take them by name.

    With `verify`, each pass's requirements are checked on the graph it gets and its promises on
    the graph it returns (PassError names the pass and the property).

    >>> import archc
    >>> g = archc.loads('block B() { in x: [c = 4]\\n out relu(x) }').check().graph
    >>> run(g, ["dead_values", "bind_sizes"], values={}) is not g
    True
    """
    import inspect
    for item in passes:
        p = PASSES[item] if isinstance(item, str) else item
        if verify:
            _verify(p, g, p.requires, "requires")
        accepted = inspect.signature(p.fn).parameters
        g = p(g, **{k: v for k, v in options.items() if k in accepted})
        if verify:
            _verify(p, g, p.ensures, "ensures")
    return g


def _verify(p: Pass, g: Graph, props: Sequence[str], what: str) -> None:
    for name in props:
        if not PROPERTIES[name].check(g):
            raise PassError(f"pass {p.name} {what} '{name}' ({PROPERTIES[name].doc}), which does not hold")


# ---- properties every pass may name ---------------------------------------------------------


@prop("linted", "the IR lint finds no problem")
def _linted(g: Graph) -> bool:
    from archc.ir.lint import lint
    return not lint(g)
