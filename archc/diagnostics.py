"""Diagnostics: the one error type of archc, its codes, and how it is printed.

Every phase (parse, elaborate, check) reports problems as `Diagnostic` values
collected in a `DiagnosticBag`; the CLI prints them mypy-style::

    model.arch:12:9: error: axis 'chan' has size 64 here but 128 there [axis-size]
        y = a + b
            ^~~~~

Codes and their one-line meanings are registered in `CODES`, in one place, so
documentation and tests can list them.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Iterator


@dataclasses.dataclass(frozen=True)
class Span:
    """A region of source text: 1-based line/column, end exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NO_SPAN = Span("<archc>", 0, 0, 0, 0)

# code -> what it means. Every Diagnostic.code must be a key here.
CODES: dict[str, str] = {
    "syntax": "the text does not follow the grammar of .arch files",
    "import": "an import could not be resolved or read",
    "name": "a name (variable, block, size, op) is not defined",
    "redefined": "a name is defined twice where it must be unique",
    "arg": "a call has a missing, unknown or ill-typed argument",
    "type": "a value has the wrong kind (tensor, size, axis, bool, ...)",
    "axis": "an operation names an axis the tensor does not have, or axes disagree",
    "axis-size": "an axis has a different size than required",
    "constraint": "concrete sizes violate a constraint derived from the graph",
    "value": "a value is out of range (negative size, bad stride, bad padding, ...)",
    "entry": "no entry block, or the requested entry does not exist",
    "structure": "a block is malformed (no output, a layer without a name, ...)",
    "set": "a --set override names an unknown size or has a bad value",
    "io": "a file could not be read or written",
    "codegen": "the code generator cannot lower this construct (yet), or refuses to write a file",
}


@dataclasses.dataclass(frozen=True)
class Diagnostic:
    severity: str  # "error" | "warning" | "note"
    code: str
    message: str
    span: Span = NO_SPAN
    notes: tuple[tuple[str, Span | None], ...] = ()

    def __post_init__(self) -> None:
        assert self.code in CODES, self.code


class ArchError(Exception):
    """Raised to abort a phase; carries the diagnostics collected so far."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("; ".join(d.message for d in self.diagnostics))


class DiagnosticBag:
    """Collects the diagnostics of one phase so they are reported together."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, code: str, message: str, span: Span = NO_SPAN,
              notes: Iterable[tuple[str, Span | None]] = ()) -> Diagnostic:
        d = Diagnostic("error", code, message, span, tuple(notes))
        self.items.append(d)
        return d

    def warning(self, code: str, message: str, span: Span = NO_SPAN) -> Diagnostic:
        d = Diagnostic("warning", code, message, span)
        self.items.append(d)
        return d

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise ArchError(self.items)

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """' (did you mean 'chan'?)' when a close candidate exists, else ''.

    >>> did_you_mean("chn", ["chan", "batch"])
    " (did you mean 'chan'?)"
    """
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class SourceMap:
    """The text of every file read, so diagnostics can quote the source line."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def add(self, file: str, text: str) -> None:
        self.texts[file] = text

    def line(self, file: str, line: int) -> str | None:
        text = self.texts.get(file)
        if text is None or line < 1:
            return None
        lines = text.split("\n")  # as the lexer counts lines: not at \f or \u2028 (splitlines would)
        return lines[line - 1].rstrip("\r") if line <= len(lines) else None


# Characters that must not reach a terminal from user text: C0 and C1 controls (escape sequences,
# carriage returns, newlines that would forge another `error:` line), DEL, and the Unicode line
# separators and bidirectional overrides that reorder what a reader sees ("trojan source").
_UNSAFE = {c for c in range(0x20)} | {0x7F} | set(range(0x80, 0xA0)) | {0x2028, 0x2029} | \
    set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A)) | {0x200E, 0x200F, 0x061C}
_ESCAPES = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}
_SAFE = {c: _ESCAPES.get(c, f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _UNSAFE}


def printable(text: str) -> str:
    """`text` with every character that could drive a terminal written as its escape, on one line.

    >>> printable("a\\x1b[31mred\\nerror: forged\\u202e")
    'a\\\\x1b[31mred\\\\nerror: forged\\\\u202e'
    """
    return text.translate(_SAFE)


def render(diag: Diagnostic, sources: SourceMap) -> str:
    """Format one diagnostic as `file:line:col: severity: message [code]` + caret. Text that came from
    the user (names, strings, paths) is `printable`: one diagnostic is exactly its lines."""
    out = [_render_one(diag.span, diag.severity, f"{printable(diag.message)} [{diag.code}]", sources)]
    for text, span in diag.notes:
        out.append(_render_one(span, "note", printable(text), sources) if span else f"    note: {printable(text)}")
    return "\n".join(out)


MAX_QUOTE = 160  # longer source lines are quoted as a window of this many characters


def _render_one(span: Span, severity: str, message: str, sources: SourceMap) -> str:
    if span is NO_SPAN or span.line == 0:
        return f"archc: {severity}: {message}"
    head = f"{printable(str(span))}: {severity}: {message}"
    src = sources.line(span.file, span.line)
    if src is None:
        return head
    # One column per character, as the lexer counts them: a tab is one space, and control
    # characters (a binary file, an escape sequence) print as '?' rather than reach the terminal.
    src = "".join("?" if ord(c) in _UNSAFE else c for c in src.expandtabs(1))
    start = max(span.col - 1, 0)
    end = span.end_col - 1 if span.end_line == span.line else len(src.rstrip())
    if len(src) > MAX_QUOTE:  # quote a window around the caret
        left = max(0, min(start - MAX_QUOTE // 4, len(src) - MAX_QUOTE))
        shift = (3 if left else 0) - left
        src = ("..." if left else "") + src[left:left + MAX_QUOTE] + ("..." if left + MAX_QUOTE < len(src) else "")
        start, end = start + shift, min(end + shift, MAX_QUOTE + (3 if left else 0))
    width = max(end - start, 1)
    caret = " " * start + "^" + "~" * (width - 1)
    return f"{head}\n    {src}\n    {caret}"
