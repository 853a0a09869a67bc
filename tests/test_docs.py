"""The examples in docs/*.md are programs, and they must keep working.

Every fenced block whose info string starts with `arch` and that is a complete
program (it defines a `block`) is run through `archc check`, in process:

  ```arch                      must pass (exit status 0)
  ```arch-error                must fail (exit status 1) with exactly the errors written inline,
                               mypy-style, as `# E: <text> [code]` on the line they are reported at;
                               <text> is a part of the message, [code] its code. An error the CLI prints
                               without a location (an unknown --entry, a bad --set) matches an
                               `# E:` comment on any line.
  ```arch file=NAME.arch       a module for other examples of the same page to import: written
                               to NAME.arch beside them, checked through the programs that import it
  ```arch args="--set L=16"    extra command-line arguments for `archc check`

Blocks without a `block` (fragments of a statement or two) are skipped.
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import re
import shlex

import pytest

from archc import cli
from archc.diagnostics import CODES

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"

_FENCE = re.compile(r"^```(arch(?:-error)?)\b([^\n]*)\n(.*?)^```\s*$", re.M | re.S)
_BLOCK = re.compile(r"^\s*(entry\s+)?block\s+[A-Za-z_]\w*\s*\(", re.M)
_EXPECT = re.compile(r"#\s*E:\s*(.+?)\s*$")
_ATTR = re.compile(r'(\w+)=("[^"]*"|\S+)')
_DIAG = re.compile(r"^(?:(?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+)|archc): error: (?P<msg>.*)$", re.M)


class Example:
    def __init__(self, page: pathlib.Path, kind: str, attrs: dict[str, str], text: str, line: int):
        self.page, self.kind, self.attrs, self.text, self.line = page, kind, attrs, text, line

    @property
    def id(self) -> str:
        return f"{self.page.name}:{self.line}"

    @property
    def args(self) -> list[str]:
        return shlex.split(self.attrs.get("args", ""))

    def expected(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for i, text in enumerate(self.text.splitlines(), start=1):
            m = _EXPECT.search(text)
            if m:
                out.setdefault(i, []).append(m.group(1))
        return out


def examples(page: pathlib.Path) -> list[Example]:
    text = page.read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        attrs = {k: v.strip('"') for k, v in _ATTR.findall(m.group(2))}
        line = text.count("\n", 0, m.start()) + 1
        out.append(Example(page, m.group(1), attrs, m.group(3), line))
    return out


def _pages() -> list[pathlib.Path]:
    return sorted(DOCS.glob("*.md"))


def _programs() -> list[Example]:
    return [e for p in _pages() for e in examples(p) if "file" not in e.attrs and _BLOCK.search(e.text)]


def _run(example: Example, tmp: pathlib.Path) -> tuple[int, str, str]:
    for other in examples(example.page):
        if "file" in other.attrs:
            target = tmp / other.attrs["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(other.text, encoding="utf-8")
    path = tmp / "example.arch"
    path.write_text(example.text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(["check", str(path), *example.args])
        except SystemExit as e:  # usage errors
            rc = int(e.code or 0)
    return rc, out.getvalue(), err.getvalue()


def test_the_docs_have_examples():
    guide = [e for e in _programs() if e.page.name == "language.md"]
    assert len([e for e in guide if e.kind == "arch"]) >= 15, "docs/language.md lost its examples"
    assert any(e.kind == "arch-error" for e in guide)


@pytest.mark.parametrize("example", _programs(), ids=lambda e: e.id)
def test_example(example: Example, tmp_path: pathlib.Path):
    rc, out, err = _run(example, tmp_path)
    if example.kind == "arch":
        assert rc == 0, f"{example.id} should pass `archc check`, but:\n{err}"
        assert out.rstrip().splitlines()[-1].startswith("ok:"), out
        assert not _EXPECT.search(example.text), f"{example.id} expects an error: fence it ```arch-error"
        return
    assert rc == 1, f"{example.id} should fail `archc check` with exit status 1, got {rc}:\n{out}{err}"
    expected = example.expected()
    assert expected, f"{example.id} is an arch-error example without a `# E:` comment"
    got = [(int(m["line"]) if m["line"] else None, m["msg"]) for m in _DIAG.finditer(err)]
    assert got, err
    unmatched = {(line, text) for line, texts in expected.items() for text in texts}
    for line, msg in got:
        hits = [(ln, t) for ln, t in unmatched if (line is None or ln == line) and _matches(t, msg)]
        assert hits, (f"{example.id}: unexpected error at line {line}: {msg}\n"
                      f"expected: {expected}\nall output:\n{err}")
        unmatched.discard(hits[0])
    assert not unmatched, f"{example.id}: expected errors that were not reported: {unmatched}\n{err}"


def _matches(expected: str, msg: str) -> bool:
    """`text [code]` matches a message containing text, with that code; plain text, any message containing it."""
    m = re.fullmatch(r"(.*?)\s*\[([a-z-]+)\]", expected)
    if m is None:
        return expected in msg
    text, code = m.groups()
    return msg.endswith(f"[{code}]") and text in msg


def test_modules_are_imported():
    """A `file=` block is only checked through the programs that import it: each must have one."""
    for page in _pages():
        exs = examples(page)
        for mod in (e for e in exs if "file" in e.attrs):
            name = mod.attrs["file"]
            assert any(f'"{name}"' in e.text for e in exs if e is not mod), \
                f"{page.name}:{mod.line}: nothing on the page imports {name}"


def test_every_error_code_is_documented():
    """docs/errors.md has a section per code of archc.diagnostics.CODES, with an example."""
    page = DOCS / "errors.md"
    text = page.read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.M)[1:]
    documented = {}
    for s in sections:
        m = re.match(r"`([a-z-]+)`", s)
        if m:
            documented[m.group(1)] = s
    assert set(documented) == set(CODES), "docs/errors.md and CODES disagree"
    for code, section in documented.items():
        assert f"[{code}]" in section, f"errors.md: the example of `{code}` does not show the code"


def test_every_op_is_in_the_reference():
    from archc.ops.registry import BY_NAME as OPS
    text = (DOCS / "language.md").read_text(encoding="utf-8")
    missing = [name for name in OPS if f"| `{name}` |" not in text]
    assert not missing, f"docs/language.md's op table lacks {missing}"


def test_the_standard_library_tables_list_every_block():
    """Each block of dsl/stdlib is in docs/language.md's tables, with its parameters in order."""
    from archc.dsl.loader import _stdlib_text, stdlib_modules
    from archc.grammar.parser import parse

    text = (DOCS / "language.md").read_text(encoding="utf-8")
    documented = {m.group(1): [p.split("=")[0].strip() for p in m.group(2).split(",") if p.strip()]
                  for m in re.finditer(r"^\| `([A-Za-z_]\w*)\(([^)]*)\)` \|", text, re.M)}
    for module in stdlib_modules():
        assert f"import {module}" in text, f"docs/language.md does not mention `import {module}`"
        for block in parse(_stdlib_text(module), module).blocks:
            assert block.name in documented, f"docs/language.md lacks {module}'s block {block.name}"
            assert documented[block.name] == [p.name for p in block.params], \
                f"docs/language.md gives {block.name} other parameters than {module} has"
