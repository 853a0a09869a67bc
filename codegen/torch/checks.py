"""Run-time shape checks in generated forwards (`archc build --checks`).

With checks on, every generated `forward` starts by checking its inputs and
ends by checking its outputs, through one helper the module defines,
`check_shape(x, where, what, axes, expected)`:

  - inputs: the rank the class was generated for, and each axis size the
    block's `in` declaration fixes: a concrete size (`chan = 3`), a size the
    layers were built for (`chan = cin`: the constructor argument), or a size
    equal to an axis of an earlier input (`skip: [batch, chan, h, w]` after
    `x: [batch, chan, h, w]` binds `h`);
  - outputs: the rank and every axis size the checker derived, in the
    constructor's arguments and the inputs' run-time sizes
    (`h = (h + stride - 1) // stride`).

A failing check raises ValueError (not `assert`: `python -O` keeps it) naming
the block, the `.arch` line (the `in` or `out` statement), the tensor, the
axis, the size found and the one expected, with the expression it comes from:

    Bottleneck (std.vision:53): input x: axis 'chan' is 128, expected cin = 256; x is [batch, chan, h, w]

Axis sizes are compared through `torch._check_value`, which raises that
ValueError in eager mode and, under `torch.export`, records the condition
instead of specialising a dynamic size; the rank is a plain `if` (export
always knows it). Without checks nothing here runs and the generated text is
unchanged, byte for byte.

>>> import archc
>>> src = 'size b = 2\\nblock Net(n = 4) {\\n in x: [b, c = 8]\\n fc = linear(x, c -> n)\\n out relu(fc)\\n}'
>>> text = archc.loads(src, name="net.arch").torch_source(checks=True)
>>> for line in text.splitlines()[-8:]: print(line)
        check_shape(x, 'Net (net.arch:3)', 'input x', ('b', 'c'), {'c': ('8', 8)})
        out = self.fc(x)  # [b, c=n]  net.arch:4
        output = F.relu(out, inplace=True)  # [b, c=n]  net.arch:5
        check_shape(output, 'Net (net.arch:5)', 'output', ('b', 'c'), {
            'b': ('b', x.shape[0]),
            'c': ('n', self.n),
        })
        return output
"""

from __future__ import annotations

import re
from typing import Any

from archc.codegen.torch.classes import ClassBuilder, Lines, flat_values, tensor_type, where
from archc.shapes import pyexpr
from archc.shapes import sizes as S
from archc.shapes.types import TensorType

HELPER = "check_shape"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def add_checks(b: ClassBuilder, in_vars: list[tuple[int, str]], forward: tuple | None) -> tuple:
    """`forward` (flat statements ending in its `return`; None for a plain nn.Sequential) with the
    input checks first and the output checks before the return."""
    b.helper(HELPER)
    tr = b.tr
    body = list(forward) if forward is not None else []
    if body:
        last = body.pop()
        assert isinstance(last, Lines) and len(last.lines) == 1 and last.lines[0].startswith("return ")
        returned = last.lines[0].partition("  # ")[0][len("return "):]
    else:  # `out seq(x) {...}` called directly: nn.Sequential's own forward does the work
        returned = f"super().forward({in_vars[0][1]})"
    outs = [tr.type_of(v) for v in flat_values(tr.outputs)]
    shape = ", ".join(b.shape(t) for t in outs)
    at = where(tr.out_span or tr.block.span)
    parts = returned.split(", ")
    if len(parts) == len(outs) and all(_NAME.match(p) for p in parts):
        names, assign = parts, []  # already named values: check them as they are
    else:
        names = [b.locals.name(("checks", "output", i), "output" if len(outs) == 1 else f"output_{i}")
                 for i in range(len(outs))]
        assign = [Lines((f"{', '.join(names)} = {returned}  # {shape}  {at}",))]
    checks = []
    for i, (name, t) in enumerate(zip(names, outs)):
        what = "output" if len(outs) == 1 else f"output[{i}]"
        checks.append(_call(b, name, f"{tr.block.name} ({at})", what, t, _output_axes(b, t)))
    final = Lines((f"return {', '.join(names)}",)) if assign else last
    return tuple(_input_checks(b, in_vars) + body + assign + checks + [final])


def _call(b: ClassBuilder, var: str, where_: str, what: str, t: Any, expected: dict[str, tuple[str, str]]) -> Lines:
    head = f"{HELPER}({var}, {where_!r}, {what!r}, {tuple(a.name for a in t.axes)!r}, "
    items = [f"{k!r}: ({text!r}, {code})" for k, (text, code) in expected.items()]
    one = f"{head}{{{', '.join(items)}}})"
    if len(one) <= 100 or len(items) < 2:
        return Lines((one,))
    return Lines((head + "{",) + tuple(f"    {item}," for item in items) + ("})",))  # one axis a line


def _norm(b: ClassBuilder, x: Any) -> Any:
    """A size in the class's own terms: parameters for input sizes they equal, built-in values."""
    return b._sub(x) if b.generic else pyexpr.substitute(x, b.fixed_values)


def _input_checks(b: ClassBuilder, in_vars: list[tuple[int, str]]) -> list[Lines]:
    decls = {d.name: d for d in b.tr.block.inputs}
    position = {var: k for k, (_, var) in enumerate(in_vars)}
    names = {var: b.g.node(i) for i, var in in_vars}
    out = []
    for k, (i, var) in enumerate(in_vars):
        node = b.g.node(i)
        t = tensor_type(node.type)
        decl = decls.get(node.attrs["name"])
        at = where(decl.span if decl is not None else b.tr.block.span)
        expected: dict[str, tuple[str, str]] = {}
        for j, ax in enumerate(t.axes):
            # an axis may only be checked against sizes of axes before it (else each pair twice)
            def earlier(sym: str, here: tuple[int, int] = (k, j)) -> str | None:
                src = b.sources.get(sym)
                if src is None or (position[src[0]], src[1]) >= here:
                    return None
                return f"{src[0]}.shape[{src[1]}]"
            for c in _candidates(b, ax.size):
                got = _python(b, c, earlier)
                if got is not None:
                    expected[ax.name] = (_display(b, c, names), got)
                    break
        out.append(_call(b, var, f"{b.tr.block.name} ({at})", f"input {node.attrs['name']}", t, expected))
    return out


def _candidates(b: ClassBuilder, size: Any) -> list[Any]:
    """What an input axis size equals: itself (a literal, or a constructor argument), and what the
    block's `in` declarations required of it (`chan = cin`, the size of an earlier input's axis)."""
    out = [size]
    if S.symbol_name(size) is None:
        return out
    for lhs, rhs in b.tr.input_equalities:
        for x, y in ((lhs, rhs), (rhs, lhs)):
            if not isinstance(x, int) and x == size:
                out.append(y)
    return out


def _python(b: ClassBuilder, size: Any, runtime: Any) -> str | None:
    """Python for a size from the constructor's arguments (stored) and `runtime(symbol)`, or None."""
    v = _norm(b, size)
    if isinstance(v, int):
        return str(v)
    names = {}
    for s in pyexpr.free_names(v):
        if s in b.init_names:
            names[s] = b._stored(s)
        else:
            text = runtime(s)
            if text is None:
                return None
            names[s] = text
    try:
        return pyexpr.to_python(v, names)
    except pyexpr.NotPrintable:
        return None


def _display(b: ClassBuilder, size: Any, inputs: dict[str, Any]) -> str:
    """How a message names an expected size: `cin`, `4·planes`, `h of x`, `3`."""
    v = _norm(b, size)
    sym = S.symbol_name(v)
    if sym is not None and sym in b.sources and sym not in b.init_names:
        var, dim = b.sources[sym]
        return f"{inputs[var].type.axes[dim].name} of {inputs[var].attrs['name']}"
    return b.fmt(size)


def _output_axes(b: ClassBuilder, t: Any) -> dict[str, tuple[str, str]]:
    """The output axes whose size forward can compute, with their Python."""
    if not isinstance(t, TensorType):
        return {}

    def runtime(sym: str) -> str | None:
        if sym in b.runtime:
            return b.runtime[sym]  # read off an input at the top of forward
        src = b.sources.get(sym)
        return None if src is None else f"{src[0]}.shape[{src[1]}]"
    out = {}
    for ax in t.axes:
        got = _python(b, ax.size, runtime)
        if got is not None:
            out[ax.name] = (b.fmt(ax.size), got)
    return out
