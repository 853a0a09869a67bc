"""Parse .arch text into the AST of `grammar.ast`.

The grammar lives in `arch.lark` (package data). Parse errors are turned into
plain sentences ("expected ':' after the input's name") by matching the
parser state against short bad examples, lark's `match_examples` technique;
when no example matches, the message lists what would have been accepted in
words, never lark's terminal names.

>>> m = parse('block B() { in x: [n, c = 3]\\n out relu(x) }', "b.arch")
>>> m.blocks[0].name, m.blocks[0].body[0].type.axes[1].name
('B', 'c')
"""

from __future__ import annotations

import functools
import importlib.resources
import os
import sys
from collections.abc import Callable
from typing import Any

import lark
from lark import Token, Transformer, v_args
from lark.tree import Meta

from archc.diagnostics import ArchError, Diagnostic, Span
from archc.grammar import ast

KEYWORDS = frozenset(
    "import as size dtype entry block in out param buffer if elif else then for seq assert "
    "and or not true false none".split()
)


@functools.cache
def _parser() -> lark.Lark:
    text = importlib.resources.files("archc.grammar").joinpath("arch.lark").read_text()
    return lark.Lark(text, parser="lalr", propagate_positions=True, maybe_placeholders=True,
                     cache=_cache_file())


def _cache_file() -> str | bool:
    """Where lark keeps the analysed LALR tables between runs (building them costs
    ~0.1 s a process). lark stores the grammar's hash in the file and rebuilds on
    any mismatch or unreadable file; without a writable cache folder, no cache."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(root, "archc")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return False
    if not os.access(folder, os.W_OK):
        return False
    return os.path.join(folder, f"grammar-lark{lark.__version__}-py{sys.version_info[0]}{sys.version_info[1]}.pickle")


@functools.lru_cache(maxsize=64)  # the AST is immutable: a file read again (std.*) is parsed once
def parse(text: str, file: str) -> ast.Module:
    """Parse one file. Raises ArchError with a located, plain-sentence diagnostic."""
    try:
        tree = _parser().parse(text, on_error=_keyword_as_name)
    except lark.exceptions.UnexpectedInput as e:
        raise ArchError([_syntax_diagnostic(e, text, file)]) from None
    deep = _too_deep(tree)
    if deep is not None:  # later phases recurse on the tree: refuse before Python's stack runs out
        raise ArchError([Diagnostic("error", "structure", f"this nests more than {MAX_NESTING} levels "
                                    "deep; split it into named steps", _span(file, deep.meta))])
    try:
        return _Builder(file).transform(tree)
    except lark.exceptions.VisitError as e:
        if isinstance(e.orig_exc, _BadString):
            meta = e.obj.meta if isinstance(e.obj, lark.Tree) else None
            raise ArchError([Diagnostic("error", "syntax", str(e.orig_exc), _span(file, meta))]) from None
        raise e.orig_exc from None


# Deepest parse tree accepted. Each level costs a few Python frames in the AST
# builder and the elaborator; 200 stays well inside the default recursion limit.
MAX_NESTING = 200


def _too_deep(tree: lark.Tree[Token]) -> lark.Tree[Token] | None:
    """The first subtree deeper than MAX_NESTING, found without recursion."""
    stack = [(tree, 1)]
    while stack:
        t, depth = stack.pop()
        if depth > MAX_NESTING:
            return t
        stack.extend((c, depth + 1) for c in t.children if isinstance(c, lark.Tree))
    return None


_TOP_LEVEL_WORDS = frozenset({"block", "size", "dtype", "import", "entry", "as", "buffer"})


def _keyword_as_name(e: lark.exceptions.UnexpectedInput) -> bool:
    """LALR merges look-ahead sets, so after an expression the lexer also accepts the
    top-level keywords (`size H = 224` may be followed by `block`) and reads the
    layer name in `block = seq(x) {...}` (torchvision's CNBlock.block) as a keyword.
    Where the parser wants a name and not that keyword, the word is a name."""
    if not isinstance(e, lark.exceptions.UnexpectedToken):
        return False
    tok = e.token
    # Only the top-level words: `z = out` is a missing expression, not a variable named out.
    if tok.type == "NAME" or str(tok) not in _TOP_LEVEL_WORDS or "NAME" not in e.expected:
        return False
    e.interactive_parser.feed_token(Token.new_borrow_pos("NAME", str(tok), tok))
    return True


# ---- tree -> AST ----------------------------------------------------------------


def _span(file: str, meta: Any) -> Span:
    if getattr(meta, "empty", True):
        return Span(file, 1, 1, 1, 1)
    return Span(file, meta.line, meta.column, meta.end_line, meta.end_column)


def _tok_span(file: str, tok: Token) -> Span:
    return Span(file, tok.line or 1, tok.column or 1, tok.end_line or 1, tok.end_column or 1)


class _BadString(Exception):
    """A string literal whose escapes do not decode; parse() reports it at the string."""


def _unquote(s: str) -> str:
    body = s[1:-1]
    if "\\" not in body:
        return body
    try:
        return body.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as e:
        raise _BadString(f"bad escape sequence in the string {s}: {e.reason}") from None


def _bin(op: str) -> Callable[[_Builder, Meta, _Children], ast.BinOp]:
    """A _Builder method building a BinOp for operator `op`."""
    def method(self: _Builder, meta: Meta, c: _Children) -> ast.BinOp:
        return ast.BinOp(op, c[0], c[1], self.sp(meta))
    return method


# Types for _Builder's annotations, named out here: its methods named after the grammar's rules
# `tuple`, `list` and `range` shadow those builtins in the class body.
_Children = list[Any]  # a rule's children: tokens, AST nodes, None for an absent optional part
_MapRhs = tuple[ast.Expr, str | None]  # the new size in `chan -> ...` and the new name, if any


@v_args(meta=True)
class _Builder(Transformer[Token, ast.Module]):
    """Builds AST dataclasses from lark trees, one method per grammar rule."""

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    def sp(self, meta: Any) -> Span:
        return _span(self.file, meta)

    # files
    def start(self, meta: Meta, items: _Children) -> ast.Module:
        return ast.Module(
            self.file,
            tuple(i for i in items if isinstance(i, ast.Import)),
            tuple(s for i in items if isinstance(i, list) for s in i),
            tuple(i for i in items if isinstance(i, ast.Block)),
            self.sp(meta),
            tuple(i for i in items if isinstance(i, ast.DtypeDecl)),
        )

    def import_file(self, meta: Meta, c: _Children) -> ast.Import:
        return ast.Import(_unquote(c[0]), True, str(c[1]) if c[1] else None, self.sp(meta))

    def import_lib(self, meta: Meta, c: _Children) -> ast.Import:
        return ast.Import(c[0], False, str(c[1]) if c[1] else None, self.sp(meta))

    def dotted(self, meta: Meta, names: _Children) -> str:
        return ".".join(str(n) for n in names)

    def size_decl(self, meta: Meta, items: _Children) -> list[ast.SizeDecl]:
        return list(items)

    def size_item(self, meta: Meta, c: _Children) -> ast.SizeDecl:
        return ast.SizeDecl(str(c[0]), c[1], self.sp(meta))

    def dtype_decl(self, meta: Meta, c: _Children) -> ast.DtypeDecl:
        return ast.DtypeDecl(str(c[0]), self.sp(meta), _tok_span(self.file, c[0]))

    def block_def(self, meta: Meta, c: _Children) -> ast.Block:
        entry, name, *rest = c
        body = rest[-1]
        params = tuple(p for p in rest[:-1] if p is not None)
        return ast.Block(str(name), params, body, entry is not None, self.sp(meta),
                         _tok_span(self.file, name))

    def param(self, meta: Meta, c: _Children) -> ast.Param:
        return ast.Param(str(c[0]), c[1], self.sp(meta))

    def body(self, meta: Meta, stmts: _Children) -> tuple[ast.Stmt, ...]:
        return tuple(stmts)

    # statements
    def in_stmt(self, meta: Meta, c: _Children) -> ast.In:
        return ast.In(str(c[0]), c[1], self.sp(meta))

    def out_stmt(self, meta: Meta, c: _Children) -> ast.Out:
        *values, name = c
        if name is None:
            return ast.Out(tuple(values), self.sp(meta))
        return ast.Out(tuple(values), self.sp(meta), _unquote(name), _tok_span(self.file, name))

    def let_stmt(self, meta: Meta, c: _Children) -> ast.Let:
        *targets, value, name = c
        if name is None:
            return ast.Let(tuple(targets), value, self.sp(meta))
        return ast.Let(tuple(targets), value, self.sp(meta), _unquote(name), _tok_span(self.file, name))

    def name_target(self, meta: Meta, c: _Children) -> ast.Target:
        return ast.Target(str(c[0]), None, self.sp(meta))

    def index_target(self, meta: Meta, c: _Children) -> ast.Target:
        return ast.Target(str(c[0]), c[1], self.sp(meta))

    def param_stmt(self, meta: Meta, c: _Children) -> ast.ParamDecl:
        return ast.ParamDecl(str(c[0]), c[1], c[2], self.sp(meta))

    def buffer_stmt(self, meta: Meta, c: _Children) -> ast.BufferDecl:
        options = tuple(ast.KwArg(str(c[i]), c[i + 1], _tok_span(self.file, c[i])) for i in range(3, len(c), 2))
        return ast.BufferDecl(str(c[0]), c[1], c[2], options, self.sp(meta))

    def if_stmt(self, meta: Meta, c: _Children) -> ast.If:
        test, body, *rest = c
        branches = [(test, body)]
        orelse: tuple[ast.Stmt, ...] = ()
        for r in rest:
            if r is None:
                continue
            if r[0] == "elif":
                branches.append((r[1], r[2]))
            else:
                orelse = r[1]
        return ast.If(tuple(branches), orelse, self.sp(meta))

    def elif_clause(self, meta: Meta, c: _Children) -> tuple[str, ast.Expr, tuple[ast.Stmt, ...]]:
        return ("elif", c[0], c[1])

    def else_clause(self, meta: Meta, c: _Children) -> tuple[str, tuple[ast.Stmt, ...]]:
        return ("else", c[0])

    def for_stmt(self, meta: Meta, c: _Children) -> ast.For:
        var, (start, stop, items), body = c
        return ast.For(str(var), start, stop, body, self.sp(meta), items)

    def range(self, meta: Meta, c: _Children) -> tuple[ast.Expr | None, ast.Expr | None, ast.Expr | None]:
        return (c[0], c[1], None)

    def items(self, meta: Meta, c: _Children) -> tuple[ast.Expr | None, ast.Expr | None, ast.Expr | None]:
        return (None, None, c[0])

    def assert_stmt(self, meta: Meta, c: _Children) -> ast.Assert:
        return ast.Assert(c[0], _unquote(c[1]) if c[1] else None, self.sp(meta))

    # types
    def tensor_type(self, meta: Meta, c: _Children) -> ast.TensorTypeExpr:
        dtype, *axes = c
        return ast.TensorTypeExpr(str(dtype) if dtype else None,
                                  tuple(a for a in axes if a is not None), self.sp(meta))

    def tuple_type(self, meta: Meta, c: _Children) -> ast.TupleTypeExpr:
        return ast.TupleTypeExpr(tuple(c), self.sp(meta))

    def named_axis(self, meta: Meta, c: _Children) -> ast.AxisDecl:
        return ast.AxisDecl(str(c[0]), c[1], self.sp(meta))

    def ellipsis_axis(self, meta: Meta, c: _Children) -> ast.AxisDecl:
        return ast.AxisDecl(None, None, self.sp(meta))

    # sequences
    def seq_expr(self, meta: Meta, c: _Children) -> ast.SeqExpr:
        return ast.SeqExpr(c[0], c[1], self.sp(meta))

    def steps(self, meta: Meta, c: _Children) -> tuple[ast.Step, ...]:
        return tuple(s for s in c if s is not None)

    def call_step(self, meta: Meta, c: _Children) -> ast.CallStep:
        return ast.CallStep(c[0], None, self.sp(meta))

    def labelled_step(self, meta: Meta, c: _Children) -> ast.CallStep:
        return ast.CallStep(c[1], c[0], self.sp(meta))

    def labelled_seq(self, meta: Meta, c: _Children) -> ast.SeqStep:
        return ast.SeqStep(c[1], c[0], self.sp(meta))

    def seq_step(self, meta: Meta, c: _Children) -> ast.SeqStep:
        return ast.SeqStep(c[0], None, self.sp(meta))

    def for_step(self, meta: Meta, c: _Children) -> ast.ForStep:
        var, (start, stop, items), step = c
        return ast.ForStep(str(var), start, stop, (step,), self.sp(meta), items)

    def for_steps(self, meta: Meta, c: _Children) -> ast.ForStep:
        var, (start, stop, items), steps = c
        return ast.ForStep(str(var), start, stop, steps, self.sp(meta), items)

    def if_step(self, meta: Meta, c: _Children) -> ast.IfStep:
        return ast.IfStep(c[0], (c[1],), (), self.sp(meta))

    def if_steps(self, meta: Meta, c: _Children) -> ast.IfStep:
        return ast.IfStep(c[0], c[1], c[2] or (), self.sp(meta))

    def label(self, meta: Meta, c: _Children) -> str:
        tok = c[0]
        return _unquote(tok) if tok.type == "STRING" else str(tok)

    # expressions
    def cond(self, meta: Meta, c: _Children) -> ast.Cond:
        return ast.Cond(c[0], c[1], c[2], self.sp(meta))

    or_op = _bin("or")
    and_op = _bin("and")
    add = _bin("+")
    sub = _bin("-")
    mul = _bin("*")
    div = _bin("/")
    floordiv = _bin("//")
    mod = _bin("%")
    pow = _bin("**")

    def compare(self, meta: Meta, c: _Children) -> ast.BinOp:
        return ast.BinOp(str(c[1]), c[0], c[2], self.sp(meta))

    def not_op(self, meta: Meta, c: _Children) -> ast.UnaryOp:
        return ast.UnaryOp("not", c[0], self.sp(meta))

    def neg(self, meta: Meta, c: _Children) -> ast.UnaryOp:
        return ast.UnaryOp("-", c[0], self.sp(meta))

    def index(self, meta: Meta, c: _Children) -> ast.Index:
        return ast.Index(c[0], c[1], self.sp(meta))

    def slicing(self, meta: Meta, c: _Children) -> ast.Slicing:
        return ast.Slicing(c[0], tuple(x for x in c[1:] if x is not None), self.sp(meta))

    def axis_range(self, meta: Meta, c: _Children) -> ast.AxisSlice:
        return ast.AxisSlice(str(c[0]), c[1], c[2], c[3], True, self.sp(meta))

    def axis_position(self, meta: Meta, c: _Children) -> ast.AxisSlice:
        return ast.AxisSlice(str(c[0]), c[1], None, None, False, self.sp(meta))

    def number(self, meta: Meta, c: _Children) -> ast.Number:
        text = str(c[0])
        value: int | float = float(text) if any(ch in text for ch in ".eE") else int(text)
        return ast.Number(value, self.sp(meta))

    def string(self, meta: Meta, c: _Children) -> ast.String:
        return ast.String(_unquote(c[0]), self.sp(meta))

    def true(self, meta: Meta, c: _Children) -> ast.Bool:
        return ast.Bool(True, self.sp(meta))

    def false(self, meta: Meta, c: _Children) -> ast.Bool:
        return ast.Bool(False, self.sp(meta))

    def none(self, meta: Meta, c: _Children) -> ast.NoneLit:
        return ast.NoneLit(self.sp(meta))

    def var(self, meta: Meta, c: _Children) -> ast.Var:
        return ast.Var(str(c[0]), self.sp(meta))

    def tuple(self, meta: Meta, c: _Children) -> ast.TupleExpr:
        return ast.TupleExpr(tuple(x for x in c if x is not None), self.sp(meta))

    def list(self, meta: Meta, c: _Children) -> ast.ListExpr:
        return ast.ListExpr(tuple(x for x in c if x is not None), self.sp(meta))

    def list_comp(self, meta: Meta, c: _Children) -> ast.ListComp:
        element, var, (start, stop, items), cond = c
        return ast.ListComp(element, str(var), start, stop, items, cond, self.sp(meta))

    def list_slice(self, meta: Meta, c: _Children) -> ast.ListSlice:
        value, start, stop, step = c
        return ast.ListSlice(value, start, stop, step, self.sp(meta))

    def plain_item(self, meta: Meta, c: _Children) -> ast.Expr:
        return c[0]

    def keyed_item(self, meta: Meta, c: _Children) -> ast.KeyedItem:
        return ast.KeyedItem(str(c[0]), c[1], self.sp(meta))

    def ellipsis_item(self, meta: Meta, c: _Children) -> ast.EllipsisItem:
        return ast.EllipsisItem(self.sp(meta))

    def call(self, meta: Meta, c: _Children) -> ast.Call:
        func, *args = c
        func_span = Span(self.file, meta.line, meta.column, meta.line, meta.column + len(func))
        return ast.Call(func, tuple(a for a in args if a is not None), self.sp(meta), func_span)

    def pos_arg(self, meta: Meta, c: _Children) -> ast.PosArg:
        return ast.PosArg(c[0], self.sp(meta))

    def kw_arg(self, meta: Meta, c: _Children) -> ast.KwArg:
        return ast.KwArg(str(c[0]), c[1], self.sp(meta))

    # `seq` is a keyword, and the name of an argument of attention
    def seq_kw_arg(self, meta: Meta, c: _Children) -> ast.KwArg:
        return ast.KwArg("seq", c[0], self.sp(meta))

    def map_arg(self, meta: Meta, c: _Children) -> ast.MapArg:
        size, rename = c[1]
        return ast.MapArg(c[0], size, rename, self.sp(meta))

    def size_rhs(self, meta: Meta, c: _Children) -> _MapRhs:
        return (c[0], None)

    def renamed_rhs(self, meta: Meta, c: _Children) -> _MapRhs:
        return (c[1], str(c[0]))


# ---- syntax errors in words -----------------------------------------------------

# Bad snippets, each labelled with the sentence to print when the parser fails
# in the same state. Keep them short; lark's match_examples compares states.
_EXAMPLES: dict[str, list[str]] = {
    "expected '(' after the block name, as in `block Net(c = 3) { ... }`": [
        "block B { }", "block B in", "entry block B {",
    ],
    "expected '{' to open the block body": [
        "block B() in x: [a]", "block B(a) out", "block B() x",
    ],
    "expected ':' and a type after the input's name, as in `in x: [batch, chan]`": [
        "block B() { in x [a] }", "block B() { in x }", "block B() { in x = [a] }",
    ],
    "expected '[' to start the input's axes, as in `in x: [batch, chan]`": [
        "block B() { in x: a }", "block B() { in x: }",
    ],
    "a statement starts with `name =`, `in`, `out`, `param`, `if`, `for` or `assert`": [
        "block B() { f(x) }", "block B() { 3 }", "block B() { (x) }", "block B() { [a] }",
        "block B() { x }", "block B() { x y }", "block B() { x + y }", "block B() { x.y }",
        "block B() { = x }",
    ],
    "expected an expression after '='": [
        "block B() { y = }", "block B() { y = ) }", "block B() { y = , }",
        "block B() { y = = }",
    ],
    "expected ')' to close the call": [
        "block B() { y = f(x }", "block B() { y = f(x y) }", "block B() { y = f(x, y }",
    ],
    "expected ']' to close the list": [
        "block B() { in x: [a, b }", "block B() { y = [a b] }", "block B() { in x: [a b] }",
    ],
    "expected '}' to close the block, or another statement": [
        "block B() { out x ", "block B() { y = x ",
    ],
    "expected a block, an import or a size declaration at the top level": [
        "x = 1", "in x: [a]", "out x", "}", "f(x)", "blocks B() {}",
    ],
    "expected a name after 'block'": ["block 3", "block (", "block {"],
    "expected a size name after 'size', as in `size H = 224`": ["size 3", "size =", "size"],
    "expected `in` and a range after the loop variable, as in `for i in 0..3`": [
        "block B() { for i 0..3 {} }", "block B() { for i = 0..3 {} }",
    ],
    "expected '..' in a range, as in `for i in 0..3 {`, or '{' after a list, as in `for d in dims {`": [
        "block B() { for i in 0, 3 {} }",
    ],
    "expected `then` in the conditional expression `if c then a else b`": [
        "block B() { y = if a b }", "block B() { y = if a: b }",
    ],
    "an unfinished expression: an operand is missing": [
        "block B() { y = x + }", "block B() { y = x * }", "block B() { y = -}",
        "block B() { y = x == }", "block B() { y = not }",
    ],
}


def _human_terminal(name: str) -> str:
    specials = {
        "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "COMP": "a comparison",
        "ENTRY": "'entry'", "ELLIPSIS": "'...'", "$END": "the end of the file",
    }
    if name in specials:
        return specials[name]
    try:
        term = _parser().get_terminal(name)
    except KeyError:
        return name.lower()
    if term.pattern.type == "str":
        return f"'{term.pattern.value}'"
    return name.lower()


# Groups of terminals named by one phrase when the parser would accept all of them.
_PHRASES: list[tuple[str, set[str], set[str]]] = [  # (phrase, must all be expected, also covered)
    ("a top-level declaration (block, import, size)", {"block", "import", "size"}, {"entry", "$END", "dtype"}),
    ("a statement", {"in", "out", "assert"}, {"param", "buffer", "if", "for", "NAME"}),
    ("an expression", {"NUMBER", "STRING", "("}, {"NAME", "[", "-", "true", "false", "not", "if", "seq"}),
    ("an operator", {"+", "*"}, {"-", "/", "//", "%", "**", "COMP", "and", "or", "[", "."}),
]


def _expected_phrase(expected: set[str]) -> str:
    """What the parser would have accepted, in words: 'an operator, ')' or ','."""
    keys = set()
    for name in expected:
        try:
            term = _parser().get_terminal(name)
            keys.add(term.pattern.value if term.pattern.type == "str" else name)
        except KeyError:
            keys.add(name)
    parts = []
    for phrase, required, covered in _PHRASES:
        if required <= keys:
            parts.append(phrase)
            keys -= required | covered
    words = {"NAME": "a name", "NUMBER": "a number", "STRING": "a string", "COMP": "a comparison",
             "$END": "the end of the file"}
    parts += sorted(words.get(k, f"'{k}'") for k in keys)
    if len(parts) > 7:
        parts = parts[:6] + ["..."]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _human_token(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type == "NAME":
        return f"keyword-free name '{tok}'" if False else f"'{tok}'"
    return f"'{tok}'"


def _state_id(e: lark.exceptions.UnexpectedToken) -> Any:
    """The LALR state the parser failed in. Only the state on top of the stack: lark's own
    ParserState equality also compares stack depths, so an example written at the top of
    a block would not match the same mistake inside an `if` body."""
    return getattr(e.state, "position", e.state)


@functools.cache
def _example_table() -> list[tuple[str, Any, str]]:
    """(label, parser state, token type) for every example that fails to parse."""
    table = []
    for label, snippets in _EXAMPLES.items():
        for s in snippets:
            try:
                _parser().parse(s)
            except lark.exceptions.UnexpectedToken as e:
                table.append((label, _state_id(e), e.token.type))
            except lark.exceptions.UnexpectedInput:
                pass
    return table


def _syntax_diagnostic(e: lark.exceptions.UnexpectedInput, text: str, file: str) -> Diagnostic:
    line, col = getattr(e, "line", -1), getattr(e, "column", -1)
    if line is None or line < 1:  # end of file
        lines = text.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
    width = 1
    if isinstance(e, lark.exceptions.UnexpectedCharacters):
        pos = e.pos_in_stream or 0
        ch = text[pos] if pos < len(text) else ""
        msg = f"unexpected character {ch!r}"
        if ch == "'":
            msg += "; strings use double quotes"
        return Diagnostic("error", "syntax", msg, Span(file, line, col, line, col + 1))
    if isinstance(e, lark.exceptions.UnexpectedToken):
        tok = e.token
        if tok.type != "$END":
            width = max(len(str(tok)), 1)
        elif tok.end_line:  # lark places $END on the last token: point just after it
            line, col = tok.end_line, tok.end_column
        label = None
        for lab, state, ttype in _example_table():
            if state == _state_id(e) and ttype == tok.type:
                label = lab
                break
        if label is None:
            for lab, state, _ in _example_table():
                if state == _state_id(e):
                    label = lab
                    break
        found = _human_token(tok)
        if str(tok) in KEYWORDS:
            found = f"keyword '{tok}'"
        # LALR merges look-aheads across contexts; accepts() tries each terminal on the real stack.
        expected = set(e.interactive_parser.accepts()) if e.interactive_parser else set(e.expected)
        if label is not None:
            msg = f"{label}; found {found}"
        else:
            msg = f"unexpected {found}; expected {_expected_phrase(expected or set(e.expected))}"
        if tok.type in ("NAME", "NUMBER", "STRING") and "COMMA" in expected and \
                ("RPAR" in expected or "RSQB" in expected):
            msg += " (is a ',' missing before it?)"
        elif tok.type != "$END" and str(tok) in KEYWORDS and "NAME" in expected:
            msg += f" ('{tok}' is a reserved word)"
        return Diagnostic("error", "syntax", msg, Span(file, line, col, line, col + width))
    return Diagnostic("error", "syntax", "unexpected end of file; a '}' or ')' is missing",
                      Span(file, line, col, line, col + 1))
