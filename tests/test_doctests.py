"""The runnable examples in the package's docstrings stay true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import tomllib
from pathlib import Path

import pytest

PACKAGES = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]


def _modules() -> list[str]:
    """Every module of every package that pyproject.toml installs."""
    names = set()
    for pkg in PACKAGES:
        path = importlib.import_module(pkg).__path__
        names.update(m.name for m in pkgutil.iter_modules(path, pkg + ".") if not m.ispkg)
    return sorted(names)


MODULES = _modules()


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
