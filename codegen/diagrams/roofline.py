"""The roofline style: where each kernel of the plan sits against a device's roofs.

`archc render FILE --style roofline --device h100 -o roofline.svg` (or .png, .pdf). The kernels are
the kernels of the fusion plan (`passes.plan.plan`), costed as `archc plan` costs them
(`analysis.roofline.plan_costs`, `seconds`, the `DEVICES` table): each kernel that does arithmetic is
a point at its arithmetic intensity (FLOPs per byte moved, x) and the FLOP/s its roofline time allows
(FLOPs / time, y), so a point on the slanted roof is memory-bound and one on a flat roof
compute-bound. The roofs are the device's memory bandwidth and its peak for the graph's dtype (fp32:
one peak; 16-bit floats: tensor cores for contractions, the plain units otherwise); each ridge point
(peak / bandwidth) is marked. The kernels that take the most predicted time are labelled by their
.arch step names and listed in a table under the plot. Kernels that only move data (a concat, a
transpose) have no arithmetic intensity to plot; they still count in the table and the total.

`roofline(graph, device)` computes the picture's content (no matplotlib); `render` draws it with
matplotlib (`pip install archc[plot]`), imported only here and only then. Output is deterministic:
a fixed SVG hash salt, no dates, text drawn as paths.

>>> import archc
>>> g = archc.loads('block B() { in x: [n = 64, c = 256]\\n y = linear(x, c -> 256)\\n out y }').check().graph
>>> r = roofline(g, "h100")
>>> [(p.name, p.ops, round(p.intensity, 2), p.bound) for p in r.points]
[('y', ('linear',), 21.32, 'compute')]
>>> r.points[0].attained == r.device.float_flops  # right of the ridge: on the flat FP32 roof
True
>>> r.roofs, round(r.device.ridge, 2)
([('FP32', 66900000000000.0)], 19.97)
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Sequence
from typing import Any

from archc.analysis.roofline import DEVICES, Device, plan_costs, seconds
from archc.codegen.output import write_diagram
from archc.diagnostics import ArchError, Diagnostic, did_you_mean
from archc.ir.graph import Graph
from archc.passes.plan import plan
from archc.shapes import sizes as S

FORMATS = (".svg", ".png", ".pdf")
LABELLED = 8  # the kernels named beside their point: the ones that dominate predicted time
TABLE_ROWS = 10
MISSING = "the roofline style needs matplotlib (pip install 'archc[plot]')"


@dataclasses.dataclass(frozen=True)
class Point:
    """One kernel: its plan group's name (the .arch step name of its first op), ops and lines."""

    name: str
    kind: str
    ops: tuple[str, ...]
    lines: tuple[str, ...]
    flops: int
    moved: int
    seconds: float
    peak: float  # the roof above it: the FLOP/s of its dtype and kind of work

    @property
    def intensity(self) -> float:
        """FLOPs per byte moved (0 when it moves nothing)."""
        return self.flops / self.moved if self.moved else 0.0

    @property
    def attained(self) -> float:
        """The FLOP/s its roofline time allows: min(peak, intensity × bandwidth)."""
        return self.flops / self.seconds if self.seconds else 0.0

    @property
    def bound(self) -> str:
        """'memory' or 'compute' (which term of the roofline sets its time), 'data movement' without FLOPs."""
        if not self.flops:
            return "data movement"
        return "compute" if self.attained >= self.peak * (1 - 1e-9) else "memory"


@dataclasses.dataclass(frozen=True)
class Roofline:
    device: Device
    dtype: str
    entry: str
    kernels: list[Point]  # every kernel that runs, in plan order
    roofs: list[tuple[str, float]]  # (name, FLOP/s): the compute roofs of the dtype

    @property
    def points(self) -> list[Point]:
        """The kernels drawn: those that do arithmetic."""
        return [p for p in self.kernels if p.flops and p.moved]

    @property
    def total(self) -> float:
        return sum(p.seconds for p in self.kernels)

    def dominant(self, n: int = TABLE_ROWS) -> list[Point]:
        """The `n` kernels with the most predicted time, longest first (plan order breaks ties)."""
        return sorted(self.kernels, key=lambda p: -p.seconds)[:n]

    @property
    def summary(self) -> str:
        memory = sum(1 for p in self.points if p.bound == "memory")
        return (f"{len(self.points)} kernels on {self.device.name} ({memory} memory-bound), "
                f"{_time(self.total)} predicted")


def device(name: str) -> Device:
    """The device table's entry `name` (analysis/roofline.py, DEVICES); an unknown name is an error."""
    if name not in DEVICES:
        raise ArchError([Diagnostic("error", "value", f"no device named '{name}'{did_you_mean(name, DEVICES)}; "
                                    f"one of {', '.join(sorted(DEVICES))}")])
    return DEVICES[name]


def roofline(g: Graph, device_name: str = "h100") -> Roofline:
    """Cost the fusion plan of `g` on the device: one `Point` per kernel that runs (as `archc plan` lists them)."""
    dev = device(device_name)
    costs = plan_costs(plan(g))
    values = {k: v for k, v in g.sizes.items() if v is not None}
    kernels: list[Point] = []
    for c in costs.kernels:  # the kernels that run, as `archc plan` lists them
        t = seconds(c, dev, g.dtype, values)
        flops, moved = S.evaluate(c.flops, values), S.evaluate(c.moved, values)
        if t is None or flops is None or moved is None:
            free = sorted(k for k, v in g.sizes.items() if v is None)
            raise ArchError([Diagnostic("error", "value", "the roofline needs a value for every free size; "
                                        f"give {', '.join(free)} one with --set NAME=VALUE")])
        kernels.append(Point(c.name, c.kind, c.ops, c.lines, flops, moved, t, dev.peak(g.dtype, c.contraction)))
    peaks = sorted({dev.peak(g.dtype, False), dev.peak(g.dtype, True)})
    roofs = [("FP32" if p == dev.float_flops else "16-bit tensor cores", p) for p in peaks]
    return Roofline(dev, g.dtype, g.entry, kernels, roofs)


def render(g: Graph, out: str, device: str = "h100", force: bool = False, inputs: Sequence[str] = ()) -> Roofline:
    """Draw the roofline of `g` to `out` (.svg, .png or .pdf), through codegen/output.py's safe write."""
    ext = os.path.splitext(out)[1].lower()
    if ext not in FORMATS:
        raise ArchError([Diagnostic("error", "io", f"cannot write '{ext or out}' in the roofline style: "
                                    "use .svg, .png or .pdf")])
    r = roofline(g, device)
    write_diagram(out, ext[1:], draw(r, ext[1:]), force, inputs)
    return r


def draw(r: Roofline, fmt: str = "svg") -> bytes:
    """The picture as `fmt` bytes (svg, png, pdf). Raises ArchError when matplotlib is missing."""
    matplotlib = _matplotlib()
    with matplotlib.rc_context(STYLE):
        fig = figure(r)
        buf = io.BytesIO()
        metadata: dict[str, Any] = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None},
                                    "png": {}}[fmt]
        fig.savefig(buf, format=fmt, metadata=metadata)
    return buf.getvalue()


# Deterministic output: a fixed hash salt for SVG ids, text as paths (no font lookup at view time).
STYLE = {"svg.hashsalt": "archc-roofline", "svg.fonttype": "path", "font.family": "DejaVu Sans",
         "font.size": 9, "axes.titlesize": 11}


def _matplotlib() -> Any:
    try:
        import matplotlib
        import matplotlib.figure  # noqa: F401 - the Figure class, without pyplot's global state
    except ImportError:
        raise ArchError([Diagnostic("error", "io", MISSING)]) from None
    return matplotlib


def figure(r: Roofline) -> Any:
    """The matplotlib Figure: the roofline plot above, the table of dominant kernels below."""
    matplotlib = _matplotlib()
    fig = matplotlib.figure.Figure(figsize=(9, 8.5), dpi=100)
    _plot(fig.add_axes((0.09, 0.36, 0.86, 0.58)), r)
    _table(fig.add_axes((0.02, 0.01, 0.96, 0.27)), r)
    return fig


# Colours by kernel kind, in the order kinds first appear (matplotlib's default cycle).
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf")


def _plot(ax: Any, r: Roofline) -> None:
    pts = r.points
    bw = r.device.bandwidth
    xs = [p.intensity for p in pts] + [peak / bw for _, peak in r.roofs]
    lo, hi = min(xs) / 4, max(xs) * 4
    top = max(peak for _, peak in r.roofs)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(min([lo * bw] + [p.attained for p in pts]) / 2, top * 3)
    # the roofs: bandwidth up to the highest ridge, each peak from its ridge on
    ax.plot([lo, top / bw], [lo * bw, top], color="black", lw=1.5)
    ax.annotate(f"memory {bw / 1e12:g} TB/s", (lo, lo * bw), xytext=(8, -14), textcoords="offset points",
                fontsize=8)
    for name, peak in r.roofs:
        ridge = peak / bw
        ax.plot([ridge, hi], [peak, peak], color="black", lw=1.5)
        ax.plot([ridge], [peak], "o", color="black", ms=5)
        ax.annotate(f"{name} {peak / 1e12:g} TFLOP/s\nridge {ridge:.1f} FLOP/B", (ridge, peak),
                    xytext=(6, 6), textcoords="offset points", fontsize=8)
    kinds = list(dict.fromkeys(p.kind for p in pts))
    for k, kind in enumerate(kinds):
        mine = [p for p in pts if p.kind == kind]
        ax.scatter([p.intensity for p in mine], [p.attained for p in mine], s=22, alpha=0.75,
                   color=_COLOURS[k % len(_COLOURS)], label=kind, zorder=3)
    # The dominant kernels' names in a column in the empty upper left (above the memory roof), each
    # with a leader line to its point: they often sit close together on a roof.
    named = [p for p in r.dominant(LABELLED) if p in pts]
    for rank, p in enumerate(named, 1):
        ax.annotate(f"{rank}. {p.name} ({_time(p.seconds)})", (p.intensity, p.attained),
                    xytext=(0.02, 0.96 - 0.055 * rank), textcoords="axes fraction", fontsize=7.5,
                    va="center", arrowprops={"arrowstyle": "-", "color": "#999999", "lw": 0.6,
                                             "shrinkA": 2, "shrinkB": 3})
    ax.set_xlabel("arithmetic intensity (FLOP / byte moved)")
    ax.set_ylabel("attainable FLOP/s (roofline bound)")
    ax.set_title(f"{r.entry} on {r.device.name} ({r.dtype}): {len(pts)} kernels, {_time(r.total)} predicted")
    ax.grid(True, which="major", color="#dddddd", lw=0.5)
    if kinds:
        ax.legend(loc="lower right", fontsize=7, title="kernel kind", title_fontsize=7)


def _table(ax: Any, r: Roofline) -> None:
    ax.axis("off")
    rows = [[str(i), _clip(p.name, 30), _clip("+".join(p.ops), 30), _lines(p.lines), f"{p.intensity:.2f}",
             _time(p.seconds), f"{p.seconds / r.total:.1%}" if r.total else "-", p.bound]
            for i, p in enumerate(r.dominant(), 1)]
    if not rows:
        return
    t = ax.table(cellText=rows, colLabels=["#", "step", "ops", "lines", "FLOP/B", "time", "share", "bound"],
                 loc="upper center", cellLoc="left", colLoc="left",
                 colWidths=[0.03, 0.22, 0.22, 0.17, 0.07, 0.08, 0.07, 0.12])
    t.auto_set_font_size(False)
    t.set_fontsize(8)
    ax.set_title(f"the kernels that dominate predicted time; {r.device.source}", fontsize=8, loc="left")


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def _lines(lines: tuple[str, ...]) -> str:
    """A fused kernel's first .arch line and how many more it spans."""
    return "" if not lines else lines[0] + (f" (+{len(lines) - 1})" if len(lines) > 1 else "")


def _time(t: float) -> str:
    return f"{t * 1e6:.1f} µs" if t < 1e-3 else f"{t * 1e3:.2f} ms"
