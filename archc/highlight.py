"""Syntax highlighting of .arch code for Pygments (Jupyter, Sphinx, MkDocs): the `arch` lexer.

Registered as a Pygments entry point (pyproject.toml), so ```` ```arch ```` code blocks highlight
once archc is installed. The keywords and operators are those of grammar/arch.lark (a test checks
that none is missing here or in the TextMate grammar of editors/vscode/).

>>> from pygments.token import Keyword
>>> (Keyword.Declaration, "block") in list(ArchLexer().get_tokens("block B() {}"))
True
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text, Whitespace

DECLARATIONS = ("block", "entry", "size", "dtype", "param", "buffer", "in", "out", "import", "as")
CONTROL = ("if", "elif", "else", "then", "for", "assert", "seq")
WORD_OPERATORS = ("and", "or", "not")
CONSTANTS = ("true", "false", "none")
OPERATORS = ("->", "**", "//", "==", "!=", "<=", ">=", "...", "..", "<", ">", "+", "-", "*", "/", "%", "=")
PUNCTUATION = ("(", ")", "[", "]", "{", "}", ",", ":", ".")
DTYPES = ("f64", "f32", "f16", "bf16", "c64", "c128", "i64", "i32", "i16", "i8", "u8", "bool")


class ArchLexer(RegexLexer):
    """The .arch language of archc: blocks, named axes, ops and sizes."""

    name = "arch"
    aliases = ["arch", "archc"]
    filenames = ["*.arch"]
    mimetypes = ["text/x-arch"]

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"#.*?$", Comment.Single),
            (r'"([^"\\\n]|\\.)*"', String.Double),
            (r"[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", Number),
            (r"(block)(\s+)([A-Za-z_][A-Za-z0-9_]*)", bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (words(DECLARATIONS, suffix=r"\b"), Keyword.Declaration),
            (words(CONTROL, suffix=r"\b"), Keyword),
            (words(WORD_OPERATORS, suffix=r"\b"), Operator.Word),
            (words(CONSTANTS, suffix=r"\b"), Keyword.Constant),
            (words(DTYPES, suffix=r"(?=\[)"), Keyword.Type),
            (r"[A-Za-z_][A-Za-z0-9_]*(?=\s*\()", Name.Function),
            (r"[A-Za-z_][A-Za-z0-9_]*", Name),
            (words(OPERATORS), Operator),
            (words(PUNCTUATION), Punctuation),
            (r".", Text),
        ],
    }
