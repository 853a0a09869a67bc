"""Type-check the package `archc` as it installs, with the mypy settings of pyproject.toml.

The stage folders sit at the top level of the repository (`grammar/`, `ops/`, ...) and install
as subpackages of `archc` through `[tool.setuptools.package-dir]`. Run on the folders, mypy would
see top-level packages (`ops.registry`) while the code imports `archc.ops.registry`, so every
`archc.*` import would go unresolved. This script builds, in a temporary directory, the tree the
install produces (`archc/ops/registry.py`, ...), made of symlinks to the source files and laid out
from the mapping in pyproject.toml, runs mypy on package `archc` there, and prints mypy's messages
with the repository's own paths.

Usage: `python3 tools/typecheck.py [extra mypy arguments]`; the exit status is mypy's.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import tempfile
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"


def package_dirs(pyproject: pathlib.Path = PYPROJECT) -> dict[str, pathlib.Path]:
    """Each installed package and the folder it comes from, as pyproject.toml maps them.

    >>> package_dirs()["archc.ops"].relative_to(ROOT).as_posix()
    'ops'
    """
    config = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["setuptools"]
    mapping = config.get("package-dir", {})
    out = {}
    for package in config["packages"]:
        # A package without its own entry lies inside its parent's folder, as setuptools has it.
        parts = package.split(".")
        for i in range(len(parts), 0, -1):
            prefix = ".".join(parts[:i])
            if prefix in mapping:
                out[package] = ROOT.joinpath(mapping[prefix], *parts[i:])
                break
        else:
            out[package] = ROOT.joinpath(*parts)
    return out


def build_tree(tmp: pathlib.Path, packages: dict[str, pathlib.Path]) -> dict[str, str]:
    """Lay out the installed tree under `tmp`: one real folder per package, a symlink per module.

    Returns the path of each link, relative to `tmp`, mapped to its source relative to the repository.
    """
    links = {}
    for package, source in sorted(packages.items()):
        target = tmp.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for module in sorted([*source.glob("*.py"), *source.glob("*.pyi"), *source.glob("py.typed")]):
            (target / module.name).symlink_to(module)
            links[(target / module.name).relative_to(tmp).as_posix()] = module.relative_to(ROOT).as_posix()
    return links


def main(argv: list[str]) -> int:
    packages = package_dirs()
    root_package = min(packages, key=len)
    with tempfile.TemporaryDirectory(prefix="archc-typecheck-") as tmp:
        links = build_tree(pathlib.Path(tmp), packages)
        command = [sys.executable, "-m", "mypy", "--config-file", str(PYPROJECT),
                   "--cache-dir", str(ROOT / ".mypy_cache"), *argv, "-p", root_package]
        run = subprocess.run(command, cwd=tmp, capture_output=True, text=True,
                             env={**os.environ, "MYPYPATH": ""})
    # Messages name the linked paths; show the files one edits instead.
    pattern = re.compile(r"^(\S+?\.pyi?)(?=:)", re.M)
    for stream, text in ((sys.stdout, run.stdout), (sys.stderr, run.stderr)):
        stream.write(pattern.sub(lambda m: links.get(m.group(1), m.group(1)), text))
    return run.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
