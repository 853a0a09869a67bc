"""Reads a .arch file and everything it imports into a `Program`.

`import "other.arch"` is resolved relative to the importing file;
`import std.nn` names a file of the standard library (dsl/stdlib/nn.arch).
Without `as`, the imported file's blocks join the importer's namespace; with
`import std.nn as nn` they are reached as `nn.Block`.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import stat

from archc.diagnostics import ArchError, DiagnosticBag, SourceMap, Span
from archc.grammar import ast
from archc.grammar.parser import parse
from archc.ir.limits import current as current_limits
from archc.ir.limits import note as limit_note
from archc.shapes.types import DTYPES


@dataclasses.dataclass
class File:
    path: str
    module: ast.Module
    namespace: dict[str, tuple[ast.Block, File]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Program:
    root: File
    files: dict[str, File]
    sizes: dict[str, tuple[ast.SizeDecl, File]]
    sources: SourceMap
    dtype: str = "f32"  # the root file's `dtype` declaration: the floating-point dtype of the model

    def entry_block(self, name: str | None) -> ast.Block:
        """The block to elaborate: `name`, else the one marked `entry`, else the last one."""
        blocks = self.root.module.blocks
        if name is not None:
            found = self.root.namespace.get(name)
            if found is None:
                from archc.diagnostics import did_you_mean
                bag = DiagnosticBag()
                bag.error("entry", f"no block named '{name}'{did_you_mean(name, self.root.namespace)}")
                bag.raise_if_errors()
            assert found is not None
            return found[0]
        marked = [b for b in blocks if b.entry]
        if len(marked) > 1:
            bag = DiagnosticBag()
            bag.error("entry", "more than one block is marked `entry`", marked[1].span,
                      [("the first is here", marked[0].span)])
            bag.raise_if_errors()
        if marked:
            return marked[0]
        if not blocks:
            raise ArchError([DiagnosticBag().error(
                "entry", "the file defines no block", Span(self.root.path, 1, 1, 1, 1))])
        return blocks[-1]


class SourceError(Exception):
    """A file that is not .arch text: its contents are never quoted. `limit`: the limit it exceeds."""

    def __init__(self, message: str, limit: str | None = None):
        super().__init__(message)
        self.limit = limit


def read_source(path: str) -> str:
    """The text of a .arch file: a regular file of at most `--limit bytes` (ir/limits.py) of UTF-8 text without NUL
    bytes (a binary file; /proc/self/environ). Other control characters reach the lexer, which
    reports them at their place (quoted as '?'). Opened without blocking and checked on the open descriptor, so a FIFO,
    a device (/dev/zero) or a directory is refused rather than read forever, and a file swapped
    in after a check is still the one checked. Raises SourceError, OSError or UnicodeDecodeError."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SourceError("is not a regular file")
        chunks, size, limit = [], 0, current_limits().bytes
        while size <= limit:  # st_size lies for /proc files: count what is read
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise SourceError(f"is larger than {limit:,} bytes", "bytes")
    finally:
        os.close(fd)
    text = b"".join(chunks).decode("utf-8")
    if "\0" in text:
        raise SourceError("is not .arch text (it contains NUL bytes)")
    return text


def _stdlib_text(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "std" or len(parts) != 2:
        return None
    res = importlib.resources.files("archc.dsl.stdlib").joinpath(parts[1] + ".arch")
    return res.read_text() if res.is_file() else None


def stdlib_modules() -> list[str]:
    root = importlib.resources.files("archc.dsl.stdlib")
    return sorted("std." + p.name[:-5] for p in root.iterdir() if p.name.endswith(".arch"))


def load(path: str, text: str | None = None, sources: SourceMap | None = None) -> Program:
    """Parse `path` (or `text` under that name) and its imports. Raises ArchError.

    `sources` receives the text of every file read, also when loading fails, so that
    syntax and import errors can quote their line."""
    sources = SourceMap() if sources is None else sources
    files: dict[str, File] = {}
    bag = DiagnosticBag()

    def read(p: str, span: Span | None) -> str | None:
        where = span or Span(p, 0, 0, 0, 0)
        code = "io" if span is None else "import"
        try:
            text = read_source(p)
        except SourceError as e:
            bag.error(code, f"{p} {e}", where, [(limit_note(e.limit), None)] if e.limit else [])
            return None
        except (OSError, ValueError) as e:  # ValueError: a NUL in the path; UnicodeDecodeError is one
            what = "is not UTF-8 text" if isinstance(e, UnicodeDecodeError) else \
                "is not a valid file name" if isinstance(e, ValueError) else \
                f"cannot be read: {e.strerror or e}"
            bag.error(code, f"{p} {what}", where)
            return None
        return text

    def visit(key: str, text: str, stack: tuple[str, ...]) -> File | None:
        if key in files:
            return files[key]
        sources.add(key, text)
        try:
            module = parse(text, key)
        except ArchError as e:
            bag.items.extend(e.diagnostics)
            return None
        f = File(key, module)
        files[key] = f
        for b in module.blocks:
            if b.name in f.namespace:
                bag.error("redefined", f"block '{b.name}' is defined twice", b.name_span,
                          [("first defined here", f.namespace[b.name][0].name_span)])
            f.namespace[b.name] = (b, f)
        for imp in module.imports:
            if imp.is_file:
                base = os.path.dirname(key) if not key.startswith("<") else "."
                target = os.path.normpath(os.path.join(base, imp.path))
                if not target.endswith(".arch"):  # a shared model cannot make archc quote other files
                    bag.error("import", f"an import names a .arch file, not '{imp.path}'", imp.span)
                    continue
                if target in stack:
                    bag.error("import", f"'{imp.path}' imports itself (through {' -> '.join(stack)})", imp.span)
                    continue
                sub_text = sources.texts.get(target) if target in files else read(target, imp.span)
                if sub_text is None:
                    continue
            else:
                target = "<" + imp.path + ">"
                sub_text = _stdlib_text(imp.path)
                if sub_text is None:
                    from archc.diagnostics import did_you_mean
                    bag.error("import", f"no library named '{imp.path}'"
                              f"{did_you_mean(imp.path, stdlib_modules())}", imp.span)
                    continue
            sub = visit(target, sub_text, stack + (key,))
            if sub is None:
                continue
            own = {b.name: (b, sub) for b in sub.module.blocks}
            for name, val in own.items():
                qual = f"{imp.alias}.{name}" if imp.alias else name
                if qual in f.namespace and f.namespace[qual][1] is not f and f.namespace[qual][0] is not val[0]:
                    bag.error("redefined", f"block '{qual}' is imported twice", imp.span)
                if qual not in f.namespace:  # a file's own blocks win over imported ones
                    f.namespace[qual] = val
        return f

    if text is None:
        text = read(path, None)
        if text is None:
            bag.raise_if_errors()
    elif len(text.encode("utf-8", "replace")) > current_limits().bytes:
        bag.error("io", f"{path} is larger than {current_limits().bytes:,} bytes", Span(path, 0, 0, 0, 0),
                  [(limit_note("bytes"), None)])
        bag.raise_if_errors()
    assert text is not None
    root = visit(path, text, ())
    bag.raise_if_errors()
    assert root is not None
    sizes: dict[str, tuple[ast.SizeDecl, File]] = {}
    for f in files.values():
        for s in f.module.sizes:
            if s.name in sizes and sizes[s.name][1] is f:
                bag.error("redefined", f"size '{s.name}' is declared twice", s.span,
                          [("first declared here", sizes[s.name][0].span)])
            if s.name not in sizes or f is root:
                sizes[s.name] = (s, f)
    dtype = "f32"
    for i, d in enumerate(root.module.dtypes):
        if i:
            bag.error("redefined", "the file declares its dtype twice", d.span,
                      [("first declared here", root.module.dtypes[0].span)])
        elif d.name not in DTYPES or not DTYPES[d.name].is_float:
            from archc.diagnostics import did_you_mean
            floats = [n for n, t in DTYPES.items() if t.is_float]
            bag.error("type", f"a file's dtype is a floating-point one ({', '.join(floats)}), not "
                      f"'{d.name}'{did_you_mean(d.name, floats)}", d.name_span)
        else:
            dtype = d.name
    bag.raise_if_errors()
    return Program(root, files, sizes, sources, dtype)
