"""benchmarks/fuzz.py (the long fuzz run) works end to end: a few cases of each kind, sorted into kinds."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _fuzz():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("fuzz_script", ROOT / "benchmarks" / "fuzz.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_script"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_cases_are_reproducible_and_sorted_into_kinds() -> None:
    fuzz = _fuzz()
    texts = [(str(p.relative_to(ROOT)), p.read_text()) for p in fuzz.sources()]
    assert fuzz._case(7, 1, texts) == fuzz._case(7, 1, texts)  # case i is always the same
    kinds = [fuzz.run_case(i, 2024, texts, 15.0, True)[0] for i in range(8)]
    assert all(k.startswith(("ok", "located-error")) for k in kinds), kinds
    assert any(k.startswith("ok") for k in kinds)
