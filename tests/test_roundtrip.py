"""Printer/parser round trips: formatting an AST and parsing it back gives the same AST."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archc.diagnostics import Span
from archc.grammar import ast
from archc.grammar.format import expr, format_module
from archc.grammar.parser import parse

from conftest import EXAMPLES, ROOT

SOURCES = sorted(EXAMPLES.glob("*.arch")) + sorted((ROOT / "dsl" / "stdlib").glob("*.arch")) + \
    sorted((ROOT / "tests" / "data").glob("*.arch"))
Z = Span("z", 0, 0, 0, 0)


def strip(x):
    """The AST with every span replaced by one constant, for comparison."""
    if isinstance(x, Span):
        return Z
    if dataclasses.is_dataclass(x):
        return type(x)(**{f.name: strip(getattr(x, f.name)) for f in dataclasses.fields(x)})
    if isinstance(x, tuple):
        return tuple(strip(i) for i in x)
    return x


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_files_round_trip(src) -> None:
    m = parse(src.read_text(), "f.arch")
    text = format_module(m)
    again = parse(text, "f.arch")
    assert strip(again) == strip(m)
    assert format_module(again) == text  # idempotent


names = st.sampled_from(["x", "y", "chan", "H", "d_model", "k2"])
leaves = st.one_of(
    st.builds(ast.Number, st.integers(0, 10**6), st.just(Z)),
    st.builds(ast.Number, st.floats(0, 100, allow_nan=False).map(lambda f: round(f, 3)), st.just(Z)),
    st.builds(ast.Var, names, st.just(Z)),
    st.builds(ast.Bool, st.booleans(), st.just(Z)),
    st.builds(ast.NoneLit, st.just(Z)),
    st.builds(ast.String, st.text("ab c_{}\"\\", max_size=6), st.just(Z)),
)


def _tree(children):
    binop = st.builds(ast.BinOp, st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "==", "<", "and", "or"]),
                      children, children, st.just(Z))
    unary = st.builds(ast.UnaryOp, st.sampled_from(["-", "not"]), children, st.just(Z))
    cond = st.builds(ast.Cond, children, children, children, st.just(Z))
    index = st.builds(ast.Index, children, children, st.just(Z))
    lst = st.builds(ast.ListExpr, st.lists(children, max_size=3).map(tuple), st.just(Z))
    call = st.builds(ast.Call, st.sampled_from(["relu", "conv", "std.Block"]),
                     st.lists(st.builds(ast.PosArg, children, st.just(Z)), max_size=3).map(tuple),
                     st.just(Z), st.just(Z))
    part = st.one_of(st.none(), children)
    axis_range = st.builds(ast.AxisSlice, names, part, part, part, st.just(True), st.just(Z))
    axis_position = st.builds(ast.AxisSlice, names, children, st.none(), st.none(), st.just(False), st.just(Z))
    slicing = st.builds(ast.Slicing, children, st.lists(st.one_of(axis_range, axis_position), min_size=1,
                                                         max_size=3).map(tuple), st.just(Z))
    return st.one_of(binop, unary, cond, index, lst, call, slicing)


expressions = st.recursive(leaves, _tree, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(expressions)
def test_expressions_round_trip(e) -> None:
    text = expr(e)
    m = parse(f"block B() {{ y = {text} }}", "e.arch")
    let = m.blocks[0].body[0]
    assert strip(let.value) == strip(_normalize(e)), text


@settings(max_examples=50, deadline=None)
@given(expressions, st.sampled_from(["layer{i}", "pre-logits", "fc"]))
def test_named_let_round_trips(e, name) -> None:
    """`y = ... as "name"`: the layer's name after the value."""
    text = format_module(parse(f"block B() {{ y = {expr(e)} as \"{name}\"\n out {expr(e)} as \"{name}\" }}", "e.arch"))
    let, out = parse(text, "e.arch").blocks[0].body
    assert let.name == name and strip(let.value) == strip(_normalize(e)), text
    assert out.name == name and strip(out.values[0]) == strip(_normalize(e)), text


def _normalize(e):
    """Calls' positional arguments are wrapped in PosArg with the span of the value."""
    if isinstance(e, ast.Call):
        return dataclasses.replace(e, args=tuple(dataclasses.replace(a, value=_normalize(a.value))
                                                 for a in e.args))
    if dataclasses.is_dataclass(e) and not isinstance(e, Span):
        kw = {}
        for f in dataclasses.fields(e):
            v = getattr(e, f.name)
            if isinstance(v, tuple):
                kw[f.name] = tuple(_normalize(i) if dataclasses.is_dataclass(i) else i for i in v)
            elif dataclasses.is_dataclass(v) and not isinstance(v, Span):
                kw[f.name] = _normalize(v)
            else:
                kw[f.name] = v
        return type(e)(**kw)
    return e
