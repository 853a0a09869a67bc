"""Forward time of archc's generated PyTorch modules against hand-written torch.nn references.

For ResNet-50, ConvNeXt-T, MobileNetV2 and ViT-B/16 (examples/*.arch): build the
generated module and a torchvision-style reference written by hand
(benchmarks/torch_references.py), copy
the generated module's weights into the reference with load_state_dict(strict=True)
(same state_dict keys), check the outputs agree, then time both forwards in
eval mode under torch.inference_mode, interleaved, and report the ratio
generated / reference of the medians and of the minima (goal: <= 1.03; on a
shared machine the minimum is the steadier). Not a test: run it by hand

    python benchmarks/bench_torch_codegen.py [--batch 8] [--size 224] [--reps 5] [--models resnet50,...]

and record the table in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

import torch
from torch import nn

import archc

from torch_references import REFERENCES

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


# ---- the run ---------------------------------------------------------------------------------------


def build(name: str) -> tuple[nn.Module, nn.Module]:
    generated = archc.load(str(EXAMPLES / f"{name}.arch")).torch()().eval()
    reference = REFERENCES[name]().eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # random weights and statistics, so every one of them matters
        for key, t in generated.state_dict().items():
            if t.dtype.is_floating_point:
                v = torch.randn(t.shape, generator=gen) * 0.05
                t.copy_(v.abs() + 0.5 if key.endswith("running_var") else v)
    reference.load_state_dict(generated.state_dict(), strict=True)
    return generated, reference


def time_pair(a: nn.Module, b: nn.Module, x: torch.Tensor, reps: int) -> tuple[list[float], list[float]]:
    ta, tb = [], []
    with torch.inference_mode():
        a(x), b(x)  # warm-up
        for i in range(reps):
            for m, out in ((a, ta), (b, tb)) if i % 2 == 0 else ((b, tb), (a, ta)):
                t0 = time.perf_counter()
                m(x)
                out.append(time.perf_counter() - t0)
    return ta, tb


def op_census(m: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """How many times each aten op runs in one forward: the work, free of timing noise."""
    from torch.profiler import profile
    with torch.inference_mode(), profile() as prof:
        m(x)
    return {e.key: e.count for e in prof.key_averages() if e.key.startswith("aten::")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--models", default=",".join(REFERENCES))
    args = p.parse_args(argv)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"batch {args.batch} at {args.size}x{args.size}, eval, inference_mode, median of {args.reps}")
    print(f"{'model':<14} {'generated ms':>13} {'reference ms':>13} {'ratio':>7} {'min ratio':>9} "
          f"{'max |diff|':>11}  aten ops (generated vs reference)")
    for name in args.models.split(","):
        generated, reference = build(name)
        x = torch.randn(args.batch, 3, args.size, args.size)
        with torch.inference_mode():
            diff = (generated(x) - reference(x)).abs().max().item()
        ta, tb = time_pair(generated, reference, x, args.reps)
        ga, rb = statistics.median(ta) * 1e3, statistics.median(tb) * 1e3
        ca, cb = op_census(generated, x), op_census(reference, x)
        census = "the same" if ca == cb else ", ".join(
            f"{k} {ca.get(k, 0)} vs {cb.get(k, 0)}" for k in sorted(set(ca) | set(cb)) if ca.get(k) != cb.get(k))
        print(f"{name:<14} {ga:13.1f} {rb:13.1f} {ga / rb:7.3f} {min(ta) / min(tb):9.3f} {diff:11.2e}  {census}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
