"""`archc lsp`: a language server for .arch files over stdio, built on pygls (`pip install "archc[lsp]"`).

What it answers comes from `archc.lsp_index`, which runs archc's own loader and elaborator; this
module speaks the protocol: it keeps the open documents (pygls' workspace), converts positions
between the client's units (UTF-16 by default) and archc's 1-based character columns, and maps
files to URIs (standard-library blocks to their installed files).

  - diagnostics on open, change and save: `archc check`'s, with the same messages, codes and
    ranges; an error inside an imported file is published for that file and also shown in the
    document at the call or import that leads to it;
  - hover: a step's or value's type with named axes and sizes, a call's layer, state, parameters and
    FLOPs, an axis's sizes around a call, a block's signature and totals, a size's value;
  - go to definition: blocks (also in the standard library), imports, sizes and names in a block;
  - completion: keyword arguments of the op or block being called, axis names and values in scope,
    sizes, blocks and op names (ops/registry.py);
  - document symbols: imports, sizes, blocks with their inputs, state and steps.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path
from pygls.workspace.position_codec import PositionCodec, ServerTextPosition, ServerTextRange

from archc import lsp_index as X
from archc.diagnostics import Diagnostic, Span

VERSION = "0.1.0"

_KINDS = {"keyword": T.CompletionItemKind.Property, "op": T.CompletionItemKind.Function,
          "block": T.CompletionItemKind.Class, "axis": T.CompletionItemKind.EnumMember,
          "value": T.CompletionItemKind.Variable, "size": T.CompletionItemKind.Constant,
          "module": T.CompletionItemKind.Module}
_SYMBOLS = {"block": T.SymbolKind.Class, "step": T.SymbolKind.Function, "value": T.SymbolKind.Variable,
            "input": T.SymbolKind.Variable, "state": T.SymbolKind.Field, "size": T.SymbolKind.Constant,
            "import": T.SymbolKind.Module}


class ArchServer(LanguageServer):
    """The server's state: the facts of each open document, and its last version that parsed."""

    def __init__(self) -> None:
        super().__init__("archc", VERSION, text_document_sync_kind=T.TextDocumentSyncKind.Incremental)
        self.facts: dict[str, X.Facts] = {}
        self.good: dict[str, X.Facts] = {}
        self.published: dict[str, set[str]] = {}  # document -> the other files it published errors for

    # ---- positions -----------------------------------------------------------------------------

    def codec(self) -> PositionCodec:
        return self.workspace.position_codec

    def position(self, uri: str, pos: T.Position) -> tuple[int, int]:
        """A client position as archc's (1-based line, 1-based character column)."""
        doc = self.workspace.get_text_document(uri)
        p = self.codec().position_from_client_units(doc.source.split("\n"), pos)
        return p.line + 1, p.character + 1

    def range(self, span: Span | None, text: str | None) -> T.Range:
        if span is None or span.line < 1 or text is None:
            return T.Range(T.Position(0, 0), T.Position(0, 0))
        r = ServerTextRange(ServerTextPosition(span.line - 1, span.col - 1),
                            ServerTextPosition(span.end_line - 1, span.end_col - 1))
        return self.codec().range_to_client_units(text.split("\n"), r)

    def text_of(self, path: str, facts: X.Facts) -> str | None:
        text = facts.sources.texts.get(path)
        if text is None and os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, ValueError):
                return None
        return text

    def location(self, path: str, span: Span | None, facts: X.Facts) -> T.Location:
        real = X.stdlib_path(path) or path
        text = facts.sources.texts.get(path) or self.text_of(real, facts)
        return T.Location(uri=uri_of(real), range=self.range(span, text))

    # ---- documents --------------------------------------------------------------------------------

    def refresh(self, uri: str) -> None:
        doc = self.workspace.get_text_document(uri)
        path = path_of(uri)
        facts = X.study(path, doc.source)
        self.facts[uri] = facts
        if facts.program is not None:
            self.good[uri] = facts
        self.publish(uri, facts, doc.version)

    def publish(self, uri: str, facts: X.Facts, version: int | None) -> None:
        mine: list[T.Diagnostic] = []
        others: dict[str, list[T.Diagnostic]] = {}
        root = facts.path
        for d in facts.diagnostics:
            if d.span.file == root or d.span.line < 1:
                mine.append(self.diagnostic(d, facts, self.range(d.span if d.span.file == root else None, facts.text)))
                continue
            # an error in another file: there, and here at the call or import that leads to it
            where = next((s for _, s in d.notes if s is not None and s.file == root), None) or \
                self.import_leading_to(facts, d.span.file)
            text = self.text_of(d.span.file, facts)
            if not d.span.file.startswith("<"):
                others.setdefault(uri_of(d.span.file), []).append(self.diagnostic(d, facts, self.range(d.span, text)))
            here = self.diagnostic(d, facts, self.range(where, facts.text))
            here.message = f"{d.span}: {d.message}"
            mine.append(here)
        self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=uri, diagnostics=mine, version=version))
        for other in self.published.get(uri, set()) - set(others):
            if other not in self.facts:  # an open document publishes its own
                self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=other, diagnostics=[]))
        for other, ds in others.items():
            if other not in self.facts:
                self.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=other, diagnostics=ds))
        self.published[uri] = set(others)

    def import_leading_to(self, facts: X.Facts, file: str) -> Span | None:
        module = facts.module
        if module is None:
            return None
        for imp in module.imports:
            target = X.stdlib_path(f"<{imp.path}>") if not imp.is_file else X._import_target(facts, imp)
            if target is not None and (os.path.normpath(file) == target or X.stdlib_path(file) == target):
                return imp.span
        return module.imports[0].span if module.imports else None

    def diagnostic(self, d: Diagnostic, facts: X.Facts, where: T.Range) -> T.Diagnostic:
        related = [T.DiagnosticRelatedInformation(self.location(s.file, s, facts), text)
                   for text, s in d.notes if s is not None and s.line >= 1]
        loose = [text for text, s in d.notes if s is None or s.line < 1]
        severity = {"error": T.DiagnosticSeverity.Error, "warning": T.DiagnosticSeverity.Warning}.get(
            d.severity, T.DiagnosticSeverity.Information)
        return T.Diagnostic(range=where, message="\n".join([d.message] + [f"note: {t}" for t in loose]),
                            severity=severity, code=d.code, source="archc", related_information=related or None)


def path_of(uri: str) -> str:
    path = to_fs_path(uri)
    return path if path is not None else uri


def uri_of(path: str) -> str:
    return from_fs_path(os.path.abspath(path)) or path


def make_server() -> ArchServer:
    """The server with its features registered (`serve` runs it over stdio)."""
    server = ArchServer()

    def guarded(fn: Any) -> Any:
        """A failing request answers nothing and is logged; the server keeps running."""
        def run(ls: ArchServer, params: Any) -> Any:
            try:
                return fn(ls, params)
            except Exception as e:
                if os.environ.get("ARCHC_DEBUG"):
                    raise
                ls.window_log_message(T.LogMessageParams(T.MessageType.Error,
                                                         f"archc: internal error: {type(e).__name__}: {e}"))
                return None
        run.__name__ = fn.__name__
        return run

    @server.feature(T.TEXT_DOCUMENT_DID_OPEN)
    @guarded
    def did_open(ls: ArchServer, params: T.DidOpenTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
    @guarded
    def did_change(ls: ArchServer, params: T.DidChangeTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(T.TEXT_DOCUMENT_DID_SAVE)
    @guarded
    def did_save(ls: ArchServer, params: T.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.refresh(uri)
        saved = os.path.normpath(path_of(uri))
        for other, facts in list(ls.facts.items()):  # the open documents that import it read it again
            files = facts.program.files if facts.program is not None else facts.sources.texts
            if other != uri and any(os.path.normpath(f) == saved for f in files):
                ls.refresh(other)

    @server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
    @guarded
    def did_close(ls: ArchServer, params: T.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.facts.pop(uri, None)
        ls.good.pop(uri, None)
        for other in ls.published.pop(uri, set()) | {uri}:
            ls.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=other, diagnostics=[]))

    @server.feature(T.TEXT_DOCUMENT_HOVER)
    @guarded
    def hover(ls: ArchServer, params: T.HoverParams) -> T.Hover | None:
        uri = params.text_document.uri
        facts = ls.facts.get(uri)
        if facts is None:
            return None
        line, col = ls.position(uri, params.position)
        text = X.hover(facts, line, col)
        if text is None:
            return None
        return T.Hover(contents=T.MarkupContent(kind=T.MarkupKind.Markdown, value=text))

    @server.feature(T.TEXT_DOCUMENT_DEFINITION)
    @guarded
    def definition(ls: ArchServer, params: T.DefinitionParams) -> T.Location | None:
        uri = params.text_document.uri
        facts = ls.facts.get(uri)
        if facts is None:
            return None
        line, col = ls.position(uri, params.position)
        found = X.definition(facts, line, col)
        if found is None:
            return None
        path, span = found
        return ls.location(span.file if span is not None else path, span, facts)

    @server.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=["(", ",", "[", " "]))
    @guarded
    def completion(ls: ArchServer, params: T.CompletionParams) -> T.CompletionList | None:
        uri = params.text_document.uri
        doc = ls.workspace.get_text_document(uri)
        facts = ls.facts.get(uri)
        if facts is None or facts.text != doc.source:
            facts = X.study(path_of(uri), doc.source)
        line, col = ls.position(uri, params.position)
        items = []
        for rank, c in enumerate(X.complete(facts, ls.good.get(uri), line, col)):
            items.append(T.CompletionItem(label=c.label, kind=_KINDS[c.kind], detail=c.detail or None,
                                          insert_text=c.insert, sort_text=f"{rank:04d}"))
        return T.CompletionList(is_incomplete=False, items=items)

    @server.feature(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @guarded
    def document_symbol(ls: ArchServer, params: T.DocumentSymbolParams) -> list[T.DocumentSymbol] | None:
        uri = params.text_document.uri
        facts = ls.facts.get(uri)
        facts = facts if facts is not None and facts.program is not None else ls.good.get(uri)
        if facts is None:
            return []

        def convert(s: X.Symbol) -> T.DocumentSymbol:
            return T.DocumentSymbol(name=s.name, kind=_SYMBOLS[s.kind], range=ls.range(s.span, facts.text),
                                    selection_range=ls.range(s.name_span, facts.text), detail=s.detail or None,
                                    children=[convert(c) for c in s.children] or None)

        return [convert(s) for s in X.symbols(facts)]

    return server


def serve() -> int:
    """Run the server on stdin/stdout until the client says exit."""
    make_server().start_io(sys.stdin.buffer, sys.stdout.buffer)
    return 0
