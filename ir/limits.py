"""Budgets that stop a runaway or hostile program early, with a located error, before memory or time
runs out (docs/errors.md, "Limits"). They are read where the work is done: the loader reads `bytes`,
the elaborator `nodes`, `steps`, `depth` and `size_depth`, the diagrams `draw` and `dot_seconds`. The current budgets
are a context variable, set for one command by `archc ... --limit NAME=VALUE` and in Python by
`with archc.api.limits(nodes=...)`.

>>> with limits(nodes=10):
...     current().nodes, current().steps == Limits().steps
(10, True)
>>> parse_limit("steps=5_000_000")
('steps', 5000000)
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator


@dataclasses.dataclass(frozen=True)
class Limits:
    """The budgets of one compilation; every example stays far below the defaults (docs/errors.md)."""

    nodes: int = 120_000  # ops in the graph (ResNet-152: 515; 30 to 60 µs and 1.5 kB each)
    steps: int = 500_000  # statements run, loop iterations, block calls (ResNet-152: 618)
    depth: int = 64  # block calls nested inside each other
    size_depth: int = 48  # floors, ceilings and mods nested in one symbolic size (ResNet-152: 5)
    bytes: int = 1 << 20  # the size of one source file (lark parses about 0.2 MB a second)
    draw: int = 5_000  # boxes in a diagram, after repeats collapse and --depth folds (ResNet-152: 95)
    dot_seconds: int = 30  # how long Graphviz's dot may take to lay out a graph-style diagram


HELP = {
    "nodes": "ops in the elaborated graph",
    "steps": "elaboration steps: statements run, loop iterations, block calls",
    "depth": "block calls nested inside each other",
    "size_depth": "floors, ceilings and mods nested in one symbolic size",
    "bytes": "the size of one source file, in bytes",
    "draw": "boxes in a diagram (archc render)",
    "dot_seconds": "seconds Graphviz's dot may take to lay out a diagram",
}

_CURRENT: contextvars.ContextVar[Limits] = contextvars.ContextVar(
    "archc_limits", default=Limits())  # noqa: B039 - Limits is frozen


def current() -> Limits:
    """The budgets in force."""
    return _CURRENT.get()


@contextlib.contextmanager
def limits(**budgets: int) -> Iterator[Limits]:
    """Raise (or lower) budgets for the code inside; names as in `Limits`. A bad name or value is a
    ValueError."""
    fields = {f.name for f in dataclasses.fields(Limits)}
    for name, value in budgets.items():
        if name not in fields:
            raise ValueError(f"no limit named '{name}'; the limits are {', '.join(sorted(fields))}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"limit {name} must be a positive integer, got {value!r}")
    token = _CURRENT.set(dataclasses.replace(current(), **budgets))
    try:
        yield current()
    finally:
        _CURRENT.reset(token)


def parse_limit(text: str) -> tuple[str, int]:
    """`NAME=VALUE` of `--limit`: a known name and a positive integer (underscores allowed). ValueError
    otherwise, with the sentence to show."""
    name, sep, value = (part.strip() for part in text.partition("="))
    if not sep or name not in HELP:
        raise ValueError(f"takes NAME=N with NAME one of {', '.join(HELP)}, got '{text}'")
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ValueError(f"{name}: '{value}' is not a positive integer")
    return name, number


def note(name: str) -> str:
    """The note every limit error carries: what the limit is and how to raise it."""
    value = getattr(current(), name)
    return (f"the limit on {HELP[name]} is {value:,}; raise it with `--limit {name}=N` "
            f"(Python: `with archc.api.limits({name}=N)`); see docs/errors.md")
