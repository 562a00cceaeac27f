#!/usr/bin/env bash
# Issue 24 on one H100/H200 (16 cores, nvcc 13.0, ncu beside it), everything under $OUT:
#   profile_A.json, profile_B.json  `cutlens profile templates/gemm_sm90.cu.jinja --sample square
#                                   --variant A|B --format json`, each from a cold build cache
#                                   (build_s, ncu_s, export_s in the JSON; the wall time in
#                                   timings.json): target <= 60 s each, builds cold included
#   baseline.json                   `--variant A --baseline B` (both builds cached): the differences
#   hand_A.csv, hand_B.csv          `ncu --csv --section SpeedOfLight` run by hand on the same
#                                   libraries (the request JSON kept beside each report), its own
#                                   kernel selection: -k regex:device_kernel --launch-skip 3
#                                   --launch-count 1 (the harness's 3 warm-up calls skipped)
#   issue24.json, summary.txt       issue24_summary.py: SOL SM % and memory % by hand vs cutlens
#                                   (target: within 1 point), the timings, the baseline (the
#                                   summary's text form of all of it)
#   run.log                         everything the commands said
# Expected: ~60-75 s per cold profile (a CUTLASS 3.x TU is ~45-60 s of nvcc), ~25 s for the
# baseline run, ~15 s per hand run: about 4 minutes in all.
#
#   On the GPU host, in the repository root:  OUT=<dir> bash benchmarks/gpu_run_issue24.sh
#   Anywhere without a GPU (checks the plan):  OUT=<dir> bash benchmarks/gpu_run_issue24.sh --dry-run
#     (the two variants exist and render; variant A is built with the real nvcc unless
#      DRY_BUILD=0 and profiled through tests/fixtures/ncu/fake_ncu.py, which answers with a
#      recorded H100 report, --baseline against it, the recorded by-hand CSV, the summary)
set -uo pipefail
export PYTHONPATH="$PWD/server${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:?set OUT}
mkdir -p "$OUT"
DRY=0; [ "${1:-}" = "--dry-run" ] && DRY=1
PY=${PYTHON:-python3}
T=templates/gemm_sm90.cu.jinja
A="128x128x64 1x1 cooperative persistent swizzle=1"
B="256x128x64 1x2 cooperative persistent swizzle=4 along_m epi=128x64"
export CUTLENS_COMPILE_MEMORY=${CUTLENS_COMPILE_MEMORY:-110G}
LOG="$OUT/run.log"
: > "$LOG"
log() { echo "== $(date +%T) $*" | tee -a "$LOG"; }
now() { date +%s.%N; }
since() { $PY -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
TIMINGS="$OUT/timings.json"
echo "{}" > "$TIMINGS"
record() {  # record KEY SECONDS
  $PY - "$TIMINGS" "$1" "$2" <<'PY'
import json, sys
p, k, v = sys.argv[1:]
d = json.load(open(p)); d[k] = float(v); json.dump(d, open(p, "w"), indent=1)
PY
}
ROOT=$($PY -c "import sys; from pathlib import Path; from cutlens.config import find_root; \
print(find_root(Path(sys.argv[1]).resolve()))" "$T") || { echo "cutlens does not import"; exit 2; }

if [ $DRY = 1 ]; then
  export CUTLENS_NCU="$PWD/tests/fixtures/ncu/fake_ncu.py" FAKE_NCU_MODE=ok \
    FAKE_NCU_CSV="$PWD/tests/fixtures/ncu/raw_gemm_sm90.csv"
  log "dry run: ncu is the stand-in $CUTLENS_NCU (a recorded H100 report)"
fi
NCU=$($PY -c "from pathlib import Path; from cutlens import config; \
from cutlens.template.loader import load; from cutlens.bench.profile import locate_ncu; \
p = Path('$T').resolve(); print(locate_ncu(load(p, config.load(config.find_root(p)))))" 2>>"$LOG")
{
  echo "host: $(nproc) cores"
  nvidia-smi -L 2>&1 || echo "no nvidia-smi"
  nvcc --version 2>&1 | tail -1
  echo "ncu: ${NCU:-not found}"; [ -n "$NCU" ] && "$NCU" --version 2>&1 | tail -1
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1
  echo "build cache $ROOT/.cutlens/build, reports $ROOT/.cutlens/profiles"
} | tee -a "$LOG"
[ -n "$NCU" ] || { log "no ncu: stop"; exit 2; }

log "the two variants render (sample square)"
$PY -m cutlens check "$T" --sample square --variant "$A" --variant "$B" --no-nvcc >> "$LOG" 2>&1
echo "   check exit $?" | tee -a "$LOG"

if [ $DRY = 1 ] && [ "${DRY_BUILD:-1}" = 0 ]; then
  log "dry run: DRY_BUILD=0, no build: summary of the recorded by-hand CSV only"
  cp tests/fixtures/ncu/details_sol_gemm_sm90.csv "$OUT/hand_A.csv"
  $PY benchmarks/issue24_summary.py "$OUT" >> "$LOG" 2>&1
  log "dry run done"; exit 0
fi

if [ $DRY = 0 ] && [ "${KEEP_CACHE:-0}" != 1 ]; then  # cold builds (KEEP_CACHE=1: reuse a sweep's)
  log "cold: removing the build cache $ROOT/.cutlens/build"
  rm -rf "$ROOT/.cutlens/build"
fi

for tag in A B; do
  V=$A; [ $tag = B ] && V=$B
  [ $DRY = 1 ] && [ $tag = B ] && V=$A  # one real build in a dry run
  log "profile $tag: $V"
  t0=$(now)
  timeout 300 $PY -m cutlens profile "$T" --sample square --variant "$V" --format json \
    --timeout 240 > "$OUT/profile_$tag.json" 2>> "$LOG"
  rc=$?
  s=$(since "$t0"); record "profile_${tag}_s" "$s"
  echo "   exit $rc in $s s" | tee -a "$LOG"
  REQ=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['profile']['request'])" \
    "$OUT/profile_$tag.json" 2>/dev/null)
  if [ $DRY = 1 ]; then
    cp tests/fixtures/ncu/details_sol_gemm_sm90.csv "$OUT/hand_$tag.csv"
  elif [ -n "$REQ" ]; then
    log "by hand: ncu --csv --section SpeedOfLight on $REQ"
    t0=$(now)
    timeout 180 "$NCU" --csv --clock-control none --section SpeedOfLight -k regex:device_kernel --launch-skip 3 \
      --launch-count 1 $PY -m cutlens.bench.profile_harness "$REQ" --warmup 3 \
      > "$OUT/hand_$tag.csv" 2>> "$LOG"
    echo "   exit $? in $(since "$t0") s" | tee -a "$LOG"
  fi
done

BASE=$B; [ $DRY = 1 ] && BASE=$A
log "profile A --baseline B"
t0=$(now)
timeout 300 $PY -m cutlens profile "$T" --sample square --variant "$A" --baseline "$BASE" \
  --format json --timeout 240 > "$OUT/baseline.json" 2>> "$LOG"
rc=$?
s=$(since "$t0"); record baseline_s "$s"
echo "   exit $rc in $s s" | tee -a "$LOG"

log "summary"
$PY benchmarks/issue24_summary.py "$OUT" 2>&1 | tee -a "$LOG"
rm -f "$TIMINGS"  # (issue24.json holds the timings: at most 8 files come back)
log "done"
