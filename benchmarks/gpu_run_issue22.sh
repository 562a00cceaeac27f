#!/usr/bin/env bash
# Issue 22 on one H100 or H200 (16 cores, nvcc 13.0, torch + triton + nvidia-ml-py), all under
# $OUT (6 files):
#   sweep_{square,large,skinny}.json  `cutlens bench templates/gemm_sm90.cu.jinja --sample S
#                     --format json`, each from a cold build cache: rows with sol_pct, bound,
#                     stable, gpu_state; top level ceilings, finalists, best (from the rounds)
#   issue22.json      per shape: every checked lens latency vs the interleaved do_bench median
#                     (target ±2 %), the winner's ratio to torch.mm vs the interleaved ratio
#                     (target 1 %), unstable rows, finalists, ceilings; plus the do_bench rounds
#   summary.md        the short table;   run.log   everything the commands said (and the tables)
# Right after each sweep, in the same GPU state a user finds, benchmarks/fidelity_do_bench.py
# --lens-check times the sweep's best row, finalists and 3 best builds (the same built
# libraries, through their own ABI) and torch.mm with triton.testing.do_bench (median) in
# ROUNDS interleaved rounds (default 11), sharing no timing code with cutlens.
# Expected: per shape ~90-110 s sweep (compile ~60 s; 53 variants x ~0.55 s steady-state
# timing; ceilings measured once during the first compile; finalists 4 x 7 rounds) + ~25 s
# check: about 6-7 minutes in all. Each sweep is stopped at 170 s and each check at 80 s,
# and no step runs past BUDGET_S (default 450 s) from the start: the summary still runs.
#
#   On the GPU host, in the repository root:  OUT=<dir> bash benchmarks/gpu_run_issue22.sh
#   Anywhere without a GPU (checks the plan):  OUT=<dir> bash benchmarks/gpu_run_issue22.sh --dry-run
#     (renders every sample x variant, counts builds, plans the do_bench check on three real
#      variants without building them, runs the summary on what exists; DRY_BUILD=1 also
#      builds the first square variant with the real nvcc)
set -uo pipefail
export PYTHONPATH="$PWD/server${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:?set OUT}
mkdir -p "$OUT"
DRY=0; [ "${1:-}" = "--dry-run" ] && DRY=1
PY=${PYTHON:-python3}
T=templates/gemm_sm90.cu.jinja
JOBS=${JOBS:-$(nproc)}
ROUNDS=${ROUNDS:-11}
START=$(date +%s)
BUDGET_S=${BUDGET_S:-450}
# a step's time limit: its own cap, or what is left of the budget (at least 5 s)
cap() { local left=$((START + BUDGET_S - $(date +%s))); [ "$left" -lt 5 ] && left=5
        [ "$1" -lt "$left" ] && echo "$1" || echo "$left"; }
export CUTLENS_COMPILE_MEMORY=${CUTLENS_COMPILE_MEMORY:-110G}
# The measured ceilings: a fresh cache for this run (measured during the first sweep's
# compile, reused by the two others: once per GPU, dtype and driver).
CHECKS=$(mktemp -d)
export CUTLENS_CEILINGS="$CHECKS/ceilings.json"
LOG="$OUT/run.log"
: > "$LOG"
log() { echo "== $(date +%T) $*" | tee -a "$LOG"; }
now() { date +%s.%N; }
since() { $PY -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
ROOT=$($PY -c "import sys; from pathlib import Path; from cutlens.config import find_root; \
print(find_root(Path(sys.argv[1]).resolve()))" "$T") || { echo "cutlens does not import"; exit 2; }

{
  echo "host: $(nproc) cores"
  nvidia-smi -L 2>&1 || echo "no nvidia-smi"
  nvcc --version 2>&1 | tail -1
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1
  $PY -c "import triton; print('triton', triton.__version__)" 2>&1
  $PY -c "import pynvml; pynvml.nvmlInit(); print('NVML driver', pynvml.nvmlSystemGetDriverVersion())" 2>&1 | tail -1
  echo "jobs $JOBS, rounds $ROUNDS, build cache $ROOT/.cutlens/build, ceilings $CUTLENS_CEILINGS"
} | tee -a "$LOG"

# the check's libraries when there is no sweep (dry run): three real variant names
PLAN_VARIANTS=("128x128x64 1x1 cooperative persistent swizzle=1"
  "256x128x64 1x2 cooperative persistent swizzle=4 along_m epi=128x64"
  "128x256x64 2x1 cooperative streamk-forced swizzle=1")

if [ $DRY = 1 ]; then
  log "dry run: render every sample x variant (Jinja tier), count the builds"
  $PY -m cutlens check "$T" --samples square --samples large --samples skinny --no-nvcc \
    >> "$LOG" 2>&1; echo "   check exit $?" | tee -a "$LOG"
  $PY - "$T" <<'PY' | tee -a "$LOG"
import sys
from pathlib import Path
from cutlens import config
from cutlens.bench.ceilings import signature_dtype
from cutlens.bench.protocol import TimingConfig
from cutlens.render.renderer import Renderer
from cutlens.template.loader import load
p = Path(sys.argv[1]).resolve()
t = load(p, config.load(config.find_root(p)))
for s in ("square", "large", "skinny"):
    vs = t.variants(t.sample(s))
    u = Renderer().render(t, t.sample(s), vs[0])
    dt = signature_dtype(u.signature.to_json(u.sample.hints, [], vs[0].values))
    print(f"{s}: {len(vs)} variants, {len({v.build_name for v in vs})} builds, dtype {dt}")
c = TimingConfig()
print(f"timing: settle >= {c.settle_min_ms:g} ms (<= {c.settle_max_ms:g}), stable if spread "
      f"<= {c.stable_pct:g} % (re-measured {c.remeasure}x), finalists {c.finalists} x "
      f"{c.rounds} rounds")
PY
  if [ "${DRY_BUILD:-0}" = 1 ]; then
    log "dry run: build the first square variant with the real nvcc (--jobs 1)"
    $PY -m cutlens bench "$T" --sample square --variants first --build-only --jobs 1 \
      2>&1 | tee -a "$LOG"
  fi
  log "dry run: plan the do_bench lens check (three variants, torch.mm) from a stand-in report"
  $PY - "$CHECKS/plan_report.json" "${PLAN_VARIANTS[@]}" <<'PY'
import json, sys
names = sys.argv[2:]
rows = [{"sample": "square", "variant_name": n, "ms": 0.2 + i / 100, "verified": True,
         "build": str(i)} for i, n in enumerate(names)]
json.dump({"results": rows, "baseline": {"square": {"ms": 0.2}},
           "best": {"square": {"variant_name": names[0], "vs_torch": 1.0}},
           "finalists": {"square": [{"variant_name": n} for n in names]}},
          open(sys.argv[1], "w"))
PY
  $PY benchmarks/fidelity_do_bench.py "$T" --sample square --dry-run --no-build \
    --lens-check "$CHECKS/plan_report.json" --rounds "$ROUNDS" -o "$CHECKS/check_plan.json" \
    2>&1 | tee -a "$LOG"
  $PY -c "import json,sys; d=json.load(open(sys.argv[1])); print('planned:', d['variants'], \
d['rounds'], 'rounds,', d['method'])" "$CHECKS/check_plan.json" | tee -a "$LOG"
  $PY benchmarks/issue22_summary.py "$OUT" --checks "$CHECKS" 2>&1 | tee -a "$LOG"
  rm -rf "$CHECKS"
  log "dry run done"
  exit 0
fi

for S in square large skinny; do
  log "cold gemm_sm90 $S sweep, --jobs $JOBS"
  rm -rf "$ROOT/.cutlens/build"
  t0=$(now)
  timeout "$(cap 170)" $PY -m cutlens bench "$T" --sample "$S" --jobs "$JOBS" --format json \
    -o "$OUT/sweep_$S.json" > /dev/null 2>> "$LOG"; rc=$?
  echo "   exit $rc, $(since "$t0") s (process)" | tee -a "$LOG"
  $PY -c "import json,sys; from cutlens.bench import report as r; from rich.console import \
Console; r.print_table(json.load(open(sys.argv[1])), Console(file=sys.stdout, width=220))" \
    "$OUT/sweep_$S.json" >> "$LOG" 2>&1
  # right after the sweep: the same built libraries (cache warm), no cutlens timing code
  log "do_bench lens check: $S"
  timeout "$(cap 80)" $PY benchmarks/fidelity_do_bench.py "$T" --sample "$S" \
    --lens-check "$OUT/sweep_$S.json" --rounds "$ROUNDS" -o "$CHECKS/check_$S.json" \
    2>&1 | tee -a "$LOG"
done
$PY benchmarks/issue22_summary.py "$OUT" --checks "$CHECKS" 2>&1 | tee -a "$LOG"
rm -rf "$CHECKS"
log done
