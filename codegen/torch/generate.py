"""PyTorch code generation: one self-contained Python module per `.arch` file.

Design
------
The module is generated from *block templates* (ir/templates.py), never from
the AST: the elaborator (dsl/templates.py) elaborates every block instance of
the network again on its own, with a fresh symbol for each input axis size and,
for a *generic* class, a symbol for each integer parameter (`@planes`), valued
as the instance has them, and records a `BlockTrace`: a typed graph plus plain
facts. The generator asks a `TraceSource` for them. Each trace becomes the body
of one `nn.Module` class (codegen/torch/classes.py):

  - `__init__(self, <input sizes>, <parameters>)`: the block's integer (and,
    where they only pass through, float) parameters with their defaults, after
    the input sizes the layers need (`Bottleneck(cin, planes, stride=1, ...)`:
    `cin` is the channel count of `x`, which the caller knows). It creates the
    layers the block names, as attributes with the block's names (so the names
    are the state_dict keys): an op that owns parameters becomes its torch
    module (`nn.Conv2d(cin, width, kernel_size=1, bias=False)`), a nested block
    an instance of its class, a `seq` an `nn.Sequential` (numbered steps; named
    steps through an OrderedDict), indexed layers (`down[i] = ...`) an
    `nn.ModuleList`, a `param` an `nn.Parameter`. A block whose output is
    `out seq(x) {...}` is itself an `nn.Sequential` subclass.
  - `forward` is the trace's dataflow in order: one line per named value,
    unnamed single-use values inlined (`F.relu(bn3 + x)`); a value used once
    lives in a chain variable (`out = self.bn1(out)`) so its memory is freed
    as soon as it dies; no loops (repetition
    lives in nn.Sequential / nn.ModuleList, or is unrolled). Each line carries
    a comment with the value's named shape and the `.arch` line it comes from.
  - Decisions: a condition on parameters the trace could not decide from the
    symbols alone (`stride != 1 or cin != 4 * planes`) was decided with the
    instance's values and recorded. The traces of one block (same non-integer
    parameters) are joined: `__init__` and `forward` branch with Python `if`s
    on the recorded conditions; a combination no instance took raises
    ValueError in `__init__` rather than build something unchecked; `forward`
    tests only the conditions it needs. The block's own `assert`s on its
    parameters become checks at the top of `__init__`.
  - Sizes: an input size that a parameter shape depends on is a constructor
    argument (or, in a specialised class, a built-in value); every other size
    is a run-time size that the code never spells out, or reads off an input's
    shape (`batch = x.shape[0]`) where an op needs it. So the module runs at
    every input size the checker admits. A free size of the program that a
    layer needs when it is built but no parameter shape shows
    (`heads = L // 3`) is an argument of the entry too (`NeedsFixed`, then
    `pinned`), checked at the top of forward. Where no module serves every
    size (`split(parts = H // 3)`, layers on `if H > 7`), the entry is traced
    again at the sizes `archc check` used (`sized`): forward checks them and
    `Generated.built_for` is the warning that says why.
  - Branches on run-time sizes: a condition on one (`if h % ws != 0 { pad }`,
    in the block's code or a nested block's, whose outcome the sizes after
    the call follow) is a `Cond` with `runtime`. `Generator.branches` traces
    the instance again at sizes near its own under which the condition comes
    out the other way (the conditions before it as traced), for every outcome;
    the variants are joined like a block's uses, statements that differ only
    in their shape comments written once. The outcomes must build the same
    layers; where a nested block's do not (`if cin != cout { proj }`), its
    class is built for the size instead (`_NoBranches`), and for the entry
    it is an error at the condition.
  - Fallback: when a block cannot be generic (a parameter used where the
    checker needs a number, e.g. `split(parts = heads)`; a nested class that is
    itself specialised; instances that disagree), it is emitted *specialised*:
    every value built in, no constructor arguments, its docstring giving the
    parameter values, one class per distinct text (`Block`, `Block_2`, ...).
    Loop bounds are kept at their values (`for i in 0..num_layers` builds
    num_layers into the class, which the docstring says). Set
    ARCHC_DEBUG_CODEGEN=1 to see why a class was specialised.

Per-op lowerings live in ops/torch_lowering.py (one table keyed by `Op`); an op,
layout or attribute without a lowering is a `codegen` error at its `.arch`
line, never wrong code. Python identifiers come from one `Namespace`
(codegen/namespace.py); layer names are validated, not renamed. Templates
(codegen/templates/) only loop and print the plain render model built here.
The text is parsed with `ast` before anyone sees it, and is byte-identical
from run to run. Generating needs no torch; running the result needs only torch.
The seam for the reverse direction (PyTorch -> .arch, a later issue) is the
trace: a torch.fx graph maps onto the same `Graph` + `ModuleInfo` tree.

>>> from archc.dsl.loader import load
>>> from archc.dsl.templates import Templates
>>> src = 'block Net(n = 4) {\\n in x: [b = 1, c = 8]\\n fc = linear(x, c -> n)\\n out relu(fc)\\n}'
>>> g = generate(Templates(load("net.arch", src)))
>>> g.entry_class
'Net'
>>> for line in g.text.splitlines()[-7:]: print(line)
    def __init__(self, n: int = 4) -> None:
        super().__init__()
        self.fc = nn.Linear(8, n)  # net.arch:3
<BLANKLINE>
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc(x)  # [b=1, c=n]  net.arch:3
        return F.relu(out, inplace=True)  # [b=1, c=n]  net.arch:4
"""

from __future__ import annotations

import ast as pyast
import copy
import dataclasses
import itertools
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jinja2

from archc.codegen.namespace import Namespace
from archc.codegen.output import write_output
from archc.codegen.torch.classes import (
    HELPERS,
    MOVED,
    ChildRef,
    ClassBuilder,
    Fallback,
    Lines,
    NeedsFixed,
    RuntimeLayers,
    Variant,
    cast_type,
    codes,
    flatten,
    join,
    merge,
    replace_text,
    tensor_type,
    where,
)
from archc.diagnostics import NO_SPAN, ArchError, Diagnostic, Span
from archc.ir.templates import BakeParams, BlockTrace, CallRecord, TraceSource
from archc.shapes import sizes as S

MARKER = "# Generated by archc"


@dataclasses.dataclass
class ClassModel:
    """What the template prints for one class."""

    name: str
    base: str
    doc: str
    params: str  # the constructor's arguments after self
    init: list[str]
    args: str = ""
    returns: str = "torch.Tensor"
    forward: list[str] = dataclasses.field(default_factory=list)
    fused: list[str] = dataclasses.field(default_factory=list)  # the Triton target's inference forward
    size_checks: list[str] = dataclasses.field(default_factory=list)  # the entry's, first in forward
    arg_names: str = ""


@dataclasses.dataclass
class Extension:
    """What another target adds to the module (the Triton target, codegen/triton): header lines,
    module-level code (kernels and their launchers), helpers its forward uses, and the entry class's
    inference forward, which replaces `forward` (the PyTorch one stays as `forward_eager`)."""

    header: list[str]
    kernels: str
    helpers: set[str]
    forward: list[str]
    needs_matmul_configs: bool = False


@dataclasses.dataclass
class Generated:
    """A generated module: its text, its entry class and the entry's inputs."""

    text: str
    entry_class: str
    inputs: list[dict[str, Any]]
    classes: list[str]
    built_for: Diagnostic | None  # a warning: the entry is built for the program's sizes, and why


@dataclasses.dataclass
class _Generic:
    name: str
    variants: dict[tuple, Variant]
    order: int


class _Restart(Exception):
    """A generic class failed after it was used: generate again with it specialised."""

    def __init__(self, key: tuple):
        self.key = key


class _NoBranches(_Restart):
    """A block's condition on an input size changes its layers: generate again with the block's class built
    for the sizes its conditions read (constructor arguments), at every use."""


class Generator:
    """Turns a program into the render model of one module."""

    def __init__(self, source: TraceSource, no_generic: set | None = None,
                 checks: bool = False, fold_bn: bool = False, dtype: str = "f32",
                 no_branches: set | None = None, pinned: frozenset[str] = frozenset(), sized: bool = False) -> None:
        self.source = source
        self.sized = sized  # the entry is built for the program's sizes: no branch of forward on them either
        self.pinned = pinned  # free sizes the entry is built for that its layers' shapes do not show: checked
        self.no_branches = no_branches if no_branches is not None else set()  # blocks whose sizes are built in
        self.dtype = dtype  # the model's floating-point dtype (a file's `dtype bf16`): the entry casts to it
        self.checks = checks  # run-time shape checks in every forward (codegen/torch/checks.py)
        self.fold_bn = fold_bn  # batchnorm folded into the layer before it (passes/fold_bn.py)
        self.helpers: set[str] = set()
        self.ordered_dict = False
        self.ns = Namespace(reserved=HELPERS)
        self.no_generic = no_generic if no_generic is not None else set()
        self.generic: dict[tuple, _Generic] = {}
        self.special: dict[tuple, tuple[str, list[Variant], int]] = {}  # body key -> (name, variants, order)
        self.memo: dict[tuple, ChildRef] = {}
        self.count = 0

    def _order(self) -> int:
        self.count += 1
        return self.count

    def add_special(self, vs: list[Variant]) -> ChildRef:
        """A specialised class: one variant, or one per outcome of its conditions on input sizes."""
        v = vs[0]
        key = (v.block, v.doc, tuple(x.body_key() for x in vs), tuple(tuple(x.path) for x in vs))
        if key not in self.special:
            name = self.ns.name(("class", key), v.block)
            self.special[key] = (name, vs, self._order())
        return ChildRef(self.special[key][0], False)

    def add_generics(self, gkey: tuple, vs: list[Variant], base_key: tuple) -> ChildRef:
        ref = None
        for v in vs:
            ref = self.add_generic(gkey, v, base_key)
        assert ref is not None
        return ref

    def branches(self, first: BlockTrace, build: Callable[[BlockTrace], Variant],
                 trace_at: Callable[[Mapping[str, int]], BlockTrace], built: Variant | None = None) -> list[Variant]:
        """The variants of one block instance for every outcome of its conditions on input sizes.

        `first` is the instance as traced at its sizes (`built`, its variant, if the caller has it); a
        condition forward tests (`h % ws != 0`, a `Cond` with `runtime`) is traced again at the sizes
        nearest the traced ones under which the conditions before it come out the same and it comes out
        the other way. Every outcome must build the same layers: a layer that exists at some input sizes
        only cannot be in a module built once (RuntimeLayers, with the condition's span)."""
        v0 = built if built is not None else build(first)
        # A nested block's condition (its class branches on it) matters here only where this block's own
        # code differs with its outcome (sizes it computes with, a check of the output): flipped alone, an
        # outcome with the same code is not traced in combination with the others (a U-Net's pad in each
        # of its up blocks would otherwise make 2^8 outcomes of the caller).
        ignored: set[str] = set()
        for k, c in enumerate(v0.path):
            if not (c.runtime and c.nested):
                continue
            saved = self._snapshot()
            _, v2 = self._other_outcome(first, v0, v0, k, build, trace_at)
            self._restore(saved)
            if codes(v2.forward) == codes(v0.forward):
                ignored.add(c.forward)
                v0 = dataclasses.replace(v0, forward=tuple(map(join, v0.forward or (), v2.forward or ())))
        out = [v0]
        todo = [(first, v0)]
        tried: set[tuple] = set()

        def outcomes(x: Variant) -> tuple:
            return tuple((c.forward, c.outcome) for c in x.path if c.forward not in ignored)

        seen = {outcomes(v0)}
        while todo:
            tr, v = todo.pop()
            for k, c in enumerate(v.path):
                if not c.runtime or c.forward in ignored:
                    continue
                key = _flipped(v.path, k)
                if key in tried:
                    continue
                tried.add(key)
                if len(tried) > _MAX_BRANCHES:
                    hint = (": the output checks of --checks differ with each combination of the conditions; "
                            "build without it" if self.checks else "")
                    raise ArchError([Diagnostic("error", "codegen", f"{first.block.name}: more than "
                                                f"{_MAX_BRANCHES} branches on input sizes in one block{hint}",
                                                tr.decisions[c.index].span)])
                found = self._other_outcome(tr, v, v0, k, build, trace_at)
                if outcomes(found[1]) in seen:
                    continue  # reached before by flipping the conditions in another order
                seen.add(outcomes(found[1]))
                out.append(found[1])
                todo.append(found)
        if ignored:
            out = [dataclasses.replace(x, path=tuple(c for c in x.path if c.forward not in ignored)) for x in out]
        return out

    def _other_outcome(self, tr: BlockTrace, v: Variant, v0: Variant, k: int,
                       build: Callable[[BlockTrace], Variant],
                       trace_at: Callable[[Mapping[str, int]], BlockTrace]) -> tuple[BlockTrace, Variant]:
        """`tr` (whose variant is `v`) traced where its k-th condition comes out the other way; its layers
        must be `v0`'s."""
        c = v.path[k]
        decision = tr.decisions[c.index]
        found = self._flip(tr, c.index, build, trace_at)
        if found is None:
            sizes = ", ".join(sorted({n.split(":", 1)[-1] for n in _runtime_names(tr, decision)}))
            raise ArchError([Diagnostic(
                "error", "codegen", f"{tr.block.name}: this condition on the input size {sizes} "
                f"is {c.outcome} at every size archc tried near the one the file gives, so the other "
                "branch could not be traced for the generated module: write the condition so that "
                "it decides on sizes the file can take", decision.span)])
        tr2, v2 = found
        # the other outcome builds other layers, or layers whose shapes read the size (it is then
        # no longer a condition forward tests)
        if ((v2.init, v2.signature, v2.locals, v2.base) != (v0.init, v0.signature, v0.locals, v0.base)
                or tuple((x.forward, x.outcome) for x in v2.path[:k + 1]) != _flipped(v.path, k)):
            raise RuntimeLayers(c.forward, decision.span, tr.block.name)
        return found

    def _flip(self, tr: BlockTrace, index: int, build: Callable[[BlockTrace], Variant],
              trace_at: Callable[[Mapping[str, int]], BlockTrace]) -> tuple[BlockTrace, Variant] | None:
        # the sizes `tr` was traced at (another flip's, maybe), with the ones this flip changes
        base = {n: tr.values[n] for d in tr.decisions for n in _runtime_names(tr, d)}
        for attempt, at in enumerate(_flips(tr, index)):
            if attempt == 8:
                return None
            saved = self._snapshot()
            try:
                tr2 = trace_at(base | at)
                v2 = build(tr2)
            except (ArchError, Fallback, RuntimeLayers):  # not a size this block admits: try the next one
                self._restore(saved)
                continue
            return tr2, v2
        return None

    def add_generic(self, gkey: tuple, v: Variant, base_key: tuple) -> ChildRef:
        g = self.generic.get(gkey)
        if g is None:
            g = self.generic[gkey] = _Generic(self.ns.name(("class", gkey), v.block), {}, self._order())
        first = next(iter(g.variants.values()), None)
        if first is not None and (first.signature, first.implied, first.params, first.doc, first.base) != \
                (v.signature, v.implied, v.params, v.doc, v.base):
            raise _Restart(base_key)
        key = tuple(v.path)
        if key in g.variants and g.variants[key].body_key() != v.body_key():
            raise _Restart(base_key)
        g.variants.setdefault(key, v)
        return ChildRef(g.name, True, v.implied, v.params, v.signature[len(v.implied):])

    def class_of_call(self, parent: BlockTrace, call: CallRecord, parent_generic: bool) -> ChildRef:
        """The class of a nested block instance (traced on its own, memoised)."""
        sig = []
        for tv in call.inputs:
            t = parent.type_of(tv)
            sig.append((t.names, t.dtype, tuple(S.evaluate(a.size, parent.values) for a in t.axes)))
        args = {k: _plain(v, parent.values) for k, v in call.args.items()}
        key = (id(call.block), repr(sorted(args.items())), tuple(sig))
        if key in self.memo:
            return self.memo[key]
        ints = {k for k, v in args.items() if isinstance(v, int) and not isinstance(v, bool)
                or v is None and S.is_size(call.args[k])}  # a size without a value: an integer parameter too
        base_key = (id(call.block), tuple(sorted(ints)), tuple((n, d) for n, d, _ in sig))
        branches = base_key not in self.no_branches and not self.sized
        try:
            ref = self._class_of_call(parent, call, args, ints, base_key, branches)
        except RuntimeLayers:  # `if cin != cout: proj = conv(...)`: the class is built for the size, at every use
            if not branches:
                raise  # a size its callers read at run time: no class can be built for it
            raise _NoBranches(base_key) from None
        self.memo[key] = ref
        return ref

    def _class_of_call(self, parent: BlockTrace, call: CallRecord, args: dict[str, Any], ints: set[str],
                       base_key: tuple, branches: bool) -> ChildRef:
        ref = None
        if base_key not in self.no_generic:
            try:
                tr, concrete = _generic_trace(lambda c: self.source.call_trace(parent, call, True, c,
                                                                               branches=branches))
                variant = ClassBuilder(self, tr, True).build()
                floats = self._general_floats(parent, call, args, concrete, variant, branches)
                if floats:
                    tr = self.source.call_trace(parent, _with_args(call, floats), True, concrete, branches=branches)
                baked = {k: v for k, v in args.items() if k not in ints and k not in floats}
                gkey = base_key + (repr(sorted(baked.items())), tuple(sorted((n, args[n]) for n in concrete)))
                variants = self.branches(
                    tr, lambda t: ClassBuilder(self, t, True, floats).build(),
                    lambda at: self.source.call_trace(parent, _with_args(call, floats), True, concrete, at,
                                                      branches),
                    None if floats else variant)
                ref = self.add_generics(gkey, variants, base_key)
            except _Restart:
                raise
            except RuntimeLayers:
                raise
            except Exception as e:  # noqa: BLE001 - any failure of the generic form falls back to a specialised class
                _debug(call.block.name, e)
                if any(k[:3] == base_key for k in self.generic):
                    raise _Restart(base_key) from None
                self.no_generic.add(base_key)
        if ref is None:
            try:
                tr = self.source.call_trace(parent, call, branches=branches)
                variants = self.branches(tr, lambda t: ClassBuilder(self, t, False).build(),
                                         lambda at: self.source.call_trace(parent, call, at=at, branches=branches))
            except ArchError as e:
                info = parent.graph.modules.get(call.path)
                raise _with_note(e, f"while generating the class of '{call.path}' ({call.block.name})",
                                 info.span if info is not None else None) from None
            ref = self.add_special(variants)
        return ref

    def _general_floats(self, parent: BlockTrace, call: CallRecord, args: dict[str, Any], concrete: set[str],
                        actual: Variant, branches: bool) -> dict[str, tuple[float, float]]:
        """The float parameters the class can take as constructor arguments: traced with stand-in
        values, they show up only as themselves in the text (not in arithmetic, not in decisions),
        and putting the values back gives the actual text. Tried all together, then one by one."""
        names = [k for k, v in args.items() if isinstance(v, float)]
        floats = {k: (_STANDIN + i * 1e-9, args[k]) for i, k in enumerate(names)}
        if not floats or self._floats_pass(parent, call, concrete, actual, floats, branches):
            return floats
        if len(floats) == 1:
            return {}
        return {k: v for k, v in floats.items()
                if self._floats_pass(parent, call, concrete, actual, {k: v}, branches)}

    def _floats_pass(self, parent: BlockTrace, call: CallRecord, concrete: set[str], actual: Variant,
                     floats: dict[str, tuple[float, float]], branches: bool) -> bool:
        saved = self._snapshot()
        try:
            tr = self.source.call_trace(parent, _with_args(call, floats), True, concrete, branches=branches)
            raw = ClassBuilder(self, tr, True).build()
        except Exception:  # noqa: BLE001 - the stand-ins changed what the block does: keep the values
            return False
        finally:
            self._restore(saved)
        back = {repr(s): repr(v) for s, v in floats.values()}
        return (replace_text(raw.init, back) == actual.init and raw.path == actual.path
                and replace_text(raw.forward, back) == replace_text(actual.forward, {})
                and raw.locals == actual.locals)

    def _snapshot(self) -> tuple:
        return (dict(self.memo), self.count, {k: dataclasses.replace(g, variants=dict(g.variants))
                                              for k, g in self.generic.items()},
                dict(self.special), copy.deepcopy(self.ns), set(self.helpers), self.ordered_dict,
                set(self.no_generic))

    def _restore(self, saved: tuple) -> None:
        (self.memo, self.count, self.generic, self.special, self.ns, self.helpers, self.ordered_dict,
         no_generic) = saved
        self.no_generic.clear()
        self.no_generic.update(no_generic)

    def models(self) -> list[ClassModel]:
        out: list[tuple[int, ClassModel]] = []
        for name, vs, order in self.special.values():
            out.append((order, _model(name, vs)))
        for g in self.generic.values():
            out.append((g.order, _model(g.name, list(g.variants.values()))))
        return [m for _, m in sorted(out, key=lambda x: x[0])]


def _model(name: str, variants: list[Variant]) -> ClassModel:
    v = variants[0]
    if any((x.forward is None) != (v.forward is None) for x in variants):
        raise AssertionError("variants of one class disagree on forward")  # excluded by body keys
    init, forward, locals_, stored, n_guards = merge(variants)
    fwd_lines = flatten(forward) if forward is not None else []
    used = set(re.findall(r"self\.([A-Za-z_][A-Za-z0-9_]*)", "\n".join(fwd_lines)))
    stored_lines = [Lines((line,)) for line in stored if line.split("=")[0].strip()[5:] in used]
    body = list(init)
    body[n_guards:n_guards] = [Lines((line,)) for line in locals_]
    at = body.index(Lines(("super().__init__()",))) + 1 if Lines(("super().__init__()",)) in body else len(body)
    body[at:at] = stored_lines
    params = "".join(f", {n}: {t}" + (f" = {d}" if d is not None else "") for n, d, t in v.signature)
    return ClassModel(name, v.base, v.doc, params, flatten(body), v.args, v.returns, fwd_lines,
                      size_checks=flatten(v.size_checks))


_MAX_BRANCHES = 64  # traced outcomes of conditions on input sizes, in one block


def _flipped(path: tuple, k: int) -> tuple:
    """The outcomes of `path` up to its k-th condition, that one the other way."""
    return tuple((x.forward, x.outcome) for x in path[:k]) + ((path[k].forward, not path[k].outcome),)


def _runtime_names(tr: BlockTrace, d: Any) -> set[str]:
    """The sizes a decision reads that forward reads off the inputs (not parameters, not built in)."""
    names: set[str] = set()
    for x in (d.a, d.b):
        if S.is_size(x):
            names |= S.free_names(x)
    return {n for n in names if not n.startswith("@") and n not in tr.fixed and n in tr.values}


def _flips(tr: BlockTrace, index: int) -> Iterator[dict[str, int]]:
    """Values of input sizes, nearest the traced ones first, under which the decisions before `index`
    come out as traced and decision `index` comes out the other way."""
    target = tr.decisions[index]
    names = sorted(_runtime_names(tr, target))
    want = [(d.a, d.op, d.b, d.outcome) for d in tr.decisions[:index]]
    want.append((target.a, target.op, target.b, not target.outcome))

    def holds(values: dict[str, int]) -> bool:
        for a, op, b, outcome in want:
            va, vb = S.evaluate(a, values), S.evaluate(b, values)
            if va is None or vb is None or S.compare(va, op, vb) is not outcome:
                return False
        return True

    groups = [[n] for n in names] + ([names] if len(names) > 1 else [])
    for delta in range(1, 257):
        for sign in (1, -1):
            for group in groups:
                at = {n: tr.values[n] + sign * delta for n in group}
                if min(at.values()) >= 1 and holds({**tr.values, **at}):
                    yield at


_STANDIN = 0.123456789012  # a float no .arch file writes: where it shows up, a parameter went


def _with_args(call: CallRecord, floats: dict[str, tuple[float, float]]) -> CallRecord:
    return dataclasses.replace(call, args={**call.args, **{k: v[0] for k, v in floats.items()}})


def _generic_trace(trace: Callable[[set[str]], BlockTrace]) -> tuple[BlockTrace, set[str]]:
    """A generic trace, keeping at their values the parameters it cannot keep symbolic."""
    concrete: set[str] = set()
    for _ in range(16):
        try:
            return trace(concrete), concrete
        except BakeParams as b:
            if b.names <= concrete:
                raise
            concrete |= b.names
    raise Fallback("too many parameters to keep at their values")


def _debug(what: str, e: Exception) -> None:
    """ARCHC_DEBUG_CODEGEN=1 says why a class could not be generic (developers' aid)."""
    if os.environ.get("ARCHC_DEBUG_CODEGEN"):
        import sys
        print(f"archc codegen: {what} is specialised: {type(e).__name__}: {e}", file=sys.stderr)


def _plain(v: Any, values: dict[str, int]) -> Any:
    if isinstance(v, (list, tuple)):
        return [_plain(x, values) for x in v]
    if S.is_size(v) and not isinstance(v, int):
        return S.evaluate(v, values)
    return v


def _with_note(e: ArchError, note: str, at: Span | None = None) -> ArchError:
    """The codegen errors of a nested block's class with a note naming the instance; one that has no place
    of its own (a parameter's value) is placed at the call (`at`)."""
    ds = [dataclasses.replace(d, notes=d.notes + ((note, None),),
                              span=at if at is not None and d.span == NO_SPAN else d.span) if d.code == "codegen" else d
          for d in e.diagnostics]
    return ArchError(ds)


# ---- the module ----------------------------------------------------------------------------

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("archc.codegen.torch", "templates"),
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                          keep_trailing_newline=True, autoescape=False)


def generate(source: TraceSource, generic: bool = True, checks: bool = False, fold_bn: bool = False,
             extension: Callable[[ClassModel], Extension] | None = None, dtype: str | None = None) -> Generated:
    """Generate the PyTorch module of the block templates `source` (the elaborator's `Templates` of a
    program, for its entry block and `--set` values). Raises ArchError.

    `generic=False` emits only specialised classes (no constructor arguments); `checks=True`
    adds run-time shape checks to every forward (`archc build --checks`, codegen/torch/checks.py);
    `fold_bn=True` folds each inference batchnorm into the conv or linear before it where
    passes/fold_bn.py allows (`archc build --fold-bn`): the layer gets a bias, the batchnorm
    becomes `nn.Identity()`, and a `FoldBatchNorm` load_state_dict pre-hook folds the batchnorm's
    entries of an unfolded state_dict into the layer's weight and bias. `dtype` (default: the
    source's, a file's `dtype` declaration or `archc build --dtype`): a floating-point dtype other than
    f32 makes the entry class cast its floating-point parameters and buffers to it at the end of its
    constructor, as `model.to(torch.bfloat16)` does (integer, boolean and complex ones keep theirs), and
    the floating-point constants forward makes take it, so the module computes in it, as `archc check` types it."""
    no_generic: set = set() if generic else {"*"}
    no_branches: set = set()
    pinned: set[str] = set()
    sized: ArchError | None = None  # why the entry could not be generated for every size of the program
    dtype = dtype or getattr(source, "dtype", None) or "f32"
    for _ in range(64):
        try:
            return _generate(source, no_generic, generic, checks, fold_bn, extension, dtype, no_branches,
                             frozenset(pinned), sized)
        except NeedsFixed as r:  # `heads = H // 3`: the entry is built for H (a constructor argument)
            pinned |= r.names
        except _NoBranches as r:
            no_branches.add(r.key)
        except _Restart as r:
            no_generic.add(r.key)
        except (ArchError, RuntimeLayers) as e:
            # `split(parts = H // 3)`; layers on `if H > 7` (the entry's, or a size the callers read at run
            # time: no class is built for it): no module serves every size, so build it for the sizes
            why = e if isinstance(e, ArchError) else _runtime_layers(e)
            if sized is not None or any(d.code == "io" for d in why.diagnostics):
                raise sized or why from None  # that failed too: the first reason is the one to give
            _debug("the module at every size", why)
            sized = why
            no_generic, no_branches, pinned = set() if generic else {"*"}, set(), set()
    raise AssertionError("archc could not settle which classes are generic")


def _built_for(why: ArchError, sizes: str) -> Diagnostic:
    """The warning of a module built for the program's sizes: which, and why not for every size."""
    first = why.diagnostics[0]
    message = f"the module is built for {sizes} (forward checks them), not for every size: {first.message}"
    return dataclasses.replace(first, severity="warning", message=message)


def _runtime_layers(r: RuntimeLayers) -> ArchError:
    """The error of layers that depend on a condition on an input size (the warning's reason, where the
    module is built for the sizes instead)."""
    return ArchError([Diagnostic(
        "error", "codegen", f"{r.block}: the layers depend on the condition `{r.cond}`, on an input size; for "
        "one module for every size, create the layer outside the branch and choose between values in it "
        "(`c = conv(...)`, then `if ... then c else x`)", r.span)])


def _generate(source: TraceSource, no_generic: set, generic: bool, checks: bool = False,
              fold_bn: bool = False, extension: Callable[[ClassModel], Extension] | None = None,
              dtype: str = "f32", no_branches: set | None = None, pinned: frozenset[str] = frozenset(),
              sized: ArchError | None = None) -> Generated:
    """One try at the module (`generate` tries again with what a try found out); `sized`: why the entry
    could not be generated for every size: build it for the program's sizes instead."""
    gen = Generator(source, no_generic, checks, fold_bn, dtype, no_branches, pinned, sized is not None)
    entry_key = ("entry",)

    def entry_trace(generic: bool = False, concrete: set[str] | None = None,
                    at: Mapping[str, int] | None = None) -> BlockTrace:
        tr = source.entry_trace(generic, concrete, at, sized is not None)
        return dataclasses.replace(tr, fixed=tr.fixed | pinned) if pinned else tr

    tr = None
    if generic and entry_key not in no_generic:
        try:
            tr, concrete = _generic_trace(lambda c: entry_trace(True, c))
            variants = gen.branches(tr, lambda t: ClassBuilder(gen, t, True).build(),
                                    lambda at: entry_trace(True, concrete, at))
            ref = gen.add_generics(entry_key, variants, entry_key)
        except (_Restart, RuntimeLayers, NeedsFixed):
            raise
        except Exception as e:  # noqa: BLE001 - fall back to a specialised entry class
            _debug("the entry", e)
            gen = Generator(source, no_generic | {entry_key}, checks, fold_bn, dtype, no_branches, pinned,
                            sized is not None)
            tr = None
    if tr is None:
        tr = entry_trace()
        variants = gen.branches(tr, lambda t: ClassBuilder(gen, t, False).build(),
                                lambda at: entry_trace(at=at))
        ref = gen.add_special(variants)
    classes = gen.models()
    entry_name = ref.name
    ext = None
    if extension is not None:
        entry = next(c for c in classes if c.name == entry_name)
        ext = extension(entry)
        entry.fused = entry.size_checks + ext.forward  # the sizes it is built for, checked in both forwards
        entry.arg_names = ", ".join(a.split(":")[0].strip() for a in entry.args.split(",") if a.strip())
        gen.helpers |= ext.helpers
    origin = where(tr.block.span).rsplit(":", 1)[0]
    inputs = []
    for i in tr.graph.inputs:
        n = tr.graph.node(i)
        t = cast_type(tensor_type(n.type), dtype)
        axes = [{"name": a.name, "size": S.to_str(a.size), "default": S.evaluate(a.size, tr.values)}
                for a in t.axes]
        inputs.append({"name": n.attrs["name"], "type": str(t), "dtype": t.dtype, "axes": axes})
    sizes = ", ".join(f"{k}={v}" for k, v in tr.graph.sizes.items() if v is not None)
    header = [f"{MARKER} from {origin} (entry {tr.block.name}). Do not edit: rebuild with `archc build`.",
              "# Needs only torch at run time."]
    if checks:
        header.append("# With run-time shape checks (archc build --checks): each forward checks its inputs and output.")
    if ext is not None:
        header += ext.header
    if "FoldBatchNorm" in gen.helpers:
        header.append("# Inference batchnorm folded into the layer before it (archc build --fold-bn); "
                      "loads unfolded state_dicts.")
    docstring = (f"{tr.block.name} and the blocks it uses, from {origin}"
                 + (f" (default sizes {sizes})" if sizes else "") + ".")
    moved = [(name, MOVED[name]) for name in sorted(gen.helpers) if name in MOVED]
    if moved:
        gen.helpers |= {"moved", "MovedAxes"}
    uses_functional = bool({"LayerNormAt", "LinearAt", "Conv1dPadded", "Conv2dPadded", "Conv3dPadded",
                            "pool_padded"} & gen.helpers) or any(
        "F." in line for c in classes for line in c.init + c.forward)
    text = _ENV.get_template("torch_module.py.j2").render(
        header=header, docstring=docstring, ordered_dict=gen.ordered_dict, helpers=sorted(gen.helpers),
        moved_classes=moved,
        uses_functional=uses_functional,
        exports=[entry_name], classes=[dataclasses.asdict(c) for c in classes],
        triton=ext is not None, kernels=ext.kernels if ext else "",
        matmul_configs=bool(ext and ext.needs_matmul_configs))
    try:
        pyast.parse(text)
    except SyntaxError as e:  # a bug of archc, never the user's input: say so loudly
        raise AssertionError(f"archc generated invalid Python (line {e.lineno}): {e.msg}") from None
    return Generated(text, entry_name, inputs, [c.name for c in classes],
                     _built_for(sized, sizes) if sized else None)


def write(gen: Generated, out_dir: str, stem: str, force: bool = False, inputs: Sequence[str] = ()) -> str:
    """Write the module as OUT_DIR/STEM.py (codegen/output.py: atomically, never through a link, never
    over a file archc did not write unless `force`, never over one of the `inputs`)."""
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise ArchError([Diagnostic("error", "io", f"{out_dir}: cannot make the directory: {e.strerror or e}")]) \
            from None
    path = os.path.join(out_dir, f"{stem}.py")
    return write_output(path, gen.text, lambda head, tail: head.startswith(MARKER.encode()), force, inputs)


def module_stem(path: str) -> str:
    """The Python module name for a .arch file: `vit_b_16.arch` -> `vit_b_16`."""
    stem = re.sub(r"[^A-Za-z0-9_]", "_", os.path.splitext(os.path.basename(path))[0]) or "model"
    return stem if not stem[0].isdigit() else "m_" + stem


_LOADED = itertools.count()


def load_class(gen: Generated, name: str | None = None) -> type:
    """Execute the generated text in a fresh module and return the entry class; the module
    (with every class) is `sys.modules[cls.__module__]`.

    The text is registered in `linecache` under the module's pseudo-filename, so `inspect.getsource`
    finds it: tracebacks show the generated lines, and Triton's `@triton.jit` (which reads its kernel's
    source, except under TRITON_INTERPRET=1) compiles kernels loaded this way."""
    import linecache
    import sys
    import types
    name = name or f"archc_generated_{gen.entry_class}_{next(_LOADED)}"
    filename = f"<{name}>"
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module  # dataclass/pickle lookups of the classes find their module
    # mtime None: linecache.checkcache never drops an entry that has no file behind it
    linecache.cache[filename] = (len(gen.text), None, gen.text.splitlines(keepends=True), filename)
    exec(compile(gen.text, filename, "exec"), module.__dict__)
    return module.__dict__[gen.entry_class]
