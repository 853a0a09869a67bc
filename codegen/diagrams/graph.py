"""The graph style: a graphviz dataflow diagram of the typed graph.

Nodes are ops (their glyph from `codegen.glyphs`, the module name, the
attributes that matter); edges carry the named shape of the value they move;
block instances and sequences are clusters. A run of consecutive elements of a
repetition (`for i in 0..36`) whose contents are identical (same ops,
attributes and types) is drawn once, titled with its index range and ×N,
unless `expand` names the block, the repetition's parent or the element.
`depth` draws every module deeper than N path components as one box.

The DOT text is written through the graphviz package (`Digraph`, a subgraph per
cluster), which quotes every name and label; `label` makes each label's text
literal (backslashes, line breaks, `<...>`). It is byte-for-byte reproducible
(goldens: tests/golden/dot/); `render` pipes it through Graphviz's `dot` for
SVG, PNG or PDF.

>>> import archc
>>> m = archc.loads('block B() { in x: [n = 2, c = 8]\\n fc = linear(x, c -> 4)\\n out fc }')
>>> d = build(m.check().graph)
>>> print(d.nodes, d.collapsed)
2 []
>>> 'label="[n=2, c=8]"' in d.source  # the edge x -> fc carries x's named shape
True
"""

from __future__ import annotations

import dataclasses
import html
import math
import os
import subprocess
from collections.abc import Sequence
from typing import Any

import graphviz

from archc.codegen.output import write_diagram
from archc.diagnostics import ArchError, Diagnostic, printable
from archc.ir.graph import Graph, Node
from archc.ir.limits import current as current_limits
from archc.ir.limits import note as limit_note
from archc.ir.printer import fmt_attrs
from archc.ops.glyphs import GLYPHS, detail
from archc.shapes.legend import Legend

# The margin (inches, x,y) inside a collapsed module's box3d. Graphviz centres the label in the
# whole node, 3-D rim included, so the front face's top edge sits 4pt below the node's top and the
# default margin (0.08,0.03 here) lets it cross the first line of the label; this keeps the text
# clear of the front face (tests/test_render_graph.py::test_module_box_label_inside_front_face).
BOX3D_MARGIN = "0.15,0.12"
# Five steps of a light-to-dark orange scale for the cost overlay (ColorBrewer YlOrRd).
SCALE = ("#ffffcc", "#fed976", "#fd8d3c", "#e31a1c", "#800026")
ANNOTATE = ("flops", "params", "bytes")


@dataclasses.dataclass
class Run:
    """Consecutive, identical elements of one repetition, drawn as its first element."""

    parent: str
    elements: list[str]  # module paths, in index order

    @property
    def rep(self) -> str:
        return self.elements[0]

    def title(self, g: Graph) -> str:
        first, last = g.modules[self.elements[0]], g.modules[self.elements[-1]]
        assert first.repeat is not None and last.repeat is not None
        var = first.repeat[0]
        return f"{var} = {first.repeat[1]}…{last.repeat[1]}  ×{len(self.elements)}"


@dataclasses.dataclass
class Diagram:
    source: str                   # the DOT text
    nodes: int                    # drawn op nodes and collapsed-module boxes
    edges: int
    collapsed: list[tuple[str, int]]  # (first element path, N) of every run drawn once
    weights: dict[str, int]  # --annotate: the figure each drawn node carries (a run's node: all N)


def container(g: Graph, n: Node) -> str:
    """The module a node is drawn inside: its block / seq / list, never its own op module."""
    p = n.path
    while p:
        m = g.modules.get(p)
        if m is not None:
            return (m.parent or "") if m.kind == "op" else p
        p = p.rpartition(".")[0]
    return n.scope


def _within(c: str, p: str) -> bool:
    return c == p or c.startswith(p + ".")


def _members(g: Graph, conts: dict[int, str]) -> dict[str, list[Node]]:
    """Module path -> the nodes drawn within it (`_within`), in graph order: one pass over each node's
    enclosing modules, so folding stays linear in the graph (a scan of the graph per repetition element
    made a 2,000-element `seq` take seconds and a 50,000-element one half an hour)."""
    out: dict[str, list[Node]] = {}
    for n in g:
        c = conts[n.id]
        while c:
            out.setdefault(c, []).append(n)
            c = c.rpartition(".")[0]
    return out


def _signature(g: Graph, members: list[Node], prefix: str) -> tuple[object, ...]:
    index = {n.id: k for k, n in enumerate(members)}
    # Dropout rates may vary along a repetition (stochastic depth): the diagram does not show them.
    return tuple((n.op, "" if GLYPHS[n.op].kind == "dropout" else fmt_attrs(n), str(n.type),
                  container(g, n)[len(prefix):], tuple(index.get(i, -1) for i in n.inputs), n.params)
                 for n in members)


def _expanded(g: Graph, elem: str, expand: Sequence[str]) -> bool:
    m = g.modules[elem]
    return any(x in (m.name, elem, m.parent) for x in expand)


def find_runs(g: Graph, expand: Sequence[str] = ()) -> list[Run]:
    """Runs of ≥ 2 identical consecutive repetition elements, outermost first."""
    conts = {n.id: container(g, n) for n in g}
    within = _members(g, conts)
    members: dict[str, list[Node]] = {}
    groups: dict[tuple[str | None, str, int, int], list[str]] = {}
    for path, m in g.modules.items():
        if m.repeat is not None and m.kind != "op":
            groups.setdefault((m.parent, m.repeat[0], m.repeat[2], m.repeat[3]), []).append(path)
            members[path] = within.get(path, [])
    runs: list[Run] = []
    for (parent, *_), elems in groups.items():
        elems.sort(key=lambda p: g.modules[p].repeat[1])  # type: ignore[index]  # grouped above: repeat is set
        current: list[str] = []
        sig: tuple[object, ...] | None = None
        ends: list[str | None] = [*elems, None]
        for e in ends:
            s = _signature(g, members[e], e) if e is not None and not _expanded(g, e, expand) else None
            if e is not None and s is not None and s == sig:
                current.append(e)
                continue
            if len(current) > 1:
                runs.append(Run(parent or "", current))
            current, sig = ([e], s) if e is not None and s is not None else ([], None)
    runs.sort(key=lambda r: (r.rep.count("."), r.rep))
    return runs


def _fmt_num(x: float) -> str:
    for unit, div in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


def _costs(g: Graph, what: str) -> dict[int, int]:
    from archc.analysis.report import analyze
    rep = analyze(g)
    out = {}
    for r in rep.rows:
        fig = {"flops": r.flops, "params": r.params, "bytes": _add(r.read, r.written)}[what]
        v = rep.value(fig)
        out[r.node.id] = v or 0
    return out


def _add(a: Any, b: Any) -> Any:
    from archc.shapes import sizes as S
    return S.add(a, b)


def _colour(v: int, lo: float, hi: float) -> str:
    if v <= 0 or hi <= 0:
        return "#ffffff"
    t = 0.0 if hi == lo else (math.log10(v) - lo) / (hi - lo)
    return SCALE[min(len(SCALE) - 1, int(t * len(SCALE)))]


@dataclasses.dataclass
class Folding:
    """What each node is drawn as once repeats collapse and deep modules fold (both styles use it)."""

    conts: dict[int, str]  # node -> the module that contains it
    draw: dict[int, int]  # node -> the node that draws it (its counterpart in its run's first element)
    member: dict[int, list[tuple[int, int]]]  # node -> (run number, element index) of the runs it is in
    hidden: set[str]  # elements of runs that are not drawn (all but the first)
    run_of: dict[str, Run]  # a drawn run's first element -> the run
    box: dict[int, str]  # node -> the module box at `depth` that stands for it


def fold(g: Graph, expand: Sequence[str] = (), depth: int | None = None) -> Folding:
    """Collapse runs of identical repeated elements (unless expanded) and fold modules below `depth`."""
    runs = find_runs(g, expand)
    conts = {n.id: container(g, n) for n in g}
    within = _members(g, conts)
    draw = {n.id: n.id for n in g}
    member: dict[int, list[tuple[int, int]]] = {n.id: [] for n in g}
    hidden: set[str] = set()
    run_of: dict[str, Run] = {}
    for ri, run in enumerate(runs):
        if any(_within(run.rep, h) for h in hidden):
            continue
        run_of[run.rep] = run
        per = [within.get(e, []) for e in run.elements]
        for idx, (e, nodes) in enumerate(zip(run.elements, per)):
            for n, r in zip(nodes, per[0]):
                draw[n.id] = draw[r.id]
                member[n.id].append((ri, idx))
            if idx:
                hidden.add(e)
    # Depth: a node inside a module deeper than `depth` is drawn as that module's box.
    box: dict[int, str] = {}
    if depth is not None:
        d = max(depth, 1)
        for n in g:
            c = conts[draw[n.id]]
            if c and c.count(".") + 1 >= d:
                box[n.id] = ".".join(c.split(".")[:d])
        _convex(g, box, conts, draw)
    return Folding(conts, draw, member, hidden, run_of, box)


def _convex(g: Graph, box: dict[int, str], conts: dict[int, str], draw: dict[int, int]) -> None:
    """Open the boxes that cannot be drawn as one step: a module whose elements are used at different
    points of the dataflow (U-Net's list of up-convolutions, each fed by the level below it) has a
    node outside it on a path between two of its nodes, and one box would both feed and follow that
    node. Such a box gives way to its submodules one level down (and those to theirs, if need be)."""
    while True:
        members: dict[str, set[int]] = {}
        for i, b in box.items():
            members.setdefault(b, set()).add(i)
        broken = [b for b, ids in members.items() if not _is_convex(g, ids)]
        if not broken:
            return
        for b in broken:
            level = b.count(".") + 2
            for i in members[b]:
                c = conts[draw[i]]
                if c.count(".") + 1 >= level:
                    box[i] = ".".join(c.split(".")[:level])
                else:
                    del box[i]


def _is_convex(g: Graph, ids: set[int]) -> bool:
    """No node outside `ids` is both reached from `ids` and reaches `ids` (node ids are topological)."""
    after: set[int] = set()  # outside nodes that depend on the set
    for n in g:
        if n.id not in ids and any(i in ids or i in after for i in n.inputs):
            after.add(n.id)
    return not any(i in after for n in g if n.id in ids for i in n.inputs)


def build(g: Graph, expand: Sequence[str] = (), depth: int | None = None,
          annotate: str | None = None, title: str | None = None) -> Diagram:
    """The DOT diagram of `g` (see the module docstring for `expand` and `depth`)."""
    if annotate is not None and annotate not in ANNOTATE:
        raise ValueError(f"annotate must be one of {ANNOTATE}")
    f = fold(g, expand, depth)
    conts, draw, membership, hidden, run_of, box = f.conts, f.draw, f.member, f.hidden, f.run_of, f.box
    costs = _costs(g, annotate) if annotate else {}
    legend = Legend((n.type for n in g), reserved=g.sizes)

    def key(i: int) -> str:
        # An op is n<id>, a module box m/<path> (the SVG's tooltip). The graphviz package reads a `:` in an
        # edge's end as `node:port`, so none may appear in a name (module paths are dotted identifiers).
        return f"m/{box[i]}".replace(":", "_") if i in box else f"n{draw[i]}"

    # Costs add up on whatever draws them (a run's first element carries the whole run).
    weight: dict[str, int] = {}
    for n in g:
        weight[key(n.id)] = weight.get(key(n.id), 0) + costs.get(n.id, 0)
    nonzero = [v for v in weight.values() if v > 0]
    lo, hi = (math.log10(min(nonzero)), math.log10(max(nonzero))) if nonzero else (0.0, 0.0)

    clusters: dict[str, list[Stmt]] = {}  # module path -> the nodes drawn inside it
    seen: set[str] = set()
    for n in g:
        k = key(n.id)
        if k in seen:
            continue
        seen.add(k)
        attrs: dict[str, str]
        if n.id in box:
            path = box[n.id]
            m = g.modules.get(path)
            count = len({draw[x.id] for x in g if key(x.id) == k})  # ops of one element
            lines = [path, _call(m.name, m.args) if m and m.kind == "block" else (m.kind if m else ""),
                     f"{count} ops"]
            boxed_run = run_of.get(path)
            if boxed_run:
                lines.append(boxed_run.title(g))
            attrs = {"shape": "box3d", "style": "filled", "fillcolor": "#f2f2f2", "margin": BOX3D_MARGIN}
            where = (m.parent or "") if m else ""
        else:
            glyph = GLYPHS[n.op]
            name = n.path.rpartition(".")[2] if n.path else n.label
            if glyph.kind == "param":  # a learned tensor's path is its block's; its name is its own
                name = str(n.attrs.get("name", name))
            op = f"{glyph.symbol} {n.op.value}" if _distinct(glyph.symbol, n.op.value) else n.op.value
            lines = [x for x in (name, f"{op} {detail(n)}".strip()) if x]
            if n.op.value == "input":
                lines = [f"{n.attrs.get('name', 'x')}", legend.type_str(n.tensor_type)]
            shape = {"input": "ellipse", "join": "circle", "param": "cylinder"}.get(glyph.kind, "box")
            attrs = {"shape": shape, "style": "rounded,filled" if shape == "box" else "filled",
                     "fillcolor": glyph.fill}
            where = conts[n.id]
        if annotate:
            v = weight.get(k, 0)
            lines.append(f"{_fmt_num(v)} {annotate}" if v else f"0 {annotate}")
            attrs["fillcolor"] = _colour(v, lo, hi)
            if attrs["fillcolor"] in SCALE[-2:]:
                attrs["fontcolor"] = "#ffffff"
        clusters.setdefault(where, []).append((k, label(lines), attrs))

    edges: list[tuple[str, str, str]] = []
    done: set[tuple[str, str, str]] = set()
    for n in g:
        for src in n.inputs:
            if any(r == r2 and k1 != k2 for r, k1 in membership[src] for r2, k2 in membership[n.id]):
                continue  # from one element of a run into the next: the ×N says it
            a, b = key(src), key(n.id)
            if a == b:
                continue
            text = legend.type_str(g.node(src).type)
            if (a, b, text) in done:
                continue
            done.add((a, b, text))
            edges.append((a, b, text))

    dot = graphviz.Digraph(name=g.entry)
    dot.attr("graph", rankdir="TB", fontname="Helvetica", fontsize="11", nodesep="0.25", ranksep="0.3",
             label=label([title if title is not None else _title(g, legend)]), labelloc="t")
    dot.attr("node", fontname="Helvetica", fontsize="10", height="0.3", margin="0.08,0.03")
    dot.attr("edge", fontname="Helvetica", fontsize="8", color="#555555", fontcolor="#333333",
             arrowsize="0.6")
    _cluster_tree(dot, g, clusters, run_of, hidden)
    for a, b, text in edges:
        dot.edge(a, b, label=label([text]))
    if annotate and nonzero:
        dot.node("scale", label=_scale_legend(annotate, lo, hi), _attributes=[("shape", "plaintext")])
    if legend.rows:
        rows = label(["derived sizes"]) + "\\n" + "".join(label([f"{k} = {v}"]) + "\\l" for k, v in legend.rows)
        dot.node("legend", label=graphviz.nohtml(rows), _attributes=[("shape", "note"), ("fontsize", "9")])
    collapsed = [(r.rep, len(r.elements)) for r in run_of.values()]
    n_nodes = len(seen)
    return Diagram(dot.source, n_nodes, len(edges), collapsed, weight if annotate else {})


def _distinct(symbol: str, op: str) -> bool:
    """Whether the glyph's symbol tells the reader more than the op name (★, L, 𝔼; not 'ReLU')."""
    return not symbol.isascii() or symbol == "L"


def _call(name: str, args: dict[str, Any]) -> str:
    from archc.ir.printer import fmt_value
    inner = ", ".join(f"{k}={fmt_value(v)}" for k, v in args.items())
    return f"{name}({inner})"


def _title(g: Graph, legend: Legend) -> str:
    ins = ", ".join(f"{g.node(i).attrs['name']}: {legend.type_str(g.node(i).type)}" for i in g.inputs)
    return f"{g.entry}({ins})"


Stmt = tuple[str, str, dict[str, str]]  # a node: its name, label and attributes (in this order)


def label(lines: Sequence[str]) -> str:
    """A DOT label of text lines, every character literal: backslashes doubled (graphviz.escape), line
    breaks (between lines and inside one) as DOT's centred \\n, other control characters shown as their
    escapes (`\\x1b`: XML cannot hold them, so the SVG stays well-formed), and never read as an HTML-like
    `<...>` label. Quoting, and the escaping of `"`, is the graphviz package's.

    >>> print(label(['a "b"', 'c\\\\d<e>{f|g}']))
    a "b"\\nc\\\\d<e>{f|g}
    """
    parts = [p for line in lines for p in str(line).split("\n")]
    return graphviz.nohtml("\\n".join(graphviz.escape(printable(p)) for p in parts))


def _cluster_tree(dot: graphviz.Digraph, g: Graph, clusters: dict[str, list[Stmt]], run_of: dict[str, Run],
                  hidden: set[str]) -> None:
    """The top-level nodes, then nested `subgraph cluster_…` for every module that holds drawn nodes."""
    needed: set[str] = set()
    for path in clusters:
        p = path
        while p:
            needed.add(p)
            p = g.modules[p].parent or "" if p in g.modules else p.rpartition(".")[0]
    kids: dict[str, list[str]] = {}
    for p in sorted(needed, key=lambda x: list(g.modules).index(x) if x in g.modules else 0):
        parent = (g.modules[p].parent or "") if p in g.modules else p.rpartition(".")[0]
        kids.setdefault(parent, []).append(p)

    def emit(into: graphviz.Digraph, path: str) -> None:
        for name, text, attrs in clusters.get(path, []):
            into.node(name, label=text, _attributes=list(attrs.items()))
        for child in kids.get(path, []):
            if any(_within(child, h) for h in hidden):
                continue
            m = g.modules.get(child)
            if m is not None and m.kind == "list" and child not in run_of:
                # A list's elements sit at different places in the dataflow (a U-Net's levels):
                # one box around them would drag them together, so they are drawn in place.
                emit(into, child)
                continue
            lines = [child]
            if m is not None and m.kind == "block":
                lines = [f"{child} · {_call(m.name, m.args)}"]
            elif m is not None:
                lines = [f"{child} ({m.kind})"]
            style = [("style", "rounded,filled"), ("fillcolor", "#f7f9fc"), ("color", "#9aa8bd")]
            run = run_of.get(child)
            if run is not None:
                lines.append(run.title(g))
                style = [("style", "rounded,filled,bold"), ("fillcolor", "#fdf3e3"), ("color", "#c07a1a"),
                         ("penwidth", "2")]
            with into.subgraph(name=f"cluster_{child}") as sub:
                sub.attr(_attributes=[("label", label(lines)), ("labeljust", "l"), *style])
                emit(sub, child)

    emit(dot, "")


def _scale_legend(what: str, lo: float, hi: float) -> str:
    """The colour key of --annotate, as an HTML-like label (its text is ours: escaped for HTML anyway)."""
    rows = []
    for i, colour in enumerate(SCALE):
        a = 10 ** (lo + (hi - lo) * i / len(SCALE))
        rows.append(f'<tr><td bgcolor="{colour}">  </td><td align="left">≥ {html.escape(_fmt_num(a))}</td></tr>')
    head = f'<tr><td colspan="2">{html.escape(what)}</td></tr>'
    return f'<<table border="0" cellspacing="2">{head}{"".join(rows)}</table>>'


def render(g: Graph, out: str, force: bool = False, inputs: Sequence[str] = (), **kw: Any) -> Diagram:
    """Write the diagram to `out`: .dot writes the DOT text; .svg/.png/.pdf need Graphviz's `dot`.
    The file is written safely (codegen/output.py): never over a file archc did not write unless
    `force`, never over one of the `inputs`."""
    fmt = os.path.splitext(out)[1].lstrip(".").lower() or "svg"
    if fmt not in ("dot", "gv"):  # refused before the DOT text is built (a few seconds at 100,000 ops)
        refuse_large(drawn(g, kw.get("expand", ()), kw.get("depth")))
    d = build(g, **kw)
    data = d.source.encode() if fmt in ("dot", "gv") else run_dot(d, fmt)
    write_diagram(out, fmt, data, force, inputs)
    return d


def drawn(g: Graph, expand: Sequence[str] = (), depth: int | None = None) -> int:
    """How many boxes the diagram of `g` draws: its ops once repeats collapse, and module boxes."""
    f = fold(g, expand, depth)
    return len({f.box.get(n.id) or f.draw[n.id] for n in g})


def refuse_large(boxes: int) -> None:
    """A diagram of more boxes than `--limit draw` is refused (ArchError) before anything lays it out:
    Graphviz's `dot` took 2.5 s for a 5,000-op chain and a minute for 20,000 ops (docs/errors.md)."""
    limit = current_limits().draw
    if boxes > limit:
        raise ArchError([Diagnostic(
            "error", "io", f"the diagram would have {boxes:,} boxes, more than the {limit:,} that can be laid "
            "out in reasonable time: draw modules as single boxes with --depth 1 (or 2, 3, ...), or write .dot",
            notes=((limit_note("draw"), None),))])


def run_dot(d: Diagram, fmt: str) -> bytes:
    """Lay out and draw `d` with Graphviz's `dot`, within `--limit dot_seconds`: its time is not only a
    matter of size (a few hundred ops that all read one input, with labelled edges, took minutes)."""
    refuse_large(d.nodes)
    seconds = current_limits().dot_seconds
    try:
        done = subprocess.run(["dot", f"-T{fmt}"], input=d.source.encode(), capture_output=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        raise ArchError([Diagnostic(
            "error", "io", f"Graphviz's dot did not lay out the diagram ({d.nodes:,} boxes, {d.edges:,} edges) "
            f"within {seconds} s: draw modules as single boxes with --depth 1 (or 2, 3, ...), use --style "
            "circuit, or write .dot", notes=((limit_note("dot_seconds"), None),))]) from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit status {done.returncode}"]
        raise ArchError([Diagnostic("error", "io", f"Graphviz's dot failed: {printable(said[-1])}")])
    return done.stdout


def have_dot() -> bool:
    """Whether Graphviz's `dot` program is on PATH (needed for SVG/PNG/PDF, not for .dot)."""
    import shutil
    return shutil.which("dot") is not None


def svg(g: Graph, **kw: Any) -> str:
    """The diagram as SVG text (for Jupyter's `_repr_svg_`); needs Graphviz's `dot`."""
    return run_dot(build(g, **kw), "svg").decode()
