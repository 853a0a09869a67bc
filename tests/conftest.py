"""Shared test fixtures: paths to the examples and to the reference figures."""

from __future__ import annotations

import json
import os
import pathlib
import sys

# Generated Triton kernels run on the CPU under the interpreter. Set before anything imports triton:
# triton reads it once (a module that imports torch may import triton during collection).
os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402

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
