"""The circuit style: a neural circuit diagram (Abbott, TMLR 2024) of the typed graph, drawn as SVG.

Left to right, columns alternate operations and data. Every value is a bundle
of horizontal wires in a *lane*, one wire per named axis. A wire is labelled
`name=size` (legend names for derived sizes) just after the op that makes it
when its axis is new or its size changed since the previous column of the same
value chain (the op's first input), and always at an input and at the first
column of each block region; the tensors of a tuple are separated by a dashed
line. An op's glyph (from `codegen.glyphs`) covers only the wires of the axes
it acts on; the others run straight past it, which is how broadcasting is
drawn. The data path from the input keeps the top lane; a value used again
later is copied at dots and carried in a lane of its own (named where it
leaves and comes back) to a + join, a concat bar or a branch that takes it
over. Wires an op consumes end in rows under its output: a reduction's box,
an einsum's contractions joined in cups (operands meeting on a kept axis: a
dot), attention's q·k cup, softmax ◁ and second cup. Blocks and sequences are
tinted titled regions; a run of identical repetition elements (found as the
graph style finds them) is drawn once inside large parentheses with its index
range and ×N; `depth` draws deeper modules as one 3-D box.

`define="Block"` draws a block's definition instead: a 3-D box titled with the
block's name and the parameter values of its first instance, an "=" sign, and
the circuit of that instance's ops alone (`define_graph`), its inputs drawn as
labelled input wires. `conv="expanded"` draws each convolution in expanded
form: a light-blue trapezoid ★ (with the stride) splits every spatial wire into
the output positions and a kernel-window wire labelled `k=…`, and a bold **L**
contracts the window wires and the channel wire into the output channel wire.

Layout is computed here, not by graphviz, in stages, one module each:
`circuit_lanes` (which columns, in which lanes, with how many rows),
`circuit_layout` (pixels: columns, header, regions, runs, wires), whose glyphs
come from the per-kind table of `circuit_glyphs`; the result, `layout(g)`, is a
`Layout` of plain `circuit_marks` in drawing order whose `texts` are the boxes of
every piece of drawn text (measured with `textwidth`), so tests can check that no
two intersect. `circuit_svg` writes it (`Layout.svg()`). Output is deterministic.

>>> import archc
>>> m = archc.loads('block B() { in x: [n = 2, c = 8]\\n fc = linear(x, c -> 4)\\n out relu(fc) }')
>>> lay = layout(m.check().graph)
>>> [w.label for w in lay.wires]
['n=2', 'c=8', 'n=2', 'c=4', 'n=2', 'c=4']
>>> [w.label for w in lay.wires if w.shown]  # n=2 runs on unchanged past L; outputs are labelled
['n=2', 'c=8', 'c=4', 'n=2', 'c=4']
>>> lay.svg().startswith('<svg')
True
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from archc.codegen.diagrams.circuit_glyphs import acts
from archc.codegen.diagrams.circuit_lanes import Item
from archc.codegen.diagrams.circuit_layout import Builder, Layout
from archc.codegen.diagrams.circuit_marks import FS, Box, Wire
from archc.codegen.diagrams.graph import ANNOTATE, drawn, refuse_large
from archc.codegen.output import write_diagram
from archc.diagnostics import NO_SPAN, ArchError, Diagnostic, Span, did_you_mean
from archc.ir.graph import Graph, ModuleInfo, Op

__all__ = ["CONV", "FS", "Box", "Item", "Layout", "Wire", "acts", "define_graph", "layout", "render"]


def define_graph(g: Graph, block: str) -> tuple[Graph, ModuleInfo]:
    """The first instance of block `block` in `g` (in elaboration order) as a graph of its own.

    It holds the nodes whose scope is the instance's path or below, with paths made relative to the
    instance; every value they read from outside becomes an input (`x`, or `x1`, `x2`, ... when
    there are several), and its outputs are the values used outside it. An unknown name is an
    ArchError with a did-you-mean.
    """
    inst = next((m for m in g.modules.values() if m.kind == "block" and m.name == block), None)
    if inst is None:
        names = sorted({m.name for m in g.modules.values() if m.kind == "block"})
        first = next(iter(g), None)
        span = Span(first.span.file, 1, 1, 1, 2) if first is not None else NO_SPAN
        known = f"; its blocks: {', '.join(names)}" if names else "; it instantiates no blocks"
        raise ArchError([Diagnostic("error", "name", f"--define: no instance of block '{block}' in "
                                    f"{g.entry}{did_you_mean(block, names)}{known}", span)])
    p = inst.path

    def within(s: str) -> bool:
        return not p or s == p or s.startswith(p + ".")

    def rel(s: str) -> str:
        return s[len(p) + 1:] if p and s.startswith(p + ".") else "" if s == p else s

    inside = [n for n in g if within(n.scope)]
    ids = {n.id for n in inside}
    outer = list(dict.fromkeys(i for n in inside for i in n.inputs if i not in ids))
    sub = Graph(block)
    sub.sizes = dict(g.sizes)
    new: dict[int, int] = {}
    for k, i in enumerate(outer):
        name = "x" if len(outer) == 1 else f"x{k + 1}"
        src = g.node(i)
        node = sub.add(Op.INPUT, (), {"name": name}, src.type, src.span, scope="", label=name)
        sub.inputs.append(node.id)
        new[i] = node.id
    used_outside = {i for n in g if n.id not in ids for i in n.inputs} | set(g.outputs)
    for n in inside:
        node = sub.add(n.op, tuple(new[i] for i in n.inputs), n.attrs, n.type, n.span,
                       path=rel(n.path) if n.path else n.path, scope=rel(n.scope), params=n.params, label=n.label)
        new[n.id] = node.id
        if n.id in g.inputs:
            sub.inputs.append(node.id)
        if n.id in used_outside:
            sub.outputs.append(node.id)
    if not sub.outputs and inside:
        sub.outputs.append(new[inside[-1].id])
    for path, m in g.modules.items():
        if path != p and within(path):
            sub.modules[rel(path)] = dataclasses.replace(
                m, path=rel(path), parent=rel(m.parent) if m.parent and m.parent != p else None,
                children=[rel(c) for c in m.children])
    return sub, inst


CONV = ("compact", "expanded")


def layout(g: Graph, expand: Sequence[str] = (), depth: int | None = None,
           annotate: str | None = None, define: str | None = None, conv: str = "compact") -> Layout:
    """Lay out and draw `g` as a neural circuit diagram (see the module docstring).

    `annotate` ("flops", "params" or "bytes") writes each column's figure from `shapes.report` under
    its glyph (a run's column: all N elements) and shades the glyph on graph.py's scale, with a key.
    `define` names a block: draw its definition (its first instance's ops) instead of the whole graph.
    `conv` is "compact" (one ★ box per convolution) or "expanded".
    """
    if annotate is not None and annotate not in ANNOTATE:
        raise ValueError(f"annotate must be one of {ANNOTATE}")
    if conv not in CONV:
        raise ValueError(f"conv must be one of {CONV}")
    inst = None
    if define is not None:
        g, inst = define_graph(g, define)
    refuse_large(drawn(g, expand, depth))  # the layout is linear (about 0.1 ms a box); its SVG is not small
    return Builder(g, expand, depth, annotate, inst, conv).build()


def render(g: Graph, out: str, expand: Sequence[str] = (), depth: int | None = None,
           annotate: str | None = None, define: str | None = None, conv: str = "compact", force: bool = False,
           inputs: Sequence[str] = ()) -> Layout:
    """Write the diagram to `out`: .svg as text; .png/.pdf through cairosvg (`pip install archc[circuit]`)."""
    lay = layout(g, expand, depth, annotate, define, conv)
    text = lay.svg()
    ext = os.path.splitext(out)[1].lower()
    if ext == ".svg":
        write_diagram(out, "svg", text.encode("utf-8"), force, inputs)
        return lay
    if ext not in (".png", ".pdf"):
        raise ArchError([Diagnostic("error", "io", f"cannot write '{ext or out}' in the circuit style: "
                                    "use .svg, .png or .pdf")])
    try:
        import cairosvg
    except ImportError:
        raise ArchError([Diagnostic("error", "io", "PNG/PDF output of the circuit style needs cairosvg "
                                    "(pip install cairosvg); .svg works without it")]) from None
    convert = cairosvg.svg2png if ext == ".png" else cairosvg.svg2pdf
    write_diagram(out, ext[1:], convert(bytestring=text.encode("utf-8")), force, inputs)
    return lay
