"""Primitive operations: one definition per op, holding every facet (see registry.py).

Importing this package imports every module in it, so every `define(...)` has
run and `registry.Op` knows every op: a new module here is a new op.
"""

import importlib as _importlib
import pkgutil as _pkgutil

for _module in sorted(m.name for m in _pkgutil.iter_modules(__path__)):
    _importlib.import_module(f"{__name__}.{_module}")
