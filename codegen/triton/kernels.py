"""One Triton kernel per fusion group of the plan (passes/plan.py), and the Python function launching it.

Every kernel works on named axes the same way. The group's *iteration axes*
are the axes of the value it computes; each tensor the kernel reads (an
*operand*: an input of the group, a layer's weight, a batchnorm's statistics)
is aligned to them by name, so an operand that lacks an axis, or has it with
size 1, is broadcast along it (stride 0, computed by `_strides` at run time
from the tensor's real strides, so views need no copy). An index vector per
iteration axis, taken apart from the program's offsets with `%` and `//`,
times the operand's stride along that axis, gives its addresses; masks
cover ragged edges. The group's ops then run in registers, in fp32, each
pointwise op printed by its `OpDef.triton` facet, and the result is stored
once, in the input's dtype.

  pointwise  a 1-D block of output elements
  norm       a [rows, columns] block: the columns are the normalised axes
             (layernorm, rmsnorm) or the softmax axis, whole in one block
  reduce     the same, storing one value per row (mean, sum, amax)
  matmul     an [M, N] tile, K in steps, tl.dot into an fp32 accumulator
             (autotuned over a small config set); N is the mapped axis
  window     a 1-D block of output elements, the window's taps unrolled
             (depthwise conv, max/avg pooling)
  attention  a block of queries per program, keys and values in blocks with
             an online softmax (flash attention); causal mask and ragged
             lengths by masks

Launchers compute output shapes from their inputs' shapes at run time, so
every size the `.arch` file left free stays free.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from archc.codegen.namespace import Namespace
from archc.ir.graph import Node
from archc.ir.plan import Group, Plan
from archc.ops import rules as R
from archc.ops.registry import Op
from archc.passes.plan import head
from archc.shapes import sizes as S
from archc.shapes.types import TensorType

_ENV = Environment(loader=FileSystemLoader(os.path.join(os.path.dirname(__file__), "templates")),
                   undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
_ENV.filters["tuple_text"] = lambda xs: repr(tuple(xs))


def split_args(text: str) -> list[str]:
    """The top-level comma-separated parts of an argument list (commas inside brackets stay)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    if text[start:].strip():
        parts.append(text[start:].strip())
    return parts


def wrap(head: str, args: str | list[str], tail: str, indent: str, width: int = 116) -> str:
    """`head + args + tail` on one line if it fits in `width`, else with the arguments filling lines
    indented by `indent` + 4 spaces (the form black and ruff accept)."""
    parts = split_args(args) if isinstance(args, str) else list(args)
    one = f"{indent}{head}{', '.join(parts)}{tail}"
    if len(one) <= width:
        return one
    lines, cur = [f"{indent}{head}"], indent + "    "
    for j, part in enumerate(parts):
        piece = part + ("," if j < len(parts) - 1 else "")
        if cur.strip() and len(cur) + 1 + len(piece) > width:
            lines.append(cur.rstrip())
            cur = indent + "    "
        cur += ("" if not cur.strip() else " ") + piece
    lines.append(cur.rstrip() + tail)
    return "\n".join(lines)


_ENV.globals["wrap"] = wrap
_ENV.filters["product"] = lambda xs: math.prod(xs)


class NotFusable(Exception):
    """The group cannot be a kernel after all (a size the kernel needs is not a number); it runs as torch."""


@dataclasses.dataclass
class Operand:
    """A tensor a kernel reads: its parameter name, the launcher argument it comes from, the
    forward expression passed for it, and its dimension for each iteration axis (-1: none)."""

    name: str
    arg: str
    expr: str
    dims: tuple[int, ...]
    value: int | None = None  # the graph value, for inputs of the group
    local: bool = False  # made by the launcher itself (not one of its parameters)


@dataclasses.dataclass
class Kernel:
    """What the module prints for one group: the kernel, its launcher, and the forward's call."""

    name: str        # the launcher's name; the kernel is name + "_kernel"
    text: str        # the kernel and the launcher, as module-level Python
    args: list[str]  # the forward expressions the launcher takes, in order
    value: int       # the graph value it returns
    kind: str = ""   # the group's kind


def arch_lines(nodes: list[Node]) -> str:
    """The .arch lines nodes come from: `mlp.arch:7, 8`, or `a.arch:3, b.arch:9` across files."""
    spans = sorted({(os.path.basename(n.span.file), n.span.line) for n in nodes if n.span})
    files = sorted({f for f, _ in spans})
    if len(files) == 1:
        return f"{files[0]}:{', '.join(str(line) for _, line in spans)}"
    return ", ".join(f"{f}:{line}" for f, line in spans)


def _tensor(t: Any) -> TensorType:
    if not isinstance(t, TensorType):
        raise NotFusable("not a tensor")
    return t


def _int(x: Any, what: str) -> int:
    if not S.is_concrete(x):
        raise NotFusable(f"{what} is not a number")
    return int(x)


def _lit(x: float) -> str:
    return repr(float(x))


# The names the templates use inside kernels and launchers: no operand or axis may take one.
_KERNEL_LOCALS = frozenset("""
    tl triton torch math out offs mask rest rows cols acc a b s m p d ok rk rm rn re rd k0 n0 end alpha m_i l_i m_new
    qv kv vv mean rstd ms total x_in x_base xv wv count eps scale numel n_rows n_cols L S D E M N K PRECISION CAUSAL
    BLOCK BLOCK_M BLOCK_N BLOCK_K BLOCK_D BLOCK_E BLOCK_R BLOCK_I ro ri n_outer n_inner""".split())
_LAUNCHER_LOCALS = frozenset("""
    out torch triton tl math grid meta sizes numel n_rows n_cols block_m block_n precision scale batch L S D E M N K
    q k v qkv per_head attn dim n_outer n_inner block_r block_i""".split())


class KernelBuilder:
    """Builds the kernel of one group. `external(value)` gives the forward expression of a value computed
    outside the group; `attr(path)` the expression of a layer (`self.features[1][0]`)."""

    def __init__(self, plan: Plan, group: Group, name: str, external: Callable[[int], str],
                 attr: Callable[[str], str]):
        self.plan, self.g, self.group, self.name = plan, plan.graph, group, name
        self.external, self.attr = external, attr
        self.nodes = [self.g.node(i) for i in group.nodes]
        self.members = set(group.nodes)
        self.head = head(plan, group)
        self.tail = self.nodes[-1]
        self.out = _tensor(self.tail.type)
        self.ns = Namespace(reserved=_KERNEL_LOCALS)
        # The iteration axes are the first node's; each node sees them under its own names and order
        # (a rename relabels them, a permuting rearrange reorders them): maps[node] = {name: axis}.
        self.it = _tensor(self.nodes[0].type)
        self.axes = [self.ns.name(("axis", j), a.name) for j, a in enumerate(self.it.axes)]
        self.maps: dict[int, dict[str, int]] = {self.nodes[0].id: {a.name: j for j, a in enumerate(self.it.axes)}}
        if group.kind != "flash":  # (a flash kernel iterates over the union of its axes: flash_kernel)
            for n in self.nodes[1:]:
                self.maps[n.id] = self._map(n)
        self.operands: list[Operand] = []
        self.args = Namespace(reserved=_LAUNCHER_LOCALS)
        self._by_key: dict[Any, Operand] = {}
        self.index: dict[int, str] = {}  # each iteration axis's index expression, for the output's offsets
        self.extras: list[tuple[str, str]] = []  # launcher parameters no kernel reads directly: (name, expr)

    def _map(self, n: Node) -> dict[str, int]:
        t = _tensor(n.type)
        prev = next((i for i in n.inputs if i in self.maps), None)
        if prev is None:
            raise NotFusable("a member of the group reads none of it")
        pm, pt = self.maps[prev], _tensor(self.g.node(prev).type)
        if set(t.names) == set(pm):  # the same axes, in any order
            return {a: pm[a] for a in t.names}
        if len(t.axes) == len(pt.axes):  # renamed, in place
            return {a.name: pm[b.name] for a, b in zip(t.axes, pt.axes)}
        raise NotFusable(f"{n.op.name} changes the axes of the group")

    def out_dims(self) -> tuple[int, ...]:
        """For each iteration axis, the output's dimension (the output is laid out as the last node's type;
        -1 for an axis it does not have: a flash kernel's key and feature axes)."""
        m = self.maps[self.tail.id]
        where = {m[a]: d for d, a in enumerate(self.out.names)}
        return tuple(where.get(j, -1) for j in range(len(self.axes)))

    def alloc(self, sizes: list[str], like: str) -> list[str]:
        """Launcher lines: the iteration sizes, and `out` in the output's layout."""
        dims = self.out_dims()
        one = "," if len(sizes) == 1 else ""
        lines = [f"sizes = ({', '.join(sizes)}{one})"]
        inv = {d: j for j, d in enumerate(dims) if d >= 0}
        rank = len(inv)
        shape = "sizes" if dims == tuple(range(len(dims))) else \
            f"({', '.join(f'sizes[{inv[d]}]' for d in range(rank))}{',' if rank == 1 else ''})"
        lines.append(f"out = torch.empty({shape}, device={like}.device, dtype={like}.dtype)")
        return lines

    def out_strides(self) -> str:
        return f"*_strides(out, {tuple(d for d in self.out_dims() if d >= 0)!r})"

    def dims_at(self, n: Node, t: TensorType) -> tuple[int, ...]:
        """For each iteration axis, `t`'s dimension, `t` aligned by name to node `n`'s axes (-1: none)."""
        m = self.maps[n.id]
        out = [-1] * len(self.axes)
        for d, a in enumerate(t.names):
            if a in m:
                out[m[a]] = d
        return tuple(out)

    # ---- operands ----------------------------------------------------------------------------

    def operand(self, key: Any, hint: str, expr: str, dims: tuple[int, ...], value: int | None = None) -> Operand:
        if key not in self._by_key:
            name = self.ns.name(("operand", key), hint)
            op = Operand(name, self.args.name(("arg", expr), hint), expr, dims, value)
            self._by_key[key] = op
            self.operands.append(op)
        return self._by_key[key]

    def hint(self, i: int) -> str:
        """A kernel parameter name for value i: its .arch name, else the op that computes it."""
        src = self.g.node(i)
        name = src.label or (src.attrs.get("name") if src.op in (Op.INPUT, Op.PARAM, Op.BUFFER) else None)
        return str(name or src.op.name)

    def value_operand(self, i: int, at: Node) -> Operand:
        t = _tensor(self.g.node(i).type)
        dims = self.dims_at(at, t)
        return self.operand(("value", i, dims), self.hint(i), self.external(i), dims, i)

    def param_operand(self, n: Node, pname: str, dims: tuple[int, ...]) -> Operand:
        assert n.path is not None
        return self.operand(("param", n.id, pname), pname.replace(".", "_"), f"{self.attr(n.path)}.{pname}", dims)

    # ---- the pointwise body -------------------------------------------------------------------

    def body(self, nodes: list[Node], load: Callable[[Operand], str], first: dict[int, str] | None = None
             ) -> tuple[list[str], str]:
        """Lines computing `nodes` in fp32 (inputs outside them loaded by `load`), and the last value's name."""
        lines: list[str] = []
        names: dict[int, str] = dict(first or {})
        loaded: dict[str, str] = {}

        def arg(i: int, at: Node) -> str:
            if i in names:
                return names[i]
            op = self.value_operand(i, at)
            if op.name not in loaded:
                loaded[op.name] = f"{op.name}_v"
                lines.append(f"{op.name}_v = {load(op)}")
            return loaded[op.name]

        last = ""
        for n in nodes:
            var = f"v{n.id}"
            if n.op is Op.BATCHNORM:
                x = arg(n.inputs[0], n)
                t = _tensor(n.type)
                axis = R.channel(t, n.attrs.axis)
                dims = tuple(0 if j == self.maps[n.id][axis] else -1 for j in range(len(self.axes)))
                stats = {p: self.param_operand(n, p, dims) for p in ("running_mean", "running_var")}
                for op in stats.values():
                    if op.name not in loaded:
                        loaded[op.name] = f"{op.name}_v"
                        lines.append(f"{op.name}_v = {load(op)}")
                expr = f"({x} - {loaded[stats['running_mean'].name]}) * tl.rsqrt({loaded[stats['running_var'].name]} " \
                       f"+ {_lit(n.attrs.eps)})"
                if n.attrs.affine:
                    w, b = self.param_operand(n, "weight", dims), self.param_operand(n, "bias", dims)
                    for op in (w, b):
                        if op.name not in loaded:
                            loaded[op.name] = f"{op.name}_v"
                            lines.append(f"{op.name}_v = {load(op)}")
                    expr = f"{expr} * {loaded[w.name]} + {loaded[b.name]}"
            elif n.op is Op.MASKED_FILL:  # the bool mask loads as 0.0 / 1.0
                fill = n.attrs.fill if n.attrs.fill is not None else repr(float(n.attrs.value))
                fill = {"-inf": 'float("-inf")', "inf": 'float("inf")'}.get(fill, fill)
                expr = f"tl.where({arg(n.inputs[1], n)} != 0.0, {fill}, {arg(n.inputs[0], n)})"
            elif n.op.triton is None:  # a relabelling view (rename, a permuting rearrange): the same value
                expr = arg(n.inputs[0], n)
            else:
                expr = n.op.triton(n.attrs, [arg(i, n) for i in n.inputs])
            if expr in names.values() or expr in loaded.values():  # a pass-through (dropout at inference)
                names[n.id] = expr
                last = expr
                continue
            lines.append(f"{var} = {expr}  # {n.op.name}{self.where(n)}")
            names[n.id] = var
            last = var
        return lines, last

    def where(self, n: Node) -> str:
        return f" {os.path.basename(n.span.file)}:{n.span.line}" if n.span else ""

    # ---- pieces shared by the templates ------------------------------------------------------------

    def comment(self) -> list[str]:
        ops = " -> ".join(n.op.name for n in self.nodes)
        return [f"{self.group.name}: {ops}", f"from {arch_lines(self.nodes)}", f"computes {self.out}"]

    def strides(self, op: Operand) -> list[str]:
        return [f"{op.name}_{self.axes[j]}" for j, d in enumerate(op.dims) if d >= 0]

    def stride_args(self, op: Operand) -> str:
        dims = tuple(d for d in op.dims if d >= 0)
        return f"*_strides({op.arg}, {dims!r})" if dims else ""

    def offset(self, op: Operand, index: Callable[[int], str]) -> str:
        terms = [f"{index(j)} * {op.name}_{self.axes[j]}" for j, d in enumerate(op.dims) if d >= 0]
        return " + ".join(terms) if terms else "0"

    def signature(self, extra_before: list[str], extra_after: list[str], with_out: bool = False) -> str:
        """The kernel's parameters: pointers (out first), sizes, the operands' strides along the
        iteration axes (and the output's, `with_out`), then the rest."""
        ptrs = ["out"] + [op.name for op in self.operands]
        strides = [s for op in self.operands for s in self.strides(op)]
        outs = [f"out_{a}" for a, d in zip(self.axes, self.out_dims()) if d >= 0] if with_out else []
        return ", ".join(ptrs + extra_before + strides + outs + extra_after)

    def launch_args(self, extra_before: list[str], extra_after: list[str], with_out: bool = False) -> str:
        args = ["out"] + [op.arg for op in self.operands] + extra_before
        args += [s for op in self.operands if (s := self.stride_args(op))]
        args += [self.out_strides()] if with_out else []
        return ", ".join(args + extra_after)

    def out_offset(self, kind: str) -> str:
        dims = self.out_dims()
        return " + ".join(f"{self.index[j]} * out_{a}" for j, a in enumerate(self.axes) if dims[j] >= 0) or "0"

    def row_index(self, j: int) -> str:
        return f"i_{self.axes[j]}"

    def batch_offset(self, op: Operand, batch: list[int]) -> str:
        terms = [f"i_{self.axes[j]} * {op.name}_{self.axes[j]}" for j in batch if op.dims[j] >= 0]
        return " + ".join(terms) if terms else "0"

    def in_sizes(self, sp: list[int]) -> list[str]:
        return [f"in_{self.axes[j]}" for j in sp]

    def in_size_args(self, x: Operand, sp: list[int], xdims: tuple[int, ...]) -> list[str]:
        return [f"{x.arg}.shape[{xdims[j]}]" for j in sp]

    def tap_strides(self, sp: list[int]) -> list[str]:
        return [f"weight_{self.axes[j]}" for j in sp]

    def weight_stride_args(self, w: Operand, sp: list[int]) -> list[str]:
        return [f"{w.arg}.stride(0)"] + [f"{w.arg}.stride({2 + q})" for q in range(len(sp))]

    def window_base(self, x: Operand, sp: list[int], chan: int | None, mult: int, rows: bool = False) -> str:
        terms = []
        for j, a in enumerate(self.axes):
            if j in sp:
                continue
            i = f"(i_{a} // {mult})" if j == chan and mult != 1 else f"i_{a}"
            if rows:
                i += "[None, :]" if j == chan else "[:, None]"
            terms.append(f"{i} * {x.name}_{a}")
        return " + ".join(terms) if terms else "0"

    def _params(self) -> list[tuple[str, str]]:
        seen: dict[str, str] = dict(self.extras)
        for op in self.operands:
            if not op.local and op.arg not in seen:
                seen[op.arg] = op.expr
        return list(seen.items())

    def launcher_params(self) -> str:
        return ", ".join(f"{a}: torch.Tensor" for a, _ in self._params())

    def call_args(self) -> list[str]:
        return [e for _, e in self._params()]

    def extra(self, hint: str, expr: str) -> str:
        name = self.args.name(("extra", expr), hint)
        self.extras.append((name, expr))
        return name

    def size_of(self, j: int) -> str:
        """A launcher expression for iteration axis j's size: an operand that has it at full size."""
        want = self.it.axes[j].size
        for op in self.operands:
            d = op.dims[j]
            if d >= 0 and op.value is not None:
                t = _tensor(self.g.node(op.value).type)
                if S.equal(t.axes[d].size, want):
                    return f"{op.arg}.shape[{d}]"
        raise NotFusable(f"no input has axis {self.it.axes[j].name} at its full size")

    def render(self, template: str, **kw: Any) -> Kernel:
        text = _ENV.get_template(template).render(k=self, name=self.name, **kw)
        return Kernel(self.name, text, self.call_args(), self.tail.id, self.group.kind)


# ---- the kinds -------------------------------------------------------------------------------------


def pointwise_kernel(b: KernelBuilder) -> Kernel:
    rank = len(b.axes)

    def load(op: Operand) -> str:
        return f"tl.load({op.name} + {b.offset(op, lambda j: 'i_' + b.axes[j])}, mask=mask, other=0.0).to(tl.float32)"

    b.index = {j: f"i_{b.axes[j]}" for j in range(rank)}
    lines, last = b.body(b.nodes, load)
    if not b.operands:
        raise NotFusable("reads nothing")
    sizes = [b.size_of(j) for j in range(rank)]
    return b.render("pointwise.py.j2", body=lines, result=last, alloc=b.alloc(sizes, b.operands[0].arg))


def _name_of(m: dict[str, int], j: int) -> str:
    return next(a for a, k in m.items() if k == j)


def _row_split(reduced: set[str], at: TensorType) -> tuple[list[int], list[int]]:
    rows = [j for j, a in enumerate(at.axes) if a.name not in reduced]
    cols = [j for j, a in enumerate(at.axes) if a.name in reduced]
    return rows, cols


def _norm_lines(b: KernelBuilder, h: Node, x: str, load: Callable[[Operand], str], reduced: set[str]
                ) -> tuple[list[str], str]:
    """A norm or softmax over the columns of the 2-D block `x` (masked by `mask`, `n_cols` columns, `eps`):
    its lines and the launcher's value for `eps`."""
    t = _tensor(h.type)
    at = b.maps[h.id]
    if h.op is Op.SOFTMAX:
        norm = [f"s = tl.where(mask, {x}, float('-inf'))",
                "m = tl.max(s, axis=1)",
                "s = tl.exp(s - tl.where(m == float('-inf'), 0.0, m)[:, None])  # (rows past the end: all -inf)",
                "s = tl.where(mask, s, 0.0)",
                "total = tl.sum(s, axis=1)",
                f"v{h.id} = s / tl.where(total == 0.0, 1.0, total)[:, None]  # softmax{b.where(h)}"]
    elif h.op is Op.LAYERNORM:
        norm = [f"mean = tl.sum(tl.where(mask, {x}, 0.0), axis=1) / n_cols",
                f"d = tl.where(mask, {x} - mean[:, None], 0.0)",
                "rstd = tl.rsqrt(tl.sum(d * d, axis=1) / n_cols + eps)",
                f"v{h.id} = d * rstd[:, None]  # layernorm{b.where(h)}"]
    else:
        norm = [f"ms = tl.sum(tl.where(mask, {x} * {x}, 0.0), axis=1) / n_cols",
                f"v{h.id} = {x} * tl.rsqrt(ms + eps)[:, None]  # rmsnorm{b.where(h)}"]
    if h.op is not Op.SOFTMAX and h.attrs.affine:
        order = list(R.norm_over(t, h.attrs.over))  # the normalised shape in `over`'s order, as the weight has it
        dims = tuple(order.index(a) if (a := _name_of(at, j)) in reduced else -1 for j in range(len(b.axes)))
        w = b.param_operand(h, "weight", dims)
        norm.append(f"v{h.id} = v{h.id} * {load(w)}")
        if h.op is Op.LAYERNORM and h.attrs.bias:
            bias = b.param_operand(h, "bias", dims)
            norm.append(f"v{h.id} = v{h.id} + {load(bias)}")
    if h.op is Op.RMSNORM and h.attrs.eps is None:
        eps_value = f"torch.finfo({b.operands[0].arg}.dtype).eps"
    elif h.op is Op.SOFTMAX:
        eps_value = "0.0"
    else:
        eps_value = _lit(h.attrs.eps)
    return norm, eps_value


def norm_kernel(b: KernelBuilder) -> Kernel:
    h = b.head
    t = _tensor(h.type)
    if h.op is Op.SOFTMAX:
        reduced = {h.attrs.axis}
    else:
        over = h.attrs.over
        reduced = set(over) if over else {t.axes[-1].name}
    at = b.maps[h.id]
    cols = sorted(at[a] for a in reduced)
    rows = [j for j in range(len(b.axes)) if j not in cols]
    index = {j: (f"i_{b.axes[j]}[:, None]" if j in rows else f"i_{b.axes[j]}[None, :]") for j in range(len(b.axes))}
    b.index = index

    def load(op: Operand) -> str:
        return f"tl.load({op.name} + {b.offset(op, lambda j: index[j])}, mask=mask, other=0.0).to(tl.float32)"

    before = [n for n in b.nodes if n.id < h.id]
    after = [n for n in b.nodes if n.id > h.id]
    pro, x = b.body(before, load)
    if not before:
        op = b.value_operand(h.inputs[0], h)
        pro = [f"x_in = {load(op)}"]
        x = "x_in"
    norm, eps_value = _norm_lines(b, h, x, load, reduced)
    eps = "eps"
    epi, last = b.body(after, load, {h.id: f"v{h.id}"})
    sizes = [b.size_of(j) for j in range(len(b.axes))]
    return b.render("rows.py.j2", prologue=pro, norm=norm, epilogue=epi, result=last or f"v{h.id}", rows=rows,
                    cols=cols, alloc=b.alloc(sizes, b.operands[0].arg), eps=eps, eps_value=eps_value, reduce=None)


def reduce_kernel(b: KernelBuilder) -> Kernel:
    h = b.head
    x = _tensor(b.g.node(h.inputs[0]).type)
    reduced = set(h.attrs.over) if h.attrs.over else set(x.names)
    # iterate over the input's axes; the output keeps the others (and, with keep, size-1 reduced ones)
    b.out = x
    b.axes = [b.ns.name(("in-axis", j), a.name) for j, a in enumerate(x.axes)]
    rows, cols = _row_split(reduced, x)
    index = {j: (f"i_{b.axes[j]}[:, None]" if j in rows else f"i_{b.axes[j]}[None, :]") for j in range(len(b.axes))}
    src = b.g.node(h.inputs[0])
    op = b.operand(("value", src.id), "x", b.external(src.id), tuple(range(len(x.axes))), src.id)
    other = "float('-inf')" if h.op is Op.AMAX else "0.0"
    loaded = f"tl.load({op.name} + {b.offset(op, lambda j: index[j])}, mask=mask, other={other}).to(tl.float32)"
    if h.op is Op.AMAX:
        norm = [f"v{h.id} = tl.max({loaded}, axis=1)"]
    else:
        norm = [f"v{h.id} = tl.sum({loaded}, axis=1)"]
        if h.op is Op.MEAN:
            norm.append(f"v{h.id} = v{h.id} / n_cols")
    out_t = _tensor(h.type)
    keep_dims = [out_t.names.index(x.axes[j].name) if x.axes[j].name in out_t.names else -1 for j in range(len(x.axes))]
    out_shape = []
    for j in range(len(x.axes)):
        if keep_dims[j] >= 0:
            out_shape.append("1" if j in cols else f"{op.arg}.shape[{j}]")
    one = "," if len(x.axes) == 1 else ""
    alloc = [f"sizes = ({', '.join(f'{op.arg}.shape[{j}]' for j in range(len(x.axes)))}{one})",
             f"out = torch.empty(({', '.join(out_shape)}{',' if len(out_shape) == 1 else ''}), "
             f"device={op.arg}.device, dtype={op.arg}.dtype)"]
    return b.render("rows.py.j2", prologue=[], norm=norm, epilogue=[], result=f"v{h.id}", rows=rows, cols=cols,
                    alloc=alloc, eps=None, eps_value=None, reduce=out_shape)


def matmul_kernel(b: KernelBuilder) -> Kernel:
    h = b.head
    t = _tensor(h.type)
    x = _tensor(b.g.node(h.inputs[0]).type)
    k_axis, _, new_name = h.attrs.map
    n_name = new_name or k_axis
    pn = t.names.index(n_name)
    m_axes = [j for j in range(len(t.axes)) if j != pn]
    # x along the output's M axes (by name) and its K axis
    xdims = tuple(x.names.index(t.axes[j].name) if j != pn else -1 for j in range(len(t.axes)))
    xop = b.operand(("value", h.inputs[0]), b.hint(h.inputs[0]), b.external(h.inputs[0]), xdims, h.inputs[0])
    kdim = x.names.index(k_axis)
    weight = b.operand(("param", h.id, "weight"), "weight", f"{b.attr(h.path or '')}.weight", (), None)
    index = {j: (f"i_{b.axes[j]}[:, None]" if j != pn else "rn[None, :]") for j in range(len(t.axes))}
    b.index = index

    def load(op: Operand) -> str:
        return f"tl.load({op.name} + {b.offset(op, lambda j: index[j])}, mask=mask, other=0.0).to(tl.float32)"

    bias = None
    if h.attrs.bias:
        bias = b.operand(("param", h.id, "bias"), "bias", f"{b.attr(h.path or '')}.bias", (), None)
    epi, last = b.body(b.nodes[1:], load, {h.id: f"v{h.id}"})
    sizes = [f"{xop.arg}.shape[{xdims[j]}]" if j != pn else f"{weight.arg}.shape[0]" for j in range(len(t.axes))]
    return b.render("matmul.py.j2", x=xop, weight=weight, bias=bias, kdim=kdim, pn=pn, m_axes=m_axes,
                    epilogue=epi, result=last or f"v{h.id}", alloc=b.alloc(sizes, xop.arg), head_id=h.id)


def window_kernel(b: KernelBuilder) -> Kernel:
    h = b.head
    t = _tensor(h.type)
    x = _tensor(b.g.node(h.inputs[0]).type)
    a = h.attrs
    spatial = list(a.spatial)
    kernel = [_int(k, "the window") for k in a.kernel]
    strides = [_int(s, "the stride") for s in a.strides]
    dil = [_int(d, "the dilation") for d in (a.dilations or [1] * len(kernel))]
    pads = [(_int(p, "the padding"), _int(q, "the padding")) for p, q in a.pads]
    xdims = tuple(x.names.index(ax.name) for ax in t.axes)
    xop = b.operand(("value", h.inputs[0]), b.hint(h.inputs[0]), b.external(h.inputs[0]), xdims, h.inputs[0])
    sp = [t.names.index(s) for s in spatial]
    chan = None
    weight = bias = None
    mult = 1
    if h.op is Op.CONV:
        chan = t.names.index(a.map[2] or a.map[0])
        weight = b.operand(("param", h.id, "weight"), "weight", f"{b.attr(h.path or '')}.weight", (), None)
        if a.bias:
            bias = b.operand(("param", h.id, "bias"), "bias", f"{b.attr(h.path or '')}.bias", (), None)
        mult = _int(S.floordiv(t.axes[chan].size, x.size(a.map[0])), "the channel multiplier")
    kind = "conv" if h.op is Op.CONV else "max" if h.op is Op.MAXPOOL else "avg"
    nrm = next((n for n in b.nodes if n.op in (Op.LAYERNORM, Op.RMSNORM)), None)
    if nrm is None:  # one output element per lane
        b.index = {j: f"i_{b.axes[j]}" for j in range(len(b.axes))}
    else:  # a [positions, channels] block: the channels whole, normalised in registers
        b.index = {j: (f"i_{b.axes[j]}[None, :]" if j == chan else f"i_{b.axes[j]}[:, None]")
                   for j in range(len(b.axes))}

    def load(op: Operand) -> str:
        return f"tl.load({op.name} + {b.offset(op, lambda j: b.index[j])}, mask=mask, other=0.0).to(tl.float32)"

    norm: list[str] = []
    eps_value = None
    if nrm is None:
        epi, last = b.body(b.nodes[1:], load, {h.id: f"v{h.id}"})
    else:
        pro, x_ = b.body([n for n in b.nodes[1:] if n.id < nrm.id], load, {h.id: f"v{h.id}"})
        nt = _tensor(nrm.type)
        norm, eps_value = _norm_lines(b, nrm, x_ or f"v{h.id}", load, set(nrm.attrs.over or (nt.names[-1],)))
        epi, last = b.body([n for n in b.nodes if n.id > nrm.id], load, {nrm.id: f"v{nrm.id}"})
        norm = pro + norm
        last = last or f"v{nrm.id}"
    out_shape = []
    for j in range(len(t.axes)):
        if j in sp:
            k = sp.index(j)
            c = pads[k][0] + pads[k][1] - dil[k] * (kernel[k] - 1) - 1
            size = f"{xop.arg}.shape[{xdims[j]}]"
            if strides[k] == 1:
                out_shape.append(size if c + 1 == 0 else f"{size} {'+' if c + 1 > 0 else '-'} {abs(c + 1)}")
            else:
                out_shape.append(f"({size} {'+' if c >= 0 else '-'} {abs(c)}) // {strides[k]} + 1" if c else
                                 f"{size} // {strides[k]} + 1")
        elif j == chan:
            out_shape.append(f"{weight.arg}.shape[0]" if weight else f"{xop.arg}.shape[{xdims[j]}]")
        else:
            out_shape.append(f"{xop.arg}.shape[{xdims[j]}]")
    count_pad = kind != "avg" or bool(a.count_include_pad)
    if nrm is not None:
        rows = [j for j in range(len(b.axes)) if j != chan]
        return b.render("window_rows.py.j2", x=xop, weight=weight, bias=bias, sp=sp, chan=chan, mult=mult,
                        kernel=kernel, strides=strides, dil=dil, pads=pads, norm=norm, epilogue=epi, result=last,
                        alloc=b.alloc(out_shape, xop.arg), head_id=h.id, xdims=xdims, rows=rows,
                        eps_value=eps_value)
    return b.render("window.py.j2", kind=kind, x=xop, weight=weight, bias=bias, sp=sp, chan=chan, mult=mult,
                    kernel=kernel, strides=strides, dil=dil, pads=pads, epilogue=epi,
                    result=last or f"v{h.id}", alloc=b.alloc(out_shape, xop.arg), head_id=h.id,
                    count_pad=count_pad, xdims=xdims)


def attention_kernel(b: KernelBuilder) -> Kernel:
    h = b.head
    t = _tensor(h.type)
    q, k, v = (_tensor(b.g.node(i).type) for i in h.inputs)
    seq, chan = h.attrs.seq, h.attrs.chan
    ps, pc = t.names.index(seq), t.names.index(chan)
    batch = [j for j in range(len(t.axes)) if j not in (ps, pc)]
    ops = []
    for name, i, tt in (("q", h.inputs[0], q), ("k", h.inputs[1], k), ("v", h.inputs[2], v)):
        dims = tuple(tt.names.index(ax.name) for ax in t.axes)
        ops.append(b.operand(("value", i, name), name, b.external(i), dims, i))
    index = {j: ("rm[:, None]" if j == ps else "re[None, :]" if j == pc else f"i_{b.axes[j]}")
             for j in range(len(t.axes))}
    b.index = index

    def load(op: Operand) -> str:
        return f"tl.load({op.name} + {b.offset(op, lambda j: index[j])}, mask=mask, other=0.0).to(tl.float32)"

    epi, last = b.body(b.nodes[1:], load, {h.id: f"v{h.id}"})
    scale = "D ** -0.5" if h.attrs.scale is None else _lit(h.attrs.scale)
    q_, v_ = ops[0], ops[2]
    sizes = [f"{q_.arg}.shape[{q_.dims[j]}]" if j != pc else f"{v_.arg}.shape[{v_.dims[j]}]"
             for j in range(len(t.axes))]
    return b.render("attention.py.j2", q=ops[0], kk=ops[1], v=ops[2], ps=ps, pc=pc, batch=batch,
                    alloc=b.alloc(sizes, q_.arg),
                    causal=bool(h.attrs.causal), scale=scale, epilogue=epi, result=last or f"v{h.id}",
                    head_id=h.id)


def mha_kernel(b: KernelBuilder) -> Kernel:
    """multihead_attention: the input projections and the per-head attention through the module's shared
    `_mha_linear` and `_mha_attention` kernels, the output projection and the group's epilogue as this
    group's matmul kernel (reading the heads' output in place)."""
    h = b.head
    t = _tensor(h.type)
    ins = [_tensor(b.g.node(i).type) for i in h.inputs]
    chan = h.attrs.chan or t.names[-1]
    seq = h.attrs.seq or t.names[-2]
    if t.names[-1] != chan or len(t.axes) not in (2, 3) or any(x.names != t.names for x in ins):
        raise NotFusable("multihead_attention with the features not last")
    heads = _int(h.attrs.heads, "the number of heads")
    pn = len(t.axes) - 1
    path = b.attr(h.path or "")
    names = [b.extra(b.hint(i), b.external(i)) for i in h.inputs]
    names += [names[0]] * (3 - len(names))
    in_w = b.extra("in_proj_weight", f"{path}.in_proj_weight")
    in_b = b.extra("in_proj_bias", f"{path}.in_proj_bias") if h.attrs.bias else None
    attn = Operand(b.ns.name(("operand", "attn"), "attn"), "attn", "", tuple(j if j != pn else -1
                                                                                for j in range(len(t.axes))),
                   None, True)
    b.operands.append(attn)
    weight = b.operand(("param", h.id, "weight"), "weight", f"{path}.out_proj.weight", (), None)
    bias = b.operand(("param", h.id, "bias"), "bias", f"{path}.out_proj.bias", (), None) if h.attrs.bias else None
    index = {j: (f"i_{b.axes[j]}[:, None]" if j != pn else "rn[None, :]") for j in range(len(t.axes))}
    b.index = index

    def load(op: Operand) -> str:
        return f"tl.load({op.name} + {b.offset(op, lambda j: index[j])}, mask=mask, other=0.0).to(tl.float32)"

    epi, last = b.body(b.nodes[1:], load, {h.id: f"v{h.id}"})
    sizes = [f"{names[0]}.shape[{j}]" for j in range(len(t.axes))]
    seq_dim = t.names.index(seq)
    batch_dim = next((j for j in range(len(t.axes) - 1) if j != seq_dim), None)

    def in_b_slice(i: int) -> str:
        return "None" if in_b is None else f"{in_b}[{['', 'dim', '2 * dim'][i]}:{['dim', '2 * dim', ''][i]}]"

    packed = len(set(h.inputs)) == 1
    q_, k_, v_ = (Operand(n, n, "", ()) for n in names)
    return b.render("mha.py.j2", x=attn, weight=weight, bias=bias, kdim=-1, pn=pn,
                    m_axes=[j for j in range(len(t.axes)) if j != pn], epilogue=epi, result=last or f"v{h.id}",
                    alloc=b.alloc(sizes, names[0]), head_id=h.id, heads=heads, packed=packed, q=q_, k_=k_,
                    v_=v_, in_w=in_w, in_b=in_b, in_b_slice=in_b_slice, seq_dim=seq_dim,
                    batch_dim=batch_dim)


def flash_kernel(b: KernelBuilder) -> Kernel:
    """Attention written out (passes/plan.py `flash_patterns`): einsum(q, k) over d, score ops, softmax over
    the key axis j, einsum(p, v) over j; as one flash kernel over the axes batch..., i, j, d, e, the score
    ops applied to each block of scores in registers, then the epilogue."""
    e1 = b.nodes[0]
    p = next(n for n in b.nodes if n.op is Op.SOFTMAX)
    e2 = next(n for n in b.nodes if n.op is Op.EINSUM and n.id != e1.id)
    s_t = _tensor(e1.type)
    qi, ki = e1.inputs if p.attrs.axis not in _tensor(b.g.node(e1.inputs[0]).type).names else e1.inputs[::-1]
    vi = next(i for i in e2.inputs if i != p.id)
    q, k, v = (_tensor(b.g.node(i).type) for i in (qi, ki, vi))
    j = p.attrs.axis
    d = next(a for a in q.names if a not in s_t.names)
    e = next(a for a in v.names if a not in s_t.names)
    i_axis = next(a for a in s_t.names if a not in k.names)
    # iterate over the scores' axes, then d and e
    union = list(s_t.axes) + [ax for ax in (q.axes[q.names.index(d)], v.axes[v.names.index(e)])]
    b.it = TensorType(tuple(union), s_t.dtype)
    b.axes = [b.ns.name(("axis", n_), ax.name) for n_, ax in enumerate(union)]
    idx = {ax.name: n_ for n_, ax in enumerate(union)}
    for n in b.nodes:
        if n.id in b.maps and n is not e1:
            continue
        if n.id <= e2.id:
            b.maps[n.id] = {a: idx[a] for a in _tensor(n.type).names}
        else:
            b.maps[n.id] = b._map(n)
    batch = [idx[a] for a in s_t.names if a not in (i_axis, j)]
    index = {idx[a]: f"i_{b.axes[idx[a]]}" for a in s_t.names if a not in (i_axis, j)}
    index.update({idx[i_axis]: "rm[:, None]", idx[j]: "rn[None, :]", idx[e]: "re[None, :]", idx[d]: "rd[None, :]"})
    b.index = index
    def dims(t: TensorType) -> tuple[int, ...]:
        return tuple(t.names.index(ax.name) if ax.name in t.names else -1 for ax in union)

    qop = b.operand(("value", qi, "q"), b.hint(qi), b.external(qi), dims(q), qi)
    kop = b.operand(("value", ki, "k"), b.hint(ki), b.external(ki), dims(k), ki)
    vop = b.operand(("value", vi, "v"), b.hint(vi), b.external(vi), dims(v), vi)

    def loader(mask: str) -> Callable[[Operand], str]:
        def load(op: Operand) -> str:
            offset = b.offset(op, lambda n_: index[n_])
            return f"tl.load({op.name} + {offset}, mask={mask}, other=0.0).to(tl.float32)"
        return load

    score_nodes = [n for n in b.nodes if e1.id < n.id < p.id]
    scores, last_s = b.body(score_nodes, loader("valid"), {e1.id: "s"})
    epi, last = b.body([n for n in b.nodes if n.id > e2.id], loader("mask"), {e2.id: f"v{e2.id}"})
    names = {"i": b.axes[idx[i_axis]], "j": b.axes[idx[j]], "d": b.axes[idx[d]], "e": b.axes[idx[e]]}
    sizes = [b.size_of(n_) for n_ in range(len(union))]
    return b.render("flash.py.j2", q=qop, kk=kop, v=vop, ax=names, batch=batch, scores=scores,
                    score=last_s or "s", epilogue=epi, result=last or f"v{e2.id}", head_id=e2.id,
                    alloc=b.alloc(sizes, qop.arg), pos={key: idx[a] for key, a in
                                                        (("i", i_axis), ("j", j), ("d", d), ("e", e))})


KINDS: dict[str, Callable[[KernelBuilder], Kernel]] = {
    "pointwise": pointwise_kernel, "norm": norm_kernel, "reduce": reduce_kernel, "matmul": matmul_kernel,
    "window": window_kernel, "attention": attention_kernel, "mha": mha_kernel, "flash": flash_kernel,
}


def mha_helpers() -> str:
    """The kernels every multihead_attention group shares (the input projection and flash attention)."""
    return _ENV.get_template("mha_common.py.j2").render()


def kernel(plan: Plan, group: Group, name: str, external: Callable[[int], str], attr: Callable[[str], str]
           ) -> Kernel:
    """The kernel of a fused group (raises NotFusable where it has to run as torch ops instead)."""
    return KINDS[group.kind](KernelBuilder(plan, group, name, external, attr))


__all__ = ["Kernel", "NotFusable", "kernel", "mha_helpers", "arch_lines", "KINDS"]
