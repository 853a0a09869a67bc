"""The mypy configuration keeps the settings that make type checking mean something.

CI type-checks with `python3 tools/typecheck.py`, which runs mypy on package `archc` laid out as it
installs. These tests read pyproject.toml only (no mypy run): bodies of unannotated functions are
checked, the IR and the op tables are strict (so a shape, cost or lowering rule with the wrong
signature is a type error), and only third-party modules may be missing (a missing archc module is
an error, not a silent `Any`).
"""

from __future__ import annotations

import pathlib
import sys
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
MYPY = CONFIG["tool"]["mypy"]
STRICT_FLAGS = ["disallow_untyped_defs", "disallow_incomplete_defs", "disallow_any_generics", "warn_return_any",
                "disallow_untyped_calls"]


def _overrides() -> list[tuple[list[str], dict[str, object]]]:
    out = []
    for o in MYPY.get("overrides", []):
        modules = o["module"] if isinstance(o["module"], list) else [o["module"]]
        out.append((modules, {k: v for k, v in o.items() if k != "module"}))
    return out


def _setting(module: str, key: str) -> object:
    """The value mypy uses for `key` in `module`: the last matching override, else the global one."""
    value = MYPY.get(key)
    for patterns, settings in _overrides():
        if key in settings and any(p == module or (p.endswith(".*") and (module + ".").startswith(p[:-1]))
                                   for p in patterns):
            value = settings[key]
    return value


def test_every_function_is_annotated_and_checked() -> None:
    assert MYPY.get("check_untyped_defs") is True
    assert MYPY.get("disallow_untyped_defs") is True
    assert MYPY.get("disallow_incomplete_defs") is True


def test_no_global_ignore_missing_imports() -> None:
    assert not MYPY.get("ignore_missing_imports", False)
    assert "files" not in MYPY, "targets come from tools/typecheck.py (package archc as installed)"


def test_only_third_party_modules_may_be_missing() -> None:
    for patterns, settings in _overrides():
        if settings.get("ignore_missing_imports"):
            assert not [p for p in patterns if p == "archc" or p.startswith("archc.")], patterns


@pytest.mark.parametrize("module", ["archc.ir.graph", "archc.ir.lint", "archc.ops.registry", "archc.ops.conv"])
@pytest.mark.parametrize("flag", STRICT_FLAGS)
def test_ir_and_ops_are_strict(module: str, flag: str) -> None:
    assert _setting(module, flag) is True


def test_nothing_switches_checking_off_for_ir_and_ops() -> None:
    for module in ("archc.ir.graph", "archc.ops.registry"):
        assert not _setting(module, "ignore_errors")
        assert _setting(module, "check_untyped_defs") is True


def test_typecheck_lays_out_the_installed_package() -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import typecheck
    finally:
        sys.path.remove(str(ROOT / "tools"))
    dirs = typecheck.package_dirs()
    mapping = CONFIG["tool"]["setuptools"]["package-dir"]
    assert {p: d.relative_to(ROOT).as_posix() for p, d in dirs.items() if p in mapping} == mapping
    assert set(dirs) == set(CONFIG["tool"]["setuptools"]["packages"])
