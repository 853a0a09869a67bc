"""A long fuzz run: N cases through archc's commands, counted by what happened.

Two kinds of input, drawn from a fixed seed (case i is always the same):

  - mutants of every .arch source of the repository (examples, test programs, the standard
    library): characters and tokens deleted, duplicated, swapped and inserted
    (tests/test_fuzz.py's mutator);
  - generated programs that call one op with odd arguments next to a linear layer
    (tests/test_fuzz.py's op-program generator), which are mostly valid.

Each case goes through `check`, `flops`, `plan`, `memory` (training memory), a graph-style `render`
to DOT, a circuit-style `render` to SVG and `build`, in-process; a program that builds is imported
and its module constructed and run forward on random inputs of the entry's sizes (torch). Every outcome is
sorted into one kind:

  ok: ... / located-error  check passes and the program built and ran, or exit 1 with diagnostics in
                           the documented form; "too
                           large to run here": built, but `archc flops` says its weights, buffers and
                           activations take more than 2 GiB, so it is not constructed (a mutant may ask
                           for terabytes); a module already run in the worker (same generated source)
                           is not run again
  build-refused            check passes but build refuses the program (with a located error): code
                           generation must accept every program that check accepts
  internal-error           exit 70 (a bug in archc) or a Python traceback
  bad-diagnostic           exit 1 whose stderr is not in the documented form
  control-characters       raw control characters in stdout or stderr
  bad-svg                  an SVG that is not well-formed XML
  hang                     a command past the time limit: --timeout seconds of CPU time (15; the machine's
                           load does not count), or 4x that of wall-clock time (a read that blocks)
  module-fails             a built module that fails to construct or run forward
  module-slow              a built module whose forward in torch takes more than 4x --timeout seconds of
                           CPU time (a valid but costly program: archc's commands all finished; not a hang
                           of archc, counted apart)
  triton-mismatch          (--triton) the Triton target of a generated program that built fails to build,
                           or its inference forward, run under TRITON_INTERPRET=1, differs from the
                           PyTorch module's on the same weights and inputs (relative 1e-4)

and the run prints the counts by kind, the time taken, and the first examples of each failure
kind (file, case index) to reproduce them.

    python benchmarks/fuzz.py --cases 100000 --jobs 2      # the full run (tens of minutes)
    python benchmarks/fuzz.py --cases 300                  # a quick look
    python benchmarks/fuzz.py --cases 2000 --triton        # generated programs through the Triton target too
    python benchmarks/fuzz.py --only 3012,34004 --corpus /tmp/run   # replay cases of a run made on another checkout
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import io
import os
import random
import re
import signal
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_fuzz import mutant, problem, sources  # noqa: E402 - the suite's mutator and oracle

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
COMMANDS = [["check"], ["flops", "--json"], ["plan"], ["memory", "--json"], ["render", "-o", "{dir}/g.dot"],
            ["render", "--style", "circuit", "-o", "{dir}/c.svg"], ["build", "-o", "{dir}/b"]]


class Timeout(BaseException):  # not an Exception: archc's last-resort handler must not catch it
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Timeout


def _limit(seconds: float) -> None:
    """Time out after `seconds` of this process's CPU time, or four times that of wall-clock time (0: off)."""
    signal.setitimer(signal.ITIMER_PROF, seconds)
    signal.setitimer(signal.ITIMER_REAL, seconds * 4)


def op_program(rng: random.Random) -> str:
    """One op with odd arguments beside a linear layer (the shape of tests/test_fuzz.py's programs)."""
    from archc.ops.registry import BY_NAME, REQUIRED
    op = rng.choice(sorted(BY_NAME.values(), key=lambda o: o.name))
    lo, hi = (op.tensors, op.tensors) if isinstance(op.tensors, int) else op.tensors
    args = [rng.choice(["x", "y", "z", "ids"]) for _ in range(rng.randint(lo, min(hi, 3)))]
    values = {"map": ["c -> 4", "c -> H", "c -> out = 2 * H", "h -> 3"], "axis": ["c", "h", "w", "n", "q"],
              "axes": ["[h, w]", "[c]", "h", "[]", "[w, h]"], "size": ["1", "2", "H", "0", "-1", "H // 3"],
              "sizes": ["1", "3", "[1, 2]", "[2, 2]", "H"], "ints": ["-1", "[1, -2]", "0", "H"],
              "pad": ["0", "1", '"same"', '"valid"', "[[0, 1], [1, 0]]"], "bool": ["true", "false", "1"],
              "float": ["0.1", "0.5", "1e999", "-2.0"], "number": ["2", "0.5", "-1"],
              "str": ['"none"', '"tanh"', '"n c h w -> n (c h) w"', '"nope"', '"reflect"'],
              "renames": ["c -> d", "h -> w"], "sizes_kw": ["n = 2", "q = H"]}
    for p in op.params:
        if p.default is not REQUIRED and rng.random() < 0.6:
            continue  # mostly the defaults: most programs are valid, and then built and run
        v = rng.choice(values.get(p.kind, ["1"]))
        args.append(v if p.kind in ("map", "renames", "sizes_kw") else f"{p.name} = {v}")
    return ("size H = 8, N = 2\n"
            "block B() {\n  in x: [n = N, c = 4, h = H, w = H]\n  in y: [n = N, c = 4, h = H, w = H]\n"
            "  in z: [n = N, c = 4, h = 1, w = H]\n  in ids: i64[n = N, h = H]\n"
            f"  layer = {op.name}({', '.join(args)})\n  extra = linear(x, c -> 4)\n  out layer\n}}\n")


_MUTANT = mutant  # the mutator: this checkout's, or the one of --corpus


def _case(index: int, seed: int, texts: list[tuple[str, str]]) -> tuple[str, str]:
    rng = random.Random(seed * 1_000_003 + index)
    if index % 2 == 0:
        name, text = texts[rng.randrange(len(texts))]
        return f"{name} mutant {index}", _MUTANT(text, rng.randrange(1 << 30))[0]
    return f"op program {index}", op_program(rng)


def _texts(corpus: str) -> list[tuple[str, str]]:
    """The sources to mutate, as (name, text): this checkout's, or those `corpus` (another checkout)
    lists with its own tests/test_fuzz.py, whose mutator then replaces this one's (the same case texts
    as a run made there; op programs come from this checkout's op registry)."""
    global _MUTANT
    if not corpus:
        return [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in sources()]
    import importlib.util
    spec = importlib.util.spec_from_file_location("corpus_test_fuzz", Path(corpus) / "tests" / "test_fuzz.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _MUTANT = module.mutant
    return [(str(p.relative_to(corpus)), p.read_text(encoding="utf-8")) for p in module.sources()]


def _run(argv: list[str]) -> tuple[int, str, str]:
    from archc.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as e:
            status = int(e.code or 0)
    return status, out.getvalue(), err.getvalue()


TOO_LARGE = 2 << 30  # bytes of parameters, buffers and activations a module may take to be run here
_RAN: dict[str, str] = {}  # generated source -> the kind its run gave (mutants often build the same module)


def _module_runs(path: Path) -> str:
    """Import a built module, construct its entry class and run forward on inputs of its sizes.

    Returns the kind of a case whose module ran ("ok: built and ran", or "ok: built, too large to run
    here" when `archc flops` says the module needs more than TOO_LARGE bytes: a mutant asking for
    terabytes of weights is a valid program, not one this machine can construct). A module whose
    generated source was already run in this worker is not run again: the outcome is the same.
    """
    import hashlib
    import importlib.util
    import json

    import torch
    generated = next((path.parent / "b").glob("*.py"))
    key = hashlib.sha256(generated.read_bytes()).hexdigest()
    if key in _RAN:
        return _RAN[key]
    checked = _checked(path)
    if checked is None:
        return "ok: built and ran"
    doc, free, sets = checked
    status, out, _ = _run(["flops", str(path), "--json", *sets])
    if status == 0:
        costs = json.loads(out)
        needs = sum(costs.get(k) or 0 for k in ("param_bytes", "buffer_bytes", "activation_bytes"))
        if needs > TOO_LARGE:
            _RAN[key] = "ok: built, too large to run here"
            return _RAN[key]
    spec = importlib.util.spec_from_file_location("fuzzed", generated)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls = getattr(module, doc["entry"])
    inputs = []
    for node in doc["nodes"]:
        if node["op"] == "input":
            shape = [int(a["size"]) for a in node["axes"]]
            ints = node["type"].startswith("i")
            # ids 0: a valid row of any embedding table (a table of one row is a valid program)
            inputs.append(torch.zeros(shape, dtype=torch.int64) if ints else torch.randn(shape))
    with torch.no_grad():
        _construct(cls, free).eval()(*inputs)
    _RAN[key] = "ok: built and ran"
    return _RAN[key]


def _checked(path: Path) -> tuple[dict[str, Any], set[str], list[str]] | None:
    """`archc check --json` of the program with its free sizes without a value at 3: the document, those
    sizes and the `--set` arguments that give them; None if it does not check."""
    import json
    status, out, _ = _run(["check", str(path), "--json"])
    if status != 0:
        return None
    doc = json.loads(out)
    free = {k for k, v in doc["sizes"].items() if v is None}
    sets = [a for k in sorted(free) for a in ("--set", f"{k}=3")]
    if sets:
        status, out, _ = _run(["check", str(path), "--json", *sets])
        if status != 0:
            return None
        doc = json.loads(out)
    return doc, free, sets


def _construct(cls: Any, free: set[str]) -> Any:
    """The entry module, given the free sizes without a value (`free`) that its layers need (`in x: [chan =
    cin]`, no `size cin`: a constructor argument without a default) at 3, as its inputs have them."""
    import inspect
    return cls(**{name: 3 for name, p in inspect.signature(cls).parameters.items()
                  if p.default is inspect.Parameter.empty and name in free})


def _entry_inputs(path: Path) -> tuple[str, list[Any], set[str]] | None:
    """The entry class name, random inputs of its sizes (free sizes 3) and the free sizes without a value,
    or None if it does not check."""
    import torch
    checked = _checked(path)
    if checked is None:
        return None
    doc, free, _ = checked
    gen = torch.Generator().manual_seed(0)
    inputs = []
    for node in doc["nodes"]:
        if node["op"] == "input":
            shape = [int(a["size"]) for a in node["axes"]]
            ints = node["type"].startswith(("i", "u"))
            inputs.append(torch.zeros(shape, dtype=torch.int64) if ints  # ids 0: valid for any table
                          else torch.rand(shape, generator=gen) > 0.5 if node["type"].startswith("bool")
                          else torch.randn(shape, generator=gen))
    return doc["entry"], inputs, free


def _load(path: Path, name: str) -> Any:
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _triton_matches(src: Path, tmp: str) -> str | None:
    """None if the Triton target builds and agrees with the PyTorch module; else what went wrong."""
    import torch
    status, _, err = _run(["build", str(src), "--target", "triton", "-o", f"{tmp}/t"])
    if status != 0:
        return f"build --target triton: {err.strip()[:200]}"
    got = _entry_inputs(src)
    if got is None:
        return None
    entry, inputs, free = got
    eager = _construct(getattr(_load(next((Path(tmp) / "b").glob("*.py")), "fuzzed_eager"), entry), free).eval()
    fused = _construct(getattr(_load(next((Path(tmp) / "t").glob("*.py")), "fuzzed_triton"), entry), free).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for key, t in eager.state_dict().items():
            if t.dtype.is_floating_point:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.5 + (1.0 if key.endswith("running_var") else 0.0)
                        if not key.endswith("running_var") else torch.rand(t.shape, generator=gen) + 0.5)
        fused.load_state_dict(eager.state_dict())
        want, have = eager(*inputs), fused(*inputs)
    for w, h in zip(want if isinstance(want, tuple) else (want,), have if isinstance(have, tuple) else (have,)):
        if w.shape != h.shape or w.dtype != h.dtype:
            return f"shape or dtype {tuple(h.shape)} {h.dtype}, expected {tuple(w.shape)} {w.dtype}"
        if w.is_floating_point():
            finite = torch.isfinite(w)
            if not torch.equal(finite, torch.isfinite(h)):
                return "non-finite values differ"
            scale = w[finite].abs().max().item() if finite.any() else 0.0
            err = (w[finite] - h[finite]).abs().max().item() if finite.any() else 0.0
            if err > 1e-4 * max(scale, 1e-6):
                return f"max difference {err:.3g} (largest value {scale:.3g})"
        elif not torch.equal(w, h):
            return "values differ"
    return None


def run_case(index: int, seed: int, texts: list[tuple[str, str]], timeout: float, run_modules: bool,
             triton: bool = False) -> tuple[str, str]:
    """(kind, where) of one case; kind "ok" when nothing went wrong."""
    where, text = _case(index, seed, texts)
    signal.signal(signal.SIGALRM, _alarm)
    signal.signal(signal.SIGPROF, _alarm)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "case.arch"
        src.write_text(text, encoding="utf-8")
        built = checked = False
        refusal = ""
        for command in COMMANDS:
            argv = [command[0], str(src), *(a.format(dir=tmp) for a in command[1:])]
            _limit(timeout)
            try:
                status, out, err = _run(argv)
            except Timeout:
                return "hang", f"{where}: {' '.join(command)}"
            except Exception as e:  # noqa: BLE001 - a crash escaping main is what we count
                return "internal-error", f"{where}: {' '.join(command)}: {type(e).__name__}: {e}"
            finally:
                _limit(0)
            if status == 70 or "Traceback" in err:
                return "internal-error", f"{where}: {' '.join(command)}: {err.strip().splitlines()[0]}"
            if CONTROL.search(out + err.replace("\n", "")):
                return "control-characters", f"{where}: {' '.join(command)}"
            if status == 1 and problem(status, err):
                return "bad-diagnostic", f"{where}: {' '.join(command)}: {err.strip()[:200]!r}"
            if status == 0 and command[-1].endswith(".svg"):
                try:
                    ET.parse(os.path.join(tmp, "c.svg"))
                except ET.ParseError as e:
                    return "bad-svg", f"{where}: {e}"
            built = built or (command[0] == "build" and status == 0)
            if command[0] == "build" and status == 1:
                refusal = next((line for line in err.splitlines() if "error:" in line), err.strip())[:200]
            checked = checked or (command[0] == "check" and status == 0)
        ran = "ok: built and ran"
        if built and run_modules:
            _limit(timeout * 4)
            try:
                ran = _module_runs(src)
            except Timeout:
                return "module-slow", f"{where}: running the built module"
            except Exception as e:  # noqa: BLE001
                return "module-fails", f"{where}: {type(e).__name__}: {str(e)[:200]}"
            finally:
                _limit(0)
        if built and triton and where.startswith("op program"):
            _limit(timeout * 8)
            try:
                wrong = _triton_matches(src, tmp)
            except Timeout:
                return "hang", f"{where}: the Triton target"
            except Exception as e:  # noqa: BLE001
                wrong = f"{type(e).__name__}: {str(e)[:200]}"
            finally:
                _limit(0)
            if wrong:
                return "triton-mismatch", f"{where}: {wrong}"
        if not checked:
            return "located-error", where
        if not built:
            return "build-refused", f"{where}: {refusal}"
        return (ran if run_modules else "ok: built"), where


def _batch(args: tuple[list[int], int, float, bool, bool, str]) -> list[tuple[str, str]]:
    indices, seed, timeout, run_modules, triton, corpus = args
    texts = _texts(corpus)
    return [run_case(i, seed, texts, timeout, run_modules, triton) for i in indices]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--timeout", type=float, default=15.0, help="seconds of CPU time per command of a case")
    ap.add_argument("--no-modules", action="store_true", help="do not run the modules that build")
    ap.add_argument("--triton", action="store_true",
                    help="also build generated programs with --target triton and compare (TRITON_INTERPRET=1)")
    ap.add_argument("--only", help="run only these case indices (comma-separated): replay the failures of a run")
    ap.add_argument("--corpus", help="read the sources to mutate from this checkout (the one a run used), so that "
                    "case i is the same text while the code under test is this one")
    args = ap.parse_args()
    if args.triton:
        os.environ["TRITON_INTERPRET"] = "1"  # before the workers import triton
    t0 = time.perf_counter()
    step = 50
    indices = [int(i) for i in args.only.split(",")] if args.only else list(range(args.cases))
    args.cases = len(indices)
    batches = [(indices[i:i + step], args.seed, args.timeout, not args.no_modules, args.triton, args.corpus or "")
               for i in range(0, len(indices), step)]
    counts: collections.Counter[str] = collections.Counter()
    examples: dict[str, list[str]] = collections.defaultdict(list)
    with concurrent.futures.ProcessPoolExecutor(args.jobs) as pool:
        for results in pool.map(_batch, batches):
            for kind, where in results:
                counts[kind] += 1
                if not kind.startswith(("ok", "located-error")):
                    if len(examples[kind]) < 5:
                        examples[kind].append(where)
                    print(f"{kind}: {where}", file=sys.stderr, flush=True)  # as found: a long run can be read early
            done = sum(counts.values())
            if done % 5000 == 0:
                print(f"{done:,} cases, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    took = time.perf_counter() - t0
    per_case = took / max(args.cases, 1) * 1e3
    print(f"{args.cases} cases (seed {args.seed}) in {took:.0f} s ({per_case:.1f} ms a case):")
    for kind in ("ok: built and ran", "ok: built, too large to run here", "ok: built", "located-error",
                 "build-refused", "internal-error",
                 "bad-diagnostic", "control-characters", "bad-svg", "hang", "module-fails", "module-slow",
                 "triton-mismatch"):
        print(f"  {kind:34} {counts[kind]:>8,}")
    for kind, wheres in examples.items():
        print(f"first {kind} cases:")
        for w in wheres:
            print(f"  {w}")
    return 0 if not examples else 1


if __name__ == "__main__":
    sys.exit(main())
