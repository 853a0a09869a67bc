"""Saved activations through random chains of layout changes, against PyTorch (the property behind
archc's layout tracking, analysis/memory.py and ops/saves.py): whether a reshape, a linear, an einsum
or a norm keeps a view of its input's storage or a copy depends on how the input lies in memory, after
permutes, slices, split pieces, merges, moved norms and pointwise ops. Each program is a chain of such
steps after a linear (so that everything records for backward), ended by an op that reads the layout
(a reshape, a linear, an einsum, attention: the flash kernel or the composite, multihead attention's
in-projection); the bytes autograd keeps (tests/test_memory.py's `measure`) equal archc's prediction.
"""

from __future__ import annotations

import random

import pytest
from test_memory import measure

import archc

torch = pytest.importorskip("torch")

SEEDS = range(100)


def _step(rng: random.Random, names: list[str], sizes: dict[str, int], v: str, new: str
          ) -> tuple[str | None, list[str], dict[str, int]]:
    """One random step from `v` (axes `names` of `sizes`) to `new`: its line, the new axes and sizes."""
    kind = rng.choice(["permute", "slice", "split", "merge", "gelu", "relu", "mul", "linear", "layernorm",
                       "rmsnorm", "batchnorm", "groupnorm", "avgpool"])
    axis = rng.choice(names)
    n = sizes[axis]
    if kind == "permute":
        order = rng.sample(names, len(names))
        return f'{new} = rearrange({v}, "{" ".join(names)} -> {" ".join(order)}")', order, sizes
    if kind == "slice" and n > 1:
        start = rng.randint(0, n - 2)
        stop, step = rng.randint(start + 1, n), rng.choice([1, 1, 2])
        return (f"{new} = slice({v}, over = {axis}, start = {start}, stop = {stop}, step = {step})", names,
                {**sizes, axis: len(range(start, stop, step))})
    if kind == "split" and n % 2 == 0:
        return (f"{new}a, {new}b = split({v}, axis = {axis}, parts = 2)\n  {new} = {new}{rng.choice('ab')}", names,
                {**sizes, axis: n // 2})
    if kind == "merge" and len(names) > 2:
        i = rng.randrange(len(names) - 1)
        m = f"m{new}"
        out = names[:i] + [m] + names[i + 2:]
        pattern = " ".join(names[:i] + [f"{m}=({names[i]} {names[i + 1]})"] + names[i + 2:])
        return (f'{new} = rearrange({v}, "{" ".join(names)} -> {pattern}")', out,
                {**sizes, m: sizes[names[i]] * sizes[names[i + 1]]})
    if kind in ("gelu", "relu"):
        return f"{new} = {kind}({v})", names, sizes
    if kind == "mul":
        return f"{new} = {v} * {v}", names, sizes
    if kind == "linear":
        return f"{new} = linear({v}, {axis} -> {n})", names, sizes
    if kind in ("layernorm", "rmsnorm"):
        over = rng.sample(names, rng.randint(1, 2))
        return f"{new} = {kind}({v}, over = [{', '.join(over)}])", names, sizes
    if kind in ("batchnorm", "groupnorm") and axis != names[0]:
        groups = f"groups = {2 if n % 2 == 0 else 1}, " if kind == "groupnorm" else ""
        return f"{new} = {kind}({v}, {groups}axis = {axis})", names, sizes
    if kind == "avgpool" and 3 <= len(names) <= 5 and all(sizes[a] > 1 for a in names[2:]):
        return f"{new} = avgpool({v}, k = 2, stride = 1)", names, {**sizes, **{a: sizes[a] - 1 for a in names[2:]}}
    return None, names, sizes


def program(seed: int) -> str:
    rng = random.Random(seed)
    names, sizes = ["b", "c", "h", "w"], {"b": 2, "c": 4, "h": 6, "w": 5}
    lines, v = ["p = linear(x, w -> 5)"], "p"
    for k in range(rng.randint(1, 5)):
        line, names, sizes = _step(rng, names, sizes, v, f"s{k}")
        if line is not None:
            lines.append(line)
            v = f"s{k}"
    end = rng.choice(["merge", "linear", "einsum", "attention", "multihead_attention"])
    seq, chan = rng.sample(names, 2) if len(names) > 1 else (names[0], names[0])
    rest = [a for a in names if a not in (seq, chan)]
    if end == "attention" and seq != chan and sizes[seq] > 1 and sizes[chan] > 1:  # (a head of 1: not here)
        lines.append(f"e = attention({v}, {v}, {v}, seq = {seq}, chan = {chan})")
    elif end == "multihead_attention" and rest and sizes[seq] > 1 and sizes[chan] % 2 == 0:
        lines.append(f'm = rearrange({v}, "{" ".join(names)} -> z=({" ".join(rest)}) {seq} {chan}")')
        lines.append(f"e = multihead_attention(m, heads = 2{rng.choice(['', ', dropout = 0.5'])})")
    elif end == "merge" and len(names) > 1:
        i = rng.randrange(len(names) - 1)
        pattern = " ".join(names[:i] + [f"z=({names[i]} {names[i + 1]})"] + names[i + 2:])
        lines.append(f'e = gelu(rearrange({v}, "{" ".join(names)} -> {pattern}"))')
    elif end == "einsum":
        lines.append("q = linear(x, w -> 5)")
        other = rng.sample(["b", "c", "h", "w"], 4)
        lines.append(f'r = rearrange(q, "b c h w -> {" ".join(other)}")')
        shared = [a for a in names if a in other and sizes[a] == {"b": 2, "c": 4, "h": 6, "w": 5}[a]]
        if not shared:
            lines.append(f"e = gelu({v})")
        else:
            axis = rng.choice(shared)
            left = [a for a in names if a != axis]
            right = [a if a in shared else a + "2" for a in other]
            result = left + [a for a in right if a not in left and a != axis]
            renames = ", ".join(f"{a} -> {a}2" for a in other if a not in shared)
            if renames:
                lines.append(f"r = rename(r, {renames})")
            lines.append(f'e = einsum({v}, r, spec = "{" ".join(names)}, {" ".join(right)} -> {" ".join(result)}")')
    else:
        lines.append(f"e = linear({v}, {rng.choice(names)} -> 3)")
    body = "\n  ".join(lines)
    return f"block Chain() {{\n  in x: [b = 2, c = 4, h = 6, w = 5]\n  {body}\n  out e\n}}\n"


@pytest.mark.parametrize("seed", SEEDS)
def test_saved_activations_of_a_random_layout_chain(seed: int) -> None:
    model = archc.loads(program(seed), name=f"chain{seed}.arch")
    try:
        model.check()
    except archc.ArchError:
        pytest.skip("the chain does not check (an einsum of axes that do not meet, a group count)")
    measured, _ = measure(model, {})
    assert model.memory().saved == measured, program(seed)
