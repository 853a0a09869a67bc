"""What archc prints cannot drive a terminal: user text is escaped, one diagnostic is its own lines,
and a terminal that cannot show a character gets its escape instead of a crash."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import EXAMPLES

HOSTILE = [
    "\x1b[31mred\x1b[0m",                       # colour escape
    "\x1b]8;;http://evil.example\x1b\\link",    # terminal hyperlink
    "ok\\nx.arch:1:1: error: forged [syntax]",  # a newline (an escape in the .arch string) forging a diagnostic
    "ok\\rover",                                 # carriage return overwriting the line
    "raw\nnewline",                             # a raw newline: a syntax error, printed safely
    "abc\u202egnp.exe",                          # bidi override (trojan source)
    "bell\x07\x9b31m",                           # BEL and an 8-bit CSI
]
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "archc.cli", *args], capture_output=True, text=True,
                          encoding="utf-8", errors="strict", env={**os.environ, **(env or {})})


@pytest.mark.parametrize("payload", HOSTILE, ids=range(len(HOSTILE)))
def test_an_assert_message_cannot_reach_the_terminal(payload: str, tmp_path) -> None:
    text = 'block B() {\n  in x: [n = 2]\n  assert false, "' + payload + '"\n  out x\n}\n'
    p = tmp_path / "m.arch"
    p.write_text(text, encoding="utf-8")
    out = _run("check", str(p))
    assert out.returncode == 1
    assert not CONTROL.search(out.stderr.replace("\n", "")), repr(out.stderr)
    lines = out.stderr.rstrip("\n").split("\n")
    assert len(lines) == 3 and re.match(r".*m\.arch:3:\d+: error: .* \[(constraint|syntax)\]$", lines[0]), lines


def test_a_hostile_file_name_is_escaped(tmp_path) -> None:
    p = tmp_path / "bad\x1b[2Jname.arch"
    p.write_text("block B() { in x: [n = 2]\n out y }\n")
    out = _run("check", str(p))
    assert out.returncode == 1 and "\x1b" not in out.stderr and "\\x1b[2J" in out.stderr


@pytest.mark.parametrize("args", [("check", "unet.arch", "--set", "H=100"), ("flops", "unet.arch", "--symbolic"),
                                  ("check", "resnet50.arch")])
def test_an_ascii_terminal_gets_escapes_not_a_crash(args: tuple[str, ...]) -> None:
    argv = [args[0], str(EXAMPLES / args[1]), *args[2:]]
    out = subprocess.run([sys.executable, "-m", "archc.cli", *argv], capture_output=True,
                         env={**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C"})
    assert out.returncode in (0, 1) and b"internal error" not in out.stderr
    assert all(b < 128 for b in out.stdout + out.stderr)
    assert b"\\u230a" in out.stdout + out.stderr or b"\\u2014" in out.stdout


def test_non_finite_numbers_are_refused_at_the_argument_or_written_as_python(tmp_path) -> None:
    """`1e999` is inf: an op argument refuses it where it is written; a scale by it stays valid Python."""
    import archc
    from archc.diagnostics import ArchError
    with pytest.raises(ArchError) as err:
        archc.loads("block B() {\n  in x: [n = 2, c = 4]\n  y = layernorm(x, eps = 1e999)\n  out y\n}\n").check()
    d = err.value.diagnostics[0]
    assert "must be a finite number" in d.message and (d.span.line, d.span.col) == (3, 26)
    m = archc.loads("block B(f = 1e999) {\n  in x: [n = 2, c = 4]\n  out x * f\n}\n")
    source = m.torch_source()
    compile(source, "gen.py", "exec")
    assert "float('inf')" in source and "= inf" not in source
