"""`archc flops` against the way users get the same numbers today, as whole processes.

Times, in one run and alternating so that both see the same machine load:

  archc   `archc flops benchmarks/resnet152.arch --json`
  peer    `python benchmarks/peer_resnet152_meta.py`: a torchvision-style
          ResNet-152 built on the meta device and run under FlopCounterMode
  python, torch   `python -c pass` and `python -c "import torch"`, for scale:
          the interpreter's start-up, and the part of the peer's time that
          is importing torch

Each is run `--reps` times after one untimed warm-up; the median and the
minimum wall time and CPU time (user + system, of the child) are printed,
with the ratios peer/archc (goal: >= 5 on wall-time medians). CPU time is the
steadier figure on a shared machine: it does not count the time other
processes take. Both must print the same parameter count and FLOPs, or the
benchmark fails.

Child processes run with Python's bytecode cache on (PYTHONDONTWRITEBYTECODE
is dropped from their environment), as after a normal `pip install`: this
checkout is installed in editable mode, and where the environment sets
PYTHONDONTWRITEBYTECODE (this sandbox does) every archc run would otherwise
compile archc's own sources again (~0.1 s) while torch's come precompiled.

    python benchmarks/bench_flops.py [--reps 7] [--size 224]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ARCH = os.path.join(HERE, "resnet152.arch")
PEER = os.path.join(HERE, "peer_resnet152_meta.py")


def archc_command() -> list[str]:
    """The console script installed beside this interpreter (what users run), else `-m archc.cli`."""
    script = os.path.join(os.path.dirname(sys.executable), "archc")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "archc.cli"]


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, stdout) of running `cmd` to completion."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, out


def figures_archc(out: str) -> tuple[int, int]:
    doc = json.loads(out)
    return doc["params"], doc["flops"]


def figures_peer(out: str) -> tuple[int, int]:
    doc = json.loads(out.strip().splitlines()[-1])
    return doc["params"], doc["flops"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7, help="timed runs of each (after one warm-up)")
    ap.add_argument("--size", type=int, default=224, help="input height and width")
    args = ap.parse_args(argv)

    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    size = str(args.size)
    commands = {
        "archc": archc_command() + ["flops", ARCH, "--json"]
        + ([] if size == "224" else ["--set", f"H={size}", "--set", f"W={size}"]),
        "peer": [sys.executable, PEER, "--size", size],
        "python": [sys.executable, "-c", "pass"],  # interpreter start-up, for scale
        "torch": [sys.executable, "-c", "import torch"],  # the part of the peer that is importing torch
    }
    parse = {"archc": figures_archc, "peer": figures_peer}
    times: dict[str, list[float]] = {k: [] for k in commands}
    cpu: dict[str, list[float]] = {k: [] for k in commands}
    figures: dict[str, tuple[int, int]] = {}
    for name, cmd in commands.items():  # warm-up: bytecode caches, lark's table cache, disk cache
        _, _, out = run(cmd, env)
        if name in parse:
            figures[name] = parse[name](out)
    for _ in range(args.reps):
        for name, cmd in commands.items():
            dt, dc, out = run(cmd, env)
            times[name].append(dt)
            cpu[name].append(dc)
            if name in parse and parse[name](out) != figures[name]:
                print(f"error: {name} printed different figures between runs", file=sys.stderr)
                return 1

    print(f"ResNet-152 at {size}x{size}, python {sys.version.split()[0]}, {os.cpu_count()} cores, "
          f"{args.reps} runs each after a warm-up; bytecode cache on")
    for name, cmd in commands.items():
        shown = " ".join(os.path.relpath(c) if os.path.isabs(c) and c.startswith(os.path.dirname(HERE))
                         else c for c in cmd)
        print(f"  {name:6}  wall median {statistics.median(times[name]) * 1e3:6.0f} ms, "
              f"min {min(times[name]) * 1e3:6.0f} ms;  CPU median {statistics.median(cpu[name]) * 1e3:6.0f} ms, "
              f"min {min(cpu[name]) * 1e3:6.0f} ms   {shown}")
    (pa, fa), (pp, fp) = figures["archc"], figures["peer"]
    print(f"  params: archc {pa:,}  peer {pp:,}")
    print(f"  FLOPs:  archc {fa:,}  peer {fp:,}")
    ratio_med = statistics.median(times["peer"]) / statistics.median(times["archc"])
    ratio_min = min(times["peer"]) / min(times["archc"])
    ratio_cpu = statistics.median(cpu["peer"]) / statistics.median(cpu["archc"])
    print(f"  peer / archc: wall {ratio_med:.1f}x (medians), {ratio_min:.1f}x (minima); "
          f"CPU {ratio_cpu:.1f}x (medians); goal >= 5x")
    if (pa, fa) != (pp, fp):
        print("error: archc and the peer disagree", file=sys.stderr)
        return 1
    return 0 if ratio_med >= 5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
