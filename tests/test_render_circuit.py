"""The circuit style (codegen/circuit.py): wires per axis, glyphs per op, no overlapping text, determinism."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import archc
from archc.codegen import circuit as C
from archc.dsl.ir import TupleType

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
    assert len(labels) == len(wires) == len(lay.wires)
    assert [w.label for w in lay.wires] == labels
    for w in lay.wires:
        assert w.label.startswith(w.axis + "=")


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
    assert outs[0].decode() == _layout(src).svg()


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


def test_cli_writes_svg_and_rejects_annotate(tmp_path: pathlib.Path) -> None:
    from archc import cli
    src = str(ROOT / "tests" / "data" / "mini_resnet.arch")
    assert cli.main(["render", src, "-o", str(tmp_path / "a.svg"), "--style", "circuit"]) == 0
    ET.parse(tmp_path / "a.svg")
    assert cli.main(["render", src, "-o", str(tmp_path / "b.svg"), "--style", "circuit",
                     "--annotate", "flops"]) == 1


@pytest.mark.skipif(importlib.util.find_spec("cairosvg") is None, reason="cairosvg not installed (optional)")
def test_png(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "m.png"
    archc.load(str(ROOT / "tests" / "data" / "mini_resnet.arch")).render(str(out), style="circuit")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
