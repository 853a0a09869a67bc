"""`archc lsp` through a real LSP session: `python -m archc lsp` runs as a subprocess and this file is its
client, speaking JSON-RPC with Content-Length framing over its stdin and stdout, as an editor does
(initialize, didOpen, publishDiagnostics, hover, definition, completion, documentSymbol, didChange,
shutdown, exit). Positions on the wire are 0-based UTF-16 units; archc's are 1-based characters."""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import pathlib
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from archc import cli
from archc.diagnostics import printable

from conftest import EXAMPLES, ROOT

pytest.importorskip("pygls")

TIMEOUT = 20


class Client:
    """A minimal LSP client: requests wait for their response; notifications queue up by method."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "archc", "lsp"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        self.responses: dict[int, queue.Queue[dict[str, Any]]] = {}
        self.notes: dict[str, queue.Queue[dict[str, Any]]] = {}
        self.lock = threading.Lock()
        self.next_id = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _box(self, table: dict[Any, queue.Queue[dict[str, Any]]], key: Any) -> queue.Queue[dict[str, Any]]:
        with self.lock:
            return table.setdefault(key, queue.Queue())

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
        while True:
            length = None
            while True:
                line = out.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            assert length is not None, "a message without Content-Length"
            msg = json.loads(out.read(length))
            if "id" in msg and "method" not in msg:
                self._box(self.responses, msg["id"]).put(msg)
            elif "method" in msg and "id" not in msg:
                self._box(self.notes, msg["method"]).put(msg["params"])
            else:  # a request from the server (e.g. client/registerCapability): answer it
                self._send({"jsonrpc": "2.0", "id": msg["id"], "result": None})

    def _send(self, msg: dict[str, Any]) -> None:
        body = json.dumps(msg).encode("utf-8")
        stdin = self.proc.stdin
        assert stdin is not None
        stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        stdin.flush()

    def request(self, method: str, params: Any) -> Any:
        self.next_id += 1
        self._send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        reply = self._box(self.responses, self.next_id).get(timeout=TIMEOUT)
        assert "error" not in reply, reply
        return reply["result"]

    def notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def diagnostics(self, uri: str) -> list[dict[str, Any]]:
        """The next publishDiagnostics for `uri` (those for other files are kept for their turn)."""
        mine = self._box(self.notes, f"publishDiagnostics:{uri}")
        if not mine.empty():
            return mine.get()["diagnostics"]
        box = self._box(self.notes, "textDocument/publishDiagnostics")
        while True:
            params = box.get(timeout=TIMEOUT)
            if params["uri"] == uri:
                return params["diagnostics"]
            self._box(self.notes, f"publishDiagnostics:{params['uri']}").put(params)

    def open(self, path: pathlib.Path, text: str | None = None) -> tuple[str, list[dict[str, Any]]]:
        uri = path.resolve().as_uri()
        self.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "arch", "version": 1,
            "text": path.read_text(encoding="utf-8") if text is None else text}})
        return uri, self.diagnostics(uri)

    def at(self, method: str, uri: str, line: int, character: int, **extra: Any) -> Any:
        return self.request(method, {"textDocument": {"uri": uri}, "position": {"line": line, "character": character},
                                     **extra})


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    c = Client()
    result = c.request("initialize", {"processId": None, "rootUri": ROOT.as_uri(), "capabilities": {}})
    caps = result["capabilities"]
    assert caps["hoverProvider"] and caps["definitionProvider"] and caps["documentSymbolProvider"]
    assert caps["completionProvider"] and caps["textDocumentSync"]
    assert result["serverInfo"]["name"] == "archc"
    c.notify("initialized", {})
    yield c
    if c.proc.poll() is None:
        c.request("shutdown", None)
        c.notify("exit", None)
        c.proc.wait(timeout=TIMEOUT)


def _position(uri_text: str, line: int, needle: str, offset: int = 0) -> tuple[int, int]:
    """0-based (line, character) of `needle` on 1-based `line` (ASCII lines: UTF-16 = characters)."""
    return line - 1, uri_text.split("\n")[line - 1].index(needle) + offset


# ---- diagnostics -------------------------------------------------------------------------------

_CLI_DIAG = re.compile(r"^(?:(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)|archc): error: (?P<msg>.*) \[(?P<code>[\w-]+)\]$")


def _check_output(path: pathlib.Path) -> list[tuple[Any, ...]]:
    """What `archc check PATH` prints: (file, line, col, message, code, caret width or None) per error."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        cli.main(["check", str(path)])
    lines = err.getvalue().split("\n")
    out = []
    for i, line in enumerate(lines):
        m = _CLI_DIAG.match(line)
        if m is None:
            continue
        width = None
        if m["file"] and i + 2 < len(lines) and lines[i + 2].lstrip().startswith("^"):
            width = len(lines[i + 2].strip())
        out.append((m["file"], int(m["line"] or 0), int(m["col"] or 0), m["msg"], m["code"], width))
    return out


def _lsp_output(path: pathlib.Path, diags: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    out = []
    for d in diags:
        start, end = d["range"]["start"], d["range"]["end"]
        msg = d["message"].split("\nnote: ")[0]
        m = re.match(r"^(.+?):(\d+):(\d+): (.*)$", msg, re.S)
        if m and not msg.startswith(str(path)):  # an error of an imported file, shown at its import or call
            out.append((m[1], int(m[2]), int(m[3]), printable(m[4]), d["code"], None))
        elif start == end == {"line": 0, "character": 0} and d.get("relatedInformation") is None \
                and not msg.startswith(str(path)):
            out.append((None, 0, 0, printable(msg), d["code"], None))
        else:
            width = end["character"] - start["character"] if start["line"] == end["line"] else None
            out.append((str(path), start["line"] + 1, start["character"] + 1, printable(msg), d["code"], width))
    return out


ERROR_FILES = sorted((ROOT / "tests" / "errors").glob("*.arch"))


def test_diagnostics_are_archc_checks(client: Client) -> None:
    """Every error file of the suite: the same errors as `archc check`, in order, at the same places, with
    the same messages, codes and caret widths (all errors of a file, imports followed)."""
    for path in ERROR_FILES:
        expected = _check_output(path)
        # (a file whose error needs command-line options checks clean: so must the server find it)
        uri, diags = client.open(path)
        got = _lsp_output(path, diags)
        for e, g in zip(expected, got):
            if e[0] is None or g[0] is None:  # an error without a place: compare message and code
                e, g = e[3:5], g[3:5]
            elif e[5] is None or g[5] is None or len(path.read_text().split("\n")[e[1] - 1]) > 150:
                e, g = e[:5], g[:5]  # a range over lines, or a quoted window of a long line
            assert g == e, path.name
        assert len(got) == len(expected), path.name
        assert all(d["source"] == "archc" and d["severity"] == 1 for d in diags)
        client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        assert client.diagnostics(uri) == []


def test_an_error_in_an_imported_file_is_shown_there_and_at_the_import(client: Client, tmp_path: pathlib.Path) -> None:
    (tmp_path / "parts.arch").write_text("block Head(n) {\n  in x: [b, c]\n  out linear(x, c -> n)\n}\n")
    main = tmp_path / "main.arch"
    main.write_text('import "parts.arch"\n\nentry block Net() {\n  in x: [b = 2, c = 8]\n'
                    '  head = Head(x, 4)\n  out head\n}\n')
    uri, diags = client.open(main)
    assert len(diags) == 1 and diags[0]["code"] == "structure"  # linear has parameters and needs a name
    assert diags[0]["range"]["start"] == {"line": 4, "character": 9}  # at the call of Head
    assert diags[0]["message"].startswith(f"{tmp_path / 'parts.arch'}:3:")
    parts = (tmp_path / "parts.arch").as_uri()
    other = client.diagnostics(parts)
    assert [(d["code"], d["range"]["start"]) for d in other] == [("structure", {"line": 2, "character": 6})]
    # the imported file fixed in the editor and saved: the importer is checked again, and is clean
    fixed = "block Head(n) {\n  in x: [b, c]\n  fc = linear(x, c -> n)\n  out fc\n}\n"
    own = ["arg"]  # checked alone, as `archc check parts.arch` does: its entry, Head, needs a value for n
    assert [d["code"] for d in client.open(tmp_path / "parts.arch")[1]] == own
    (tmp_path / "parts.arch").write_text(fixed)
    client.notify("textDocument/didChange", {"textDocument": {"uri": parts, "version": 2},
                                             "contentChanges": [{"text": fixed}]})
    assert [d["code"] for d in client.diagnostics(parts)] == own
    client.notify("textDocument/didSave", {"textDocument": {"uri": parts}})
    assert [d["code"] for d in client.diagnostics(parts)] == own and client.diagnostics(uri) == []
    for u in (uri, parts):
        client.notify("textDocument/didClose", {"textDocument": {"uri": u}})
        client.diagnostics(u)


# ---- hover, definition, completion, symbols on ResNet-50 -----------------------------------------------


@pytest.fixture(scope="module")
def resnet(client: Client) -> tuple[str, str]:
    path = EXAMPLES / "resnet50.arch"
    uri, diags = client.open(path)
    assert diags == []
    return uri, path.read_text()


def _hover(client: Client, uri: str, pos: tuple[int, int]) -> str:
    result = client.at("textDocument/hover", uri, *pos)
    assert result is not None and result["contents"]["kind"] == "markdown"
    return str(result["contents"]["value"])


def test_hover_on_a_step_shows_its_type_parameters_and_flops(client: Client, resnet: tuple[str, str]) -> None:
    uri, text = resnet
    shown = _hover(client, uri, _position(text, 21, "conv1"))  # `conv1: conv(chan -> 64, k = 7, ...)`
    assert "**conv1** = `conv` · layer `conv1`" in shown
    assert "[batch=1, chan=64, h=112, w=112]" in shown and "input: `[batch=1, chan=3, h=224, w=224]`" in shown
    assert "`conv1.weight` [64, 3, 7, 7]" in shown
    assert "parameters: **9,408** · FLOPs: **236,027,904**" in shown  # = archc flops' conv1 row


def test_the_readme_shows_what_hover_answers(client: Client, resnet: tuple[str, str]) -> None:
    """README.md's hover transcript (conv1 of ResNet-50, as the editor shows it) is today's answer."""
    uri, _ = resnet
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quoted = readme.split("which the editor shows as:\n\n", 1)[1].split("\n\n", 1)[0]

    def lines(text: str) -> list[str]:
        return [x.strip("` ") for x in text.split("\n") if x.strip("` ") and not x.startswith("```")]

    assert lines(re.sub(r"^> ?", "", quoted, flags=re.M)) == lines(_hover(client, uri, (20, 4)))
    assert '"position": {"line": 20, "character": 4}' in readme


def test_hover_on_a_block_call_sums_its_instance(client: Client, resnet: tuple[str, str]) -> None:
    uri, text = resnet
    shown = _hover(client, uri, _position(text, 27, "Bottleneck"))
    assert "block `Bottleneck(planes, stride = 1, groups = 1, width_per_group = 64)`" in shown
    assert "`layer1.0`(planes=64, stride=1, groups=1, width_per_group=64), first of 16" in shown
    assert "parameters: **75,008**" in shown  # torchvision's layer1.0: 4,096 + 36,864 + 16,384 + 16,384 + bn
    assert "[batch=1, chan=256, h=56, w=56]" in shown
    stage = _hover(client, uri, _position(text, 25, 'layer{s}'))  # a seq step repeated by a loop
    assert "`seq` of 3 steps · layer `layer1`, first of 4" in stage and "parameters: **215,808**" in stage


def test_hover_on_a_value_an_axis_and_a_size(client: Client, resnet: tuple[str, str]) -> None:
    uri, text = resnet
    assert "[batch=1, chan=3, h=224, w=224]" in _hover(client, uri, _position(text, 19, "x"))  # `in x: ...`
    axis = _hover(client, uri, _position(text, 21, "chan"))  # `chan -> 64` of conv1
    assert "axis **chan**" in axis and "input: chan = `3`" in axis and "output: chan = `64`" in axis
    assert _hover(client, uri, _position(text, 37, "H")) == "size **H** = `224`"
    assert client.at("textDocument/hover", uri, *_position(text, 1, "ResNet")) is None  # a comment


def test_definition_of_blocks_imports_and_sizes(client: Client, resnet: tuple[str, str]) -> None:
    uri, text = resnet
    here = client.at("textDocument/definition", uri, *_position(text, 38, "ResNet"))
    assert here["uri"] == uri and here["range"]["start"] == {"line": 17, "character": 6}
    std = client.at("textDocument/definition", uri, *_position(text, 27, "Bottleneck"))
    vision = (ROOT / "dsl" / "stdlib" / "vision.arch")
    assert pathlib.Path(std["uri"].removeprefix("file://")).resolve() == vision.resolve()
    line = vision.read_text().split("\n")[std["range"]["start"]["line"]]
    assert line.startswith("block Bottleneck(")
    imp = client.at("textDocument/definition", uri, *_position(text, 11, "vision"))
    assert imp["uri"] == std["uri"] and imp["range"]["start"] == {"line": 0, "character": 0}
    size = client.at("textDocument/definition", uri, *_position(text, 37, "H"))
    assert size["uri"] == uri and size["range"]["start"]["line"] == 12


def test_completion_offers_keywords_axes_ops_and_blocks(client: Client, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "c.arch"
    text = ("block Small(width) {\n  in x: [b, chan, h, w]\n  out relu(x)\n}\n\nentry block Net() {\n"
            "  in x: [batch = 1, chan = 3, h = 8, w = 8]\n  y = conv(x, chan -> 8, k = 3)\n  out y\n}\n")
    uri, diags = client.open(path, text)
    assert diags == []
    # typing `conv(x, chan -> 8, k = 3, ` on line 8 (the file does not parse meanwhile): keyword arguments
    # of conv first; the names in scope come from the last version that parsed
    edited = text.replace("k = 3)\n", "k = 3, \n")
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                             "contentChanges": [{"text": edited}]})
    assert [d["code"] for d in client.diagnostics(uri)] == ["syntax"]
    pos = _position(edited, 8, "k = 3, ", len("k = 3, "))
    result = client.at("textDocument/completion", uri, *pos, context={"triggerKind": 1})
    items = result["items"]
    labels = [i["label"] for i in items]
    keywords = [i["label"] for i in items if i["kind"] == 10]  # Property
    assert {"stride", "pad", "groups", "bias", "dilation"} <= set(keywords) and labels[:len(keywords)] == keywords
    assert next(i for i in items if i["label"] == "stride")["insertText"] == "stride = "
    axes = {i["label"] for i in items if i["kind"] == 20}  # EnumMember
    assert {"batch", "chan", "h", "w"} <= axes
    assert {"conv", "linear", "relu", "rearrange"} <= {i["label"] for i in items if i["kind"] == 3}  # Function
    assert "Small" in {i["label"] for i in items if i["kind"] == 7}  # Class
    assert "y" in {i["label"] for i in items if i["kind"] == 6}  # Variable: values in scope
    # inside a block call: its parameters
    called = text.replace("  out y\n}", "  s = Small(y, )\n  out s\n}")
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 3},
                                             "contentChanges": [{"text": called}]})
    client.diagnostics(uri)
    result = client.at("textDocument/completion", uri, *_position(called, 9, "(y, ", 4))
    assert result["items"][0]["label"] == "width" and result["items"][0]["kind"] == 10
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    client.diagnostics(uri)


def test_document_symbols_are_blocks_and_steps(client: Client, resnet: tuple[str, str]) -> None:
    uri, _ = resnet
    syms = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    blocks = {s["name"]: s for s in syms if s["kind"] == 5}  # Class
    assert list(blocks) == ["ResNet", "ResNet50", "ResNet18"]
    assert {s["name"] for s in syms if s["kind"] == 14} == {"batch", "H", "W"}  # Constant
    out = next(c for c in blocks["ResNet"]["children"] if c["name"] == "out")
    steps = [c["name"] for c in out["children"]]
    assert steps[:4] == ["conv1", "bn1", "relu", "maxpool"] and steps[-2:] == ["avgpool", "fc"]
    conv1 = out["children"][0]
    assert conv1["selectionRange"]["start"]["line"] == 20 and conv1["detail"] == "[batch=1, chan=64, h=112, w=112]"


# ---- editing ----------------------------------------------------------------------------------------


def test_an_edit_that_breaks_the_file_and_one_that_fixes_it(client: Client, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "edit.arch"
    good = "block B() {\n  in x: [n = 2, c = 8]\n  fc = linear(x, c -> 4)\n  out fc\n}\n"
    uri, diags = client.open(path, good)
    assert diags == []
    # an incremental change: `c -> 4` becomes `d -> 4` (no axis d)
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [
        {"range": {"start": {"line": 2, "character": 17}, "end": {"line": 2, "character": 18}}, "text": "d"}]})
    diags = client.diagnostics(uri)
    path.write_text(good.replace("c -> 4", "d -> 4"))
    assert _lsp_output(path, diags) == _check_output(path) and diags[0]["code"] == "axis"
    # a syntax error is reported at its place; symbols still come from the last version that parsed
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 3}, "contentChanges": [
        {"text": good.replace("out fc", "out fc +")}]})
    diags = client.diagnostics(uri)
    assert [d["code"] for d in diags] == ["syntax"] and diags[0]["range"]["start"]["line"] == 4
    syms = client.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    assert [s["name"] for s in syms] == ["B"]
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 4},
                                             "contentChanges": [{"text": good}]})
    assert client.diagnostics(uri) == []
    assert "[n=2, c=4]" in _hover(client, uri, (2, 3))


def test_positions_are_utf16_on_the_wire(client: Client, tmp_path: pathlib.Path) -> None:
    """A character outside the BMP is two UTF-16 units: the server counts columns after it as the client does."""
    def utf16(line: str, needle: str) -> int:
        return len(line[:line.index(needle)].encode("utf-16-le")) // 2

    path = tmp_path / "u.arch"
    text = 'block B() {\n  in x: [n = 2, c = 8]\n  w = ["\U0001F600", nope]\n  out x\n}\n'
    uri, diags = client.open(path, text)
    line = text.split("\n")[2]
    assert [(d["code"], d["range"]["start"]) for d in diags] == [("name", {"line": 2,
                                                                            "character": utf16(line, "nope")})]
    assert utf16(line, "nope") == line.index("nope") + 1
    assert diags[0]["range"]["end"]["character"] == utf16(line, "nope") + 4
    fixed = text.replace("nope", "relu(x)")
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                             "contentChanges": [{"text": fixed}]})
    assert client.diagnostics(uri) == []
    line = fixed.split("\n")[2]
    shown = _hover(client, uri, (2, utf16(line, "relu") + 3))  # on its last letter, not on the "("
    assert shown.startswith("`relu`") and "[n=2, c=8]" in shown
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    client.diagnostics(uri)


def test_shutdown_and_exit() -> None:
    c = Client()
    c.request("initialize", {"processId": None, "rootUri": None, "capabilities": {}})
    c.notify("initialized", {})
    assert c.request("shutdown", None) is None
    c.notify("exit", None)
    assert c.proc.wait(timeout=TIMEOUT) == 0


def test_without_pygls_archc_lsp_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real = builtins.__import__

    def no_pygls(name: str, *args: Any, **kw: Any) -> Any:
        if name == "pygls" or name.startswith("pygls."):
            raise ImportError(f"No module named '{name}'")
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_pygls)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert cli.main(["lsp"]) == 1
    assert err.getvalue() == "archc: error: archc lsp needs pygls (pip install 'archc[lsp]') [io]\n"


def test_the_analysis_survives_mutated_files(tmp_path: pathlib.Path) -> None:
    """An editor sends whatever is in the buffer: 400 mutants of the repository's .arch files (the fuzz
    suite's mutator) through study, hover, definition, completion and symbols at random positions. None
    may raise; the diagnostics are printable."""
    import random

    from archc import lsp_index as X

    from test_fuzz import mutant, sources

    texts = [p.read_text(encoding="utf-8") for p in sources()]
    for seed in range(400):
        text, edits, _ = mutant(texts[seed % len(texts)], seed)
        path = tmp_path / f"m{seed % 7}.arch"
        path.write_text(text, encoding="utf-8")
        facts = X.study(str(path), text)
        assert all(printable(d.message) == d.message for d in facts.diagnostics), (seed, edits)
        rng, lines = random.Random(seed), text.splitlines() or [""]
        for _ in range(4):
            line = rng.randrange(len(lines)) + 1
            col = rng.randrange(len(lines[line - 1]) + 2) + 1
            X.hover(facts, line, col)
            X.definition(facts, line, col)
            X.complete(facts, facts, line, col)
        X.symbols(facts)


def test_a_block_held_by_a_parameter_hovers_and_leads_to_the_block() -> None:
    """`unit = Basic` and `unit(planes)` (docs/language.md's blocks as values): hover names the block held,
    and definition goes to that block, not to the parameter."""
    from archc import lsp_index as X

    text = (ROOT / "tests" / "data" / "values_and_branches.arch").read_text(encoding="utf-8")
    path = str(ROOT / "tests" / "data" / "values_and_branches.arch")
    facts = X.study(path, text)
    lines = text.splitlines()
    row = next(i for i, line in enumerate(lines, 1) if "y = unit(y, d)" in line)
    col = lines[row - 1].index("unit(") + 2
    assert "`unit`, holding block `Unit(planes, deep = true)`" in (X.hover(facts, row, col) or "")
    where = X.definition(facts, row, col)
    unit_line = next(i for i, line in enumerate(lines, 1) if line.startswith("block Unit("))
    assert where is not None and where[1] is not None and where[1].line == unit_line
    row = next(i for i, line in enumerate(lines, 1) if line.startswith("entry block Net("))
    col = lines[row - 1].index("= Unit") + 3
    held = "**Unit** = block `Unit(planes, deep = true)`"
    assert X.hover(facts, row, col) == f"{held} · values_and_branches.arch:{unit_line}"
