"""What the language server knows about one .arch document, without the protocol (archc/lsp.py speaks it).

`study(path, text)` loads the text as `archc check` does (the loader, imports followed, then
`api.compile_program` with derived constraints), so its `diagnostics` are check's, every one of the
file. It elaborates the file once more with a recorder: an `Elaborator` that notes the value of every
expression it evaluates and each block's names as its first instance left them, which is what hover,
definitions and completion read. Positions here are archc's: 1-based lines and columns counted in
characters (archc/lsp.py converts to and from the client's units).

>>> f = study("m.arch", 'block B() { in x: [n = 2, c = 8]\\n fc = linear(x, c -> 4)\\n out fc }')
>>> f.diagnostics, hover(f, 2, 2).splitlines()[0]
([], '**fc** = `linear` · layer `fc`')
>>> [s.name for s in symbols(f)[0].children]
['x', 'fc']
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import os
import re
from collections.abc import Iterator
from typing import Any

from archc import api
from archc.diagnostics import ArchError, Diagnostic, SourceMap, Span
from archc.dsl.calls import SIZE_FUNCTIONS
from archc.dsl.elaborate import TV, Abort, Elaborator, Frame, ListV, Poison
from archc.dsl.loader import File, Program, stdlib_modules
from archc.dsl.loader import load as load_program
from archc.dsl.values import BlockRef
from archc.grammar import ast
from archc.grammar.format import expr as format_expr
from archc.ir import limits
from archc.ir.graph import Graph, Node
from archc.ops.registry import BY_NAME, OpDef, ParamDef
from archc.shapes import sizes as S
from archc.shapes.types import DTYPES, TensorType, TupleType


class _Recorder(Elaborator):
    """The elaborator, noting what the editor asks about: each expression's value and each call's result
    (the first time it is evaluated: the first instance of a block), and each block's names."""

    def __init__(self, program: Program):
        self.seen: dict[Span, Any] = {}
        self.calls: dict[Span, Any] = {}
        self.envs: dict[int, dict[str, Any]] = {}  # id(ast.Block) -> its first instance's names
        super().__init__(program)

    def ev(self, e: ast.Expr, frame: Frame, path: str | None = None, list_path: str | None = None) -> Any:
        v = super().ev(e, frame, path, list_path)
        self.seen.setdefault(e.span, v)
        return v

    def _call(self, call: ast.Call, frame: Frame, implicit: Any, path: str | None, seq_step: bool = False) -> Any:
        v = super()._call(call, frame, implicit, path, seq_step)
        self.calls.setdefault(call.span, v)
        return v

    def _exec_block(self, frame: Frame, inputs: list[Any] | None, call_span: Span) -> None:
        try:
            super()._exec_block(frame, inputs, call_span)
        finally:
            self.envs.setdefault(id(frame.block), dict(frame.env))


@dataclasses.dataclass
class Facts:
    """One version of a document: check's diagnostics and what the recorder saw."""

    path: str
    text: str
    diagnostics: list[Diagnostic]
    sources: SourceMap
    program: Program | None = None  # None when the file (or an import) does not parse
    graph: Graph | None = None  # the recorder's graph: partial when elaboration failed
    seen: dict[Span, Any] = dataclasses.field(default_factory=dict)
    calls: dict[Span, Any] = dataclasses.field(default_factory=dict)
    envs: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    costs: dict[int, tuple[Any, Any, Any]] = dataclasses.field(default_factory=dict)  # node -> params, FLOPs, full

    @property
    def module(self) -> ast.Module | None:
        return self.program.root.module if self.program is not None else None

    @property
    def values(self) -> dict[str, int]:
        return {k: v for k, v in self.graph.sizes.items() if v is not None} if self.graph is not None else {}


def study(path: str, text: str) -> Facts:
    """Check `text` (the document `path`) as `archc check` does and record what hover and completion need."""
    sources = SourceMap()
    with api.rare_gc(), limits.limits():
        try:
            program = load_program(path, text, sources=sources)
        except ArchError as e:
            return Facts(path, text, _unique(e.diagnostics), sources)
        except RecursionError:
            return Facts(path, text, [_too_deep(path)], sources)
        facts = Facts(path, text, [], sources, program)
        try:
            api.compile_program(program, derive=True)
        except ArchError as e:
            facts.diagnostics = _unique(e.diagnostics)
        except RecursionError:
            facts.diagnostics = [_too_deep(path)]
        _record(facts, program)
    return facts


def _unique(ds: list[Diagnostic]) -> list[Diagnostic]:
    return list(dict.fromkeys(ds))  # as the CLI prints them: a loop repeats an error at one place


def _too_deep(path: str) -> Diagnostic:
    return Diagnostic("error", "structure", f"{path} nests too deeply to compile")


def _record(facts: Facts, program: Program) -> None:
    rec = _Recorder(program)
    try:
        rec.run(None)
    except (ArchError, Abort, RecursionError):
        pass  # what was recorded up to the failure still answers questions
    facts.graph, facts.seen, facts.calls, facts.envs = rec.graph, rec.seen, rec.calls, rec.envs
    from archc.analysis.report import analyze
    try:
        rows = analyze(rec.graph).rows
    except Exception:  # a graph cut short by an error: hover goes without costs
        return
    facts.costs = {r.node.id: (r.params, r.flops, r.full) for r in rows}


# ---- positions --------------------------------------------------------------------------


def contains(span: Span, line: int, col: int) -> bool:
    return (span.line, span.col) <= (line, col) < (span.end_line, span.end_col)


def chain(module: ast.Module, line: int, col: int) -> list[Any]:
    """The AST nodes whose span holds the position, outermost first."""
    out: list[Any] = []

    def visit(x: Any) -> None:
        if isinstance(x, tuple):
            for item in x:
                visit(item)
            return
        if not dataclasses.is_dataclass(x) or isinstance(x, (Span, type)):
            return
        span = getattr(x, "span", None)
        if span is not None and not isinstance(x, ast.Module) and not contains(span, line, col):
            return
        out.append(x)
        for f in dataclasses.fields(x):
            visit(getattr(x, f.name))

    visit(module)
    return out


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def word_at(text: str, line: int, col: int) -> str | None:
    """The identifier under (or just before) the position."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return None
    for m in _WORD.finditer(lines[line - 1]):
        if m.start() < col <= m.end() + 1:  # on one of its characters, or just after it (a cursor)
            return m.group(0)
    return None


def stdlib_path(file: str) -> str | None:
    """The real file of a standard-library module named as the loader names it (`<std.vision>`)."""
    if not (file.startswith("<std.") and file.endswith(">")):
        return None
    res = importlib.resources.files("archc.dsl.stdlib").joinpath(file[5:-1] + ".arch")
    return str(res) if res.is_file() else None


# ---- hover ------------------------------------------------------------------------------


def hover(facts: Facts, line: int, col: int) -> str | None:
    """Markdown about the step, value, axis, size, block or op at the position, or None."""
    module = facts.module
    if module is None:
        return None
    nodes = chain(module, line, col)
    word = word_at(facts.text, line, col)
    if len(nodes) < 2 or word is None:  # outside every declaration: a comment, blank space
        return None
    at = nodes[-1]
    block = next((x for x in reversed(nodes) if isinstance(x, ast.Block)), None)
    env = facts.envs.get(id(block), {}) if block is not None else {}
    call = next((x for x in reversed(nodes) if isinstance(x, ast.Call)), None)
    if isinstance(at, ast.Block) and word == at.name:
        return _block_hover(facts, at)
    if isinstance(at, ast.Import):
        return f"import `{at.path}`" + (f" as `{at.alias}`" if at.alias else "") + \
            (f": {_import_target(facts, at)}" if _import_target(facts, at) else "")
    if isinstance(at, ast.SizeDecl) and word == at.name:
        return _size_hover(facts, word)
    if isinstance(at, ast.SeqStep) and not any(contains(st.span, line, col) for st in at.steps):
        return _seq_hover(facts, at.span, len(at.steps), at.label or "seq", None)
    if isinstance(at, ast.CallStep) and not contains(at.call.span, line, col):
        return _call_hover(facts, at.call, env, at.label)
    if isinstance(at, ast.Call) and contains(at.func_span, line, col):
        return _call_hover(facts, at, env)
    if isinstance(at, ast.KwArg) and word == at.name and call is not None:
        return _kwarg_hover(facts, call, word)
    let = next((x for x in reversed(nodes) if isinstance(x, ast.Let)), None)
    if isinstance(at, ast.Target) and let is not None:
        if len(let.targets) == 1 and isinstance(let.value, ast.Call):
            return _call_hover(facts, let.value, env, word)
        if len(let.targets) == 1 and isinstance(let.value, ast.SeqExpr):
            return _seq_hover(facts, let.value.span, len(let.value.steps), word, env.get(word))
        return _value_hover(facts, word, env.get(word))
    if isinstance(at, (ast.In, ast.ParamDecl, ast.BufferDecl, ast.Param)) and word == at.name:
        return _value_hover(facts, word, env.get(word))
    if isinstance(at, ast.AxisDecl) and word == at.name:
        decl = next((x for x in reversed(nodes) if isinstance(x, (ast.In, ast.ParamDecl, ast.BufferDecl))), None)
        t = _type(facts, env.get(decl.name)) if decl is not None else None
        if t is not None:
            return _axis_hover(facts, word, [(decl.name if decl else "", t)])
    if isinstance(at, ast.Var) and word == at.name and word not in env and facts.program is not None \
            and word in facts.program.sizes:
        return _size_hover(facts, word)
    if isinstance(at, ast.Var) and at.span in facts.seen and word == at.name:
        return _value_hover(facts, word, facts.seen[at.span])
    # a name whose meaning is its place: an axis of the call's tensors, a name in scope, a size, a block, an op
    if call is not None:
        typed = _call_types(facts, call)
        if any(word in t.names for _, t in typed):
            return _axis_hover(facts, word, typed)
    if word in env:
        return _value_hover(facts, word, env[word])
    if facts.program is not None and word in facts.program.sizes:
        return _size_hover(facts, word)
    found = _block_named(facts, word)
    if found is not None:
        return _block_hover(facts, found[0])
    if word in BY_NAME:
        return _op_doc(BY_NAME[word])
    return None


def _fmt(facts: Facts, x: Any, count: bool = False) -> str:
    """A value as .arch writes it; a `count` (parameters, FLOPs) with thousands separators."""
    if isinstance(x, bool) or isinstance(x, float):
        return str(x).lower() if isinstance(x, bool) else f"{x:g}"
    if S.is_size(x):
        v = S.evaluate(x, facts.values)
        if S.is_concrete(x):
            return f"{int(x):,}" if count else str(int(x))
        return S.fmt(x) if v is None else f"{S.fmt(x)} = {v:,}" if count else f"{S.fmt(x)} = {v}"
    return str(x)


def _shown(facts: Facts, t: Any) -> Any:
    """`t` as `archc check` shows it: floating-point tensors at the file's dtype."""
    dtype = facts.program.dtype if facts.program is not None else "f32"
    if dtype == "f32":
        return t
    if isinstance(t, TupleType):
        return TupleType(tuple(_shown(facts, x) for x in t.items))
    if isinstance(t, TensorType) and DTYPES[t.dtype].is_float:
        return dataclasses.replace(t, dtype=dtype)
    return t


def _type(facts: Facts, v: Any) -> TensorType | None:
    if isinstance(v, TV) and facts.graph is not None and v.id < len(facts.graph):
        t = facts.graph.node(v.id).type
        return t if isinstance(t, TensorType) else None
    return None


def _node(facts: Facts, v: Any) -> Node | None:
    if isinstance(v, TV) and facts.graph is not None and v.id < len(facts.graph):
        return facts.graph.node(v.id)
    return None


def _type_line(facts: Facts, t: Any) -> str:
    return f"```arch\n{_shown(facts, t)}\n```"


def _value_hover(facts: Facts, name: str, v: Any) -> str | None:
    if v is None:
        return None
    n = _node(facts, v)
    if n is not None:
        made = "input" if n.op.name == "input" else f"`{n.op.name}`"
        where = f" · {_where(n.span)}"
        return f"**{name}**: tensor, from {made}{where}\n\n{_type_line(facts, n.type)}"
    if isinstance(v, Poison):
        return f"**{name}**: (its definition has an error)"
    if isinstance(v, ListV):
        return f"**{name}**: a list of {len(v.items)} values (indices {sorted(v.items)})"
    if isinstance(v, tuple):
        parts = [str(_shown(facts, t)) if (t := _type(facts, x)) is not None else _fmt(facts, x) for x in v]
        return f"**{name}**: a tuple\n\n```arch\n({', '.join(parts)})\n```"
    if isinstance(v, list):
        return f"**{name}** = `[{', '.join(_fmt(facts, x) for x in v)}]`"
    if isinstance(v, str):
        return f"**{name}** = `\"{v}\"`"
    if isinstance(v, BlockRef):  # a block as a value (`unit = Basic`)
        return f"**{name}** = block `{_signature(v.block)}` · {_where(v.block.name_span)}"
    return f"**{name}** = `{_fmt(facts, v)}`"


def _size_hover(facts: Facts, name: str) -> str:
    value = facts.graph.sizes.get(name) if facts.graph is not None else None
    return f"size **{name}** = `{value:,}`" if value is not None else f"size **{name}**: free (no value)"


def _axis_hover(facts: Facts, axis: str, typed: list[tuple[str, TensorType]]) -> str:
    lines = [f"axis **{axis}**"]
    for what, t in typed:
        if axis in t.names:
            size = next(a.size for a in t.axes if a.name == axis)
            lines.append(f"- {what}: {axis} = `{_fmt(facts, size)}` in `{_shown(facts, t)}`")
    return "\n".join(lines)


def _call_types(facts: Facts, call: ast.Call) -> list[tuple[str, TensorType]]:
    """The tensors of a call's first instance: its inputs, then its output."""
    out: list[tuple[str, TensorType]] = []
    n = _node(facts, facts.calls.get(call.span))
    if n is None or facts.graph is None:
        return out
    if n.span == call.span:  # an op's node: its inputs are the call's
        for k, i in enumerate(n.inputs):
            t = facts.graph.node(i).type
            if isinstance(t, TensorType):
                out.append((f"input {k + 1}" if len(n.inputs) > 1 else "input", t))
    if isinstance(n.type, TensorType):
        out.append(("output", n.type))
    return out


def _where(span: Span) -> str:
    name = span.file.strip("<>") if span.file.startswith("<") else os.path.basename(span.file)
    return f"{name}:{span.line}"


def _costs(facts: Facts, nodes: list[Node]) -> str:
    rows = [facts.costs[n.id] for n in nodes if n.id in facts.costs]
    if not rows:
        return ""
    params = S.total(r[0] for r in rows)
    flops = S.total(r[1] for r in rows)
    full = S.total(r[2] for r in rows)
    return (f"\n\nparameters: **{_fmt(facts, params, True)}** · FLOPs: **{_fmt(facts, flops, True)}** "
            f"(torch convention; full: {_fmt(facts, full, True)})")


def _call_hover(facts: Facts, call: ast.Call, env: dict[str, Any], name: str | None = None) -> str | None:
    title = f"**{name}** = " if name else ""
    result = facts.calls.get(call.span)
    held = env.get(call.func)
    found = (held.block, held.file) if isinstance(held, BlockRef) else _block_named(facts, call.func)
    g = facts.graph
    if found is not None:
        block = found[0]
        if isinstance(held, BlockRef):  # a parameter holding a block: `unit(planes)`
            title += f"`{call.func}`, holding "
        instances = [m for m in g.modules.values() if m.span == call.span and m.kind == "block"] if g else []
        text = f"{title}block `{_signature(block)}`"
        if instances and g is not None:
            m = instances[0]
            args = ", ".join(f"{k}={_fmt(facts, v)}" for k, v in m.args.items())
            text += f" · `{m.path}`({args})" + (f", first of {len(instances)}" if len(instances) > 1 else "")
            inside = [n for n in g if n.scope == m.path or n.scope.startswith(m.path + ".")]
            text += _costs(facts, inside)
        n = _node(facts, result)
        if n is not None:
            text += f"\n\noutput:\n{_type_line(facts, n.type)}"
        return text
    op = BY_NAME.get(call.func)
    if op is None:
        if call.func in SIZE_FUNCTIONS and result is not None:
            return f"{title}`{call.func}(...)` = `{_fmt(facts, result)}`"
        return None
    n = _node(facts, result)
    text = f"{title}`{op.name}`"
    if n is not None and g is not None and n.span == call.span:
        same = [x for x in g if x.span == call.span and x.op is n.op]
        if n.path:
            text += f" · layer `{n.path}`" + (f", first of {len(same)}" if len(same) > 1 else "")
        text += f"\n\n{_type_line(facts, n.type)}"
        typed = [(what, t) for what, t in _call_types(facts, call) if what != "output"]
        if typed:
            text += "\ninput: " + ", ".join(f"`{_shown(facts, t)}`" for _, t in typed)
        if n.params:
            entries = ", ".join(f"`{n.path}.{p.name}` [{', '.join(_fmt(facts, s) for s in p.shape)}]"
                                + (" (buffer)" if p.buffer else "") for p in n.params)
            text += f"\n\nstate: {entries}"
        text += _costs(facts, [n])
    elif n is not None:
        text += f"\n\n{_type_line(facts, n.type)}"
    return text + f"\n\n---\n{op.doc}"


def _seq_hover(facts: Facts, span: Span, n_steps: int, name: str, value: Any) -> str | None:
    """`name = seq(x) { ... }` or a `seq { ... }` step: its layer, its steps' summed parameters and FLOPs,
    its output."""
    g = facts.graph
    mods = [m for m in g.modules.values() if m.span == span and m.kind == "seq"] if g is not None else []
    if not mods or g is None:
        return _value_hover(facts, name, value)
    m = mods[0]
    steps = len(m.children) or n_steps  # as elaborated: a `for` step counts each repetition
    text = f"**{name}** = `seq` of {steps} step{'s' * (steps != 1)} · layer `{m.path}`" + \
        (f", first of {len(mods)}" if len(mods) > 1 else "")
    prefix = m.path + "."
    inside = [n for n in g if (n.path or "").startswith(prefix) or n.scope.startswith(prefix)]
    text += _costs(facts, inside)
    n = _node(facts, value)
    if n is None and inside:  # a seq step: its value is its last node's
        n = inside[-1]
    return text + (f"\n\noutput:\n{_type_line(facts, n.type)}" if n is not None else "")


def _kwarg_hover(facts: Facts, call: ast.Call, name: str) -> str | None:
    op = BY_NAME.get(call.func)
    if op is not None:
        p = op.param(name)
        return None if p is None else f"`{op.name}` argument **{name}**: {_param_text(p)}"
    found = _block_named(facts, call.func)
    if found is not None:
        param = next((p for p in found[0].params if p.name == name), None)
        if param is not None:
            return f"parameter **{name}** of block `{_signature(found[0])}`"
    return None


def _param_text(p: ParamDef) -> str:
    text = p.kind
    if p.choices:
        text += " (" + " | ".join(f'"{c}"' for c in p.choices) + ")"
    if p.default is not dataclasses.MISSING:
        text += f", default `{p.default}`"
    else:
        text += ", required"
    return text


def _op_doc(op: OpDef[Any]) -> str:
    args = ", ".join(p.name + ("" if p.default is dataclasses.MISSING else f" = {p.default}") for p in op.params)
    return f"op `{op.name}({args})`\n\n{op.doc}"


def _signature(block: ast.Block) -> str:
    params = ", ".join(p.name + ("" if p.default is None else f" = {format_expr(p.default)}") for p in block.params)
    return f"{block.name}({params})"


def _block_hover(facts: Facts, block: ast.Block) -> str:
    text = f"block `{_signature(block)}`"
    env = facts.envs.get(id(block))
    ins = [s for s in block.body if isinstance(s, ast.In)]
    g = facts.graph
    if env is None or g is None:
        return text + "\n\nnot instantiated by the entry block"
    instances = [m for m in g.modules.values() if m.kind == "block" and m.name == block.name]
    if instances:
        m = instances[0]
        if m.path:
            text += f"\n\n{len(instances)} instance{'s' * (len(instances) > 1)}, first `{m.path}`"
        inside = [n for n in g if n.scope == m.path or n.scope.startswith(m.path + ".")] if m.path else list(g)
        text += _costs(facts, inside)
    for s in ins:
        t = _type(facts, env.get(s.name))
        if t is not None:
            text += f"\n\nin {s.name}: `{_shown(facts, t)}`"
    return text


def _block_named(facts: Facts, name: str) -> tuple[ast.Block, File] | None:
    """The block `name` as the document's namespace has it (its own, imported, or `alias.Block`)."""
    if facts.program is None:
        return None
    return facts.program.root.namespace.get(name)


def _import_target(facts: Facts, imp: ast.Import) -> str | None:
    if not imp.is_file:
        return stdlib_path(f"<{imp.path}>")
    base = os.path.dirname(facts.path) if not facts.path.startswith("<") else "."
    target = os.path.normpath(os.path.join(base, imp.path))
    return target if os.path.isfile(target) else None


# ---- definitions ---------------------------------------------------------------------------


def definition(facts: Facts, line: int, col: int) -> tuple[str, Span | None] | None:
    """Where the block, import, size or name at the position is defined: (file path, span or None for
    the top of the file). Standard-library blocks lead to their installed files."""
    module, program = facts.module, facts.program
    word = word_at(facts.text, line, col)
    if module is None or program is None or word is None:
        return None
    nodes = chain(module, line, col)
    at = nodes[-1] if nodes else None
    if isinstance(at, ast.Import):
        target = _import_target(facts, at)
        return (target, None) if target else None
    block = next((x for x in reversed(nodes) if isinstance(x, ast.Block)), None)
    local = _local_definition(block, word) if block is not None else None
    held = facts.envs.get(id(block), {}).get(word) if block is not None else None
    if isinstance(held, BlockRef):  # a parameter holding a block: where that block is defined
        return _real(held.file.path), held.block.name_span
    if local is not None and not (isinstance(at, ast.Call) and contains(at.func_span, line, col)):
        return facts.path, local
    found = program.root.namespace.get(word)
    if found is not None:
        return _real(found[1].path), found[0].name_span
    if word in program.sizes:
        decl, f = program.sizes[word]
        return _real(f.path), decl.span
    return None


def _real(path: str) -> str:
    return stdlib_path(path) or path


def _local_definition(block: ast.Block, name: str) -> Span | None:
    """The first statement of `block` that binds `name`: a parameter, an input, a let, a param."""
    for p in block.params:
        if p.name == name:
            return p.span
    for s in _statements(block.body):
        if isinstance(s, (ast.In, ast.ParamDecl, ast.BufferDecl)) and s.name == name:
            return s.span
        if isinstance(s, ast.Let):
            for t in s.targets:
                if t.name == name:
                    return t.span
        if isinstance(s, ast.For) and s.var == name:
            return s.span
    return None


def _statements(body: tuple[Any, ...]) -> Iterator[Any]:
    for s in body:
        yield s
        if isinstance(s, ast.If):
            for _, inner in s.branches:
                yield from _statements(inner)
            yield from _statements(s.orelse)
        elif isinstance(s, ast.For):
            yield from _statements(s.body)


# ---- completion -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Completion:
    label: str
    kind: str  # keyword | op | block | axis | value | size | module
    detail: str = ""
    insert: str | None = None


def enclosing_call(text: str, line: int, col: int) -> str | None:
    """The name before the innermost unclosed `(` before the position (the call being written)."""
    lines = text.split("\n")
    before = "\n".join(lines[:line - 1] + [lines[line - 1][:col - 1]]) if 1 <= line <= len(lines) else text
    before = re.sub(r"#[^\n]*", "", before)
    before = re.sub(r'"[^"\n]*"', '""', before)
    depth = 0
    for i in range(len(before) - 1, max(len(before) - 4000, -1), -1):
        c = before[i]
        if c in ")]}":
            depth += 1
        elif c in "([{":
            if depth == 0:
                if c != "(":
                    return None if c == "{" else enclosing_call_at(before[:i])
                m = re.search(r"([A-Za-z_][A-Za-z0-9_.]*)\s*$", before[:i])
                return m.group(1) if m else None
            depth -= 1
    return None


def enclosing_call_at(before: str) -> str | None:
    """Inside a list argument (`over = [h, w]`): the call around the list."""
    lines = before.split("\n")
    return enclosing_call(before + " ", len(lines), len(lines[-1]) + 1)


def complete(facts: Facts, good: Facts | None, line: int, col: int) -> list[Completion]:
    """Keyword arguments of the call being written, then axis names and values in scope, sizes, ops and
    blocks. `facts` is the document now; `good`, its last version that parsed (names of blocks, scopes)."""
    ref = facts if facts.program is not None else good
    out: list[Completion] = []
    func = enclosing_call(facts.text, line, col)
    block_def = None
    if ref is not None and ref.program is not None and func is not None:
        found = ref.program.root.namespace.get(func)
        block_def = found[0] if found else None
    if func in BY_NAME:
        for p in BY_NAME[func].params:
            if p.kind not in ("map", "renames", "sizes_kw"):
                out.append(Completion(p.name, "keyword", f"{func}: {_param_text(p)}", f"{p.name} = "))
    elif block_def is not None:
        for bp in block_def.params:
            out.append(Completion(bp.name, "keyword", f"parameter of {block_def.name}", f"{bp.name} = "))
    if ref is not None and ref.module is not None:
        block = next((b for b in ref.module.blocks if b.span.line <= line <= b.span.end_line), None)
        env = ref.envs.get(id(block), {}) if block is not None else {}
        axes: dict[str, str] = {}
        for v in env.values():
            t = _type(ref, v)
            if t is not None:
                for a in t.axes:
                    axes.setdefault(a.name, f"axis, {a.name} = {_fmt(ref, a.size)}")
        for s in _statements(block.body if block is not None else ()):
            if isinstance(s, ast.In) and isinstance(s.type, ast.TensorTypeExpr):
                for ax in s.type.axes:
                    if ax.name is not None:
                        axes.setdefault(ax.name, "axis")
        out += [Completion(a, "axis", d) for a, d in sorted(axes.items())]
        for name, v in sorted(env.items()):
            if name not in axes:
                t = _type(ref, v)
                out.append(Completion(name, "value", str(_shown(ref, t)) if t is not None else _fmt(ref, v)))
        if ref.program is not None:
            values = ref.graph.sizes if ref.graph is not None else {}
            for name in sorted(ref.program.sizes):
                if name not in env:
                    out.append(Completion(name, "size", f"size {name} = {values.get(name)}"))
            for name, (b, _) in sorted(ref.program.root.namespace.items()):
                out.append(Completion(name, "block", f"block {_signature(b)}"))
    out += [Completion(name, "op", op.doc) for name, op in sorted(BY_NAME.items())]
    out += [Completion(name, "op", "size function") for name in sorted(SIZE_FUNCTIONS) if name not in BY_NAME]
    if facts.text.split("\n")[line - 1].lstrip().startswith("import") if 1 <= line <= len(
            facts.text.split("\n")) else False:
        out = [Completion(m, "module", "standard library") for m in stdlib_modules()]
    return out


# ---- document symbols -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Symbol:
    name: str
    kind: str  # block | step | value | input | state | size | import
    span: Span
    name_span: Span
    detail: str = ""
    children: tuple[Symbol, ...] = ()


def symbols(facts: Facts) -> list[Symbol]:
    """The file's imports, sizes and blocks, each block with its inputs, state and steps (nested `seq`s)."""
    module = facts.module
    if module is None:
        return []
    out: list[Symbol] = [Symbol(i.path, "import", i.span, i.span) for i in module.imports]
    out += [Symbol(s.name, "size", s.span, s.span, _size_hover(facts, s.name)) for s in module.sizes]
    for b in module.blocks:
        out.append(Symbol(b.name, "block", b.span, b.name_span, _signature(b) + (" (entry)" if b.entry else ""),
                          tuple(_steps(facts, b))))
    return out


def _steps(facts: Facts, block: ast.Block) -> Iterator[Symbol]:
    env = facts.envs.get(id(block), {})
    for s in _statements(block.body):
        if isinstance(s, ast.In):
            yield Symbol(s.name, "input", s.span, s.span, _detail(facts, env.get(s.name)))
        elif isinstance(s, (ast.ParamDecl, ast.BufferDecl)):
            yield Symbol(s.name, "state", s.span, s.span, _detail(facts, env.get(s.name)))
        elif isinstance(s, ast.Let):
            for t in s.targets:
                kind = "step" if isinstance(s.value, (ast.Call, ast.SeqExpr)) else "value"
                inner = tuple(_seq_steps(facts, s.value.steps)) if isinstance(s.value, ast.SeqExpr) else ()
                yield Symbol(t.name, kind, s.span, t.span, _detail(facts, env.get(t.name)), inner)
        elif isinstance(s, ast.Out):
            for v in s.values:
                if isinstance(v, ast.SeqExpr):
                    yield Symbol("out", "step", s.span, s.span, "", tuple(_seq_steps(facts, v.steps)))


def _seq_steps(facts: Facts, steps: tuple[Any, ...]) -> Iterator[Symbol]:
    for st in steps:
        if isinstance(st, ast.CallStep):
            yield Symbol(st.label or st.call.func, "step", st.span, st.call.func_span if st.label is None else st.span,
                         _detail(facts, facts.calls.get(st.call.span)) or st.call.func)
        elif isinstance(st, ast.SeqStep):
            yield Symbol(st.label or "seq", "step", st.span, st.span, "seq", tuple(_seq_steps(facts, st.steps)))
        elif isinstance(st, ast.ForStep):
            yield from _seq_steps(facts, st.steps)
        elif isinstance(st, ast.IfStep):
            yield from _seq_steps(facts, st.then)
            yield from _seq_steps(facts, st.orelse)


def _detail(facts: Facts, v: Any) -> str:
    n = _node(facts, v)
    return str(_shown(facts, n.type)) if n is not None else ""
