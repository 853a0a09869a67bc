#!/usr/bin/env bash
# The Triton benchmark on a lent CUDA machine, as one command (BENCHMARKS.md records what it printed).
# The machine has torch and triton but not archc's other requirements and no network, so they travel
# as wheels in .whl/ (git-ignored), made here first:
#
#   pip wheel -q --no-deps -w .whl . && pip download -q --no-deps --only-binary=:all: -d .whl lark graphviz
#
# Results go to $OUT (bench.log, bench.json after each row, stderr.log, device.txt). BUDGET (seconds
# after which no row starts), ROW_TIMEOUT, DTYPES, BATCH and AUTOTUNE pass through to bench_triton.py.
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/device.txt"
python3 benchmarks/bench_triton.py --batch "${BATCH:-64}" --dtypes "${DTYPES:-fp16,bf16}" \
    --autotune "${AUTOTUNE:-blocks}" --budget "${BUDGET:-450}" --row-timeout "${ROW_TIMEOUT:-120}" \
    --json "$OUT/bench.json" 2> "$OUT/stderr.log" | tee "$OUT/bench.log"
