"""`archc render --style roofline` (codegen/diagrams/roofline.py): one point per kernel of the plan that
`archc plan` costs, the device table's roofs, deterministic files written safely, and one clear error
line when matplotlib is missing."""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import pathlib
import subprocess
import sys
from typing import Any

import pytest

import archc
from archc import cli
from archc.analysis.roofline import DEVICES
from archc.codegen.diagrams import roofline as R

from conftest import EXAMPLES, ROOT

pytest.importorskip("matplotlib")

MINI = ROOT / "tests" / "data" / "mini_resnet.arch"
# two kernels whatever the planner fuses: a contraction, and elementwise work on the input
BF16 = 'dtype bf16\nblock B() { in x: [n = 256, c = 512]\n fc = linear(x, c -> 1024)\n out fc, gelu(x) }'


def _cli(*args: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "vit_b_16"])
@pytest.mark.parametrize("device", sorted(DEVICES))
def test_points_are_the_kernels_archc_plan_lists(name: str, device: str) -> None:
    """Same kernels, names, times and intensities as `archc plan --json`: the picture is the plan's."""
    path = EXAMPLES / f"{name}.arch"
    code, out, _ = _cli("plan", path, "--device", device, "--json")
    assert code == 0
    groups = json.loads(out)["groups"]
    r = R.roofline(archc.load(str(path)).check().graph, device)
    assert [p.name for p in r.kernels] == [g["name"] for g in groups]
    assert [p.seconds for p in r.kernels] == pytest.approx([g["seconds"] for g in groups])
    for p, g in zip(r.kernels, groups):
        assert (p.flops, p.moved) == (g["flops"], g["bytes_read"] + g["bytes_written"])
        if p.flops:
            assert round(p.intensity, 3) == g["intensity"]
            # the point's height is the roofline bound: min(peak, intensity x bandwidth)
            assert p.attained == pytest.approx(min(p.peak, p.intensity * DEVICES[device].bandwidth))
    assert r.points == [p for p in r.kernels if p.flops]
    assert r.total == pytest.approx(json.loads(out)["seconds"])


def _lines(fig: Any) -> list[tuple[list[float], list[float]]]:
    return [(list(map(float, ln.get_xdata())), list(map(float, ln.get_ydata()))) for ln in fig.axes[0].lines]


@pytest.mark.parametrize("device", sorted(DEVICES))
def test_roofs_are_the_device_tables_figures(device: str) -> None:
    dev = DEVICES[device]
    f32 = R.roofline(archc.load(str(MINI)).check().graph, device)
    assert f32.roofs == [("FP32", dev.float_flops)]
    bf16 = R.roofline(archc.loads(BF16).check().graph, device)
    assert bf16.roofs == [("FP32", dev.float_flops), ("16-bit tensor cores", dev.tensor_flops)]
    # the linear runs on tensor cores at bf16, the gelu on the plain units
    assert sorted((p.ops[0], p.peak) for p in bf16.kernels) == [("gelu", dev.float_flops),
                                                                 ("linear", dev.tensor_flops)]
    for r in (f32, bf16):
        lines = _lines(R.figure(r))
        slope = [(xs, ys) for xs, ys in lines if len(xs) == 2 and ys[0] != ys[1]]
        assert len(slope) == 1 and all(y / x == pytest.approx(dev.bandwidth) for x, y in zip(*slope[0]))
        assert slope[0][1][1] == pytest.approx(max(p for _, p in r.roofs))  # up to the highest ridge
        flat = {ys[0]: xs[0] for xs, ys in lines if len(xs) == 2 and ys[0] == ys[1]}
        ridges = {ys[0]: xs[0] for xs, ys in lines if len(xs) == 1}
        for _, peak in r.roofs:  # each compute roof starts at its ridge point, which is marked
            assert flat[peak] == pytest.approx(peak / dev.bandwidth) == ridges[peak]


def test_scatter_points_are_the_kernels_and_the_dominant_ones_are_named() -> None:
    r = R.roofline(archc.load(str(EXAMPLES / "mobilenet_v2.arch")).check().graph, "h100")
    fig = R.figure(r)
    drawn = sorted(tuple(map(float, xy)) for c in fig.axes[0].collections for xy in c.get_offsets())
    assert drawn == pytest.approx(sorted((p.intensity, p.attained) for p in r.points))
    names = [t.get_text() for t in fig.axes[0].texts]
    for rank, p in enumerate(r.dominant(R.LABELLED), 1):
        assert any(n.startswith(f"{rank}. {p.name} (") for n in names)
    table = fig.axes[1].tables[0]
    assert [table[i, 1].get_text().get_text() for i in range(1, R.TABLE_ROWS + 1)] == \
        [p.name for p in r.dominant()]
    times = [p.seconds for p in r.dominant()]
    assert times == sorted(times, reverse=True) and times[0] == max(p.seconds for p in r.kernels)


def test_cli_writes_svg_png_pdf_deterministically(tmp_path: pathlib.Path) -> None:
    svg = tmp_path / "r.svg"
    code, out, err = _cli("render", MINI, "--style", "roofline", "--device", "a100", "-o", svg)
    assert (code, err) == (0, "") and out.startswith(f"wrote {svg}: ") and "on a100" in out
    first = svg.read_bytes()
    assert b"Generated by archc" in first[:256] and b"<svg" in first
    assert _cli("render", MINI, "--style", "roofline", "--device", "a100", "-o", svg)[0] == 0
    assert svg.read_bytes() == first  # rewritten (archc's own file) and byte-identical
    for ext, magic in ((".png", b"\x89PNG\r\n\x1a\n"), (".pdf", b"%PDF")):
        p = tmp_path / f"r{ext}"
        assert _cli("render", MINI, "--style", "roofline", "-o", p)[0] == 0
        assert p.read_bytes().startswith(magic)


def test_files_go_through_the_safe_write(tmp_path: pathlib.Path) -> None:
    mine = tmp_path / "notes.svg"
    mine.write_text("<svg>my own drawing</svg>")
    code, _, err = _cli("render", MINI, "--style", "roofline", "-o", mine)
    assert code == 1 and "was not written by archc; use --force" in err
    assert mine.read_text() == "<svg>my own drawing</svg>"
    assert _cli("render", MINI, "--style", "roofline", "-o", mine, "--force")[0] == 0
    code, _, err = _cli("render", MINI, "--style", "roofline", "-o", tmp_path / "r.jpg")
    assert code == 1 and err == "archc: error: cannot write '.jpg' in the roofline style: use .svg, .png or .pdf [io]\n"


def test_missing_matplotlib_is_one_error_line(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kw: Any) -> Any:
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named '{name}'")
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    out = tmp_path / "r.svg"
    code, _, err = _cli("render", MINI, "--style", "roofline", "-o", out)
    assert (code, err) == (1, "archc: error: the roofline style needs matplotlib (pip install 'archc[plot]') [io]\n")
    assert not out.exists()


def test_free_sizes_need_values_and_options_of_other_styles_are_refused(tmp_path: pathlib.Path) -> None:
    src = tmp_path / "free.arch"
    src.write_text("size n\nblock B() { in x: [n, c = 8]\n out relu(x) }\n")
    code, _, err = _cli("render", src, "--style", "roofline", "-o", tmp_path / "r.svg")
    assert code == 1 and "give n one with --set NAME=VALUE" in err
    assert _cli("render", src, "--style", "roofline", "--set", "n=4", "-o", tmp_path / "r.svg")[0] == 0
    code, _, err = _cli("render", src, "--set", "n=4", "--style", "roofline", "--depth", "1", "-o", tmp_path / "r.svg")
    assert code == 1 and "options of the graph and circuit styles" in err


def test_api_render_and_matplotlib_only_when_drawing(tmp_path: pathlib.Path) -> None:
    r = archc.load(str(MINI)).render(str(tmp_path / "r.svg"), style="roofline", device="h200")
    assert r.device is DEVICES["h200"] and (tmp_path / "r.svg").is_file()
    code = ("import sys, archc\nfrom archc.codegen.diagrams import roofline\n"
            f"roofline.roofline(archc.load({str(MINI)!r}).check().graph)\n"
            "assert 'matplotlib' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)
