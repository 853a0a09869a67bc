"""Issue 12's cases of hostile reads and terminals, each as a whole process with a time limit: a FIFO or a
device is never read (as the input or as an import, also through a link named .arch), and output in an
encoding that cannot show `—` or a user's non-ASCII name falls back to escapes instead of crashing."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from conftest import EXAMPLES

BLOCK = "block B() {\n  in x: [n = 2]\n  out x\n}\n"


def _check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "archc.cli", "check", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_never_read(tmp_path: pathlib.Path) -> None:
    fifo = tmp_path / "pipe.arch"
    os.mkfifo(fifo)  # no writer: reading it would block for ever
    run = _check(str(fifo))
    assert run.returncode == 1 and "is not a regular file" in run.stderr, run.stderr
    main = tmp_path / "main.arch"
    main.write_text(f'import "{fifo.name}"\n{BLOCK}')
    run = _check(str(main))
    assert run.returncode == 1 and "main.arch:1:1: error:" in run.stderr and "is not a regular file" in run.stderr


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_device_behind_an_arch_name_is_never_read(tmp_path: pathlib.Path) -> None:
    (tmp_path / "zero.arch").symlink_to("/dev/zero")  # endless: reading it would exhaust memory
    main = tmp_path / "main.arch"
    main.write_text(f'import "zero.arch"\n{BLOCK}')
    run = _check(str(main))
    assert run.returncode == 1 and "is not a regular file" in run.stderr, run.stderr
    run = _check(str(tmp_path / "zero.arch"))
    assert run.returncode == 1 and "is not a regular file" in run.stderr, run.stderr


def test_an_ascii_terminal_gets_escapes_not_a_crash(tmp_path: pathlib.Path) -> None:
    ascii_only = {"PYTHONIOENCODING": "ascii"}
    run = _check(str(EXAMPLES / "resnet50.arch"), env=ascii_only)  # its header line has an em dash
    assert run.returncode == 0 and "\\u2014" in run.stdout and "Traceback" not in run.stderr
    bad = tmp_path / "bad.arch"
    bad.write_text("block B() {\n  in x: [n = 2]\n  out größe\n}\n", encoding="utf-8")
    run = _check(str(bad), env=ascii_only)
    assert run.returncode == 1 and "bad.arch:3:9: error: unexpected character" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.isascii()
