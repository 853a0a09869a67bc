"""Training memory: parameters, gradients, optimizer state and the activations backward keeps.

`training_memory(graph, optimizer)` walks a typed graph as the generated PyTorch module
runs it in training mode and applies each op's `saves` rule (ops/saves.py; the table is in
docs/costs.md). It follows storages, not values: a view shares its base's storage, so
an activation two ops keep (or a view of it) counts once, as PyTorch holds it once.
Parameters and buffers an op keeps are state, counted apart. Everything is a `Size`:
an int at concrete sizes, a closed form in the free sizes when the graph is symbolic.

The model (docs/costs.md, "Training memory"):

  parameters   every learned tensor at the compute dtype
  master       an fp32 copy of them when computing in bf16/f16 (mixed precision), else 0
  gradients    one per learned element at the compute dtype
  optimizer    fp32 state (at the parameters' dtype when that is wider): sgd none,
               momentum one buffer, adam/adamw two, plus adam's fp32 step count per tensor
  buffers      running statistics and other state, at their dtypes
  saved        the distinct storages the ops keep for backward
  peak         all of the above + the largest transient: the largest sum of one op's
               output and input bytes (backward holds their gradients together)

>>> import archc
>>> g = archc.loads('block B() { in x: [n = 4, c = 8]\\n h = linear(x, c -> 16)\\n out relu(h) }').check().graph
>>> m = training_memory(g, "adam")
>>> m.params, m.grads, m.optimizer_state, m.saved
(576, 576, 1160, 384)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from archc.diagnostics import NO_SPAN, ArchError, Diagnostic, did_you_mean
from archc.ir.graph import Graph, Node
from archc.ops.facets import Saved
from archc.ops.registry import Op, Trait
from archc.shapes import sizes as S
from archc.shapes.sizes import Size
from archc.shapes.types import DTYPES, TensorType, TupleType

OPTIMIZERS = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}
"""State tensors per parameter the optimizer keeps (torch.optim: SGD, SGD(momentum=...), Adam, AdamW)."""

Key = tuple[int, int]  # a storage: (node id, 0) for a node's output, (node id, k) for its k-th kept tensor


@dataclasses.dataclass
class OpMemory:
    """One op: the bytes it keeps for backward (`kept`, each storage once) and those no earlier op keeps
    (`saved`: summed over the ops, the total)."""

    name: str
    op: str
    node: Node
    where: str  # the module path (or block scope) the op belongs to
    kept: Size
    saved: Size
    output: Size  # bytes of its output


@dataclasses.dataclass
class Checkpoint:
    """Activation checkpointing of the block instances at `paths`: they keep only their inputs."""

    block: str
    paths: list[str]
    saved: Size  # the saved activations with checkpointing
    saving: Size  # what checkpointing saves
    peak: Size


@dataclasses.dataclass
class Memory:
    graph: Graph
    optimizer: str
    dtype: str
    params: Size
    master: Size
    grads: Size
    optimizer_state: Size
    buffers: Size
    saved: Size
    transient: Size
    transient_op: str
    peak: Size
    ops: list[OpMemory]
    checkpoint: Checkpoint | None = None
    keys: dict[int, set[Key]] = dataclasses.field(default_factory=dict, repr=False)
    sizes: dict[Key, Size] = dataclasses.field(default_factory=dict, repr=False)
    state: set[Key] = dataclasses.field(default_factory=set, repr=False)

    @property
    def state_bytes(self) -> Size:
        return S.total([self.params, self.master, self.grads, self.optimizer_state, self.buffers])

    @property
    def values(self) -> dict[str, int]:
        return {k: v for k, v in self.graph.sizes.items() if v is not None}

    def value(self, x: Size) -> int | None:
        return S.evaluate(x, self.values)


def location(n: Node) -> str:
    """The module path an op belongs to: its own (a layer) or its block's scope."""
    return n.path if n.path is not None else n.scope


def inside(where: str, block: str) -> bool:
    return where == block or where.startswith(block + ".")


Layout = tuple[tuple[int, ...], frozenset[int], bool]  # memory order, loose axes, packed (ops/facets.py, Saved)


class _Ctx:
    def __init__(self, grads: tuple[bool, ...], contiguous: tuple[bool, ...],
                 orders: tuple[tuple[int, ...] | None, ...], sources: tuple[int, ...],
                 layouts: tuple[Layout | None, ...]):
        self.grads = grads
        self.contiguous = contiguous
        self.orders = orders
        self.sources = sources
        self.layouts = layouts


def _ndim(t: Any) -> int:
    """The axes of a tensor, or of the first tensor of a tuple (a split's pieces)."""
    if isinstance(t, TupleType):
        return _ndim(t.items[0]) if t.items else 0
    return len(t.axes) if isinstance(t, TensorType) else 0


def _layout(saved: Saved, ndim: int) -> Layout | None:
    if saved.loose or not saved.packed or saved.contiguous or saved.order is not None:
        if saved.contiguous and saved.packed:
            return (tuple(range(ndim)), frozenset(), True)
        return (saved.order or tuple(range(ndim)), saved.loose, saved.packed)
    return None


def _float(t: Any) -> bool:
    if isinstance(t, TensorType):
        return DTYPES[t.dtype].kind in ("float", "complex")
    if isinstance(t, TupleType):
        return any(_float(x) for x in t.items)
    return False


def training_memory(graph: Graph, optimizer: str = "adam", checkpoint: str | None = None,
                    paths: list[str] | None = None) -> Memory:
    """The training memory of `graph` (already at its compute dtype) with `optimizer`; `checkpoint`
    names the block whose instances at `paths` are checkpointed (archc.api resolves the name)."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer {optimizer!r}: one of {', '.join(OPTIMIZERS)}")
    storage: dict[int, Key] = {}
    sizes: dict[Key, Size] = {}
    state: set[Key] = set()
    grads: dict[int, bool] = {}
    contiguous: dict[int, bool] = {}
    orders: dict[int, tuple[int, ...] | None] = {}
    layouts: dict[int, Layout | None] = {}
    keys: dict[int, set[Key]] = {}
    for n in graph:
        tensors: list[Any] = [graph.node(i).type for i in n.inputs]  # a tuple only into getitem
        learned = any(not p.buffer for p in n.params)
        if n.op is Op.INPUT or n.op is Op.PARAM or n.op is Op.BUFFER:
            key = (n.id, 0)
            storage[n.id], sizes[key] = key, n.type.nbytes()
            if n.op is not Op.INPUT:
                state.add(key)
            grads[n.id] = n.op is Op.PARAM
            contiguous[n.id], orders[n.id] = True, None
            layouts[n.id] = (tuple(range(_ndim(n.type))), frozenset(), True)
            continue
        rule = n.op.saved_rule
        assert rule is not None, n.op.name
        in_grads = tuple(grads[i] for i in n.inputs)
        ctx = _Ctx(in_grads, tuple(contiguous[i] for i in n.inputs), tuple(orders[i] for i in n.inputs), n.inputs,
                   tuple(layouts[i] for i in n.inputs))
        saved: Saved = rule(n.attrs, tensors, n.type, ctx)
        if saved.view is not None:
            storage[n.id] = storage[n.inputs[saved.view]]
        else:
            storage[n.id] = (n.id, 0)
            big = saved.storage
            sizes[(n.id, 0)] = n.type.nbytes() if big is None else S.mul(big.elements, DTYPES[big.dtype].bytes)
        dense = not saved.loose and saved.packed
        contiguous[n.id] = saved.contiguous and dense
        orders[n.id] = saved.order if dense else None  # `orders`: dense layouts only
        layouts[n.id] = _layout(saved, _ndim(n.type))
        if n.op.has(Trait.POINTWISE) and saved.view is None:
            # TensorIterator lays a pointwise result out as its first full-size input (empty_like), densely
            # in its order where it has gaps
            full = [i for i in n.inputs if graph.node(i).type == n.type]
            known = layouts[full[0]] if full else (tuple(range(_ndim(n.type))), frozenset(), True)
            if known is None:
                contiguous[n.id], orders[n.id], layouts[n.id] = False, None, None
            else:
                dense = known[0] == tuple(range(len(known[0])))
                contiguous[n.id], orders[n.id] = dense, None if dense else known[0]
                layouts[n.id] = (known[0], frozenset(), True)
        grads[n.id] = (any(in_grads) or learned) and _float(n.type)
        if not grads[n.id]:
            continue  # autograd records nothing for it
        kept = {storage[n.inputs[i]] for i in saved.inputs}
        if saved.output:
            kept.add(storage[n.id])
        for k, t in enumerate(saved.new, 1):
            sizes[(n.id, k)] = S.mul(t.elements, DTYPES[t.dtype].bytes)
            kept.add((n.id, k))
        keys[n.id] = kept - state
    return _assemble(graph, optimizer, storage, sizes, state, keys, checkpoint, paths or [])


def _bytes(keys: Iterable[Key], sizes: dict[Key, Size]) -> Size:
    return S.simplify_total(S.total([sizes[k] for k in sorted(keys)]))


def _largest(xs: list[tuple[Size, str]], values: dict[str, int]) -> tuple[Size, str]:
    """The largest figure (at the free sizes' values) and its label."""
    best: tuple[Size, str] = (0, "")
    best_v = -1
    for x, label in xs:
        v = S.evaluate(x, values)
        v = 0 if v is None else v
        if v > best_v:
            best, best_v = (x, label), v
    return best


def _assemble(graph: Graph, optimizer: str, storage: dict[int, Key], sizes: dict[Key, Size], state: set[Key],
              keys: dict[int, set[Key]], checkpoint: str | None, paths: list[str]) -> Memory:
    from archc.analysis.report import row_names
    names = row_names(graph)
    values = {k: v for k, v in graph.sizes.items() if v is not None}
    seen: set[Key] = set()
    ops: list[OpMemory] = []
    transients: list[tuple[Size, str]] = []
    for n in graph:
        if n.op is Op.INPUT or n.op is Op.PARAM or n.op is Op.BUFFER:
            continue
        kept = keys.get(n.id, set())
        new = kept - seen
        seen |= kept
        out = n.type.nbytes()
        ops.append(OpMemory(names[n.id], n.op.value, n, location(n), _bytes(kept, sizes), _bytes(new, sizes), out))
        ins = S.total([graph.node(i).type.nbytes() for i in n.inputs if storage[i] not in state])
        transients.append((S.add(out, ins), names[n.id]))
    saved = _bytes(seen, sizes)
    learned = [p for n in graph for p in n.params if not p.buffer]
    dtype = graph.dtype
    half = DTYPES[dtype].is_float and DTYPES[dtype].bytes < 4
    params = S.simplify_total(S.total([p.nbytes() for p in learned]))
    elements = S.simplify_total(S.total([p.numel() for p in learned]))
    master = S.mul(elements, 4) if half else 0
    per_state = 4 if half else max([DTYPES[p.dtype].bytes for p in learned], default=4)
    opt = S.mul(elements, OPTIMIZERS[optimizer] * per_state)
    if optimizer in ("adam", "adamw"):
        opt = S.add(opt, 4 * len(learned))  # torch.optim's per-parameter `step`, an fp32 scalar tensor
    buffers = S.simplify_total(S.total([p.nbytes() for n in graph for p in n.params if p.buffer]))
    transient, transient_op = _largest(transients, values)
    state_bytes = S.total([params, master, params, opt, buffers])
    peak = S.simplify_total(S.total([state_bytes, saved, transient]))
    mem = Memory(graph, optimizer, dtype, params, master, params, S.simplify_total(opt), buffers, saved,
                 transient, transient_op, peak, ops, None, keys, sizes, state)
    if checkpoint is not None:
        mem.checkpoint = _checkpoint(mem, storage, checkpoint, paths, state_bytes, values)
    return mem


def _checkpoint(mem: Memory, storage: dict[int, Key], block: str, paths: list[str], state_bytes: Size,
                values: dict[str, int]) -> Checkpoint:
    """Checkpointed instances keep only their inputs (torch.utils.checkpoint). Backward frees what each op
    keeps as it passes it, and runs a checkpointed instance's forward again when it reaches it: then what
    the instance keeps is held beside what the ops before it keep."""
    g = mem.graph
    kept: set[Key] = set()
    live: dict[str, set[Key]] = {}  # per instance: what is held while backward recomputes it
    inner: dict[str, set[Key]] = {p: set() for p in paths}
    for n in g:
        home = next((p for p in paths if inside(location(n), p)), None)
        if home is None:
            kept |= mem.keys.get(n.id, set())
            continue
        inner[home] |= mem.keys.get(n.id, set())
        for i in n.inputs:
            if next((p for p in paths if inside(location(g.node(i)), p)), None) != home \
                    and storage[i] not in mem.state:
                kept.add(storage[i])
        live[home] = set(kept)
    saved = _bytes(kept, mem.sizes)
    held, _ = _largest([(saved, "")] + [(_bytes(live[p] | inner[p], mem.sizes), p) for p in live], values)
    peak = S.simplify_total(S.total([state_bytes, held, mem.transient]))
    return Checkpoint(block, paths, saved, S.simplify_total(S.add(mem.saved, S.mul(-1, saved))), peak)


def resolve_block(graph: Graph, block: str) -> list[str]:
    """The module paths `--checkpoint BLOCK` names: one block instance (`features.3`), a sequence or list
    (`layers`), or a block's name (`InvertedResidual`: every outermost instance of it). A name that is
    none of these is an error at the entry block, with the nearest path or name suggested."""
    mods = graph.modules
    if block in mods and mods[block].kind != "op":
        return [block]
    named = [p for p, m in mods.items() if m.kind == "block" and m.name == block and p]
    outer = [p for p in named if not any(q != p and inside(p, q) for q in named)]
    if outer:
        return outer
    candidates = [p for p, m in mods.items() if m.kind != "op" and p] + \
        sorted({m.name for m in mods.values() if m.kind == "block"})
    span = next((m.span for p, m in mods.items() if not p), None) or \
        next((n.span for n in graph if n.op is Op.INPUT), NO_SPAN)
    raise ArchError([Diagnostic("error", "name", f"--checkpoint {block}: no block instance, sequence or "
                                f"block of that name in {graph.entry}{did_you_mean(block, candidates)}", span)])


def to_json(mem: Memory, layers: bool = True) -> dict[str, Any]:
    """The `archc memory --json` document (schema: docs/json.md)."""
    g = mem.graph

    def num(x: Size) -> int | None:
        return mem.value(x)

    totals = {"param_bytes": mem.params, "master_bytes": mem.master, "grad_bytes": mem.grads,
              "optimizer_bytes": mem.optimizer_state, "buffer_bytes": mem.buffers, "saved_bytes": mem.saved,
              "transient_bytes": mem.transient, "peak_bytes": mem.peak}
    doc: dict[str, Any] = {
        "entry": g.entry, "dtype": mem.dtype, "optimizer": mem.optimizer, "sizes": dict(g.sizes),
        "inputs": [{"name": g.node(i).attrs["name"], "type": str(g.node(i).type)} for i in g.inputs],
    }
    doc.update({k: num(v) for k, v in totals.items()})
    doc["transient_op"] = mem.transient_op
    doc.update({f"{k}_expr": S.to_str(v) for k, v in totals.items()})
    ck = mem.checkpoint
    doc["checkpoint"] = None if ck is None else {
        "block": ck.block, "paths": list(ck.paths), "saved_bytes": num(ck.saved), "saving_bytes": num(ck.saving),
        "peak_bytes": num(ck.peak), "saved_bytes_expr": S.to_str(ck.saved)}
    doc["blocks"] = [{"path": p, "block": name, "saved_bytes": num(b)} for p, name, b in blocks(mem)]
    if layers:
        doc["ops"] = [{"name": r.name, "op": r.op, "where": r.where, "file": r.node.span.file,
                       "line": r.node.span.line, "output": str(r.node.type), "kept_bytes": num(r.kept),
                       "saved_bytes": num(r.saved), "saved_bytes_expr": S.to_str(r.saved)} for r in mem.ops]
    return doc


def blocks(mem: Memory) -> list[tuple[str, str, Size]]:
    """(path, block name, saved bytes) of every block instance, sequence and list, in elaboration order:
    the bytes first kept by the ops inside it."""
    inner: dict[str, list[Size]] = {}  # module path -> what the ops inside it keep, in op order
    for r in mem.ops:  # each op counts for its path and every prefix of it: linear in the ops, not quadratic
        where = r.where
        while where:
            inner.setdefault(where, []).append(r.saved)
            where = where[:max(where.rfind("."), 0)]
    return [(path, info.name, S.simplify_total(S.total(inner.get(path, []))))
            for path, info in mem.graph.modules.items() if info.kind != "op" and path]


def groups(mem: Memory, depth: int) -> list[tuple[str, int, Size]]:
    """(module, ops, saved bytes) per module at path depth `depth` (the first `depth` components of each
    op's module path; "(top)" for the entry's own ops), in order of first appearance."""
    acc: dict[str, list[OpMemory]] = {}
    for r in mem.ops:
        acc.setdefault(".".join(r.where.split(".")[:depth]) or "(top)", []).append(r)
    return [(k, len(rs), S.simplify_total(S.total([r.saved for r in rs]))) for k, rs in acc.items()]


__all__ = ["OPTIMIZERS", "Checkpoint", "Memory", "OpMemory", "blocks", "groups", "inside", "location", "resolve_block",
           "to_json", "training_memory"]
