"""Folding modules at any depth gives a drawable diagram: boxes never both feed and follow a node."""

from __future__ import annotations

import pytest

import archc
from archc.codegen.diagrams import graph as G

from conftest import EXAMPLES

NAMES = sorted(p.stem for p in EXAMPLES.glob("*.arch"))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_every_depth_folds_into_an_acyclic_drawing(name: str, depth: int, tmp_path) -> None:
    m = archc.load(str(EXAMPLES / f"{name}.arch"))
    g = m.check().graph
    box = G.fold(g, (), depth).box
    for path in set(box.values()):
        ids = {i for i, b in box.items() if b == path}
        assert G._is_convex(g, ids), f"{path} at depth {depth} would be drawn before a node that feeds it"
    m.render(str(tmp_path / "c.svg"), style="circuit", depth=depth)
    assert "<svg" in (tmp_path / "c.svg").read_text()


def test_unets_lists_of_levels_open_up_at_depth_one() -> None:
    """`up` and `down` are lists whose elements run at different points of the dataflow: at depth 1 each
    draws as its elements (down.0, down.1, ...), never as one box fed by its own output."""
    g = archc.load(str(EXAMPLES / "unet.arch")).check().graph
    boxes = set(G.fold(g, (), 1).box.values())
    assert "inc" in boxes and not any(b in ("up", "upconv") for b in boxes)
