"""Both highlighters (the Pygments lexer and the VS Code TextMate grammar) cover every keyword and
operator of the lark grammar, and highlight every example without an error token."""

from __future__ import annotations

import json
import pathlib
import re

import pytest
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Error, Keyword, Operator, Punctuation, Whitespace

from archc.grammar.parser import _parser

from conftest import EXAMPLES

ROOT = pathlib.Path(__file__).resolve().parents[1]
TM = json.loads((ROOT / "editors" / "vscode" / "syntaxes" / "arch.tmLanguage.json").read_text())


def _literals() -> tuple[set[str], set[str]]:
    """The words and the symbols of the grammar: its literal terminals, and the alternatives of COMP,
    read from the parser lark builds out of grammar/arch.lark."""
    lits: set[str] = set()
    for term in _parser().terminals:
        if type(term.pattern).__name__ == "PatternStr":
            lits.add(term.pattern.value)
        elif term.name == "COMP":
            lits.update(term.pattern.value.strip("(?:)").split("|"))
    words = {x for x in lits if re.fullmatch(r"[a-z_]+", x)}
    return words, lits - words


WORDS, SYMBOLS = _literals()


def _tm_patterns(name: str) -> list[tuple[str, str]]:
    rule = TM["repository"][name]
    rules = rule.get("patterns", [rule])
    return [(r.get("name", "storage.type.block.arch"), r["match"]) for r in rules if "match" in r]


def test_the_grammar_has_what_we_expect() -> None:
    assert {"block", "buffer", "dtype", "seq", "and", "true"} <= WORDS
    assert {"->", "**", "//", "..", "...", "==", "{", "["} <= SYMBOLS


@pytest.mark.parametrize("word", sorted(WORDS))
def test_every_keyword_is_highlighted(word: str) -> None:
    tokens = [t for t, v in get_lexer_by_name("arch").get_tokens(word) if v.strip()]
    assert tokens and tokens[0] in Keyword or tokens[0] in Operator.Word, (word, tokens)
    scopes = [scope for scope, pattern in _tm_patterns("keyword") + _tm_patterns("block")
              if re.search(pattern, f" {word} X ")]
    assert scopes and all(s.split(".")[0] in ("storage", "keyword", "constant") for s in scopes), (word, scopes)


@pytest.mark.parametrize("symbol", sorted(SYMBOLS))
def test_every_operator_is_highlighted(symbol: str) -> None:
    tokens = [(t, v) for t, v in get_lexer_by_name("arch").get_tokens(symbol) if t not in Whitespace]
    assert [v for _, v in tokens] == [symbol] and (tokens[0][0] in Operator or tokens[0][0] in Punctuation), tokens
    found = [scope for scope, pattern in _tm_patterns("operator") + _tm_patterns("punctuation")
             if (m := re.match(pattern, symbol)) and m.group(0) == symbol]
    assert found, f"the TextMate grammar has no operator or punctuation pattern for {symbol!r}"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.arch")) + sorted((ROOT / "dsl" / "stdlib").glob("*.arch")),
                         ids=lambda p: p.name)
def test_every_example_highlights_without_errors(path: pathlib.Path) -> None:
    lexer = get_lexer_for_filename(path.name)
    tokens = list(lexer.get_tokens(path.read_text()))
    assert not [v for t, v in tokens if t in Error]
    assert "".join(v for _, v in tokens) == path.read_text() + ("" if path.read_text().endswith("\n") else "\n")


def test_the_vscode_extension_declares_the_language() -> None:
    package = json.loads((ROOT / "editors" / "vscode" / "package.json").read_text())
    language = package["contributes"]["languages"][0]
    config = json.loads((ROOT / "editors" / "vscode" / language["configuration"]).read_text())
    assert language["extensions"] == [".arch"] and config["comments"]["lineComment"] == "#"
    assert package["contributes"]["grammars"][0]["scopeName"] == TM["scopeName"] == "source.arch"
    assert {tuple(b) for b in config["brackets"]} == {("{", "}"), ("[", "]"), ("(", ")")}
