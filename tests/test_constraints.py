"""Constraints on free sizes: derived from the graph, checked against brute force and torch.

A derived constraint is a claim about every value of a free size, so each one
is tested three ways where it can be: its text, a sweep of concrete values
through archc itself (the check passes exactly where the constraint holds),
and, where a torch model exists, torch running exactly where it holds. A
concrete size that breaks a constraint must give an error located at the
line that breaks, with the derived constraint as a note.
"""

from __future__ import annotations

import pathlib
import re

import pytest

import archc
from archc import cli
from archc.api import compile_program
from archc.diagnostics import ArchError

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
UNET = EXAMPLES / "unet.arch"


def texts(model: archc.Model, **sets) -> list[str]:
    return [d.text for d in model.check(symbolic=True, **sets).constraints]


def passes(model: archc.Model, **sets) -> bool:
    try:
        model.check(**sets)
    except ArchError:
        return False
    return True


def line_of(path: pathlib.Path, needle: str) -> int:
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def failure(text: str, **sets):
    """The first diagnostic of a concrete check with derived notes (what `archc check` prints)."""
    model = archc.loads(text, "t.arch")
    with pytest.raises(ArchError) as info:
        compile_program(model.program, None, sets, derive=True)
    return info.value.diagnostics[0]


# ---- U-Net -------------------------------------------------------------------------------------------


def test_unet_needs_sizes_divisible_by_16():
    found = texts(archc.load(str(UNET)))
    assert "H must be divisible by 16" in found
    assert "W must be divisible by 16" in found
    assert "H >= 16" in found and "W >= 16" in found


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_unet_constraint_is_exactly_where_archc_and_torch_succeed(levels):
    torch = pytest.importorskip("torch")
    from torch_references import UNet

    model = archc.load(str(UNET))
    step = 2 ** levels
    assert f"H must be divisible by {step}" in texts(model, levels=levels)
    with torch.device("meta"):
        net = UNet(base=2, levels=levels).eval()
    for h in range(1, 4 * step + 3):
        holds = h % step == 0
        assert passes(model, H=h, W=step, levels=levels, base=2) == holds, h
        try:
            with torch.device("meta"):
                net(torch.empty(1, 1, h, step))
            ran = True
        except RuntimeError:
            ran = False
        assert ran == holds, h


def test_cli_check_reports_the_unet_constraints(capsys):
    assert cli.main(["check", str(UNET)]) == 0
    out = capsys.readouterr().out
    concat = line_of(UNET, "concat(")
    assert re.search(rf"H must be divisible by 16 .*unet\.arch:{concat}:", out)
    assert re.search(rf"W must be divisible by 16 .*unet\.arch:{concat}:", out)


def test_cli_unet_with_h_100_fails_at_the_join_with_the_constraint_as_a_note(capsys):
    assert cli.main(["check", str(UNET), "--set", "H=100"]) == 1
    err = capsys.readouterr().err
    concat = line_of(UNET, "concat(")
    first = err.splitlines()[0]
    assert re.match(rf".*unet\.arch:{concat}:\d+: error: .*axis 'h'.*H=100", first), first
    assert re.search(rf"unet\.arch:{concat}:\d+: note: .*H must be divisible by 16", err)
    assert "W must be" not in err  # W=256 is fine: the notes are about the size that broke
    assert "Traceback" not in err


def test_cli_unet_too_small_fails_at_the_pool_with_the_minimum_as_a_note(capsys):
    assert cli.main(["check", str(UNET), "--set", "W=8"]) == 1
    err = capsys.readouterr().err
    pool = line_of(UNET, "maxpool(")
    assert re.match(rf".*unet\.arch:{pool}:\d+: error: .*too small", err.splitlines()[0])
    assert "note: for all sizes this needs: W >= 16" in err


# ---- divisibility from data movement ------------------------------------------------------------------


PATCHES = """size H = 32, W = 48
block B() {
  in x: [b = 1, c = 3, h = H, w = W]
  p = rearrange(x, "b c (gh p1) (gw p2) -> b tok=(gh gw) c p1 p2", p1 = 4, p2 = 8)
  out p
}
"""

SPLIT = """size T = 12
block B() {
  in x: [b = 2, t = T, c = 4]
  halves = split(x, axis = t, parts = 2)
  thirds = split(x, axis = t, parts = 3)
  out halves[0], thirds[0]
}
"""

UNSHUFFLE = """size H = 8, W = 9
block B() {
  in x: [b = 1, c = 2, h = H + 1, w = W]
  y = pixel_unshuffle(x, r = 3)
  out y
}
"""

FIXED = """size T = 8
block B() {
  in x: [b = 2, t = T, c = 4]
  a, b2 = split(x, axis = t, sizes = [3, 5])
  out a
}
"""

HOPELESS = """size T = 8
block B() {
  in x: [b = 2, t = 2 * T + 1, c = 4]
  a, b2 = split(x, axis = t, parts = 2)
  out a
}
"""

TWO_SIZES = """size H = 16, W = 16
block B() {
  in x: [b = 1, h = H, w = W]
  t = rearrange(rename(x, h -> w, w -> h), "b w h -> b h w")
  y = x + t
  out y
}
"""


@pytest.mark.parametrize("text, sizes, expected", [
    (PATCHES, ("H", "W"), ["H must be divisible by 4", "W must be divisible by 8"]),
    (SPLIT, ("T",), ["T must be divisible by 6"]),  # two splits combine: 2 and 3 give 6
    (UNSHUFFLE, ("H", "W"), ["H ≡ 2 (mod 3)", "W must be divisible by 3"]),
    (FIXED, ("T",), ["T = 8"]),
])
def test_divisibility_matches_a_sweep_of_concrete_sizes(text, sizes, expected):
    model = archc.loads(text)
    assert texts(model) == expected
    for name in sizes:
        fact = next(e for e in expected if e.startswith(name))
        for v in range(1, 40):
            if m := re.fullmatch(rf"{name} must be divisible by (\d+)", fact):
                holds = v % int(m[1]) == 0
            elif m := re.fullmatch(rf"{name} ≡ (\d+) \(mod (\d+)\)", fact):
                holds = v % int(m[2]) == int(m[1])
            else:
                holds = v == int(fact.split("= ")[1])
            assert passes(model, **{name: v}) == holds, (fact, v)  # the other sizes keep their defaults


def test_a_constraint_no_size_satisfies_is_reported_as_such():
    d = failure(HOPELESS)
    assert d.span.line == 4 and d.code == "constraint"
    assert any("fails for every T" in note for note, _ in d.notes)


def test_a_relation_between_two_sizes_is_one_equation():
    assert texts(archc.loads(TWO_SIZES)) == ["H = W"]
    d = failure(TWO_SIZES, W=20)
    assert d.span.line == 5 and "H = 16" in d.message and "W = 20" in d.message
    assert [note for note, _ in d.notes] == ["for all sizes this needs: H = W"]


@pytest.mark.parametrize("text, sets, line, note", [
    (PATCHES, {"H": 30}, 4, "H must be divisible by 4"),
    (PATCHES, {"W": 30}, 4, "W must be divisible by 8"),
    (SPLIT, {"T": 10}, 5, "T must be divisible by 6"),
    (UNSHUFFLE, {"H": 9}, 4, "H ≡ 2 (mod 3)"),
    (FIXED, {"T": 9}, 4, "T = 8"),
])
def test_a_concrete_size_that_breaks_a_constraint_is_a_located_error(text, sets, line, note):
    d = failure(text, **sets)
    assert d.span.line == line
    assert d.code == "constraint"
    name, value = next(iter(sets.items()))
    assert f"{name}={value}" in d.message  # the message says which free size broke it
    notes = [n for n, _ in d.notes]
    assert notes == [f"for all sizes this needs: {note}"]


# ---- minimum sizes -------------------------------------------------------------------------------------

STACK = """size H = 32, W = 32
block B() {
  in x: [b = 1, c = 3, h = H, w = W]
  convs = seq(x) {
    for i in 0..3: conv(c -> 8, k = 3)
  }
  stem = conv(convs, c -> 8, k = 7, stride = 2)
  pooled = maxpool(stem, k = 3, stride = 2, ceil = true)
  out pooled
}
"""

UNPADDED = """size H = 32
block B() {
  in x: [b = 1, c = 1, h = H, w = 16]
  convs = seq(x) {
    for i in 0..3: conv(c -> 4, k = 3)
  }
  out convs
}
"""


def test_unpadded_convs_need_a_minimum_size():
    assert texts(archc.loads(UNPADDED)) == ["H >= 7"]  # three 3x3 convs eat 2 rows each
    d = failure(UNPADDED, H=6)
    assert d.span.line == 5 and "too small" in d.message
    assert [n for n, _ in d.notes] == ["for all sizes this needs: H >= 7"]


def test_minimum_size_is_exactly_where_archc_and_torch_succeed():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    model = archc.loads(STACK)
    found = texts(model)
    assert found == ["H >= 15", "W >= 15"]
    with torch.device("meta"):
        net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3), nn.Conv2d(8, 8, 3),
                            nn.Conv2d(8, 8, 7, 2), nn.MaxPool2d(3, 2, ceil_mode=True))
    for h in range(1, 30):
        try:
            with torch.device("meta"):
                net(torch.empty(1, 3, h, 32))
            ran = True
        except RuntimeError:
            ran = False
        assert ran == (h >= 15) == passes(model, H=h), h


def test_a_condition_on_a_free_size_is_reported_as_assumed():
    text = """size L = 64
block B() {
  in x: [b = 1, t = L, c = 8]
  if L > 32 {
    x = avgpool(x, k = 2, over = [t])
  }
  out x
}
"""
    found = texts(archc.loads(text))
    assert "L > 32 (assumed by a condition, which the generated module tests)" in found
    asserted = texts(archc.loads(text.replace("  out x\n", "  assert L % 4 == 0, \"a multiple of 4\"\n  out x\n")))
    assert "Mod(L, 4) == 0 (required by an assert)" in asserted
    assert "L must be divisible by 2" not in found  # floor pooling drops a row: no constraint


# ---- derived facts against a sweep, for random chains of windows ----------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_WINDOW = st.one_of(
    st.builds(lambda k, s, p: (f"conv(y, c -> 2, k = {k}, stride = {s}, pad = {p})", s),
              st.integers(1, 5), st.integers(1, 3), st.integers(0, 2)),
    st.builds(lambda k, s, ceil: (f"maxpool(y, k = {k}, stride = {s}, ceil = {str(ceil).lower()})", s),
              st.integers(1, 3), st.integers(1, 3), st.booleans()),
)


def holds(fact: str, v: int) -> bool:
    """Evaluate one derived fact about H at H = v."""
    patterns = [
        (r"H >= (\d+)", lambda m: v >= int(m[1])),
        (r"H must be divisible by (\d+)", lambda m: v % int(m[1]) == 0),
        (r"H ≡ (\d+) \(mod (\d+)\)", lambda m: v % int(m[2]) == int(m[1])),
        (r"H mod (\d+) in \{(.*)\}", lambda m: v % int(m[1]) in {int(r) for r in m[2].split(", ")}),
        (r"H = (\d+)", lambda m: v == int(m[1])),
        (r"H in \{(.*)\}", lambda m: v in {int(r) for r in m[1].split(", ")}),
    ]
    for pattern, test in patterns:
        if m := re.fullmatch(pattern, fact):
            return test(m)
    return False  # "... fails for every H", "no H satisfies ...", "too small for any value"


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(steps=st.lists(_WINDOW, min_size=1, max_size=3), join=st.booleans())
def test_derived_facts_hold_exactly_where_the_check_passes(steps, join):
    body = ["y = x"] + [f"y = {op}" for op, _ in steps]
    if join:  # upsample back by the total stride and join with the input: a U-Net skip
        scale = 1
        for _, s in steps:
            scale *= s
        body += [f"y = upsample(y, scale = {scale}, over = [h])", "y = concat(x, y, axis = c)"]
    text = ("size H = 64\nblock B() {\n  in x: [n = 1, c = 2, h = H]\n"
            + "".join(f"  {line}\n" for line in body) + "  out y\n}\n")
    model = archc.loads(text)
    try:
        facts = texts(model)
    except ArchError:  # the default H = 64 breaks a constraint: derive them from a value that works
        good = next((v for v in range(1, 200) if passes(model, H=v)), None)
        facts = texts(model, H=good) if good else ["no H works"]
    for v in range(1, 49):
        assert passes(model, H=v) == all(holds(f, v) for f in facts), (v, facts, text)
