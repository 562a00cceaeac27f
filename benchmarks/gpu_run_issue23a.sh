#!/usr/bin/env bash
# Issue 23 (first part: invalid variants before any full build) on the GPU host (16 cores,
# nvcc 13.0; the GPU is not used), everything under $OUT:
#   validity.json  gemm_sm90 with its skip_if removed: all 72 builds (every combination of
#                  tile x cluster x schedule x scheduler x epilogue_tile; runtime keys pinned),
#                  the validity pass (nvcc's host + device front ends, batched) with its CPU
#                  time, then a real full compile (nvcc -c -O3) of every build in cutlens's
#                  compile pool (JOBS at once) with its CPU time and pass/fail; "agree",
#                  "disagree", "cpu_ratio" (target <= 0.15), one row per build
#   inductor.json  PART=inductor: the same on Inductor's CUTLASS 3.x op list for one shape
#                  (bf16 4096^3 through the Inductor bridge: 78 ops with torch 2.13's
#                  gen_ops, each its own build; swizzle pinned)
#   run-PART.log   everything the commands said
# Expected: validity pass ~1.5 min wall, full compiles ~4 min (72 CUTLASS 3.x units, ~45 s
# CPU each, the invalid ones stop in cudafe++), ~6 min in all; the full compiles stop at
# BUDGET seconds (default 330) and the JSON then says "complete": false.
#
#   On the GPU host, in the repository root:  OUT=<dir> bash benchmarks/gpu_run_issue23a.sh
#     then, as a second run of ~6-7 min:      OUT=<dir> PART=inductor bash benchmarks/gpu_run_issue23a.sh
#   Anywhere (checks the plan, ~2 min on 2 cores):
#                                             OUT=<dir> bash benchmarks/gpu_run_issue23a.sh --dry-run
#     (the first 8 builds: 128x128 1x1, cooperative/pingpong x persistent/stream-K x the two epilogue tiles; full
#      compiles of the invalid ones only: they stop in the front end)
set -uo pipefail
export PYTHONPATH="$PWD/server${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:?set OUT}
mkdir -p "$OUT"
DRY=0; [ "${1:-}" = "--dry-run" ] && DRY=1
PY=${PYTHON:-python3}
JOBS=${JOBS:-$(nproc)}
BUDGET=${BUDGET:-330}
PART=${PART:-gemm}
NAME=$([ "$PART" = inductor ] && echo inductor || echo validity)
export CUTLENS_COMPILE_MEMORY=${CUTLENS_COMPILE_MEMORY:-110G}
LOG="$OUT/run-$PART.log"
: > "$LOG"
{
  echo "host: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  nvcc --version 2>&1 | tail -1
  $PY -c "from importlib.metadata import version as v; print('nvidia-cutlass', v('nvidia-cutlass'))" 2>&1
  echo "jobs $JOBS, full-compile budget ${BUDGET}s, dry run $DRY"
} | tee -a "$LOG"
T0=$(date +%s)
if [ $DRY = 1 ]; then
  $PY benchmarks/validity_bench.py --source "$PART" --out "$OUT/$NAME.json" --jobs "$JOBS" \
    --limit 8 --full invalid --budget "$BUDGET" 2>&1 | tee -a "$LOG"
else
  $PY benchmarks/validity_bench.py --source "$PART" --out "$OUT/$NAME.json" --jobs "$JOBS" \
    --full all --budget "$BUDGET" 2>&1 | tee -a "$LOG"
fi
RC=${PIPESTATUS[0]}
echo "== done in $(( $(date +%s) - T0 )) s, exit $RC" | tee -a "$LOG"
exit "$RC"
