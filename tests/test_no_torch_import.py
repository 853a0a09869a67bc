"""`archc check`, `archc flops`, `archc plan` and `archc memory` never import torch or triton (DESIGN.md), and
`archc flops` with concrete sizes does not import sympy or networkx either:
those imports are most of the start-up time that benchmarks/bench_flops.py
measures (sympy alone ~0.3 s), and a concrete count needs neither.

Each command runs in a fresh interpreter as `python -X importtime -m archc.cli`,
whose stderr lists every module the process imported.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESNET152 = ROOT / "benchmarks" / "resnet152.arch"
MINI = ROOT / "tests" / "data" / "mini_resnet.arch"
NEVER = ("torch", "triton")


def imported_modules(*args: str | pathlib.Path) -> set[str]:
    """Top-level names of every module `archc ARGS` imports; fails unless it exits 0."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "archc.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":  # the header line
                names.add(name.split(".")[0])
    assert "archc" in names, "importtime output was not understood"
    return names


@pytest.mark.parametrize("args", [
    ("check", RESNET152),
    ("check", RESNET152, "--symbolic"),
    ("check", RESNET152, "--json"),
    ("check", RESNET152, "--ir"),
    ("flops", RESNET152, "--json"),
    ("flops", RESNET152, "--symbolic"),
    ("flops", MINI, "--depth", "1", "--convention", "full"),
    ("plan", RESNET152, "--json"),
    ("plan", MINI, "--dtype", "bf16", "--device", "a100"),
    ("memory", RESNET152, "--json"),
    ("memory", MINI, "--symbolic", "--checkpoint", "layer1", "--dtype", "bf16", "--optimizer", "sgd"),
], ids=lambda a: " ".join(str(x.name) if isinstance(x, pathlib.Path) else x for x in a))
def test_check_flops_plan_and_memory_never_import_torch_or_triton(args):
    mods = imported_modules(*args)
    assert not mods & set(NEVER), f"archc {args[0]} imported {sorted(mods & set(NEVER))}"


@pytest.mark.parametrize("path", [RESNET152, MINI], ids=lambda p: p.name)
def test_concrete_flops_imports_neither_sympy_nor_networkx(path):
    mods = imported_modules("flops", path, "--json")
    assert "lark" in mods  # the parser did run in this process
    assert "sympy" not in mods, "a module on the concrete path imports sympy at its top"
    assert "networkx" not in mods, "a module on the check/flops path imports networkx at its top"


def test_symbolic_flops_does_import_sympy():
    # The other side of the test above: the detector sees sympy when it is used.
    assert "sympy" in imported_modules("flops", MINI, "--symbolic", "--json")


def test_parser_tables_are_cached_and_a_broken_cache_is_rebuilt(tmp_path):
    """lark's LALR tables are kept in $XDG_CACHE_HOME/archc (building them costs ~0.1 s a
    process); a damaged cache file changes nothing but the time."""
    env = {k: v for k, v in os.environ.items() if k != "XDG_CACHE_HOME"}
    env["XDG_CACHE_HOME"] = str(tmp_path)

    def flops() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "archc.cli", "flops", str(MINI), "--json"],
                              capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)

    first = flops()
    assert first.returncode == 0, first.stderr
    (cache,) = (tmp_path / "archc").iterdir()
    good = cache.read_bytes()
    assert len(good) > 1000
    cache.write_bytes(good[: len(good) // 2])  # as if two processes raced, or the disk filled up
    second = flops()
    assert second.returncode == 0 and second.stderr == ""
    assert second.stdout == first.stdout
    with cache.open("rb") as f:  # saved again, whole: lark's grammar hash, then two pickles
        assert f.readline() == good.split(b"\n", 1)[0] + b"\n"
        pickle.load(f)
        pickle.load(f)
        assert f.read() == b""
