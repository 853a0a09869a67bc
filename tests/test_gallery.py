"""docs/gallery.md stays true: every render command on it names committed SVG and PNG files, and the
circuit-style SVGs (drawn by archc itself, deterministic) are exactly what the command writes today.
Graph-style SVGs come from the installed Graphviz, whose output varies by version: they are only
checked to exist and parse. Regenerate with `python docs/gallery/render.py`."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import pathlib
import xml.etree.ElementTree as ET

import pytest

from archc import cli

from conftest import ROOT

_spec = importlib.util.spec_from_file_location("gallery_render", ROOT / "docs" / "gallery" / "render.py")
assert _spec is not None and _spec.loader is not None
gallery = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gallery)
COMMANDS = gallery.commands()


def test_the_page_has_every_example_and_the_paper_figures() -> None:
    outs = {pathlib.Path(gallery.output(c)).stem for c in COMMANDS}
    for ex in sorted((ROOT / "examples").glob("*.arch")):
        assert f"{ex.stem}_graph" in outs and f"{ex.stem}_circuit" in outs, ex.stem
    assert {"bottleneck_define", "attention_circuit", "unet_circuit"} <= outs


@pytest.mark.parametrize("args", COMMANDS, ids=lambda c: pathlib.Path(gallery.output(c)).stem)
def test_gallery_image_is_committed_and_current(args: list[str], tmp_path: pathlib.Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    svg = ROOT / gallery.output(args)
    png = svg.with_suffix(".png")
    assert svg.is_file() and png.is_file()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ET.parse(svg).getroot().tag.endswith("svg")
    if "circuit" not in args:
        return
    monkeypatch.chdir(ROOT)
    fresh = tmp_path / svg.name
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(gallery.with_output(args, str(fresh))) == 0
    assert fresh.read_bytes() == svg.read_bytes(), f"{svg.name} is stale: run python docs/gallery/render.py"
