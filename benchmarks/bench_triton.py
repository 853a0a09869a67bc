"""The Triton target against eager PyTorch and torch.compile, measured in one run.

For the blocks the planner fuses (a ConvNeXt block, an inverted-residual block, a pre-norm transformer
encoder layer, attention) and for whole ConvNeXt-T, MobileNetV2, ResNet-50 and ViT-B/16 (examples/*.arch):
build the PyTorch target (the eager module) and the Triton target (`archc build --target triton`: the
same classes, whose inference forward runs the fused kernels), load the same random weights into both,
check that their outputs agree, then time, in eval mode under torch.inference_mode:

  eager        the generated PyTorch module
  compile      torch.compile of the same module (mode="default")
  autotune     torch.compile(mode="max-autotune-no-cudagraphs")
  archc        the Triton module

with triton.testing.do_bench (median ms), and print each one's time and the ratios
compile/archc, autotune/archc and eager/archc (above 1: archc is faster). For the memory-bound kernels
(a pointwise chain with a broadcast, layernorm, softmax at large sizes) it prints the achieved
bandwidth as a fraction of the device's peak (analysis/roofline.py's table, the one `archc plan` uses).
Goals (issue 10): ConvNeXt and inverted-residual blocks >= 1.5x torch.compile, whole ConvNeXt-T >= 1.3x,
pointwise and norm kernels >= 0.95x of torch.compile and >= 80% of peak bandwidth, attention >= 0.9x of
scaled_dot_product_attention.

On a CUDA device (H100/H200/A100):

    python benchmarks/bench_triton.py [--batch 64] [--dtypes fp16,bf16] [--only convnext_tiny,...]

Without one, `--tiny` runs the whole script end to end under TRITON_INTERPRET=1 on the CPU at tiny sizes
in fp32 (what tests/test_triton_bench.py does), timing with a wall clock and skipping torch.compile:
the kernels' numbers there say nothing about a GPU; the run says the script works.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

if "--tiny" in sys.argv:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import torch  # noqa: E402

import archc  # noqa: E402
from archc.analysis.roofline import DEVICES  # noqa: E402
from archc.codegen.torch.generate import load_class  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

BLOCKS = {
    "convnext_block": """
block B(dim = 96) {
  in x: [batch, chan = dim, h, w]
  param layer_scale: [chan = dim, h = 1, w = 1] = 1e-6
  block = seq(x) {
    conv(chan -> dim, k = 7, pad = 3, groups = dim)
    rearrange("batch chan h w -> batch h w chan")
    layernorm(eps = 1e-6)
    linear(chan -> 4 * dim)
    gelu()
    linear(chan -> dim)
    rearrange("batch h w chan -> batch chan h w")
  }
  out x + layer_scale * block
}
""",
    "inverted_residual": """
import std.vision
block B() {
  in x: [batch, chan = 32, h, w]
  out InvertedResidual(x, 32, stride = 1, expand_ratio = 6)
}
""",
    "encoder_layer": """
import std.transformer
block B(dim = 768, heads = 12, mlp = 3072) {
  in x: [batch, tok, chan = dim]
  ln1 = layernorm(x, eps = 1e-6)
  a = MultiHeadAttention(ln1, dim, heads)
  y = x + a
  ln2 = layernorm(y, eps = 1e-6)
  h = linear(ln2, chan -> mlp)
  f = linear(gelu(h), chan -> dim)
  out y + f
}
""",
    "attention": """
block B(heads = 12, dh = 64) {
  in q: [batch, head = heads, tok, d = dh]
  in k: [batch, head = heads, tok, d = dh]
  in v: [batch, head = heads, tok, d = dh]
  out attention(q, k, v, seq = tok, chan = d)
}
""",
}

# input shapes at full size (batch first) and at --tiny
SHAPES = {
    "convnext_block": ([(64, 96, 56, 56)], [(1, 8, 5, 7)], {"dim": 8}),  # --tiny: sizes and parameters
    "inverted_residual": ([(64, 32, 56, 56)], [(1, 32, 5, 7)], {}),
    "encoder_layer": ([(64, 197, 768)], [(1, 5, 32)], {"dim": 32, "heads": 2, "mlp": 64}),
    "attention": ([(64, 12, 197, 64)] * 3, [(1, 2, 5, 16)] * 3, {"heads": 2, "dh": 16}),
    "convnext_tiny": ([(64, 3, 224, 224)], [(1, 3, 32, 32)], {}),
    "mobilenet_v2": ([(64, 3, 224, 224)], [(1, 3, 32, 32)], {}),
    "resnet50": ([(64, 3, 224, 224)], [(1, 3, 32, 32)], {}),
    "vit_b_16": ([(64, 3, 224, 224)], [(1, 3, 32, 32)],
                 {"num_layers": 1, "num_heads": 2, "dim": 32, "mlp_dim": 64, "H": 32, "W": 32}),
}


def model_of(name: str) -> archc.Model:
    if name in BLOCKS:
        return archc.loads(BLOCKS[name], f"{name}.arch")
    return archc.load(str(EXAMPLES / f"{name}.arch"))


def build(name: str, sets: dict[str, Any]) -> tuple[torch.nn.Module, torch.nn.Module, Any]:
    """The eager and the Triton module with the same random weights, and the Triton module's record."""
    model = model_of(name)
    tm = model.triton_module(**sets)
    eager, fused = model.torch(**sets)().eval(), load_class(tm.generated)().eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, t in eager.state_dict().items():
            if t.dtype.is_floating_point:
                v = torch.randn(t.shape, generator=gen) * 0.05
                t.copy_(v.abs() + 0.5 if key.endswith("running_var") else v)
    fused.load_state_dict(eager.state_dict(), strict=True)
    return eager, fused, tm


def bench(fn: Callable[[], Any], cuda: bool, reps: int) -> float:
    """Median milliseconds of fn() (on the CPU: of `reps` calls after the one that checked the output)."""
    if cuda:
        import triton.testing
        return float(triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median"))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return sorted(times)[len(times) // 2]


def peak_bandwidth() -> tuple[str, float] | None:
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name().lower()
    for key, dev in DEVICES.items():
        if key in name:
            return key, dev.bandwidth
    return None


def run_model(name: str, dtype: torch.dtype, cuda: bool, tiny: bool, batch: int, reps: int,
              autotune: bool = True) -> dict[str, Any]:
    full, small, sets = SHAPES[name]
    shapes = small if tiny else [(batch, *s[1:]) for s in full]
    eager, fused, tm = build(name, sets if tiny else {})
    device = "cuda" if cuda else "cpu"
    eager, fused = eager.to(device, dtype), fused.to(device, dtype)
    xs = [torch.randn(*s, device=device, dtype=dtype) for s in shapes]
    with torch.inference_mode():
        want, got = eager(*xs), fused(*xs)
        err = ((got.float() - want.float()).abs().max() / want.float().abs().max().clamp_min(1e-30)).item()
        row: dict[str, Any] = {"name": name, "dtype": str(dtype).replace("torch.", ""), "kernels": tm.kernels,
                               "torch_ops": tm.torch_ops, "max_rel_diff": err}
        row["eager"] = bench(lambda: eager(*xs), cuda, reps)
        row["archc"] = bench(lambda: fused(*xs), cuda, reps)
        if cuda:
            modes = (("compile", "default"), ("autotune", "max-autotune-no-cudagraphs"))
            for label, mode in modes if autotune else modes[:1]:
                compiled = torch.compile(eager, mode=mode)
                compiled(*xs)
                row[label] = bench(lambda c=compiled: c(*xs), cuda, reps)
            if name == "attention":
                sdpa = torch.nn.functional.scaled_dot_product_attention
                row["sdpa"] = bench(lambda: sdpa(*xs), cuda, reps)
    return row


MEMORY_BOUND = {
    # name: (.arch source, input shapes at full size, at --tiny)
    "pointwise": ("block B() {\n in x: [b, c, n]\n in s: [c, n = 1]\n out gelu(x * s + x) }",
                  [(64, 768, 4096), (768, 1)], [(2, 8, 33), (8, 1)]),
    "layernorm": ("block B() {\n in x: [b, n, c = 768]\n ln = layernorm(x)\n out ln }",
                  [(64, 4096, 768)], [(2, 5, 768)]),
    "softmax": ("block B() {\n in x: [b, n, c]\n out softmax(x, axis = c) }",
                [(64, 4096, 1024)], [(2, 5, 33)]),
}


def run_memory_bound(name: str, dtype: torch.dtype, cuda: bool, tiny: bool, reps: int,
                     peak: tuple[str, float] | None) -> dict[str, Any]:
    src, full, small = MEMORY_BOUND[name]
    model = archc.loads(src, f"{name}.arch")
    eager, fused = model.torch()().eval(), model.triton()().eval()
    device = "cuda" if cuda else "cpu"
    eager, fused = eager.to(device, dtype), fused.to(device, dtype)
    xs = [torch.randn(*s, device=device, dtype=dtype) for s in (small if tiny else full)]
    with torch.inference_mode():
        out = fused(*xs)
        moved = sum(x.numel() * x.element_size() for x in xs) + out.numel() * out.element_size()
        row: dict[str, Any] = {"name": name, "dtype": str(dtype).replace("torch.", ""), "bytes": moved}
        row["archc"] = bench(lambda: fused(*xs), cuda, reps)
        if cuda:
            compiled = torch.compile(eager)
            compiled(*xs)
            row["compile"] = bench(lambda: compiled(*xs), cuda, reps)
        if peak is not None:
            row["bandwidth"] = moved / (row["archc"] / 1e3) / peak[1]
    return row


class RowTimeout(Exception):
    pass


@contextlib.contextmanager
def row_timeout(seconds: float) -> Iterator[None]:
    """Raise RowTimeout in the main thread after `seconds` (0: never): a row whose compilation or
    autotuning runs away is reported and the run goes on."""
    def fire(signum: int, frame: object) -> None:
        raise RowTimeout(f"past the --row-timeout of {seconds:g} s")
    if seconds:
        signal.signal(signal.SIGALRM, fire)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)


def fmt(row: dict[str, Any]) -> str:
    cells = [f"{row['name']:<18}", f"{row['dtype']:<8}"]
    if "seconds" in row:
        cells.append(f"({row['seconds']:3.0f} s)")
    for key in ("eager", "compile", "autotune", "sdpa", "archc"):
        if key in row:
            cells.append(f"{key} {row[key]:8.3f} ms")
    for key in ("compile", "autotune", "eager", "sdpa"):
        if key in row:
            cells.append(f"{key}/archc {row[key] / row['archc']:5.2f}x")
    if "bandwidth" in row:
        cells.append(f"bandwidth {100 * row['bandwidth']:.0f}% of peak")
    if "kernels" in row:
        cells.append(f"{row['kernels']} kernels + {row['torch_ops']} torch ops, max rel diff {row['max_rel_diff']:.1e}")
    return "  ".join(cells)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny", action="store_true", help="CPU, TRITON_INTERPRET=1, tiny sizes, fp32 (a smoke run)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--dtypes", default="fp16,bf16")
    ap.add_argument("--reps", type=int, default=1, help="timed runs per figure without CUDA")
    ap.add_argument("--only", default="", help="comma-separated names (blocks, models, memory-bound kernels)")
    ap.add_argument("--autotune", choices=("all", "blocks", "none"), default="all",
                    help="which rows also time torch.compile(mode='max-autotune-no-cudagraphs')")
    ap.add_argument("--budget", type=float, default=0, help="seconds after which no further row starts")
    ap.add_argument("--row-timeout", type=float, default=0, help="seconds one row may take on CUDA (0: none)")
    ap.add_argument("--json", default="", help="also write the rows to this file, after each row")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available() and not args.tiny
    if not cuda and not args.tiny:
        print("no CUDA device: run with --tiny for the interpreter smoke run", file=sys.stderr)
        return 2
    dtypes = [torch.float32] if args.tiny else [{"fp16": torch.float16, "bf16": torch.bfloat16}[d]
                                                 for d in args.dtypes.split(",")]
    only = {s for s in args.only.split(",") if s}
    peak = peak_bandwidth()
    where = (torch.cuda.get_device_name() if cuda
             else "CPU, TRITON_INTERPRET=1 (tiny sizes: a smoke run, not a measurement)")
    print(f"device: {where}" + (f" (peak {peak[1] / 1e12:.2f} TB/s, {peak[0]})" if peak else ""))
    if cuda:
        print(f"torch {torch.__version__}, triton {__import__('triton').__version__}")
    # Per dtype (the first named first): the blocks, the memory-bound kernels, then whole models, which
    # take the longest to compile (torch.compile and the autotuned matmul kernels); a --budget cuts the
    # rows at the end.
    names = [n for n in SHAPES if n in BLOCKS] + list(MEMORY_BOUND) + [n for n in SHAPES if n not in BLOCKS]
    jobs = [(name, dtype) for dtype in dtypes for name in names if not only or name in only]
    start, rows = time.perf_counter(), []
    for name, dtype in jobs:
        label = f"{name:<18} {str(dtype).replace('torch.', ''):<8}"
        if args.budget and time.perf_counter() - start > args.budget:
            print(f"{label} skipped: the --budget of {args.budget:g} s was spent", flush=True)
            continue
        try:
            with row_timeout(args.row_timeout if cuda else 0):
                t0 = time.perf_counter()
                if name in MEMORY_BOUND:
                    row = run_memory_bound(name, dtype, cuda, args.tiny, args.reps, peak)
                else:
                    row = run_model(name, dtype, cuda, args.tiny, args.batch, args.reps,
                                    autotune=args.autotune == "all" or (args.autotune == "blocks" and name in BLOCKS))
                row["seconds"] = time.perf_counter() - t0
        except Exception as e:  # noqa: BLE001 - one row's failure is reported and the run goes on
            traceback.print_exc()
            row = {"name": name, "dtype": str(dtype).replace("torch.", ""),
                   "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
            print(f"{label} FAILED: {row['error']}", flush=True)
        else:
            print(fmt(row), flush=True)
        rows.append(row)
        if args.json:
            pathlib.Path(args.json).write_text(json.dumps({"device": where, "rows": rows}, indent=1) + "\n")
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
