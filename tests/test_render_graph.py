"""The graph style (codegen/graph.py): golden .dot files, collapse counts, cost overlay, real renders.

Goldens live in tests/golden/dot/; rewrite them with
`ARCHC_UPDATE_GOLDENS=1 pytest tests/test_render_graph.py` and review the diff.
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

import archc
from archc import cli
from archc.codegen.diagrams import graph as G
from archc.codegen.output import mark
from archc.ir.graph import Graph, Op

from conftest import EXAMPLES, ROOT

GOLDEN = ROOT / "tests" / "golden" / "dot"
UPDATE = os.environ.get("ARCHC_UPDATE_GOLDENS") == "1"
SOURCES = sorted(EXAMPLES.glob("*.arch")) + [ROOT / "tests" / "data" / "mini_resnet.arch"]
RESNET152 = ROOT / "benchmarks" / "resnet152.arch"
HAVE_DOT = shutil.which("dot") is not None

_graphs: dict[str, archc.api.Compiled] = {}


def _graph(path: pathlib.Path, **sets):
    key = f"{path}{sorted(sets.items())}"
    if key not in _graphs:
        _graphs[key] = archc.load(str(path)).check(**sets)
    return _graphs[key].graph


def _compare(path: pathlib.Path, text: str) -> None:
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    if not path.exists():
        pytest.fail(f"missing golden {path.relative_to(ROOT)}; run with ARCHC_UPDATE_GOLDENS=1")
    assert path.read_text() == text, f"{path.relative_to(ROOT)} differs; review and regenerate"


@pytest.mark.parametrize("src", SOURCES + [RESNET152], ids=lambda p: p.stem)
def test_dot_golden(src: pathlib.Path) -> None:
    _compare(GOLDEN / f"{src.stem}.dot", G.build(_graph(src)).source)


def test_dot_golden_resnet152_depth2_flops() -> None:
    _compare(GOLDEN / "resnet152_depth2_flops.dot", G.build(_graph(RESNET152), depth=2, annotate="flops").source)


def test_dot_is_reproducible() -> None:
    g = _graph(EXAMPLES / "unet.arch")
    assert G.build(g).source == G.build(archc.load(str(EXAMPLES / "unet.arch")).check().graph).source


def _stage_lengths(src: pathlib.Path) -> list[int]:
    """The repetition counts written in the source (`for i in 0..N`), the oracle for ×N."""
    return [int(b) - int(a) for a, b in re.findall(r"for \w+ in (\d+)\.\.(\d+)", src.read_text())]


def test_resnet152_collapses_each_stage_to_two_elements() -> None:
    d = G.build(_graph(RESNET152))
    stages = _stage_lengths(RESNET152)
    assert stages == [3, 8, 36, 3]
    # The first block of each stage differs (it has the downsample); the rest are one run each.
    assert d.collapsed == [(f"layer{i}.1", n - 1) for i, n in enumerate(stages, 1)]
    assert f"×{stages[2] - 1}" in d.source
    # Readable: under 100 boxes for 514 ops, every drawn element exactly once.
    assert len(_graph(RESNET152)) > 500 and d.nodes < 100


def test_expand_draws_every_op_once() -> None:
    g = _graph(EXAMPLES / "resnet50.arch")
    d = G.build(g, expand=["Bottleneck"])
    assert d.collapsed == []
    assert d.nodes == len(g)
    # An edge per input slot, except repeated (same source, same destination) ones.
    assert d.edges == len({(s, n.id) for n in g for s in n.inputs})
    node_ids = set(re.findall(r'^\s*(n\d+) \[', d.source, re.M))
    assert node_ids == {f"n{n.id}" for n in g}


def test_expand_by_path_only_that_repetition() -> None:
    g = _graph(EXAMPLES / "resnet50.arch")
    d = G.build(g, expand=["layer3"])
    assert [p for p, _ in d.collapsed] == ["layer1.1", "layer2.1", "layer4.1"]


def test_every_op_is_drawn_with_its_glyph() -> None:
    g = _graph(EXAMPLES / "vit_b_16.arch")
    src = G.build(g, expand=["EncoderBlock"]).source
    for n in g:
        label = re.search(rf'^\s*n{n.id} \[label=(?:"([^"]*)"|(\w+))', src, re.M)  # quoted when need be
        assert label is not None, n
        if n.op is not Op.INPUT:
            assert n.op.value in (label.group(1) or label.group(2))


@pytest.mark.parametrize("what", ["params", "flops"])
def test_annotate_weights_add_up_to_the_model_totals(what: str, figures: dict) -> None:
    """The figures on the boxes, runs counted N times, sum to the checker's totals and torchvision's."""
    g = _graph(EXAMPLES / "resnet50.arch")
    rep = archc.load(str(EXAMPLES / "resnet50.arch")).flops()
    total = rep.params if what == "params" else rep.flops
    for kw in ({}, {"depth": 2}, {"depth": 1}):
        d = G.build(g, annotate=what, **kw)
        assert sum(d.weights.values()) == total
    ref = figures["models"]["resnet50"]
    assert total == (ref["params"] if what == "params" else ref["flops_conv_linear"])


def test_depth_boxes() -> None:
    g = _graph(RESNET152)
    d1 = G.build(g, depth=1)
    top = [p for p, m in g.modules.items() if p and m.parent == "" and m.kind != "op"]
    top_ops = [n for n in g if G.container(g, n) == ""]
    assert d1.nodes == len(top) + len(top_ops)
    assert d1.source.count("box3d") == len(top)
    d2 = G.build(g, depth=2)
    assert d2.source.count("box3d") == 8  # layerK.0 and the run layerK.1… of each of the 4 stages
    assert "i = 1…35  ×35" in d2.source


DEPTH_CASES = [(src, depth) for src in SOURCES for depth in (2, 3)] + [(RESNET152, 2), (RESNET152, 3)]


def _box3d_stmts(source: str) -> list[str]:
    return [line for line in source.splitlines() if "shape=box3d" in line]


@pytest.mark.parametrize("src,depth", DEPTH_CASES, ids=lambda v: v.stem if isinstance(v, pathlib.Path) else str(v))
def test_module_boxes_carry_their_margin(src: pathlib.Path, depth: int) -> None:
    """Every collapsed module box asks for the margin that keeps its label off the 3-D rim (no `dot` needed)."""
    for stmt in _box3d_stmts(G.build(_graph(src), depth=depth).source):
        assert f'margin="{G.BOX3D_MARGIN}"' in stmt, stmt


# How far (points) the label's text must stay inside the box3d's front face.
CLEARANCE = 2.0


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz `dot` is not installed")
@pytest.mark.parametrize("src,depth", DEPTH_CASES, ids=lambda v: v.stem if isinstance(v, pathlib.Path) else str(v))
def test_module_box_label_inside_front_face(src: pathlib.Path, depth: int) -> None:
    """Laid out by `dot`, each box3d's label lies inside its front face with room to spare.

    Graphviz draws a box3d as a front face with a 3-D rim above and to the right of it, and
    centres the label on the whole node, rim included: with too small a margin the front face's
    top edge runs through the label's first line. From `dot -Tjson` (y grows upwards, points):
    the front face's top is its horizontal rim line, its right side the vertical one; a line of
    text spans from its baseline up to at most baseline + font size.
    """
    import json
    import subprocess

    for annotate in (None, "flops"):
        source = G.build(_graph(src), depth=depth, annotate=annotate).source
        if not _box3d_stmts(source):
            continue
        layout = json.loads(subprocess.run(["dot", "-Tjson"], input=source.encode(), capture_output=True,
                                           check=True).stdout)
        boxes = [o for o in layout.get("objects", []) if o.get("shape") == "box3d"]
        assert len(boxes) == len(_box3d_stmts(source))
        for o in boxes:
            name = o["name"]
            poly = next(op["points"] for op in o["_draw_"] if op["op"] == "P")
            lines = [op["points"] for op in o["_draw_"] if op["op"] == "L"]
            top = next(a[1] for a, b in lines if a[1] == b[1])  # the rim's horizontal line
            right = next(a[0] for a, b in lines if a[0] == b[0])  # the rim's vertical line
            left, bottom = min(x for x, _ in poly), min(y for _, y in poly)
            size, texts = 0.0, []
            for op in o["_ldraw_"]:
                if op["op"] == "F":
                    size = float(op["size"])
                elif op["op"] == "T":
                    texts.append((op["pt"], float(op["width"]), size, op["text"]))
            assert texts, name
            (x, y), _, size, text = texts[0]
            assert y + size <= top - CLEARANCE, f"{name}: {text!r} reaches {y + size} > front face top {top}"
            (x, y), _, size, text = texts[-1]
            assert y - 0.3 * size >= bottom + CLEARANCE, f"{name}: {text!r} below the box bottom {bottom}"
            for (x, _y), width, _, text in texts:
                assert left + CLEARANCE <= x - width / 2 and x + width / 2 <= right - CLEARANCE, (name, text)


def test_symbolic_legend() -> None:
    g = archc.load(str(RESNET152)).check(symbolic=True).graph
    src = G.build(g, depth=2).source
    assert "derived sizes" in src and "h1 = " in src


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def test_cli_dot_and_bad_extension(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "m.dot"
    rc, text, _ = _cli("render", str(ROOT / "tests/data/mini_resnet.arch"), "-o", str(out))
    assert rc == 0 and "layer1.1 ×2" in text
    assert out.read_bytes() == mark("dot", G.build(_graph(ROOT / "tests/data/mini_resnet.arch")).source.encode())
    rc, _, err = _cli("render", str(ROOT / "tests/data/mini_resnet.arch"), "-o", str(tmp_path / "m.txt"))
    assert rc == 1 and "[io]" in err


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz `dot` is not installed")
@pytest.mark.parametrize("src", SOURCES + [RESNET152], ids=lambda p: p.stem)
def test_render_png_and_svg(src: pathlib.Path, tmp_path: pathlib.Path) -> None:
    png, svg = tmp_path / "d.png", tmp_path / "d.svg"
    rc, _, err = _cli("render", str(src), "-o", str(png))
    assert rc == 0, err
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert 200 < width < 4000 and 200 < height < 16000
    assert _cli("render", str(src), "-o", str(svg), "--annotate", "flops")[0] == 0
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert svg.stat().st_size < 400_000


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz `dot` is not installed")
def test_repr_svg() -> None:
    svg = archc.load(str(ROOT / "tests/data/mini_resnet.arch")).block("Net")._repr_svg_()
    assert svg is not None and ET.fromstring(svg.split("?>", 1)[-1].split("-->", 1)[-1].lstrip()) is not None


# ---- labels are quoted by the graphviz package, every character literal -------------------------------

NASTY = ['say "hi"', "back\\slash", "trailing\\", "<html>", "a<b>c", "{rec|ord}", "two\nlines", "naïve ★ 𝔼 →",
         '\\"', "\\n not a break", "\\l"]


def _svg_texts(source: str) -> list[str]:
    """Lay `source` out with `dot`, parse the SVG (it must be well-formed XML) and return its text lines."""
    import subprocess
    svg = subprocess.run(["dot", "-Tsvg"], input=source.encode(), capture_output=True, check=True).stdout
    root = ET.fromstring(svg)
    return [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]


@pytest.mark.parametrize("text", NASTY, ids=repr)
def test_label_keeps_every_character(text: str) -> None:
    """`label` makes DOT text that Graphviz reads back as exactly the lines given (a newline inside a line
    breaks it too); `"` and the quoting are the library's."""
    import graphviz
    lines = ["first", text]
    got = G.label(lines)
    assert "\n" not in got and isinstance(got, graphviz.quoting.NoHtml)
    if not HAVE_DOT:
        return
    d = graphviz.Digraph()
    d.node("a", label=got)
    d.node("b", label="b")
    d.edge("a", "b", label=G.label([text]))
    with d.subgraph(name="cluster_x") as sub:
        sub.attr(label=G.label([text]))
        sub.node("c", label="c")
    want = [p for line in lines for p in line.split("\n")]
    texts = _svg_texts(d.source)
    assert texts[:len(want)] == want or all(w in texts for w in want), texts
    assert texts.count(text.split("\n")[-1]) >= 3  # the node's line, the edge's and the cluster's


def _nasty_graph() -> Graph:
    """A graph built by hand whose names, labels, axes, block name and arguments are all awkward."""
    from archc.diagnostics import NO_SPAN
    from archc.ir.graph import ModuleInfo
    from archc.shapes.types import Axis, TensorType

    g = Graph('Net "<x>"')
    t = TensorType((Axis('b"|{', 2), Axis("c\\d<e>", 4), Axis("é\nz", 3)))
    x = g.add(Op.INPUT, (), {"name": 'in "x"'}, t, NO_SPAN, scope="", label='in "x"')
    g.inputs.append(x.id)
    g.add_module(ModuleInfo("blk", "block", 'B<"{|}">', {"tag": 'a"b\\c<d>{e|f}\nz', "k": 3}, NO_SPAN, ""))
    r = g.add(Op.RELU, (x.id,), {}, t, NO_SPAN, scope="blk", label='r\\"<>')
    g.outputs.append(r.id)
    return g


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz `dot` is not installed")
def test_awkward_names_render_to_well_formed_svg() -> None:
    """Names where they enter the DOT writer (input names, value labels, axis names on edges, block names and
    arguments on clusters, the title) come out of `dot` as the text they are."""
    g = _nasty_graph()
    d = G.build(g)
    assert d.nodes == 2 and d.edges == 1
    texts = _svg_texts(d.source)
    shape = '[b"|{=2, c\\d<e>=4, é'  # the axis name's newline breaks the line
    assert 'in "x"' in texts and 'r\\"<>' in texts
    assert sum(t.startswith(shape) for t in texts) == 2  # the input's label and the edge's
    assert any(t.startswith('blk · B<"{|}">(tag=') and 'a"b\\c<d>{e|f}' in t for t in texts), texts
    assert any(t.startswith('Net "<x>"(') for t in texts), texts
    # Edge labels go through the library too: no hand-written `label="…"` can break the statement.
    assert re.search(r'^\s*n0 -> n1 \[label="\[b\\"\|\{=2, c\\\\d<e>=4, é\\nz=3\]"\]$', d.source, re.M), d.source
    for annotate in G.ANNOTATE:
        _svg_texts(G.build(g, annotate=annotate, depth=1).source)  # boxes and the key parse too


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz `dot` is not installed")
def test_string_attributes_of_a_real_file_reach_labels_intact(tmp_path: pathlib.Path) -> None:
    """Through a real .arch file: a block's string argument (with `"`, `\\`, `<`, `>`, `{`, `|` and é) titles
    its cluster, and a rearrange pattern (`->`, parentheses) labels its node."""
    src = tmp_path / "awkward.arch"
    src.write_text('block Inner(tag) {\n'
                   '  in x: [batch = 2, chan = 4, h = 4, w = 4]\n'
                   '  y = linear(x, chan -> 8)\n'
                   '  out rearrange(y, "batch chan h w -> batch tok=(h w) chan")\n'
                   '}\n'
                   'block Net() {\n'
                   '  in x: [batch = 2, chan = 4, h = 4, w = 4]\n'
                   '  inner = Inner(x, "a\\"b\\\\c<d>{e|f}\\u00e9")\n'
                   '  out inner\n'
                   '}\n', encoding="utf-8")
    d = G.build(archc.load(str(src)).check().graph)
    texts = _svg_texts(d.source)
    assert "⇄ rearrange batch chan h w -> batch tok=(h w) chan" in texts
    assert 'inner · Inner(tag="a"b\\c<d>{e|f}é")' in texts, texts
    assert "[batch=2, chan=8, h=4, w=4]" in texts  # an edge label
