"""Error tests in the style of mypy's: `.arch` files under tests/errors whose expected
diagnostics are written inline, on the line they must be reported at.

    y = a + b      # E: axis 'h' on both sides of the sum [axis-size]
    y = a + b      # E:9: axis 'h' on both sides of the sum [axis-size]    (the column too)
    in x: [n, c]   # N:9: 'x' is declared here                               (a note)
    #! args: --set H=3 --entry Net      command-line arguments (the command is `check`)
    #! error: --set Q: no free size [set]      a diagnostic printed without a location

The text of an expectation is a substring of the message; the code in brackets must be
exact. Every expected error and note must be reported at its line (and column, when
given), and every reported error must be expected: one run of `archc check` reports all
of a file's independent errors. Expectations also count in the local files a case
imports (an import cycle is reported in the file that closes it). Files under
tests/errors/lib/ are only imported, never run on their own.

Each case runs through `archc.cli.main`, so the rendering is tested too: every located
diagnostic is followed by its source line and a caret under its columns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import os
import re
import shlex
from pathlib import Path

import pytest

from archc.cli import main
from archc.diagnostics import MAX_QUOTE
from archc.grammar.parser import _EXAMPLES

ERRORS = Path(__file__).resolve().parent / "errors"
CASES = sorted(ERRORS.glob("*.arch"))

_INLINE = re.compile(r"#\s*([EWN])(?::(\d+))?:\s*(.*?)\s*(?=#\s*[EWN](?::\d+)?:|$)")
_DIRECTIVE = re.compile(r"^#!\s*(\w+):\s*(.*?)\s*$")
_LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning|note): (?P<msg>.*)$")
_UNLOCATED = re.compile(r"^archc: (?P<sev>error|warning): (?P<msg>.*)$")
_CODE = re.compile(r"^(?P<text>.*?)\s*\[(?P<code>[a-z-]+)\]$")
_IMPORT = re.compile(r'^\s*import\s+"([^"]+)"', re.M)


@dataclasses.dataclass(frozen=True)
class Diag:
    file: str | None  # None: printed without a location
    line: int
    col: int
    severity: str  # "error" | "warning" | "note"
    message: str  # without the code
    code: str | None  # None for notes

    def __str__(self) -> str:
        where = f"{os.path.relpath(self.file, ERRORS)}:{self.line}:{self.col}" if self.file else "archc"
        code = f" [{self.code}]" if self.code else ""
        return f"{where}: {self.severity}: {self.message}{code}"


def _split_code(text: str) -> tuple[str, str | None]:
    m = _CODE.match(text)
    return (m["text"], m["code"]) if m else (text, None)


def _local_imports(path: Path, seen: set[Path]) -> None:
    """`path` and every local file it imports, transitively (read with a regex, as the
    files may not parse)."""
    path = path.resolve()
    if path in seen or not path.is_file():
        return
    seen.add(path)
    for rel in _IMPORT.findall(path.read_text()):
        _local_imports(path.parent / rel, seen)


def expectations(case: Path) -> tuple[list[Diag], list[str]]:
    """The expected diagnostics of a case and its command-line arguments."""
    expected: list[Diag] = []
    args: list[str] = []
    files: set[Path] = set()
    _local_imports(case, files)
    for path in sorted(files):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            d = _DIRECTIVE.match(line)
            if d and path == case.resolve():
                if d[1] == "args":
                    args += shlex.split(d[2])
                elif d[1] in ("error", "warning"):
                    text, code = _split_code(d[2])
                    expected.append(Diag(None, 0, 0, d[1], text, code))
                else:
                    raise ValueError(f"{path}:{lineno}: unknown directive #! {d[1]}")
                continue
            for m in _INLINE.finditer(line[line.index("#"):] if "#" in line else ""):
                sev = {"E": "error", "W": "warning", "N": "note"}[m[1]]
                text, code = _split_code(m[3]) if sev != "note" else (m[3], None)
                if sev != "note" and code is None:
                    raise ValueError(f"{path}:{lineno}: an expected {sev} needs its [code]")
                expected.append(Diag(str(path), lineno, int(m[2] or 0), sev, text, code))
    return expected, args


@dataclasses.dataclass
class Run:
    status: int
    stderr: str
    diagnostics: list[Diag]


def parse_stderr(stderr: str) -> list[Diag]:
    out = []
    for line in stderr.splitlines():
        if m := _LOCATED.match(line):
            text, code = _split_code(m["msg"]) if m["sev"] != "note" else (m["msg"], None)
            out.append(Diag(os.path.realpath(m["file"]), int(m["line"]), int(m["col"]), m["sev"], text, code))
        elif m := _UNLOCATED.match(line):
            text, code = _split_code(m["msg"])
            out.append(Diag(None, 0, 0, m["sev"], text, code))
    return out


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


@functools.cache
def run_case(case: Path) -> Run:
    _, args = expectations(case)
    status, _, stderr = run_cli(["check", str(case), *args])
    return Run(status, stderr, parse_stderr(stderr))


def _matches(exp: Diag, act: Diag) -> bool:
    same_place = exp.file == act.file and exp.line == act.line and exp.col in (0, act.col)
    if exp.file is None:
        same_place = act.file is None
    return (same_place and exp.severity == act.severity and exp.code == act.code
            and exp.message in act.message)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_error_case(case: Path) -> None:
    expected, _ = expectations(case)
    assert expected, f"{case.name} expects no diagnostic"
    run = run_case(case)
    assert "Traceback" not in run.stderr
    actual = list(run.diagnostics)
    missing = []
    for exp in expected:
        hit = next((a for a in actual if _matches(exp, a)), None)
        if hit is None:
            missing.append(exp)
        else:
            actual.remove(hit)
    unexpected = [a for a in actual if a.severity != "note"]
    report = ("\nmissing:\n  " + "\n  ".join(map(str, missing)) +
              "\nunexpected:\n  " + "\n  ".join(map(str, unexpected)) + f"\n--- stderr ---\n{run.stderr}")
    assert not missing and not unexpected, report
    wants_error = any(e.severity == "error" for e in expected)
    assert run.status == (1 if wants_error else 0), run.stderr
    if sum(e.severity == "error" for e in expected) > 1:
        n = sum(d.severity == "error" for d in run.diagnostics)
        assert f"archc: {n} errors" in run.stderr


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_every_located_diagnostic_quotes_its_line_with_a_caret(case: Path) -> None:
    lines = run_case(case).stderr.splitlines()
    for i, line in enumerate(lines):
        m = _LOCATED.match(line)
        if not m:
            continue
        source = Path(m["file"]).read_text().split("\n")
        n, col = int(m["line"]), int(m["col"])
        if n > len(source):
            continue
        text = source[n - 1].expandtabs(1)
        quoted, caret = lines[i + 1], lines[i + 2]
        assert set(caret.strip()) <= {"^", "~"} and caret.lstrip().startswith("^"), (line, caret)
        under = caret.index("^")
        if len(text) <= MAX_QUOTE:
            assert quoted == "    " + text, line
            assert under == 4 + col - 1, (line, caret)
        else:  # a window of the line, marked with '...'
            assert quoted[4:].strip(".") in text, line
        if col <= len(text):  # the caret stands under the first character of the span
            assert quoted[under] == text[col - 1], (line, quoted, caret)


@pytest.mark.parametrize("label", sorted(_EXAMPLES))
def test_every_syntax_sentence_has_an_error_case(label: str) -> None:
    """Each sentence the parser can print for a known mistake is shown by some case."""
    printed = [d.message for case in CASES for d in run_case(case).diagnostics if d.code == "syntax"]
    assert any(label in m for m in printed), f"no tests/errors case prints: {label}"


def test_syntax_errors_never_name_lark_terminals() -> None:
    terminals = re.compile(r"\b(?:RPAR|LPAR|LSQB|RSQB|LBRACE|RBRACE|COMMA|COLON|EQUAL|NAME|NUMBER|STRING|"
                           r"__ANON_\d+)\b|\$END|Expected one of")
    for case in CASES:
        for d in run_case(case).diagnostics:
            assert not terminals.search(d.message), str(d)


# ---- rendering: the source line and a caret under the right columns ---------------------


def _caret(col: int, width: int) -> str:
    return "    " + " " * (col - 1) + "^" + "~" * (width - 1)


def test_rendering_puts_the_caret_under_the_span(tmp_path: Path) -> None:
    src = tmp_path / "net.arch"
    src.write_text("block Net() {\n  in x: [n = 2, c = 4]\n  y = relu(x) + linear(x, c -> 8)\n  out y\n}\n")
    status, _, err = run_cli(["check", str(src)])
    assert status == 1
    # `linear` needs a name: the span is the whole call, `linear(x, c -> 8)`, from column 17.
    assert err.splitlines()[:3] == [
        f"{src}:3:17: error: linear has parameters and needs a name: write `linear1 = linear(...)` [structure]",
        "      y = relu(x) + linear(x, c -> 8)",
        _caret(17, len("linear(x, c -> 8)")),
    ]


def test_rendering_with_tabs_keeps_the_caret_aligned(tmp_path: Path) -> None:
    src = tmp_path / "tabs.arch"
    src.write_text("block Net() {\n\tin x: [n = 2, c = 4]\n\ty = relu(\tz)\n\tout y\n}\n")
    status, _, err = run_cli(["check", str(src)])
    assert status == 1
    head, quoted, caret = err.splitlines()[:3]
    assert head == f"{src}:3:12: error: 'z' is not defined [name]"
    assert quoted == "     y = relu( z)"  # a tab is one column, as lark counts it
    assert caret == _caret(12, 1)


def test_rendering_of_a_multi_line_span_underlines_to_the_end_of_its_first_line(tmp_path: Path) -> None:
    src = tmp_path / "multi.arch"
    src.write_text("block Net() {\n  in x: [n = 2, c = 4]\n  y = relu(linear(x,\n    c -> 8))\n  out y\n}\n")
    _, _, err = run_cli(["check", str(src)])
    head, quoted, caret = err.splitlines()[:3]
    assert head.startswith(f"{src}:3:12: error: linear has parameters")
    assert quoted == "      y = relu(linear(x,"
    assert caret == _caret(12, len("linear(x,"))


def test_syntax_error_at_the_end_of_the_file_points_after_the_last_character(tmp_path: Path) -> None:
    src = tmp_path / "eof.arch"
    src.write_text("block Net() {\n  in x: [n = 2]\n  out relu(x)")
    _, _, err = run_cli(["check", str(src)])
    head, quoted, caret = err.splitlines()[:3]
    assert head == (f"{src}:3:14: error: expected '}}' to close the block, or another statement; "
                    "found end of file [syntax]")
    assert quoted == "      out relu(x)"
    assert caret == _caret(14, 1)


def test_set_of_an_unknown_size_through_the_cli() -> None:
    case = ERRORS / "set_unknown.arch"
    status, _, err = run_cli(["check", str(case), "--set", "Height=32", "--set", "Heigth=8"])
    assert status == 1
    assert "archc: error: --set Heigth: no free size or entry parameter has that name " \
           "(did you mean 'Height'?) [set]" in err.splitlines()
    status, out, err = run_cli(["check", str(case), "--set", "Height=32", "--set", "W=8"])
    assert (status, err) == (0, "") and "[n=1, c=3, h=32, w=8]" in out
    status, _, err = run_cli(["check", str(case), "--set", "Height"])
    assert status == 1 and err.startswith("archc: error: --set takes NAME=VALUE, got 'Height' [set]")
