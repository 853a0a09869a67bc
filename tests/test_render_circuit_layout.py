"""The circuit style's layout rules (codegen/circuit.py), checked from the outside.

Lanes never hold two values at once; the spine (input to output) stays in the top lane; carried copies
(residual skips) are drawn with their copy dots; einsum contractions end in cups, reductions in a box
under the kept wires, attention in full; `depth` draws closed 3-D boxes and runs in parentheses inside
regions that do not overlap. Every property is worked out here from `Layout.items` / `Layout.wires` and
the SVG, not by calling the layout's own helpers.
"""

from __future__ import annotations

import pathlib
import re
import xml.etree.ElementTree as ET

import pytest

import archc
from archc.codegen.diagrams import circuit as C
from archc.ir.graph import Graph, Op

from conftest import EXAMPLES, ROOT

SVG = "{http://www.w3.org/2000/svg}"
MINI = ROOT / "tests" / "data" / "mini_resnet.arch"
ATTENTION = ROOT / "docs" / "gallery" / "attention.arch"
SOURCES = sorted(EXAMPLES.glob("*.arch")) + [MINI, ROOT / "benchmarks" / "resnet152.arch"]
SETS = {"transformer_encoder": {"L": 16}}

# Attention from parts: q·k contracted over chan (a cup), softmax over key (a ◁), a·v over key (a cup),
# then a mean over tok (a reduction box under the kept wires).
EINSUM = """size batch = 2
block B() {
  in x: [batch, tok = 5, chan = 8]
  q = linear(x, chan -> 8)
  kp = linear(x, chan -> 8)
  k = rename(kp, tok -> key)
  vp = linear(x, chan -> 8)
  v = rename(vp, tok -> key)
  s = einsum(q, k, spec = "batch tok chan, batch key chan -> batch tok key")
  a = softmax(s, axis = key)
  o = einsum(a, v, spec = "batch tok key, batch key chan -> batch tok chan")
  m = mean(o, over = [tok])
  out m
}
"""

_cache: dict[tuple, tuple[Graph, C.Layout]] = {}


def _lay(src: pathlib.Path | str, **kw) -> tuple[Graph, C.Layout]:
    """(graph, layout) of an .arch file (or of inline source text), cached per (source, options)."""
    key = (str(src), tuple(sorted(kw.items())))
    if key not in _cache:
        if isinstance(src, pathlib.Path):
            g = archc.load(str(src)).check(**SETS.get(src.stem, {})).graph
        else:
            g = archc.loads(src).check().graph
        _cache[key] = (g, C.layout(g, **kw))
    return _cache[key]


_svg_cache: dict[int, ET.Element] = {}


def _root(lay: C.Layout) -> ET.Element:
    if id(lay) not in _svg_cache:
        _svg_cache[id(lay)] = ET.fromstring(lay.svg())
    return _svg_cache[id(lay)]


def _glyph(root: ET.Element, key: str) -> ET.Element:
    found = [g for g in root.iter(f"{SVG}g") if g.get("class") == "glyph" and g.get("data-item") == key]
    assert len(found) == 1, key
    return found[0]


def _cls(el: ET.Element, tag: str, cls: str | None) -> list[ET.Element]:
    """Descendants of `el` with this tag and class (None: no class attribute)."""
    return [e for e in el.iter(f"{SVG}{tag}") if e.get("class") == cls]


def _ys(lay: C.Layout, key: str) -> list[float]:
    return [w.y for w in lay.wires if w.value == key]


def _nums(d: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]


def _outputs(g: Graph, lay: C.Layout) -> list[C.Item]:
    """The items drawing the graph's outputs: those of its output nodes, and the columns nothing reads
    (an output inside a collapsed run is drawn by the run's first element)."""
    used = {k for it in lay.items for k in it.inputs}
    return [it for it in lay.items if it.node.id in g.outputs or it.key not in used]


# ---- 1. lanes: one value per lane at a time ---------------------------------------------------------

Segment = tuple[int, int, int, str]  # lane, first column, last column, what (item key and home/carry)


def _segments(lay: C.Layout) -> list[Segment]:
    """Where each value's wires run: its home lane over [col, first], its carried lane over [first, end]."""
    out = []
    for it in lay.items:
        assert it.col <= it.first <= it.end, it
        out.append((it.lane, it.col, it.first, f"{it.key} home"))
        if it.carry is not None:
            assert it.end > it.first, it
            out.append((it.carry, it.first, it.end, f"{it.key} carry"))
    return out


def _clashes(segs: list[Segment]) -> list[tuple[Segment, Segment]]:
    """Pairs of segments in one lane that overlap by more than an endpoint; a zero-length segment (an
    unused value's stub) clashes with a segment of its lane that it lies strictly inside."""
    bad = []
    for i, a in enumerate(segs):
        for b in segs[i + 1:]:
            if a[0] != b[0]:
                continue
            (_, a0, a1, _), (_, b0, b1, _) = a, b
            if a0 == a1 and b0 == b1:
                hit = a0 == b0
            elif a0 == a1:
                hit = b0 < a0 < b1
            elif b0 == b1:
                hit = a0 < b0 < a1
            else:
                hit = a0 < b1 and b0 < a1
            if hit:
                bad.append((a, b))
    return bad


def test_clash_check_can_fail() -> None:
    assert _clashes([(0, 0, 3, "a"), (0, 2, 5, "b")])        # strict overlap
    assert _clashes([(1, 1, 6, "a"), (1, 4, 4, "b")])        # a stub inside a wire
    assert not _clashes([(0, 0, 3, "a"), (0, 3, 5, "b")])    # a chain: touching at a column
    assert not _clashes([(0, 0, 3, "a"), (1, 1, 2, "b")])    # other lanes
    assert not _clashes([(0, 2, 2, "a"), (0, 2, 5, "b")])    # a stub at an endpoint


LANE_CASES = [(p, {}) for p in SOURCES] + [(ATTENTION, {}), (EINSUM, {}),
                                           (EXAMPLES / "resnet50.arch", {"depth": 2}),
                                           (MINI, {"conv": "expanded"})]
LANE_IDS = [p.stem for p in SOURCES] + ["attention", "einsum", "resnet50-depth2", "mini_resnet-expanded"]


@pytest.mark.parametrize("src,kw", LANE_CASES, ids=LANE_IDS)
def test_no_two_values_share_a_lane(src: pathlib.Path | str, kw: dict) -> None:
    _g, lay = _lay(src, **kw)
    assert [it.col for it in lay.items] == list(range(len(lay.items)))
    assert not _clashes(_segments(lay))
    if "depth" not in kw:  # (at depth 2 every residual is inside a box)
        assert any(it.carry is not None for it in lay.items)  # the check saw carried copies too


@pytest.mark.parametrize("src,kw", LANE_CASES, ids=LANE_IDS)
def test_first_and_end_are_consumer_columns(src: pathlib.Path | str, kw: dict) -> None:
    """`first`/`end`: the columns of the first and last items reading the value (past the last column for
    an output, the item's own column for a value nothing reads)."""
    _g, lay = _lay(src, **kw)
    last = len(lay.items)
    users: dict[str, list[int]] = {it.key: [] for it in lay.items}
    for it in lay.items:
        for k in it.inputs:
            users[k].append(it.col)
    for it in lay.items:
        us = users[it.key]
        if us:
            assert it.first == us[0] > it.col and it.end in (us[-1], last), it
        else:
            assert (it.first, it.end) in ((last, last), (it.col, it.col)), it


# ---- 2. the spine ---------------------------------------------------------------------------------------

SPINE = [EXAMPLES / "resnet50.arch", EXAMPLES / "unet.arch", EXAMPLES / "transformer_encoder.arch", MINI,
         EXAMPLES / "vit_b_16.arch", EXAMPLES / "convnext_tiny.arch"]


@pytest.mark.parametrize("src", SPINE, ids=lambda p: p.stem)
def test_spine_runs_in_the_top_lane(src: pathlib.Path) -> None:
    g, lay = _lay(src)
    inputs = [it for it in lay.items if it.node.op == Op.INPUT]
    outputs = _outputs(g, lay)
    assert inputs and outputs and lay.items[-1] in outputs
    assert all(it.lane == 0 for it in inputs + outputs), [(it.key, it.lane) for it in inputs + outputs]
    if src.stem in ("resnet50", "unet"):
        top = sum(1 for it in lay.items if it.lane == 0)
        assert top >= 0.7 * len(lay.items), (top, len(lay.items))
    consumers: dict[str, int] = {it.key: 0 for it in lay.items}
    for it in lay.items:
        for k in it.inputs:
            consumers[k] += 1
    out_keys = {it.key for it in outputs}
    for it in lay.items:
        if it.carry is not None:
            assert it.carry != 0, it.key  # skips run below the spine
            assert consumers[it.key] >= 2 or it.key in out_keys, it.key


@pytest.mark.parametrize("src", [EXAMPLES / "vit_b_16.arch", EXAMPLES / "convnext_tiny.arch"], ids=lambda p: p.stem)
def test_parameters_do_not_take_the_spine(src: pathlib.Path) -> None:
    """ViT's class token and ConvNeXt's layer scales are parameters joined into the data path: the data
    from the input keeps the top lane; every join (concat, +, ×) is on it, and parameters sit below."""
    _g, lay = _lay(src)
    joins = [it for it in lay.items if it.node.op in (Op.ADD, Op.MUL, Op.CONCAT)]
    assert joins and all(it.lane == 0 for it in joins), [(it.key, it.lane) for it in joins if it.lane]
    params = [it for it in lay.items if it.node.op == Op.PARAM]
    assert params and all(it.lane != 0 for it in params)


def test_resnet50_joins_on_the_spine_and_only_downsamples_below() -> None:
    _g, lay = _lay(EXAMPLES / "resnet50.arch")
    adds = [it for it in lay.items if it.node.op == Op.ADD]
    assert len(adds) == 8  # 16 blocks, each stage's run of identical blocks drawn once
    assert all(it.lane == 0 for it in adds), [it.key for it in adds if it.lane]
    below = [it for it in lay.items if it.lane != 0]
    assert len(below) == 8 and all(".downsample." in it.node.path for it in below)
    # Every block's input is carried to its join: directly (identity skip), or the downsample takes over
    # its carried lane (the block input's last use) and ends in the join.
    by_key = {it.key: it for it in lay.items}
    carried = {it.key for it in lay.items if it.carry is not None}
    assert len(carried) == len(adds)
    for add in adds:
        skip = [k for k in add.inputs if k in carried or by_key[k].lane != 0]
        assert len(skip) == 1, add.key
        b = by_key[skip[0]]
        if b.lane != 0:  # the downsample's batchnorm, after its conv, which read the carried block input
            conv = by_key[b.inputs[0]]
            src = by_key[conv.inputs[0]]
            assert conv.node.op == Op.CONV and conv.lane == b.lane == src.carry and src.end == conv.col


# ---- 3. carried copies are drawn ------------------------------------------------------------------------

@pytest.mark.parametrize("src", SOURCES + [ATTENTION], ids=lambda p: p.stem)
def test_carried_copies_are_drawn(src: pathlib.Path) -> None:
    _g, lay = _lay(src)
    root = _root(lay)
    carried = {it.key: it for it in lay.items if it.carry is not None}
    copies = {(c.get("cx"), c.get("cy")) for c in _cls(root, "circle", "copy")}
    links = [p.get("d", "") for p in _cls(root, "path", "link")]
    n = 0
    for w in root.iter(f"{SVG}g"):
        if w.get("class") != "wire" or w.get("data-value") not in carried:
            continue
        it = carried[w.get("data-value", "")]
        n += 1
        curves = _cls(w, "path", "carry")
        lines = list(w.iter(f"{SVG}line"))
        assert len(curves) == 1 and len(lines) == 2, it.key  # home wire, carried wire
        x0, y0, *_, x1, y1 = _nums(curves[0].get("d", ""))
        assert (f"{x0:.1f}", f"{y0:.1f}") in copies, it.key          # a copy dot where it leaves home
        assert y1 != y0, it.key                                       # it moves to another lane
        home, carry = lines
        assert float(home.get("y1", "")) == float(home.get("y2", "")) == y0
        assert float(home.get("x2", "")) == x0                        # home wire ends at the copy dot
        assert float(carry.get("y1", "")) == float(carry.get("y2", "")) == y1
        assert float(carry.get("x1", "")) == x1
        if it.end < len(lay.items):
            # the carried wire ends where the link into the last consumer begins
            start = f"M{carry.get('x2')},{carry.get('y2')} "
            assert any(d.startswith(start) for d in links), (it.key, start)
    assert n == sum(len(_ys(lay, k)) for k in carried)
    assert len(_cls(root, "circle", "copy")) >= n


# ---- 4. cups: einsum contractions -----------------------------------------------------------------------

def test_einsum_contractions_are_cups() -> None:
    _g, lay = _lay(EINSUM)
    root = _root(lay)
    by_key = {it.key: it for it in lay.items}
    einsums = [it for it in lay.items if it.node.op == Op.EINSUM]
    assert len(einsums) == 2
    links = [_nums(p.get("d", "")) for p in _cls(root, "path", "link")]
    for it, axis in zip(einsums, ("chan", "key")):
        g = _glyph(root, it.key)
        cups = _cls(g, "path", "cup")
        assert len(cups) == 1, it.key  # one axis contracted, held by both operands
        x0, y1, *_, x2, y2 = _nums(cups[0].get("d", ""))
        assert x0 == x2 == round(it.x, 1)
        out = _ys(lay, it.key)
        assert y2 > y1 > max(out), (it.key, y1, y2, out)  # the cup hangs below the kept wires
        # Each operand's contracted wire ends at one end of the cup.
        for key, y in zip(it.inputs, (y1, y2)):
            src = [w.y for w in lay.wires if w.value == key and w.axis == axis]
            assert len(src) == 1
            assert any(d[1] == round(src[0], 1) and d[-2] == x0 and d[-1] == y for d in links), (key, axis)
        # The batch wires of both operands meet on the output's batch wire: a diagonal dot, only there.
        batch = next(w.y for w in lay.wires if w.value == it.key and w.axis == "batch")
        diags = [(float(c.get("cx", "")), float(c.get("cy", ""))) for c in _cls(g, "circle", "diag")]
        assert diags == [(round(it.x, 1), batch)], it.key
        assert all(by_key[k].node.type.axes[0].name == "batch" for k in it.inputs)
    assert len(_cls(root, "path", "cup")) == 2
    soft = next(it for it in lay.items if it.node.op == Op.SOFTMAX)
    tri = [p for p in _cls(_glyph(root, soft.key), "path", None)
           if re.fullmatch(r"M\S+ L\S+ L\S+ z", p.get("d", ""))]
    assert len(tri) == 1
    key_y = next(w.y for w in lay.wires if w.value == soft.key and w.axis == "key")
    assert _nums(tri[0].get("d", ""))[3] == key_y  # the ◁ sits on the key wire it normalises


def test_contraction_in_one_operand_is_a_bar() -> None:
    """A summed axis held by one operand only ends at a bar, not a cup."""
    src = ("size n = 2\nblock B() { in x: [n, t = 4, c = 6]\n"
           " y = einsum(x, rename(x, t -> s), spec = \"n t c, n s c -> n t\")\n out y }")
    _g, lay = _lay(src)
    root = _root(lay)
    it = next(it for it in lay.items if it.node.op == Op.EINSUM)
    g = _glyph(root, it.key)
    assert len(_cls(g, "path", "cup")) == 1     # c, held by both
    assert len(_cls(g, "line", None)) == 1      # s, held by the second only


# ---- 5. reductions ---------------------------------------------------------------------------------------

def _reduce_box(root: ET.Element, key: str) -> tuple[float, float]:
    rects = _cls(_glyph(root, key), "rect", None)
    assert len(rects) == 1, key
    y, h = float(rects[0].get("y", "")), float(rects[0].get("height", ""))
    return y, y + h


def test_reduction_box_covers_only_the_ending_wire() -> None:
    _g, lay = _lay(EINSUM)
    root = _root(lay)
    it = next(it for it in lay.items if it.node.op == Op.MEAN)
    top, bot = _reduce_box(root, it.key)
    out = _ys(lay, it.key)
    assert [w.axis for w in lay.wires if w.value == it.key] == ["batch", "chan"]
    assert top > max(out), (top, out)
    # The tok wire of the input ends inside the box, on a row below the kept wires.
    tok = next(w.y for w in lay.wires if w.value == it.inputs[0] and w.axis == "tok")
    ends = [d[-1] for d in (_nums(p.get("d", "")) for p in _cls(root, "path", "link"))
            if d[1] == tok and d[-2] == round(it.x, 1)]
    assert len(ends) == 1 and top < ends[0] < bot and ends[0] > max(out)


@pytest.mark.parametrize("src", [p for p in SOURCES if p.stem in ("mobilenet_v2", "resnet50", "mini_resnet",
                                                                  "resnet152")], ids=lambda p: p.stem)
def test_every_reduction_box_hangs_below_its_output(src: pathlib.Path) -> None:
    """The global average pool of the CNNs (`mean(over = [h, w])`): its box covers the two ending rows."""
    _g, lay = _lay(src)
    root = _root(lay)
    n = 0
    for it in lay.items:
        if it.module is None and it.node.op in (Op.MEAN, Op.SUM, Op.AMAX):
            ins = {w.axis for w in lay.wires if w.value == it.inputs[0]}
            if ins <= {w.axis for w in lay.wires if w.value == it.key}:
                continue  # keeps every axis: nothing ends
            top, bot = _reduce_box(root, it.key)
            out = _ys(lay, it.key)
            assert top > max(out), it.key
            assert bot - top < 2 * (out[1] - out[0]) + 16 + 0.5  # two rows: h and w end there
            n += 1
    assert n == 1


# ---- 6. attention in full ---------------------------------------------------------------------------------

def test_attention_drawn_in_full() -> None:
    _g, lay = _lay(ATTENTION)
    root = _root(lay)
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "glyph" and g.get("data-op") == "attention"]
    assert len(groups) == 1
    g = groups[0]
    assert len(_cls(g, "rect", "attention")) == 1
    assert len(_cls(g, "path", "cup")) == 2
    tri = [p for p in _cls(g, "path", None) if re.fullmatch(r"M\S+ L\S+ L\S+ z", p.get("d", ""))]
    assert len(tri) == 1
    assert any((t.text or "").startswith("÷√") for t in g.iter(f"{SVG}text"))
    # The box holds both cups and the ◁, and starts just above the output's first wire.
    rect = _cls(g, "rect", "attention")[0]
    rx, ry = float(rect.get("x", "")), float(rect.get("y", ""))
    rw, rh = float(rect.get("width", "")), float(rect.get("height", ""))
    for p in _cls(g, "path", "cup") + tri:
        xs, ys = _nums(p.get("d", ""))[0::2], _nums(p.get("d", ""))[1::2]
        assert rx <= min(xs) and max(xs) <= rx + rw and ry <= min(ys) and max(ys) <= ry + rh
    it = next(it for it in lay.items if it.node.op == Op.ATTENTION)
    assert len(it.inputs) == 3
    assert ry < min(_ys(lay, it.key))


# ---- 7. --depth: runs in parentheses, closed 3-D boxes --------------------------------------------------

def test_depth_runs_and_closed_boxes() -> None:
    _g, lay = _lay(EXAMPLES / "resnet50.arch", depth=2)
    root = _root(lay)
    assert len(lay.collapsed) == 4
    assert [n for _p, n in lay.collapsed] == [2, 3, 5, 2]
    assert len(_cls(root, "path", "paren")) >= 2 * len(lay.collapsed)
    modules = [it for it in lay.items if it.module is not None]
    assert len(modules) == 8
    for it in modules:
        g = _glyph(root, it.key)
        assert g.get("data-op") == it.node.op.value  # the module's last node
        paths = list(g.iter(f"{SVG}path"))
        assert len(paths) == 2, it.key  # top face and side face, then the front rect
        for p in paths:
            assert p.get("d", "").rstrip().endswith("z"), (it.key, p.get("d"))
        assert len(list(g.iter(f"{SVG}rect"))) == 1
    for p in root.iter(f"{SVG}path"):
        d = p.get("d", "")
        assert not re.search(r"l[^z]*v[^z]*l[^z]*$", d), d  # an l…v…l outline left open


# ---- 8. regions do not overlap --------------------------------------------------------------------------

def _regions(root: ET.Element) -> list[tuple[str, float, float]]:
    out = []
    for r in _cls(root, "rect", "region"):
        t = r.find(f"{SVG}title")
        x, w = float(r.get("x", "")), float(r.get("width", ""))
        out.append((t.text if t is not None else "", x, x + w))
    return out


@pytest.mark.parametrize("src,kw", [(EXAMPLES / "resnet50.arch", {"depth": 2}), (EXAMPLES / "resnet50.arch", {}),
                                    (MINI, {})], ids=["resnet50-depth2", "resnet50", "mini_resnet"])
def test_regions_nest_or_stay_apart(src: pathlib.Path, kw: dict) -> None:
    _g, lay = _lay(src, **kw)
    regs = _regions(_root(lay))
    assert regs

    def within(a: tuple[str, float, float], b: tuple[str, float, float]) -> bool:
        return b[1] <= a[1] and a[2] <= b[2]

    level = {r: sum(1 for o in regs if o is not r and within(r, o)) for r in regs}
    for i, a in enumerate(regs):
        for b in regs[i + 1:]:
            if level[a] != level[b] or within(a, b) or within(b, a):
                continue
            overlap = min(a[2], b[2]) - max(a[1], b[1])
            assert round(overlap, 3) <= 1.0, (a, b, overlap)
    if kw.get("depth") == 2:
        names = {r[0] for r in regs}
        assert {"layer1", "layer2", "layer3", "layer4"} <= names
        assert {p for p, _n in lay.collapsed} <= names  # each run has a region for its parentheses
        # a run's region lies inside its stage's
        for p, _n in lay.collapsed:
            inner = next(r for r in regs if r[0] == p)
            outer = next(r for r in regs if r[0] == p.split(".")[0])
            assert within(inner, outer), (inner, outer)
