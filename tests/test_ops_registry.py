"""Every primitive op is defined once, with every facet: the registry is complete and consistent."""

from __future__ import annotations

import dataclasses
import inspect
import pathlib
from typing import TypeVar

import pytest

from archc.ops.facets import Glyph, TorchLowering
from archc.ops.registry import BY_NAME, Attrs, Op, OpDef, Trait

ROOT = pathlib.Path(__file__).resolve().parents[1]
OPS = sorted(Op, key=lambda o: o.name)
KINDS = {"input", "param", "linear", "conv", "conv_t", "pool", "reduce", "norm", "func", "softmax", "dropout",
         "join", "bar", "einsum", "attention", "embed", "identity"}
ARG_KINDS = {"map", "axis", "axes", "size", "sizes", "ints", "pad", "bool", "float", "str", "number", "renames",
             "sizes_kw"}


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.name)
def test_every_op_has_every_facet(op: OpDef) -> None:
    assert getattr(Op, op.key) is op
    assert op.name and op.doc, "name and doc line"
    assert op.traits and all(isinstance(t, Trait) for t in op.traits), "traits"
    assert dataclasses.is_dataclass(op.attrs) and issubclass(op.attrs, Attrs), "typed attributes"
    assert op.attrs.__dataclass_params__.frozen, "attributes are immutable"  # type: ignore[attr-defined]
    assert all(p.kind in ARG_KINDS for p in op.params), "argument kinds binding understands"
    assert callable(op.cost), "cost rule"
    assert isinstance(op.glyph, Glyph) and op.glyph.kind in KINDS and op.glyph.symbol, "diagram glyph"
    assert isinstance(op.torch, TorchLowering), "PyTorch lowering"
    assert hasattr(op, "triton"), "Triton slot"
    assert op.saved_rule is not None and callable(op.saved_rule), "saves rule (what training keeps)"
    if op.callable:
        assert op.shape is not None and callable(op.shape), "shape rule"
        assert BY_NAME[op.name] is op
        assert op.torch.module is not None or op.torch.forward is not None, "PyTorch lowering"
    else:
        assert op.shape is None and op.name not in BY_NAME


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.name)
def test_rules_take_the_ops_own_attributes(op: OpDef) -> None:
    """Rule signatures name the op's attribute class (mypy checks them; this catches a rule reused wrongly)."""
    for rule in (op.shape, op.cost, op.torch.module, op.torch.forward, op.torch.call, op.saves):
        if rule is None:
            continue
        params = list(inspect.signature(rule).parameters.values())
        ann = (params[2] if params[0].name == "ctx" else params[0]).annotation  # the attributes argument
        if ann in ("Any", inspect.Parameter.empty) or not isinstance(ann, str) \
                or isinstance(getattr(inspect.getmodule(rule), ann, None), TypeVar):  # generic: mypy checks it
            continue
        names = {c.__name__ for c in op.attrs.__mro__}
        assert ann in names | {"Attrs"}, f"{op.name}: {rule.__name__} takes {ann}, not {op.attrs.__name__}"


def test_traits_are_consistent() -> None:
    for op in Op:
        if Trait.VIEW in op.traits:
            assert Trait.CONTRACTION not in op.traits and Trait.NORMALIZATION not in op.traits, op.name
        params = [p for p in op.params if p.name in ("bias", "affine")]
        if params and op.callable:
            assert Trait.PARAMETERS in op.traits, op.name


def test_each_op_is_defined_in_one_module() -> None:
    """The only op tables are the definitions: no module outside ops/ keys a dict by op."""
    offenders = []
    for folder in ("grammar", "shapes", "ir", "dsl", "analysis", "passes", "codegen", "archc"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            if "dict[Op," in text or "dict[OpDef" in text or "{Op." in text and ": " in text.split("{Op.")[1][:40]:
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"tables keyed by op outside ops/: {offenders}"
