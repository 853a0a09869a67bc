"""Shared test fixtures: paths to the examples and to the reference figures."""

from __future__ import annotations

import json
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# CI clones the project next to shared/, as the developers' checkouts are.
REFERENCE = ROOT.parent / "shared" / "reference"
# The hand-written torch references (benchmarks/torch_references.py) serve the tests too.
sys.path.insert(0, str(ROOT / "benchmarks"))


def _load(name: str) -> dict:
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"reference file {path} is not present")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def figures() -> dict:
    return _load("figures.json")


@pytest.fixture(scope="session")
def state_dict_keys() -> dict:
    return _load("state_dict_keys.json")
