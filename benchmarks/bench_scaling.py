"""How `archc check` and `archc flops` scale with the number of blocks.

Generates `.arch` stacks of N residual blocks, one call per line (so the
parser, the elaborator and the cost pass all see N times the work), and times:

  parse        loading the text into a Program (lark + AST)
  check        elaborating it with concrete sizes (`Model.check()`)
  check --sym  elaborating it with every free size symbolic (`Model.check(symbolic=True)`)
  flops        `Model.flops()`: elaboration plus the cost pass, concrete
  flops --sym  the same, symbolic: the totals are closed forms in the free sizes

in process, as CPU time of this process (best of `--reps`, after one warm-up
run: CPU time, unlike wall time, does not count the time other processes on a
shared machine take), and prints the time per block for each N (flat = linear)
and the symbolic/concrete ratios (goal <= 3). `check` here is the API's
`Model.check()`, which elaborates once; the command `archc check` with concrete
sizes also runs a symbolic elaboration, to derive the constraints on the free
sizes, so it costs about check + check --symbolic.

Then it times whole processes for the largest N (wall time and the child's CPU
time, median and min of `--proc-reps`): `archc check`, `archc check
--symbolic`, `archc flops --json` and `archc flops --symbolic --json`.

Two kinds of block: `mlp` (pre-norm residual MLP over [batch, tok, chan],
free sizes batch and L) and `conv` (basic residual 3x3 conv block over
[batch, chan, h, w], free sizes batch, H and W, so symbolic sizes go through
the convolution arithmetic's floors).

    python benchmarks/bench_scaling.py                 # N = 125 250 500 1000, both kinds
    python benchmarks/bench_scaling.py --n 100 200 --kind mlp --reps 3
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

BLOCKS = {
    "mlp": """\
size batch = 8, L = 196

block Res(d, hidden) {
  in x: [batch, tok, chan = d]
  ln = layernorm(x, over = chan)
  fc1 = linear(ln, chan -> hidden)
  fc2 = linear(gelu(fc1), chan -> d)
  out x + fc2
}

entry block Stack(d = 256) {
  in x: [batch, tok = L, chan = d]
  blocks = seq(x) {
%s
  }
  out blocks
}
""",
    "conv": """\
size batch = 8, H = 56, W = 56

block Res(c) {
  in x: [batch, chan = c, h, w]
  conv1 = conv(x, chan -> c, k = 3, pad = 1, bias = false)
  bn1 = batchnorm(conv1)
  conv2 = conv(relu(bn1), chan -> c, k = 3, pad = 1, bias = false)
  bn2 = batchnorm(conv2)
  out relu(bn2 + x)
}

entry block Stack(c = 64) {
  in x: [batch, chan = c, h = H, w = W]
  blocks = seq(x) {
%s
  }
  out blocks
}
""",
}
CALL = {"mlp": "    Res(d, 4 * d)", "conv": "    Res(c)"}


def stack_text(kind: str, n: int) -> str:
    """The .arch source of a stack of `n` blocks of `kind`."""
    return BLOCKS[kind] % "\n".join([CALL[kind]] * n)


def best_of(fn: Callable[[], object], reps: int) -> float:
    """Least CPU seconds of `reps` calls, after a warm-up call (sympy's import and caches)."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def in_process(kind: str, ns: list[int], reps: int) -> list[dict]:
    import archc
    from archc.dsl.loader import load

    rows = []
    for n in ns:
        text = stack_text(kind, n)
        texts = (f"{text}# copy {i}\n" for i in range(1 << 30))  # a new text each time: parses are cached
        model = archc.loads(text, f"stack_{kind}_{n}.arch")
        concrete = model.flops()
        symbolic = model.flops(symbolic=True)
        # Symbolic figures evaluated at the defaults must equal the concrete ones.
        assert symbolic.value(symbolic.flops) == concrete.flops, (kind, n)
        assert symbolic.value(symbolic.params) == concrete.params, (kind, n)
        row = {
            "kind": kind, "n": n, "nodes": len(concrete.graph),
            "parse": best_of(lambda: load(f"s{n}.arch", next(texts)), reps),  # noqa: B023
            "check": best_of(lambda: model.check(), reps),  # noqa: B023
            "check_sym": best_of(lambda: model.check(symbolic=True), reps),  # noqa: B023
            "flops": best_of(lambda: model.flops(), reps),  # noqa: B023
            "flops_sym": best_of(lambda: model.flops(symbolic=True), reps),  # noqa: B023
            "flops_expr": str(symbolic.flops),
        }
        rows.append(row)
        print(_row_line(row), flush=True)
    return rows


HEADER = (f"{'kind':5} {'N':>5} {'nodes':>6} | {'parse':>8} {'check':>8} {'check-sym':>9} "
          f"{'flops':>8} {'flops-sym':>9} | µs/block: {'check':>6} {'c-sym':>6} {'flops':>6} "
          f"{'f-sym':>6} | sym/conc: {'check':>5} {'flops':>5}")


def _row_line(r: dict) -> str:
    ms = {k: r[k] * 1e3 for k in ("parse", "check", "check_sym", "flops", "flops_sym")}
    per = {k: r[k] / r["n"] * 1e6 for k in ("check", "check_sym", "flops", "flops_sym")}
    return (f"{r['kind']:5} {r['n']:>5} {r['nodes']:>6} | {ms['parse']:>6.1f}ms {ms['check']:>6.1f}ms "
            f"{ms['check_sym']:>7.1f}ms {ms['flops']:>6.1f}ms {ms['flops_sym']:>7.1f}ms | "
            f"{'':10}{per['check']:>6.0f} {per['check_sym']:>6.0f} {per['flops']:>6.0f} "
            f"{per['flops_sym']:>6.0f} | {'':10}{r['check_sym'] / r['check']:>5.2f} "
            f"{r['flops_sym'] / r['flops']:>5.2f}")


def archc_command() -> list[str]:
    """The installed console script beside this interpreter, else `python -m archc.cli`."""
    script = os.path.join(os.path.dirname(sys.executable), "archc")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "archc.cli"]


def whole_process(cmd: list[str], reps: int, env: dict[str, str] | None = None) -> dict[str, float]:
    """Median and min of the wall and CPU (user + system) seconds of running `cmd`."""
    wall, cpu = [], []
    for _ in range(reps):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
        wall.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return {"wall_med": statistics.median(wall), "wall_min": min(wall),
            "cpu_med": statistics.median(cpu), "cpu_min": min(cpu)}


def child_env() -> dict[str, str]:
    """This environment with Python's bytecode cache on (see bench_flops.py)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def linearity(rows: list[dict], key: str) -> float:
    """Time per block at the largest N over time per block at the smallest: 1.0 = linear."""
    first, last = rows[0], rows[-1]
    return (last[key] / last["n"]) / (first[key] / first["n"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[125, 250, 500, 1000])
    ap.add_argument("--kind", choices=sorted(BLOCKS), action="append")
    ap.add_argument("--reps", type=int, default=5, help="in-process repetitions (best is kept)")
    ap.add_argument("--proc-reps", type=int, default=5, help="whole-process repetitions")
    args = ap.parse_args(argv)
    kinds = args.kind or sorted(BLOCKS)
    ns = sorted(args.n)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; in process: CPU time, best of {args.reps}")
    print(HEADER)
    ok = True
    for kind in kinds:
        rows = in_process(kind, ns, args.reps)
        lin = {k: linearity(rows, k) for k in ("check", "check_sym", "flops", "flops_sym")}
        worst = max(max(r["check_sym"] / r["check"], r["flops_sym"] / r["flops"]) for r in rows)
        print(f"{kind}: per-block time at N={ns[-1]} / at N={ns[0]}: "
              + ", ".join(f"{k} {v:.2f}" for k, v in lin.items())
              + f"  (1.00 = linear); worst symbolic/concrete {worst:.2f} (goal <= 3)")
        print(f"{kind}: symbolic FLOPs at N={ns[-1]} = {rows[-1]['flops_expr']}")
        ok &= worst <= 3.0 and max(lin.values()) <= 1.5
    cmd = archc_command()
    print(f"\nwhole process, N={ns[-1]}: wall and CPU (user + system) ms, median / min of "
          f"{args.proc_reps}, after a warm-up run ({' '.join(cmd)})")
    variants = (("check", []), ("check", ["--symbolic"]), ("flops", ["--json"]),
                ("flops", ["--symbolic", "--json"]))
    env = child_env()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            path = os.path.join(tmp, f"stack_{kind}_{ns[-1]}.arch")
            with open(path, "w") as f:
                f.write(stack_text(kind, ns[-1]))
            res = {}
            for command, extra in variants:
                full = cmd + [command, path] + extra
                subprocess.run(full, check=True, stdout=subprocess.DEVNULL, env=env)  # warm-up
                label = " ".join([command] + extra)
                r = res[label] = whole_process(full, args.proc_reps, env)
                print(f"  {kind:5} archc {label:24} wall {r['wall_med'] * 1e3:6.0f} / {r['wall_min'] * 1e3:6.0f}"
                      f"   cpu {r['cpu_med'] * 1e3:6.0f} / {r['cpu_min'] * 1e3:6.0f}")
            for conc, sym in (("check", "check --symbolic"), ("flops --json", "flops --symbolic --json")):
                ratio = res[sym]["cpu_med"] / res[conc]["cpu_med"]
                print(f"  {kind:5} {sym} / {conc}: {ratio:.2f} (CPU medians)")
                ok &= ratio <= 3.0
    print("\nverdict:", "linear, symbolic <= 3x concrete" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
