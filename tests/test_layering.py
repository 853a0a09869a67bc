"""The import graph follows the documented stage order (ARCHITECTURE.md).

Each folder is a stage; a module may import its own stage and earlier ones,
never a later one, so no two packages import each other. Every import counts,
at the top of a file or inside a function. `archc.diagnostics` is the
foundation every stage reports through.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The stages in the order data flows through them (ARCHITECTURE.md says what each holds).
STAGES = ["grammar", "shapes", "ops", "ir", "dsl", "analysis", "passes", "codegen", "archc"]
FOUNDATION = {"archc.diagnostics"}
# sympy stays behind shapes/: the stages after it see ints and printed expressions.
SYMPY_ALLOWED = {"shapes"}
# Code generation, analysis and passes read the typed graph, never the AST.
NO_AST = {"analysis", "passes", "codegen"}


def _stage_of(module: str) -> str | None:
    if module in FOUNDATION:
        return None
    parts = module.split(".")
    if parts[0] != "archc":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else "archc"


def _imports(path: pathlib.Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names if node.module == "archc"]
    return out


def _files() -> list[tuple[str, pathlib.Path]]:
    return [(stage, p) for stage in STAGES for p in sorted((ROOT / stage).rglob("*.py"))]


@pytest.mark.parametrize("stage, path", _files(), ids=lambda x: str(x.relative_to(ROOT)) if isinstance(x, pathlib.Path)
                         else x)
def test_no_module_imports_a_later_stage(stage: str, path: pathlib.Path) -> None:
    me = STAGES.index(stage)
    where = path.relative_to(ROOT)
    bad = []
    for line, module in _imports(path):
        other = _stage_of(module)
        if other is not None and STAGES.index(other) > me:
            bad.append(f"{where}:{line} imports {module} (stage {other} comes after {stage})")
        if module.split(".")[0] == "sympy" and stage not in SYMPY_ALLOWED:
            bad.append(f"{where}:{line} imports sympy, which stays behind shapes/")
        if stage in NO_AST and other in ("grammar", "dsl"):
            bad.append(f"{where}:{line} imports {module}: {stage} reads the typed graph, not the AST")
    assert not bad, "\n".join(bad)


def test_the_checker_catches_a_violation(tmp_path: pathlib.Path) -> None:
    """The walk sees imports inside functions too (a test that could not fail would prove nothing)."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from archc.codegen.torch import generate\n    import sympy\n")
    assert (2, "archc.codegen.torch") in _imports(f) and (3, "sympy") in _imports(f)
    assert _stage_of("archc.codegen.torch") == "codegen" and _stage_of("archc.diagnostics") is None


def test_every_package_is_a_stage() -> None:
    import tomllib
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    top = {p.split(".")[1] if "." in p else "archc" for p in packages}
    assert top == set(STAGES), f"packages {sorted(top)} vs stages {STAGES}"
