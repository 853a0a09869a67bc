"""The Python API: load a .arch file, check it, count its costs. Budgets (docs/errors.md, Limits)
are raised for the code inside `with limits(nodes=1_000_000): ...`.

>>> import archc
>>> m = archc.loads('block B() { in x: [n = 2, c = 8]\\n fc = linear(x, c -> 4)\\n out fc }')
>>> m.check().graph.node(m.check().graph.outputs[0]).type.names
('n', 'c')
>>> m.flops().flops
128
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from archc.diagnostics import ArchError, Diagnostic, SourceMap
from archc.dsl.elaborate import Abort, Elaborator, elaborate
from archc.dsl.loader import Program
from archc.dsl.loader import load as load_program
from archc.dsl.templates import Templates
from archc.ir.graph import Graph
from archc.ir.limits import Limits, limits
from archc.shapes.constraints import Derived, explain
from archc.shapes.constraints import derive as derive_constraints

if TYPE_CHECKING:  # analysis is imported when flops() runs, not with the API
    from archc.analysis.memory import Memory
    from archc.analysis.report import Report
    from archc.codegen.triton import TritonModule


@dataclasses.dataclass
class Compiled:
    graph: Graph
    symbolic: bool
    constraints: list[Derived]

    @property
    def row_names(self) -> dict[int, str]:
        from archc.analysis.report import row_names
        return row_names(self.graph)


def _defaults(g: Graph) -> dict[str, int]:
    return {k: v for k, v in g.sizes.items() if v is not None}


@contextlib.contextmanager
def rare_gc() -> Iterator[None]:
    """Run the cyclic garbage collector less often inside (also a decorator).

    Compiling allocates a large graph of objects that all stay alive to the end;
    at the default threshold the collector's passes over it grow with its size
    and made a 4,000-block stack cost 1.4x more CPU per block than a 125-block
    one (see BENCHMARKS.md). The threshold is restored on the way out."""
    threshold = gc.get_threshold()
    if threshold[0]:  # 0 = automatic collection is off: leave it off
        gc.set_threshold(max(threshold[0], 20_000), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


@rare_gc()
def compile_program(program: Program, entry: str | None = None, sets: dict[str, Any] | None = None,
                    symbolic: bool = False, derive: bool = False, dtype: str | None = None) -> Compiled:
    """Elaborate a loaded program. With `derive`, a concrete run also derives the
    constraints on its free sizes from a symbolic run, and an error caused by
    concrete sizes gets those constraints as notes. Floating-point values and
    parameters are in `dtype`, else the file's `dtype` declaration, else f32."""
    try:
        g = elaborate(program, entry, sets, symbolic)
    except ArchError as e:
        if derive:
            _annotate(e, program, entry, sets)
        raise
    dtype = dtype or program.dtype
    if dtype != "f32":
        from archc.passes.dtype import cast_floats
        g = cast_floats(g, dtype)
    if symbolic or not derive:
        return Compiled(g, symbolic, derive_constraints(getattr(g, "constraints", []), _defaults(g)))
    if not g.sizes:
        return Compiled(g, symbolic, [])
    try:
        gs = elaborate(program, entry, sets, True)
        cons = derive_constraints(getattr(gs, "constraints", []), _defaults(gs))
    except ArchError:
        cons = []
    return Compiled(g, symbolic, cons)


def _warned(gen: Any) -> Any:
    """A generated module; one built for the program's sizes only warns (UserWarning), as `archc build` does."""
    if gen.built_for is not None:
        warnings.warn(f"{gen.built_for.span}: {gen.built_for.message}", stacklevel=4)
    return gen


def plan_graph(program: Program, entry: str | None, sets: dict[str, Any], dtype: str | None) -> Graph:
    """The graph the Triton target plans its kernels on: the program at every size, or, where it cannot be
    elaborated so (`split(parts = H // 3)`: the module is built for the sizes, codegen/torch), at the sizes
    `archc check` used."""
    try:
        return compile_program(program, entry, sets, symbolic=True, dtype=dtype).graph
    except ArchError:
        return compile_program(program, entry, sets, dtype=dtype).graph


def _annotate(e: ArchError, program: Program, entry: str | None, sets: dict[str, Any] | None) -> None:
    """Explain errors that concrete sizes cause: say which free sizes they come from and what
    those sizes must satisfy for every input (the constraints derived at the failing line)."""
    if not any(d.code in _SIZE_CODES for d in e.diagnostics):
        return
    # At the defaults, the constraints of the whole graph; with the user's values, the failing ones.
    general = _symbolic_run(program, entry, {k: v for k, v in (sets or {}).items() if k not in program.sizes})
    derived = [d for d in derive_constraints(general.constraints, {}) if d.kind != "assumed"]
    valued = _symbolic_run(program, entry, sets)
    messages: dict[Any, list[str]] = {}
    for d in valued.bag.errors:
        if d.code == "constraint":
            messages.setdefault(d.span, []).append(d.message)
    for i, d in enumerate(e.diagnostics):
        if d.code not in _SIZE_CODES:
            continue
        notes = tuple((f"for all sizes this needs: {x.text}", x.span)
                      for x in explain(valued.constraints, derived, d.span, valued.values))
        if not notes:
            continue
        better = messages.get(d.span)
        if better and d.code != "constraint":  # the same failure, told in the free sizes' names
            d = dataclasses.replace(d, code="constraint", message=better.pop(0))
        e.diagnostics[i] = dataclasses.replace(d, notes=d.notes + notes)


_SIZE_CODES = ("axis-size", "constraint", "value")


def _symbolic_run(program: Program, entry: str | None, sets: dict[str, Any] | None) -> Elaborator:
    """A symbolic elaboration kept even when it fails: what it recorded up to a failure (the
    broken constraint included) still counts."""
    el = Elaborator(program, sets, True)
    try:
        el.run(entry)
    except (ArchError, Abort):
        pass
    return el


def compile_file(path: str, entry: str | None = None, sets: dict[str, Any] | None = None,
                 symbolic: bool = False, sources: SourceMap | None = None, derive: bool = False,
                 dtype: str | None = None) -> Compiled:
    """Load and elaborate `path`; diagnostics quote from `sources` (filled in here)."""
    try:
        program = load_program(path, sources=sources)
    except ArchError:
        raise
    if sources is not None:
        sources.texts.update(program.sources.texts)
    return compile_program(program, entry, sets, symbolic, derive, dtype)


class Model:
    """A loaded .arch program: `check()`, `flops()`, and (later) code generation."""

    def __init__(self, program: Program, entry: str | None = None):
        self.program = program
        self.entry = entry

    def check(self, symbolic: bool = False, dtype: str | None = None, **sets: Any) -> Compiled:
        """The typed graph (`dtype`: cast floating-point values and parameters, as `archc check --dtype`)."""
        return compile_program(self.program, self.entry, sets, symbolic, dtype=dtype)

    @rare_gc()
    def flops(self, convention: str = "torch", symbolic: bool = False, fold_bn: bool = False,
              dtype: str | None = None, **sets: Any) -> Report:
        """Parameters, FLOPs and bytes per layer and in total (analysis/report.py); `fold_bn=True`:
        of the inference graph with batchnorm folded into the layer before it (`archc flops --fold-bn`);
        `dtype="bf16"`: bytes at that floating-point dtype (`archc flops --dtype bf16`)."""
        from archc.analysis.report import analyze
        g = self.check(symbolic, dtype, **sets).graph
        return analyze(fold_batchnorm(g) if fold_bn else g, convention)

    @rare_gc()
    def memory(self, batch: int | None = None, optimizer: str = "adam", dtype: str | None = None,
               checkpoint: str | None = None, symbolic: bool = False, **sets: Any) -> Memory:
        """Training memory (analysis/memory.py, docs/costs.md): parameters, gradients, optimizer state
        and the activations autograd keeps, per op and in total, and the peak, at batch size `batch`
        (the free size `batch`, else the first input's first axis); `dtype="bf16"` computes in bf16 with
        fp32 master weights; `checkpoint="features.3"` (a block path or name): what checkpointing it saves.

        >>> m = loads('size batch = 1\\nblock B() { in x: [batch, c = 8]\\n h = linear(x, c -> 16)\\n out relu(h) }')
        >>> mem = m.memory(batch=4, optimizer="sgd")
        >>> mem.saved, mem.params, mem.optimizer_state
        (384, 576, 0)
        """
        from archc.analysis.memory import resolve_block, training_memory
        if batch is not None:
            sets = {**sets, _batch_size(self.program, self.entry, sets): batch}
        g = self.check(symbolic, dtype, **sets).graph
        paths = resolve_block(g, checkpoint) if checkpoint is not None else None
        return training_memory(g, optimizer, checkpoint, paths)

    def block(self, name: str) -> Model:
        """The same program with block `name` as its entry (it renders itself in Jupyter too)."""
        return Model(self.program, name)

    def render(self, out: str, style: str = "graph", **kw: Any) -> Any:
        """Draw the entry to `out` (.svg/.png/.pdf, or .dot for the graph style); see `archc render`.
        `style="roofline"` takes `device="h100"` (codegen/diagrams/roofline.py; needs matplotlib)."""
        from archc.codegen.diagrams import graph
        kw.setdefault("inputs", list(self.program.files))  # never written over, force or not
        if style == "roofline":
            from archc.codegen.diagrams import roofline
            return roofline.render(self.check().graph, out, **kw)
        if style != "graph":
            from archc.codegen.diagrams import circuit
            return circuit.render(self.check().graph, out, **kw)
        return graph.render(self.check().graph, out, **kw)

    @property
    def blocks(self) -> dict[str, BlockView]:
        """Every block the entry instantiates (in elaboration order), each showing its definition.

        >>> m = loads('block A(n) { in x: [c = n]\\n out relu(x) }\\n'
        ...           'entry block B() { in x: [c = 4]\\n a = A(x, 4)\\n out a }')
        >>> list(m.blocks), m.blocks["A"].svg().startswith("<svg")
        (['B', 'A'], True)
        """
        g = self.check().graph
        names = dict.fromkeys(m.name for m in g.modules.values() if m.kind == "block")
        return {name: BlockView(g, name) for name in names}

    def _repr_svg_(self) -> str | None:
        """Jupyter's rich display: the graph-style diagram, or the circuit style where `dot` is missing."""
        from archc.codegen.diagrams import graph
        if graph.have_dot():
            return graph.svg(self.check().graph)
        from archc.codegen.diagrams import circuit
        return circuit.layout(self.check().graph).svg()

    def ir(self, **sets: Any) -> str:
        from archc.ir.printer import print_graph
        return print_graph(self.check(**sets).graph)

    def torch_source(self, checks: bool = False, fold_bn: bool = False, dtype: str | None = None,
                     **sets: Any) -> str:
        """The generated PyTorch module's text (what `archc build` writes); needs no torch.
        `checks=True`: with run-time shape checks (`archc build --checks`); `fold_bn=True`: with
        inference batchnorm folded into the layer before it (`archc build --fold-bn`); `dtype="bf16"`:
        the model in that floating-point dtype (`archc build --dtype`; default: the file's `dtype`)."""
        self.check(dtype=dtype, **sets)
        return self._generate(checks, fold_bn, dtype, sets).text

    def _generate(self, checks: bool, fold_bn: bool, dtype: str | None, sets: dict[str, Any]) -> Any:
        """The generated module; a module built for the program's sizes only warns (UserWarning), as
        `archc build` does."""
        from archc.codegen.torch import generate
        return _warned(generate(Templates(self.program, self.entry, sets, dtype), checks=checks, fold_bn=fold_bn))

    def torch(self, checks: bool = False, fold_bn: bool = False, dtype: str | None = None, **sets: Any) -> type:
        """The generated entry nn.Module class, executed in a fresh module (needs torch).
        `checks=True`: every forward checks its inputs' and output's named axes (ValueError);
        `fold_bn=True`: batchnorm folded for inference, loading unfolded state_dicts (docs/codegen.md);
        `dtype="bf16"`: built in that floating-point dtype (default: the file's `dtype` declaration).

        >>> Net = loads('block Net() { in x: [b = 2, c = 8]\\n fc = linear(x, c -> 4)\\n out fc }').torch()
        >>> import torch; Net()(torch.zeros(2, 8)).shape
        torch.Size([2, 4])
        """
        from archc.codegen.torch import load_class
        self.check(dtype=dtype, **sets)
        return load_class(self._generate(checks, fold_bn, dtype, sets))


    def triton_module(self, dtype: str | None = None, **sets: Any) -> TritonModule:
        """The Triton target (what `archc build --target triton` writes): its text, entry class, and the
        kernels its inference forward launches; needs neither torch nor triton. `.generated` is the record
        `torch`'s loader executes (`codegen.torch.load_class`)."""
        from archc.codegen.triton import generate
        self.check(dtype=dtype, **sets)
        graph = plan_graph(self.program, self.entry, sets, dtype)
        return _warned(generate(Templates(self.program, self.entry, sets, dtype), graph))

    def triton(self, dtype: str | None = None, **sets: Any) -> type:
        """The Triton target's entry class, executed in a fresh module (needs torch and triton): the same
        class, constructor and state_dict as `torch()`, its inference forward running fused kernels."""
        from archc.codegen.torch import load_class
        return load_class(self.triton_module(dtype, **sets).generated)


class BlockView:
    """A block as its model's entry instantiates it (in the entry's checked graph, elaborated once by
    `Model.blocks`): it renders its definition, as `archc render --style circuit --define NAME` does (a 3-D
    box with the parameters of its first instance, "=", its circuit)."""

    def __init__(self, graph: Graph, name: str):
        self.graph = graph
        self.name = name

    def __repr__(self) -> str:
        return f"<block {self.name}>"

    def svg(self, **kw: Any) -> str:
        from archc.codegen.diagrams import circuit
        return circuit.layout(self.graph, define=self.name, **kw).svg()

    def render(self, out: str, **kw: Any) -> Any:
        """Write the block's definition to `out` (.svg/.png/.pdf); keywords as `circuit.render`."""
        from archc.codegen.diagrams import circuit
        return circuit.render(self.graph, out, define=self.name, **kw)

    def _repr_svg_(self) -> str:
        return self.svg()


def _batch_size(program: Program, entry: str | None, sets: dict[str, Any]) -> str:
    """The free size `batch` binds: the one called `batch`, else the first input's first axis when that is
    a free size."""
    if "batch" in program.sizes:
        return "batch"
    from archc.shapes.sizes import symbol_name
    g = compile_program(program, entry, sets, True).graph
    first = g.node(g.inputs[0]).type if g.inputs else None
    axes = getattr(first, "axes", ())
    name = symbol_name(axes[0].size) if axes else None
    if name is None or name not in program.sizes:
        raise ArchError([Diagnostic("error", "set", "--batch: the file has no free size `batch`, and the first "
                                    "input's first axis is not a free size; give the size with --set NAME=N")])
    return name


def fold_batchnorm(g: Graph) -> Graph:
    """`g` for inference with every foldable batchnorm folded into the conv or linear before it and
    removed (passes/fold_bn.py): what `archc flops --fold-bn` counts.

    >>> g = loads('block B() { in x: [b = 1, c = 4]\\n fc = linear(x, c -> 8)\\n bn = batchnorm(fc)\\n'
    ...           ' out bn }').check().graph
    >>> [n.op.value for n in fold_batchnorm(g)], list(fold_batchnorm(g).state_dict())
    (['input', 'linear'], ['fc.weight', 'fc.bias'])
    """
    from archc.passes import run
    return run(g, ["fold_batchnorm", "drop_folded"])


def load(path: str, entry: str | None = None) -> Model:
    """Load a .arch file (and its imports). Raises ArchError with located diagnostics."""
    return Model(load_program(path), entry)


def loads(text: str, name: str = "<string>.arch", entry: str | None = None) -> Model:
    """Load .arch source text."""
    return Model(load_program(name, text), entry)


__all__ = ["ArchError", "BlockView", "Compiled", "Diagnostic", "Limits", "Model", "limits", "load", "loads"]
