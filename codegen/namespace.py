"""One namespace hands out every Python identifier that generated code uses.

Names from a `.arch` file are already identifiers (the grammar admits only
`[A-Za-z_][A-Za-z0-9_]*`), but they may be Python keywords (`lambda`), shadow a
builtin or a name the generated module imports (`sum`, `torch`, `F`), or
collide with each other (two blocks called `Block` from two files). A
`Namespace` maps each requested name to a unique, safe identifier, stably: the
same request (by key) always gets the same answer, and answers depend only on
the order of requests, so generated code is reproducible.

Layer names are different: they are state_dict keys and must stay exactly as
written, so `check_attribute` validates them instead of renaming them.

>>> ns = Namespace(reserved={"torch", "F"})
>>> ns.name("a", "lambda"), ns.name("b", "F"), ns.name("c", "x"), ns.name("d", "x"), ns.name("a", "zzz")
('lambda_', 'F_', 'x', 'x_2', 'lambda_')
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Hashable, Iterable

# What a generated module binds at its top level besides its classes.
MODULE_NAMES = frozenset({"torch", "nn", "F", "OrderedDict", "annotations", "math"})

# Attributes of nn.Module / nn.Sequential / nn.ModuleList (torch 2.x, public ones) and
# the instance attribute `training`: a layer with one of these names would break the module.
MODULE_ATTRIBUTES = frozenset({
    "T_destination", "add_module", "append", "apply", "bfloat16", "buffers", "call_super_init",
    "children", "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extend", "extra_repr",
    "float", "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "half",
    "insert", "ipu", "load_state_dict", "modules", "mtia", "named_buffers", "named_children",
    "named_modules", "named_parameters", "parameters", "pop", "register_backward_hook",
    "register_buffer", "register_forward_hook", "register_forward_pre_hook",
    "register_full_backward_hook", "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module",
    "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
    "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to",
    "to_empty", "train", "training", "type", "xpu", "zero_grad",
})

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def is_safe(name: str, reserved: Iterable[str] = ()) -> bool:
    return (bool(_IDENT.match(name)) and not keyword.iskeyword(name) and not keyword.issoftkeyword(name)
            and name not in dir(builtins) and name not in reserved)


class Namespace:
    """Unique, safe identifiers for keys, from hints."""

    def __init__(self, reserved: Iterable[str] = (), parent: Namespace | None = None):
        self._reserved = set(reserved) | set(MODULE_NAMES)
        self._parent = parent
        self._used: set[str] = set()
        self._given: dict[Hashable, str] = {}

    def taken(self, name: str) -> bool:
        return (name in self._used or name in self._reserved
                or (self._parent is not None and self._parent.taken(name)))

    def name(self, key: Hashable, hint: str) -> str:
        """The identifier for `key`, made from `hint` the first time it is asked for."""
        if key in self._given:
            return self._given[key]
        base = re.sub(r"[^A-Za-z0-9_]", "_", hint) or "v"
        if base[0].isdigit():
            base = "_" + base
        if not is_safe(base, self._reserved):
            base += "_"  # lambda -> lambda_, sum -> sum_, F -> F_
        if self.taken(base):
            n = 2
            while self.taken(f"{base}_{n}"):
                n += 1
            base = f"{base}_{n}"
        self._used.add(base)
        self._given[key] = base
        return base

    def release(self, key: Hashable) -> None:
        """Forget `key`; its identifier may be handed out again (a dead local variable)."""
        name = self._given.pop(key, None)
        if name is not None:
            self._used.discard(name)


def check_attribute(name: str) -> str | None:
    """Why `name` cannot be a layer attribute of a generated nn.Module (None if it can)."""
    if keyword.iskeyword(name):
        return f"'{name}' is a Python keyword"
    if name.startswith("_"):
        return f"'{name}' starts with '_', which nn.Module keeps for itself"
    if name in MODULE_ATTRIBUTES:
        return f"'{name}' is an attribute of torch's nn.Module"
    return None


def check_step_name(name: str) -> str | None:
    """Why `name` cannot name a step of an nn.Sequential (None if it can)."""
    if "." in name or not name:
        return f"'{name}' is not a valid module name"
    if name in MODULE_ATTRIBUTES or name.startswith("_"):
        return f"'{name}' is an attribute of torch's nn.Module"
    return None
