"""The Triton target: the PyTorch module with fused Triton kernels running the entry's inference forward.

`archc build FILE --target triton` writes one Python module. Its classes are
the PyTorch target's (codegen/torch), with the same names, constructors,
parameter names and state_dict keys, so one checkpoint loads into either and a
user swaps one import. What differs is the entry class's `forward`: at
inference it runs the fusion plan of the entry's whole graph (passes/plan.py),
one Triton kernel per fused group (codegen/triton/kernels.py), named after the
`.arch` steps it covers, and the torch call of every op the planner does not
fuse (a 3x3 conv, a concat), reading the layers' weights off the same
submodules. In training mode, or when gradients are needed, it runs the
PyTorch forward, kept as `forward_eager` (the kernels have no backward).

A batchnorm after a conv or linear is not folded into its weights (the
state_dict would change): the planner puts it, with its running statistics,
in the kernel's epilogue, which costs four small loads per channel.

The forward reads the graph of the entry elaborated with its sizes symbolic:
every size the `.arch` file declares stays free (read off the inputs' shapes);
kernels take their sizes from their inputs at run time.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

from archc.codegen.namespace import Namespace, check_attribute
from archc.codegen.torch.generate import HELPERS, ClassModel, Extension, Generated
from archc.codegen.torch.generate import generate as generate_torch
from archc.codegen.triton.kernels import Kernel, NotFusable, arch_lines, kernel, mha_helpers, wrap
from archc.diagnostics import ArchError, Diagnostic
from archc.ir.graph import Graph, Node
from archc.ir.plan import Plan
from archc.ir.templates import TraceSource
from archc.ops import torch_lowering as L
from archc.ops.registry import Op, Trait
from archc.passes.plan import FUSED
from archc.passes.plan import plan as make_plan
from archc.shapes import pyexpr
from archc.shapes import sizes as S
from archc.shapes.constraints import negate
from archc.shapes.types import TensorType

_KERNEL_KINDS = FUSED | {"reduce"}


def attr_path(path: str) -> str:
    """The forward expression of the submodule at a state_dict path: `features.1.0.block` ->
    `self.features[1][0].block` (nn.Sequential and nn.ModuleList index by position)."""
    out = "self"
    for part in path.split(".") if path else []:
        if part.isdigit():
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out += f".{part}"
        else:
            out += f".get_submodule({part!r})"
    return out


class _Ctx:
    """The LowerCtx the torch lowerings see while writing the fused forward's torch calls."""

    inplace = False

    def __init__(self, owner: FusedForward):
        self.owner = owner

    def const(self, x: Any, what: str) -> int:
        v = pyexpr.substitute(x, self.owner.defaults)
        if not isinstance(v, int):
            raise L.Unsupported(f"{what} must be a number here")
        return v

    def size(self, x: Any) -> str:
        return self.owner.size(x)

    def helper(self, name: str) -> None:
        self.owner.helpers.add(name)

    def device(self) -> str:
        return f", device={self.owner.first}.device" if self.owner.first else ""


@dataclasses.dataclass
class Statement:
    value: int
    text: str              # the expression (values as <id>)
    reads: list[int]       # the graph values it reads
    comment: str
    call: tuple[str, list[str]] | None = None  # a launcher and its arguments, wrapped when long


class FusedForward:
    """The entry's fused forward: kernels and the statements calling them."""

    def __init__(self, plan: Plan, arg_names: list[str]):
        self.plan, self.g = plan, plan.graph
        g = self.g
        self.defaults = {k: v for k, v in g.sizes.items() if v is not None}
        self.helpers: set[str] = set()
        self.kernels: list[Kernel] = []
        self.kernel_names = Namespace(reserved=set(HELPERS) | {"MATMUL_CONFIGS", "math", "triton",
                                                                              "tl", "os"})
        # locals never shadow a launcher (the namespace of kernel names is their parent)
        self.locals = Namespace(reserved={"self", "triton", "tl"} | set(HELPERS), parent=self.kernel_names)
        self.inputs = [g.node(i) for i in g.inputs]
        self.args = {n.id: name for n, name in zip(self.inputs, arg_names)}
        for name in arg_names:
            self.locals.name(("arg", name), name)
        self.first = arg_names[0] if arg_names else ""
        self.runtime: dict[str, str] = {}
        self.prologue: list[str] = []
        self.sources: dict[str, tuple[str, int]] = {}
        for n in self.inputs:
            t = n.type
            if isinstance(t, TensorType):
                for d, ax in enumerate(t.axes):
                    names = pyexpr.free_names(ax.size)
                    if len(names) == 1 and str(ax.size) in names and str(ax.size) not in self.sources:
                        self.sources[str(ax.size)] = (self.args[n.id], d)
        self.expr: dict[int, str] = {}
        self.statements: list[Statement] = []
        self.fused_groups = 0
        self.torch_ops = 0

    # ---- sizes -------------------------------------------------------------------------------

    def size(self, x: Any) -> str:
        x, names = self._names(x)
        try:
            return pyexpr.to_python(x, names)
        except pyexpr.NotPrintable as e:
            raise L.Unsupported(str(e)) from None

    def _names(self, x: Any) -> tuple[Any, dict[str, str]]:
        """`x` with the sizes no input has built in at their values, and the variables forward reads the
        others into (`H = x.shape[2]`, added to the prologue the first time)."""
        names: dict[str, str] = {}
        for s in sorted(pyexpr.free_names(x)):
            if s in self.sources:
                if s not in self.runtime:
                    var, dim = self.sources[s]
                    self.runtime[s] = self.locals.name(("size", s), s)
                    self.prologue.append(f"{self.runtime[s]} = {var}.shape[{dim}]")
                names[s] = self.runtime[s]
            elif s in self.defaults:
                x = pyexpr.substitute(x, {s: self.defaults[s]})
            else:
                raise L.Unsupported(f"the size {s} cannot be read off an input's shape")
        return x, names

    # ---- statements ------------------------------------------------------------------------------

    def build(self) -> None:
        for gi, group in enumerate(self.plan.groups):
            nodes = [self.g.node(i) for i in group.nodes]
            if group.kind == "input":
                n = nodes[0]
                if n.op is Op.INPUT:
                    self.expr[n.id] = self.args[n.id]
                else:
                    base = attr_path(n.path or "")
                    self.expr[n.id] = f"{base}.{n.attrs['name']}"
                continue
            if group.kind in _KERNEL_KINDS:
                name = self.kernel_names.name(("group", gi), group.name.replace(".", "_"))
                try:
                    k = kernel(self.plan, group, name, self._external, attr_path)
                except NotFusable:
                    k = None
                if k is not None:
                    self.kernels.append(k)
                    self.fused_groups += 1
                    reads = sorted({i for n in nodes for i in n.inputs if i not in group.nodes})
                    self._statement(nodes[-1], f"{k.name}({', '.join(k.args)})", reads, nodes, (k.name, k.args))
                    continue
            for n in nodes:
                self._torch(n)

    def _external(self, i: int) -> str:
        return self.expr[i]

    def _torch(self, n: Node) -> None:
        low = n.op.torch
        ins: list[Any] = [self.g.node(i).type for i in n.inputs]
        args = [L.Expr(self.expr[i]) for i in n.inputs]
        ctx = _Ctx(self)
        try:
            if n.path is not None:  # a layer of the module (or a step of a sequence): call it
                why = check_attribute(n.path.split(".")[0])
                if why:
                    raise L.Unsupported(f"the layer name {why}")
                mod = attr_path(n.path)
                e = low.call(n.attrs, ins, n.type, ctx, mod, args) if low.call is not None else \
                    L.Expr(f"{mod}({', '.join(a.text for a in args)})")
            else:
                if low.forward is None:
                    raise L.Unsupported(f"{n.op.value} has no torch lowering yet")
                e = low.forward(n.attrs, ins, n.type, ctx, args)
        except L.Unsupported as err:
            raise ArchError([Diagnostic("error", "codegen", f"the Triton target: {err}", n.span)]) from None
        self.torch_ops += 0 if n.op.has(Trait.VIEW) else 1
        self._statement(n, e.text, list(n.inputs), [n])

    def _statement(self, n: Node, text: str, reads: list[int], nodes: list[Node],
                   call: tuple[str, list[str]] | None = None) -> None:
        self.statements.append(Statement(n.id, text, reads, f"{n.type}  {arch_lines(nodes)}".rstrip(), call))
        self.expr[n.id] = f"<{n.id}>"

    def lines(self) -> list[str]:
        """The forward's body: a variable per statement (a value read once shares a chain variable, `out`,
        with the value it is computed from, as hand-written code does, so dead activations are freed)."""
        uses: dict[int, int] = {}
        for st in self.statements:
            for i in set(st.reads):
                uses[i] = uses.get(i, 0) + 1
        for i in self.g.outputs:
            uses[i] = uses.get(i, 0) + 1
        var: dict[int, str] = {}
        temps: dict[int, str] = {}
        body: list[str] = []

        def fill(text: str) -> str:  # a statement's text with each value (<id>) as its variable
            return re.sub(r"<(\d+)>", lambda m: var[int(m.group(1))], text)

        for st in self.statements:
            text = fill(st.text)
            node = self.g.node(st.value)
            if uses.get(st.value, 0) == 1:
                name = next((temps.pop(i) for i in st.reads if i in temps and uses.get(i) == 1), None)
                name = name or self.locals.name(("temp", st.value), "out")
                temps[st.value] = name
            else:
                hint = node.label or (node.path or node.op.value).replace(".", "_")
                name = self.locals.name(("value", st.value), hint)
            var[st.value] = name
            line = f"{name} = {text}  # {st.comment}"
            if len(line) <= 116:
                body.append(line)
            elif st.call is not None:
                fn, args = st.call
                args = [fill(a) for a in args]
                body.append(f"# {st.comment}")
                body += wrap(f"{name} = {fn}(", args, ")", "", 108).split("\n")
            else:
                body += [f"# {st.comment}", f"{name} = {text}"]
        outs = [fill(self.expr[i]) for i in self.g.outputs]
        guards = self._guards()  # after the prologue: they read the sizes it reads off the inputs
        return self.prologue + guards + body + [f"return {', '.join(outs)}"]

    def _guards(self) -> list[str]:
        """The plan is the graph's at the outcomes its conditions on input sizes took (`if H % ws != 0`,
        a branch the PyTorch forward takes at run time): at sizes where one comes out the other way,
        the PyTorch forward runs."""
        out: list[str] = []
        for c in getattr(self.g, "constraints", ()):
            if c.kind != "assumed" or c.in_assert:
                continue  # an assert's condition is a requirement of every size (archc check checked it)
            a, op, b = c.lhs
            try:
                (a, names_a), (b, names_b) = (self._names(x) if S.is_size(x) else (x, {}) for x in (a, b))
                taken = pyexpr.relation(a, op if c.rhs else negate(op), b, names_a | names_b)
                other = pyexpr.relation(a, negate(op) if c.rhs else op, b, names_a | names_b)
            except (L.Unsupported, pyexpr.NotPrintable) as e:
                raise ArchError([Diagnostic("error", "codegen", f"the Triton target: {e}", c.span)]) from None
            at = f"{os.path.basename(c.span.file)}:{c.span.line}" if c.span else "the .arch file"
            line = f"if {other}:  # planned where {taken} ({at}); other sizes run the PyTorch forward"
            if line not in out:
                out += [line, f"    return self.forward_eager({', '.join(self.args.values())})"]
        return out


def shared_kernels(kernels: list[Kernel]) -> list[str]:
    """The module text of each group: its kernel and launcher, or, where an earlier group has the same
    kernel but for its name and comments (the same block repeated), only its launcher, which launches
    that earlier kernel: one @triton.jit function per distinct kernel, compiled once."""
    first: dict[str, str] = {}  # kernel text, name and comment lines blanked -> the kernel's name
    out: list[str] = []
    for k in kernels:
        cut = k.text.find(f"\n\n\ndef {k.name}(")
        kernel, launcher = (k.text[:cut], k.text[cut:]) if cut >= 0 else (k.text, "")
        key = _shape_of(kernel.replace(f"{k.name}_kernel", "KERNEL"))
        if key in first and launcher:
            out.append(launcher.replace(f"{k.name}_kernel[", f"{first[key]}_kernel[", 1))
        else:
            first.setdefault(key, k.name)
            out.append(k.text)
    return out


def _shape_of(kernel: str) -> str:
    """A kernel's text without its comments, its values numbered in order of appearance (v12 -> v0)."""
    text = re.sub(r"(?m)^ *# .*\n", "", kernel)
    text = re.sub(r"  # .*$", "", text, flags=re.M)
    numbers: dict[str, str] = {}
    return re.sub(r"\bv(\d+)\b", lambda m: numbers.setdefault(m.group(1), f"v{len(numbers)}"), text)


@dataclasses.dataclass
class TritonModule(Generated):
    """A generated Triton module: a `Generated` record (what `write` writes and `load_class` executes),
    with how many kernels and torch ops its inference forward runs."""

    kernels: int  # fused groups, each one kernel launch in forward
    torch_ops: int

    @property
    def generated(self) -> Generated:
        """The module as the PyTorch target's record (the same text, entry and classes)."""
        return self

    @property
    def distinct_kernels(self) -> int:
        """The @triton.jit functions of the module (groups of the same shape share one)."""
        return self.text.count("@triton.jit")


def generate(source: TraceSource, graph: Graph) -> TritonModule:
    """The Triton module of a program: `source` gives the PyTorch classes (as the torch target), `graph`
    is the entry elaborated with symbolic sizes, whose fusion plan the entry's forward runs."""
    p = make_plan(graph)
    holder: dict[str, Any] = {}

    def extend(entry: ClassModel) -> Extension:
        names = [a.split(":")[0].strip() for a in entry.args.split(",") if a.strip()]
        ff = FusedForward(p, names)
        ff.build()
        holder["ff"] = ff
        return Extension(
            header=["# Target: Triton (archc build --target triton). Inference runs fused Triton kernels; "
                    "training the PyTorch forward.", "# Needs torch and triton at run time."],
            kernels=(mha_helpers() if any(k.kind == "mha" for k in ff.kernels) else "")
            + "".join(shared_kernels(ff.kernels)), helpers=ff.helpers,
            forward=ff.lines(), needs_matmul_configs=any("MATMUL_CONFIGS" in k.text for k in ff.kernels))

    gen = generate_torch(source, extension=extend)
    ff = holder["ff"]
    return TritonModule(gen.text, gen.entry_class, gen.inputs, gen.classes, gen.built_for, ff.fused_groups,
                        ff.torch_ops)


__all__ = ["generate", "attr_path", "TritonModule"]
