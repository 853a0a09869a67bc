"""archc never loses a file that is not its own: marked outputs, no writing through links, atomic
replacement, the inputs untouchable, and every OS error as one located line (codegen/output.py)."""

from __future__ import annotations

import contextlib
import io
import os
import pathlib

import pytest

from archc import cli
from archc.codegen import output

from conftest import ROOT

MINI = ROOT / "tests" / "data" / "mini_resnet.arch"


def _render(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = cli.main(["render", str(MINI), *args])
    return code, err.getvalue()


@pytest.mark.parametrize("name, style", [("d.dot", "graph"), ("d.svg", "graph"), ("d.png", "graph"),
                                         ("d.pdf", "graph"), ("c.svg", "circuit"), ("c.png", "circuit"),
                                         ("c.pdf", "circuit")])
def test_archc_replaces_its_own_files_and_no_one_elses(name: str, style: str, tmp_path: pathlib.Path) -> None:
    out = tmp_path / name
    assert _render("-o", str(out), "--style", style) == (0, "")
    first = out.read_bytes()
    assert output.owned(first[:4096], first[-4096:], name.rsplit(".", 1)[1])
    assert _render("-o", str(out), "--style", style) == (0, "")  # its own file: replaced
    mine = tmp_path / f"mine.{name.rsplit('.', 1)[1]}"
    mine.write_bytes(b"precious work")
    code, err = _render("-o", str(mine), "--style", style)
    assert code == 1 and "was not written by archc; use --force" in err and err.count("\n") == 1
    assert mine.read_bytes() == b"precious work"
    assert _render("-o", str(mine), "--style", style, "--force")[0] == 0
    assert mine.read_bytes() != b"precious work"


def test_a_link_at_the_target_is_never_followed(tmp_path: pathlib.Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "d.svg"
    link.symlink_to(victim)
    code, err = _render("-o", str(link))
    assert code == 1 and "is a symbolic link" in err and victim.read_text() == "keep me"
    assert _render("-o", str(link), "--force")[0] == 0  # replaces the link itself, not its target
    assert victim.read_text() == "keep me" and not link.is_symlink() and "<svg" in link.read_text()


def test_no_predictable_temporary_name_is_used(tmp_path: pathlib.Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "d.dot"
    for planted in (f"{target.name}.tmp{os.getpid()}", f"{target.name}.tmp", f".{target.name}.tmp",
                    f"{target.name}~"):
        (tmp_path / planted).symlink_to(victim)
    assert _render("-o", str(target))[0] == 0
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.is_symlink()) == ["d.dot", "victim.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path: pathlib.Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "d.dot"
    assert _render("-o", str(out))[0] == 0
    before = out.read_bytes()

    def full(*a: object) -> None:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(output.os, "fsync", full)
    code, err = _render("-o", str(out), "--depth", "1")
    assert code == 1 and err == f"archc: error: {out}: cannot be written: No space left on device [io]\n"
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["d.dot"]


@pytest.mark.parametrize("case, message", [
    ("missing directory", "does not exist"),
    ("not a directory", "is not a directory"),
    ("a directory", "is a directory"),
])
def test_os_errors_are_one_line_each(case: str, message: str, tmp_path: pathlib.Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "dir.svg").mkdir()
    target = {"missing directory": tmp_path / "nope" / "d.svg", "not a directory": tmp_path / "file.txt" / "d.svg",
              "a directory": tmp_path / "dir.svg"}[case]
    code, err = _render("-o", str(target))
    assert code == 1 and message in err and err.endswith("[io]\n") and err.count("\n") == 1, err


def test_an_input_is_never_overwritten(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "m.dot"  # a .arch program under a name a render could write
    src.write_text(MINI.read_text())
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = cli.main(["render", str(src), "-o", str(src), "--force"])
    assert code == 1 and "is one of the input files" in err.getvalue()
    assert src.read_text() == MINI.read_text()


def _build(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = cli.main(["build", *args])
    return code, err.getvalue()


def test_build_never_overwrites_its_own_source(tmp_path: pathlib.Path) -> None:
    """A .arch program saved as m.py that starts with the generated-code marker: building it into its own
    folder would write m.py over it."""
    src = tmp_path / "m.py"
    src.write_text("# Generated by archc (a comment in a .arch file)\n" + MINI.read_text())
    before = src.read_text()
    code, err = _build(str(src), "-o", str(tmp_path), "--force")
    assert code == 1 and "is one of the input files" in err and src.read_text() == before


def test_build_keeps_a_module_it_did_not_write(tmp_path: pathlib.Path) -> None:
    mine = tmp_path / "mini_resnet.py"
    mine.write_text("my own module\n")
    code, err = _build(str(MINI), "-o", str(tmp_path))
    assert code == 1 and "was not written by archc" in err and mine.read_text() == "my own module\n"
    assert _build(str(MINI), "-o", str(tmp_path))[0] == 1
    assert _build(str(MINI), "-o", str(tmp_path), "--force")[0] == 0
    assert _build(str(MINI), "-o", str(tmp_path))[0] == 0  # now archc's own: replaced freely
    code, err = _build(str(MINI), "-o", str(tmp_path / "mini_resnet.py" / "x"))
    assert code == 1 and err.endswith("[io]\n") and err.count("\n") == 1
