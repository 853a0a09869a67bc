"""The circuit style (codegen/circuit.py): wires per axis, glyphs per op, no overlapping text, determinism."""

from __future__ import annotations

import dataclasses
import importlib.util
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import archc
from archc.codegen.diagrams import circuit as C
from archc.codegen.diagrams import graph as G
from archc.codegen.output import mark
from archc.ir.graph import Graph
from archc.shapes.types import TupleType

from conftest import EXAMPLES, ROOT

SVG = "{http://www.w3.org/2000/svg}"
SOURCES = sorted(EXAMPLES.glob("*.arch")) + [ROOT / "tests" / "data" / "mini_resnet.arch"]
SETS = {"transformer_encoder": {"L": 16}}
MHA = """import std.transformer
size batch = 2, L = 16
entry block Net() {
  in x: [batch, tok = L, chan = 64]
  attn = MultiHeadAttention(x, 64, 4)
  out attn
}
"""
LIMIT = 1_000_000  # bytes of SVG per example

_cache: dict[str, C.Layout] = {}


def _layout(src: pathlib.Path) -> C.Layout:
    if src.stem not in _cache:
        g = archc.load(str(src)).check(**SETS.get(src.stem, {})).graph
        _cache[src.stem] = C.layout(g)
    return _cache[src.stem]


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_every_example_renders(src: pathlib.Path) -> None:
    lay = _layout(src)
    text = lay.svg()
    assert len(text.encode()) < LIMIT
    root = ET.fromstring(text)  # valid XML
    assert root.tag == f"{SVG}svg"
    # One labelled wire per axis of the value each column makes; a glyph element per column.
    wires = root.findall(f".//{SVG}g[@class='wire']")
    glyphs = {g.get("data-item") for g in root.findall(f".//{SVG}g[@class='glyph']")}
    labels = [t.text for t in root.findall(f".//{SVG}text[@class='wire']")]
    per_item: dict[str, list[str]] = {}
    for w in wires:
        per_item.setdefault(w.get("data-value", ""), []).append(w.get("data-axis", ""))
    for it in lay.items:
        t = it.node.type
        axes = [a.name for tt in (t.items if isinstance(t, TupleType) else (t,)) for a in tt.axes]
        assert per_item.get(it.key, []) == axes, it.key
        assert it.key in glyphs
    assert len(wires) == len(lay.wires)
    assert [w.label for w in lay.wires if w.shown] == labels
    for w in lay.wires:
        assert w.label.startswith(w.axis + "=") or w.label == w.axis
    assert [w.shown for w in lay.wires] == _expected_shown(lay, archc.load(str(src)).check(
        **SETS.get(src.stem, {})).graph)


def _expected_shown(lay: C.Layout, g: Graph) -> list[bool]:
    """Which wires carry a label, worked out from the graph: every wire of an input, of the first column of
    each block region, of an output and of a value that changes lane, and elsewhere exactly those whose
    `axis=size` the column's first input lacks."""
    first: dict[str, str] = {}  # block path -> key of the first column inside it
    for it in lay.items:
        path = G.container(g, it.node) if it.module is None else (g.modules[it.module].parent or "")
        while path:
            m = g.modules[path]
            if m.kind == "block":
                first.setdefault(path, it.key)
            path = m.parent or ""
    fresh = set(first.values())
    labels = {it.key: [w.label for w in lay.wires if w.value == it.key] for it in lay.items}
    lane = {it.key: it.lane for it in lay.items}
    out = []
    for it in lay.items:
        whole = (not it.inputs or it.key in fresh or it.node.id in g.outputs
                 or it.lane != lane[it.inputs[0]])
        before = None if whole else set(labels[it.inputs[0]])
        out.extend(before is None or lab not in before for lab in labels[it.key])
    return out


def test_symbolic_labels_name_the_free_size_once() -> None:
    """With symbolic sizes a wire whose size is the free size of its own name is labelled by the name alone;
    derived sizes get legend names, defined in the legend."""
    g = archc.load(str(EXAMPLES / "unet.arch")).check(symbolic=True).graph
    lay = C.layout(g, depth=2)
    labels = {w.label for w in lay.wires}
    assert "batch" in labels and "batch=batch" not in labels and "h=H" in labels
    legend = [b.text for b in lay.texts if b.kind == "legend"]
    assert "h1 = ⌊H/2⌋" in legend and any(t.startswith("h5 = 2·h4") for t in legend)


def test_wire_labels_only_where_new_or_changed() -> None:
    """After `linear(c -> 4)` only c=4 is labelled; relu changes nothing, so no labels; the output
    (layernorm) is labelled in full."""
    m = archc.loads("size n = 2\nblock B() { in x: [n, t = 5, c = 8]\n fc = linear(x, c -> 4)\n"
                    " y = relu(fc)\n z = layernorm(y)\n out z }")
    lay = C.layout(m.check().graph)
    drawn = [t.text for t in ET.fromstring(lay.svg()).findall(f".//{SVG}text[@class='wire']")]
    assert drawn == ["n=2", "t=5", "c=8", "c=4", "n=2", "t=5", "c=4"]
    assert len(lay.wires) == 4 * 3  # every column still has its three wires


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_no_text_overlaps(src: pathlib.Path) -> None:
    boxes = _layout(src).texts
    order = sorted(range(len(boxes)), key=lambda i: boxes[i].x)
    for a, i in enumerate(order):  # sweep in x: compare only boxes that can meet
        for j in order[a + 1:]:
            if boxes[j].x >= boxes[i].x + boxes[i].w:
                break
            assert not boxes[i].hits(boxes[j]), (boxes[i], boxes[j])


def test_overlap_check_can_fail() -> None:
    a = C.Box(0, 0, 10, 10, "a", "wire")
    assert a.hits(C.Box(5, 5, 10, 10, "b", "wire")) and not a.hits(C.Box(10, 0, 5, 5, "c", "wire"))


def test_byte_identical_across_processes(tmp_path: pathlib.Path) -> None:
    src = ROOT / "tests" / "data" / "mini_resnet.arch"
    outs = []
    for k in range(2):
        out = tmp_path / f"m{k}.svg"
        subprocess.run([sys.executable, "-m", "archc.cli", "render", str(src), "-o", str(out),
                        "--style", "circuit"], check=True, capture_output=True,
                       env={"PYTHONHASHSEED": str(k), "PATH": ""})
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert outs[0] == mark("svg", _layout(src).svg().encode())


def test_linear_chain_glyphs_and_broadcast() -> None:
    m = archc.loads("size n = 2\nblock B() { in x: [n, t = 5, c = 8]\n fc = linear(x, c -> 4)\n"
                    " y = softmax(relu(fc), axis = t)\n z = layernorm(y)\n out z }")
    lay = C.layout(m.check().graph)
    root = ET.fromstring(lay.svg())
    ops = [g.get("data-op") for g in root.findall(f".//{SVG}g[@class='glyph']")]
    assert ops == ["input", "linear", "relu", "softmax", "layernorm"]
    texts = [t.text for t in root.findall(f".//{SVG}text[@class='glyph']")]
    assert "L₊" in texts and "➤ReLU➤" in texts
    assert [w.label for w in lay.wires][3:6] == ["n=2", "t=5", "c=4"]
    assert [w.shown for w in lay.wires][3:6] == [False, False, True]
    assert C.acts(lay.items[1].node) == {"c"}   # the linear map acts on c only: n and t run past it
    assert C.acts(lay.items[3].node) == {"t"}


def test_residual_join_and_copy_dots() -> None:
    lay = C.layout(archc.load(str(ROOT / "tests" / "data" / "mini_resnet.arch")).check().graph)
    root = ET.fromstring(lay.svg())
    assert len(root.findall(f".//{SVG}circle[@class='copy']")) >= 4   # x fans out to conv1 and the join
    adds = [g for g in root.findall(f".//{SVG}g[@class='glyph']") if g.get("data-op") == "add"]
    assert len(adds) == 2  # layer1.0 and the collapsed run layer1.1…2
    assert lay.collapsed == [("layer1.1", 2)]
    assert any(t.text == "i = 1…2  ×2" for t in root.findall(f".//{SVG}text[@class='run']"))


def test_attention_block(tmp_path: pathlib.Path) -> None:
    lay = C.layout(archc.loads(MHA).check().graph)
    ops = [it.node.op.value for it in lay.items]
    assert ops.count("linear") == 4 and ops.count("rearrange") == 4 and "attention" in ops
    attn = next(it for it in lay.items if it.node.op.value == "attention")
    assert len(attn.inputs) == 3  # q, k and v wires all curve into it
    assert {w.axis for w in lay.wires if w.value == attn.key} == {"batch", "head", "tok", "dh"}


def test_depth_collapses_modules() -> None:
    g = archc.load(str(EXAMPLES / "resnet50.arch")).check().graph
    full, shallow = C.layout(g), C.layout(g, depth=1)
    assert len(shallow.items) < len(full.items) / 5
    assert any(it.module == "layer3" for it in shallow.items)


def test_cli_writes_svg_and_annotates(tmp_path: pathlib.Path) -> None:
    from archc import cli
    src = str(ROOT / "tests" / "data" / "mini_resnet.arch")
    assert cli.main(["render", src, "-o", str(tmp_path / "a.svg"), "--style", "circuit"]) == 0
    root = ET.parse(tmp_path / "a.svg").getroot()
    assert not root.findall(f".//{SVG}g[@class='cost']")
    assert cli.main(["render", src, "-o", str(tmp_path / "b.svg"), "--style", "circuit",
                     "--annotate", "flops"]) == 0
    root = ET.parse(tmp_path / "b.svg").getroot()
    costs = root.findall(f".//{SVG}g[@class='cost']")
    convs = [g for g in root.findall(f".//{SVG}g[@class='glyph']") if g.get("data-op") in ("conv", "linear")]
    assert costs and len(costs) == len(convs)  # in the torch convention only convolutions and matmuls cost
    assert all(int(c.get("data-value", "0")) > 0 for c in costs)
    assert len(root.findall(f".//{SVG}rect[@class='swatch']")) == 5  # the key of the colour scale


def _drawn_costs(lay: C.Layout) -> dict[str, tuple[int, str, str]]:
    """item key -> (exact figure, drawn text, fill of its background) read back from the SVG."""
    out = {}
    for g in ET.fromstring(lay.svg()).findall(f".//{SVG}g[@class='cost']"):
        text, rect = g.find(f"{SVG}text"), g.find(f"{SVG}rect")
        assert text is not None and rect is not None
        out[g.get("data-item", "")] = (int(g.get("data-value", "")), text.text or "", rect.get("fill", ""))
    return out


@pytest.mark.parametrize("what", ["params", "flops"])
def test_annotate_figures_add_up_to_the_model_totals(what: str, figures: dict) -> None:
    """The figures under the glyphs, a run's column counting all N, sum to the checker's and torchvision's totals."""
    from archc.codegen.diagrams.graph import SCALE, _fmt_num
    src = EXAMPLES / "resnet50.arch"
    g = archc.load(str(src)).check().graph
    rep = archc.load(str(src)).flops()
    total = rep.params if what == "params" else rep.flops
    ref = figures["models"]["resnet50"]
    assert total == (ref["params"] if what == "params" else ref["flops_conv_linear"])
    for kw in ({}, {"depth": 2}, {"depth": 1}):
        lay = C.layout(g, annotate=what, **kw)
        drawn = _drawn_costs(lay)
        assert set(drawn) == {it.key for it in lay.items if lay.weights.get(it.key, 0) > 0}  # none for zeros
        assert sum(v for v, _t, _f in drawn.values()) == total
        assert drawn == {k: (v, _fmt_num(v), t) for k, (v, _x, t) in drawn.items()}  # each text is its figure
        fills = {f for v, _t, f in drawn.values() if v > 0}
        assert fills <= set(SCALE) and SCALE[-1] in fills and SCALE[0] in fills  # the scale spans the range
        biggest = max(drawn.values())
        assert biggest[2] == SCALE[-1]
        boxes = lay.texts  # no overlapping text with the figures added either
        for i, a in enumerate(boxes):
            assert not any(a.hits(b) for b in boxes[i + 1:] if b.x < a.x + a.w and a.x < b.x + b.w), a


@pytest.mark.skipif(importlib.util.find_spec("cairosvg") is None, reason="cairosvg not installed (optional)")
@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_png(src: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """Every example rendered to PNG by a real SVG renderer (cairosvg), at the layout's size."""
    out = tmp_path / "m.png"
    lay = C.render(archc.load(str(src)).check(**SETS.get(src.stem, {})).graph, str(out))
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (round(lay.width), round(lay.height))
    assert 200 < width < 20_000 and 100 < height < 2_000


# ---- --define BLOCK: a block's definition beside its 3-D box -----------------------------------

MINI = ROOT / "tests" / "data" / "mini_resnet.arch"


def _no_overlaps(boxes: list[C.Box]) -> None:
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.hits(b), (a, b)


def test_define_draws_the_block_box_and_only_its_ops() -> None:
    g = archc.load(str(MINI)).check().graph
    lay = C.layout(g, define="Bottleneck")
    root = ET.fromstring(lay.svg())
    box = root.findall(f".//{SVG}g[@class='define-box']")
    assert len(box) == 1 and box[0].get("data-path") == "layer1.0"  # the first instance
    assert len(box[0].findall(f"{SVG}path")) == 2 and box[0].find(f"{SVG}rect") is not None  # 3-D: 2 faces + front
    texts = [t.text for t in root.findall(f".//{SVG}text[@class='define']")]
    assert texts == ["Bottleneck", "cin = 64", "width = 64", "stride = 1", "="]
    # Glyphs: one input, then exactly the ops of layer1.0 in graph order (checked against the node scopes).
    ops = [e.get("data-op") for e in root.findall(f".//{SVG}g[@class='glyph']")]
    mine = [n.op.value for n in g if n.scope == "layer1.0" or n.scope.startswith("layer1.0.")]
    assert ops == ["input"] + mine
    assert "linear" not in ops and "maxpool" not in ops and ops.count("conv") == 4
    # The input wires are labelled with the instance's input type.
    x = [w for w in lay.wires if w.value == lay.items[0].key]
    assert [w.label for w in x] == ["batch=1", "chan=64", "h=56", "w=56"] and all(w.shown for w in x)
    _no_overlaps(lay.texts)


def test_define_a_block_that_repeats_inside_it() -> None:
    g = archc.load(str(EXAMPLES / "resnet50.arch")).check().graph
    blocks = {m.name for m in g.modules.values() if m.kind == "block"}
    for name in sorted(blocks - {g.entry}):
        lay = C.layout(g, define=name)
        inst = next(m for m in g.modules.values() if m.kind == "block" and m.name == name)
        assert lay.items and all(not it.key.startswith("m:") for it in lay.items)
        assert len(ET.fromstring(lay.svg()).findall(f".//{SVG}g[@class='define-box']")) == 1
        assert sum(1 for n in g if n.scope == inst.path or n.scope.startswith(inst.path + ".")) >= len(lay.items) - 1
        _no_overlaps(lay.texts)


def test_define_cli_byte_identical_and_unknown_name(tmp_path: pathlib.Path) -> None:
    outs = []
    for k in range(2):
        out = tmp_path / f"d{k}.svg"
        subprocess.run([sys.executable, "-m", "archc.cli", "render", str(MINI), "-o", str(out),
                        "--style", "circuit", "--define", "Bottleneck"], check=True, capture_output=True,
                       env={"PYTHONHASHSEED": str(k), "PATH": ""})
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    g = archc.load(str(MINI)).check().graph
    assert outs[0] == mark("svg", C.layout(g, define="Bottleneck").svg().encode())
    r = subprocess.run([sys.executable, "-m", "archc.cli", "render", str(MINI), "-o", str(tmp_path / "e.svg"),
                        "--style", "circuit", "--define", "Botleneck"], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"{MINI}:1:1: error:") and "did you mean 'Bottleneck'?" in r.stderr
    assert not (tmp_path / "e.svg").exists()


# ---- --conv expanded: trapezoid ★, window wires, contracting L -----------------------------------

CONVS = """size batch = 1
block C() {
  in x: [batch, chan = 3, h = 32, w = 24]
  c1 = conv(x, chan -> 8, k = 3, stride = 2, pad = 1)
  c2 = conv(relu(c1), chan -> 16, k = 5, pad = 2)
  out c2
}
"""


def test_conv_expanded() -> None:
    g = archc.loads(CONVS).check().graph
    compact, lay = C.layout(g), C.layout(g, conv="expanded")
    assert "conv-split" not in compact.svg()  # compact stays the default
    root = ET.fromstring(lay.svg())
    convs = [e for e in root.findall(f".//{SVG}g[@class='glyph']") if e.get("data-op") == "conv"]
    assert len(convs) == 2
    for e, k, star in zip(convs, (3, 5), ("★/2", "★")):
        poly = e.findall(f"{SVG}polygon[@class='conv-split']")
        assert len(poly) == 1 and len(poly[0].get("points", "").split()) == 4  # a trapezoid
        windows = [t.text for t in e.findall(f"{SVG}text[@class='window']")]
        assert windows == [f"k={k}²"]  # a square kernel: one window wire for h and w, as the paper's 1²
        assert len(e.findall(f"{SVG}path[@class='window']")) == 1
        contract = e.findall(f"{SVG}g[@class='conv-contract']")
        assert len(contract) == 1 and [t.text for t in contract[0].iter(f"{SVG}text")] == ["L"]
        assert star in [t.text for t in e.findall(f"{SVG}text[@class='glyph']")]
    # The L sits on the output channel wire, right of the trapezoid; the window labels start past it.
    c1 = next(it for it in lay.items if it.node.op.value == "conv")
    chan_y = next(w.y for w in lay.wires if w.value == c1.key and w.axis == "chan")
    ls = [b for b in lay.texts if b.text == "L"]
    assert ls[0].y == chan_y - 9 and ls[0].x > c1.x
    assert [w.label for w in lay.wires if w.value == c1.key] == ["batch=1", "chan=8", "h=16", "w=12"]
    _no_overlaps(lay.texts)


def test_conv_expanded_rectangular_kernel_has_a_window_wire_per_axis() -> None:
    g = archc.loads("size batch = 1\nblock C() {\n  in x: [batch, chan = 3, h = 32, w = 24]\n"
                    "  c1 = conv(x, chan -> 8, k = [3, 1], pad = [1, 0])\n  out c1\n}").check().graph
    root = ET.fromstring(C.layout(g, conv="expanded").svg())
    assert [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "window"] == ["k=3", "k=1"]
    assert len([p for p in root.iter(f"{SVG}path") if p.get("class") == "window"]) == 2


@pytest.mark.parametrize("src", [MINI, EXAMPLES / "resnet50.arch"], ids=lambda p: p.stem)
def test_conv_expanded_no_overlaps(src: pathlib.Path) -> None:
    g = archc.load(str(src)).check().graph
    lay = C.layout(g, conv="expanded")
    n = sum(1 for it in lay.items if it.node.op.value == "conv")
    assert lay.svg().count('class="conv-split"') == n > 0
    boxes = lay.texts
    order = sorted(range(len(boxes)), key=lambda i: boxes[i].x)
    for a, i in enumerate(order):
        for j in order[a + 1:]:
            if boxes[j].x >= boxes[i].x + boxes[i].w:
                break
            assert not boxes[i].hits(boxes[j]), (boxes[i], boxes[j])


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_every_block_renders_its_definition_in_jupyter(src: pathlib.Path) -> None:
    """`Model.blocks` holds each block the entry instantiates; each displays its definition: a define box
    titled with its name, and only the ops of its first instance."""
    m = archc.load(str(src))  # with the file's own sizes (transformer_encoder: L stays symbolic)
    blocks = m.blocks
    g = m.check().graph
    assert list(blocks) == list(dict.fromkeys(x.name for x in g.modules.values() if x.kind == "block"))
    for name, view in blocks.items():
        root = ET.fromstring(view._repr_svg_())
        box = root.find(f".//{SVG}g[@class='define-box']")
        assert box is not None and box.get("data-block") == name
        first = next(x for x in g.modules.values() if x.kind == "block" and x.name == name)
        inside = sum(1 for n in g if not first.path or n.scope == first.path or n.scope.startswith(first.path + "."))
        glyphs = root.findall(f".//{SVG}g[@class='glyph']")
        assert 0 < len(glyphs) <= inside + 8  # its ops (runs collapse), plus its inputs


def test_repr_svg_falls_back_to_the_circuit_style_without_dot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(G, "have_dot", lambda: False)
    svg = archc.load(str(ROOT / "tests/data/mini_resnet.arch"))._repr_svg_()
    assert svg is not None and ET.fromstring(svg).find(f".//{SVG}g[@class='wire']") is not None


def test_layout_is_plain_marks_and_the_svg_writes_them() -> None:
    """The layout holds marks (plain data, no SVG); the emitter has one writer per kind of mark and turns
    them, one line each and in order, into the document."""
    import typing

    from archc.codegen.diagrams import circuit_glyphs, circuit_marks, circuit_svg

    kinds = set(typing.get_args(circuit_marks.Mark))
    assert kinds == set(circuit_svg.WRITERS)
    lay = C.layout(_graph_of(EXAMPLES / "transformer_encoder.arch"), annotate="flops")
    assert lay.marks and all(type(m) in kinds for m in lay.marks)
    for m in lay.marks:  # no SVG syntax in the layout: text only in what a Text says
        for f in dataclasses.fields(m):
            v = getattr(m, f.name)
            assert not (isinstance(v, str) and "<" in v and not isinstance(m, circuit_marks.Text)), m
    assert lay.texts == [m.box for m in lay.marks if isinstance(m, circuit_marks.Text)]
    lines = lay.svg().splitlines()
    assert lines[3:-1] == lay.body == [circuit_svg.element(m) for m in lay.marks]
    # Every glyph kind drawn here comes from the table (a kind missing from it is drawn as a box).
    drawn = {circuit_glyphs.kind_of(it) for it in lay.items}
    assert drawn <= set(circuit_glyphs.STYLES)


def _graph_of(src: pathlib.Path) -> Graph:
    return archc.load(str(src)).check().graph
