"""Golden files: the IR print and the cost report of every example.

A refactor must leave these byte-identical. After an intended change, rewrite
them with `ARCHC_UPDATE_GOLDENS=1 pytest tests/test_goldens.py` and review the
diff like code.
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib

import pytest

from archc import cli
from archc.ir.printer import print_graph

from conftest import EXAMPLES, ROOT

GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("ARCHC_UPDATE_GOLDENS") == "1"
SOURCES = sorted(EXAMPLES.glob("*.arch")) + [ROOT / "tests" / "data" / "mini_resnet.arch"]


def _compare(path: pathlib.Path, text: str) -> None:
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"missing golden {path.relative_to(ROOT)}; run with ARCHC_UPDATE_GOLDENS=1")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.read_text() == text, f"{path.relative_to(ROOT)} differs; review and regenerate"


def _cli(*argv: str) -> str:
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)  # goldens record paths relative to the repository
    try:
        with contextlib.redirect_stdout(out):
            assert cli.main(list(argv)) == 0
    finally:
        os.chdir(cwd)
    return out.getvalue()


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_ir_golden(src: pathlib.Path) -> None:
    import archc
    text = print_graph(archc.load(str(src)).check().graph)
    _compare(GOLDEN / "ir" / f"{src.stem}.ir", text)


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_flops_golden(src: pathlib.Path) -> None:
    rel = str(src.relative_to(ROOT))
    _compare(GOLDEN / "flops" / f"{src.stem}.txt", _cli("flops", rel))


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_output_is_deterministic(src: pathlib.Path) -> None:
    rel = str(src.relative_to(ROOT))
    assert _cli("check", rel, "--ir") == _cli("check", rel, "--ir")
