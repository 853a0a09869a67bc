"""How fast the resource limits stop runaway programs, and how long chains of ops cost (docs/errors.md,
Limits). Each case runs `archc` as a whole process and prints its wall time and peak memory.

    python benchmarks/bench_limits.py              # the cases below
    python benchmarks/bench_limits.py --n 100000   # the length of the chains
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

NESTED = ("block Net() {\n  in x: [b = 1, c = 4]\n  for i in 0..1000 {\n    for j in 0..1000 {\n"
          "      for k in 0..1000 {\n        y = 1\n      }\n    }\n  }\n  out x\n}\n")
DOUBLING = ("block A(n) {\n  in x: [b = 1, c = 4]\n  if n == 0 {\n    out relu(x)\n  } else {\n"
            "    p = A(x, n - 1)\n    q = A(p, n - 1)\n    out q\n  }\n}\n"
            "entry block Net() {\n  in x: [b = 1, c = 4]\n  a = A(x, 60)\n  out a\n}\n")
CHAIN = ("block Net() {\n  in x: [b = 1, c = 4]\n  y = relu(x)\n  for i in 0..COUNT {\n    y = relu(y)\n  }\n"
         "  out y\n}\n")


def text_chain(n: int) -> str:
    """The chain written out, one op per line (parsing dominates: lark reads about 0.2 MB a second)."""
    lines = ["block Net() {", "  in x: [b = 1, c = 4]", "  y0 = relu(x)"]
    lines += [f"  y{i} = relu(y{i - 1})" for i in range(1, n)]
    return "\n".join(lines + [f"  out y{n - 1}", "}", ""])


def run(argv: list[str]) -> tuple[int, float, float]:
    """(exit status, wall seconds, peak MB) of one `archc` process."""
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: exec archc, quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execv(sys.executable, [sys.executable, "-m", "archc.cli", *argv])
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), time.monotonic() - start, usage.ru_maxrss / 1024


def main(args: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="chain length (default 100,000)")
    opts = p.parse_args(args)
    with tempfile.TemporaryDirectory() as tmp:
        def write(name: str, text: str) -> str:
            path = os.path.join(tmp, name)
            with open(path, "w") as f:
                f.write(text)
            return path

        chain = write("chain.arch", CHAIN.replace("COUNT", str(opts.n)))
        text = write("text.arch", text_chain(opts.n))
        cases = [
            ("nested loops 1000^3 (step limit)", ["check", write("nested.arch", NESTED)]),
            ("doubling recursion, depth 60 (step limit)", ["check", write("doubling.arch", DOUBLING)]),
            (f"check, {opts.n:,}-op chain (a loop)", ["check", chain]),
            (f"flops, {opts.n:,}-op chain (a loop)", ["flops", chain, "--no-layers"]),
            (f"check, {opts.n:,}-op chain (one op a line)", ["check", text, "--limit", "bytes=100000000"]),
            (f"render, {opts.n:,}-op chain (draw limit)", ["render", chain, "-o", os.path.join(tmp, "c.svg")]),
        ]
        print(f"{'case':52} {'exit':>4} {'seconds':>8} {'peak MB':>8}")
        for name, argv in cases:
            rc, seconds, mb = run(argv)
            print(f"{name:52} {rc:>4} {seconds:>8.2f} {mb:>8.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
