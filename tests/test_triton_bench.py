"""benchmarks/bench_triton.py runs end to end without a GPU: under TRITON_INTERPRET=1 at tiny sizes (`--tiny`),
every code path of the script (blocks, a whole model, the memory-bound kernels) builds both targets, checks
that they agree and times them. The GPU figures come from running it on a CUDA device (BENCHMARKS.md)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("triton")

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "bench_triton.py"
ONLY = "convnext_block,inverted_residual,encoder_layer,attention,vit_b_16,pointwise,layernorm,softmax"


def test_bench_triton_runs_under_the_interpreter() -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    run = subprocess.run([sys.executable, str(SCRIPT), "--tiny", "--only", ONLY], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert lines[0].startswith("device: CPU, TRITON_INTERPRET=1")
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(ONLY.split(","))
    for name in ("convnext_block", "inverted_residual", "encoder_layer", "attention", "vit_b_16"):
        diff = float(rows[name].rsplit("max rel diff ", 1)[1])
        assert diff <= 1e-4, rows[name]
    assert "3 kernels + 0 torch ops" in rows["convnext_block"]  # window+norm, matmul, matmul+residual
    assert "3 kernels + 0 torch ops" in rows["inverted_residual"]


def test_bench_triton_refuses_to_run_without_a_device_unless_tiny() -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    run = subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "--tiny" in run.stderr
