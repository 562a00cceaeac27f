#!/usr/bin/env bash
# This round's GPU plan (issues 22-25) in three device calls of under 10 minutes each, on one
# H100 or H200 (16 cores, nvcc 13.0, torch + triton + nvidia-ml-py); the machine stays warm
# between the calls, so B and C reuse A's build cache. Each phase packs what it wrote into
# $OUT/<phase>.tgz (the device returns at most 8 files) beside its summary texts.
#
#   PHASE=A  issue 22 + 23 (shape-generic): ONE cold three-sample gemm_sm90 sweep (square,
#            large, skinny: 13 builds for 159 variants), then right after it, per sample,
#            benchmarks/fidelity_do_bench.py --lens-check (the sweep's best, finalists and
#            3 best builds + torch.mm, triton.testing.do_bench median, interleaved rounds),
#            then benchmarks/issue22_summary.py.                                 ~8 min
#   PHASE=B  issue 23 (static vs generic): the winners' static-size builds (--static-sizes
#            --variants <the three winners>), benchmarks/issue23b_compare.py (interleaved
#            A/B of each winner's generic and static builds); issue 25: capture + bench on
#            the captured samples (benchmarks/gpu_run_issue25.sh).                ~8 min
#   PHASE=C  issue 24: two profiles, --baseline, ncu by hand (gpu_run_issue24.sh, builds
#            from the cache: KEEP_CACHE=1); issue 23 (validity): gpu_run_issue23a.sh with
#            what is left of the call.                                           ~9 min
#
#   OUT=<dir> PHASE=A bash benchmarks/gpu_round.sh [--dry-run]
set -uo pipefail
export PYTHONPATH="$PWD/server${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:?set OUT}; PHASE=${PHASE:?set PHASE to A, B or C}
DRY=0; [ "${1:-}" = "--dry-run" ] && DRY=1
PY=${PYTHON:-python3}
T=templates/gemm_sm90.cu.jinja
JOBS=${JOBS:-$(nproc)}
export CUTLENS_COMPILE_MEMORY=${CUTLENS_COMPILE_MEMORY:-110G}
W=$(mktemp -d)            # everything this phase writes; packed into $OUT/$PHASE.tgz
mkdir -p "$OUT" "$W/logs"
LOG="$W/logs/round_$PHASE.log"
START=$(date +%s)
log() { echo "== $(date +%T) [+$(( $(date +%s) - START ))s] $*" | tee -a "$LOG"; }
# a step's limit: its own cap, or what is left of the phase's budget (at least 5 s)
BUDGET_S=${BUDGET_S:-560}
cap() { local left=$((START + BUDGET_S - $(date +%s))); [ "$left" -lt 5 ] && left=5
        [ "$1" -lt "$left" ] && echo "$1" || echo "$left"; }
pack() { cp "$LOG" "$OUT/" 2>/dev/null; tar -C "$W" -czf "$OUT/$PHASE.tgz" . ; rm -rf "$W"; }
trap pack EXIT
ROOT=$($PY -c "import sys; from pathlib import Path; from cutlens.config import find_root; \
print(find_root(Path(sys.argv[1]).resolve()))" "$T") || { echo "cutlens does not import"; exit 2; }
# the measured ceilings: measured once on this card, kept for the later phases
export CUTLENS_CEILINGS=${CUTLENS_CEILINGS:-$ROOT/.cutlens/ceilings.json}
SAMPLES=(square large skinny)
{
  echo "phase $PHASE, host: $(nproc) cores"; nvidia-smi -L 2>&1 || echo "no nvidia-smi"
  nvcc --version 2>&1 | tail -1
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1
} | tee -a "$LOG"

phase_a() {
  local sweep="$W/a/sweep3.json"; mkdir -p "$W/a/checks"
  log "A1: cold three-sample gemm_sm90 sweep (shape-generic builds), --jobs $JOBS"
  rm -rf "$ROOT/.cutlens/build"
  if [ $DRY = 1 ]; then   # no GPU: the units the sweep would compile, and one unit's build
    $PY -m cutlens variants "$T" --sample square --sample large --sample skinny \
      --format json > "$W/a/variants.json" 2>> "$LOG"
    $PY -c "import json,sys; d=json.load(open(sys.argv[1])); rows=[v for s in d['samples'] \
for v in s['variants']] if isinstance(d, dict) and 'samples' in d else d; \
print(len(rows), 'variants,', len({v.get('unit') for v in rows}), 'units')" \
      "$W/a/variants.json" 2>&1 | tee -a "$LOG"
    return
  fi
  timeout "$(cap 420)" $PY -m cutlens bench "$T" --sample square --sample large \
    --sample skinny --jobs "$JOBS" --format json -o "$sweep" > /dev/null 2>> "$LOG"
  echo "   exit $?" | tee -a "$LOG"
  [ -s "$sweep" ] || { log "no sweep report"; return; }
  $PY -c "import json,sys; from cutlens.bench import report as r; from rich.console import \
Console; r.print_table(json.load(open(sys.argv[1])), Console(file=sys.stdout, width=230))" \
    "$sweep" > "$W/a/table.txt" 2>&1
  for S in "${SAMPLES[@]}"; do
    cp "$sweep" "$W/a/sweep_$S.json"    # issue22_summary reads one report per shape
    [ $DRY = 1 ] && continue
    log "A2: do_bench lens check, $S (the sweep's own libraries, interleaved with torch.mm)"
    timeout "$(cap 75)" $PY benchmarks/fidelity_do_bench.py "$T" --sample "$S" \
      --lens-check "$sweep" --rounds "${ROUNDS:-7}" -o "$W/a/checks/check_$S.json" \
      >> "$LOG" 2>&1; echo "   exit $?" | tee -a "$LOG"
  done
  $PY benchmarks/issue22_summary.py "$W/a" --checks "$W/a/checks" > "$W/a/summary.txt" 2>&1
  cp "$W/a/summary.txt" "$OUT/summary_A.txt"; cp "$W/a/table.txt" "$OUT/table_A.txt"
}

phase_b() {
  mkdir -p "$W/b"
  local generic="$ROOT/.cutlens/round/sweep3.json"
  if [ -s "$generic" ]; then
    mapfile -t WIN < <($PY -c "import json,sys; d=json.load(open(sys.argv[1])); \
print('\n'.join(sorted({b['variant_name'] for b in (d.get('best') or {}).values()})))" "$generic")
    log "B1: static-size builds of the winners: ${WIN[*]}"
    timeout "$(cap 200)" $PY -m cutlens bench "$T" --sample square --sample large \
      --sample skinny --static-sizes --variants "${WIN[@]}" --jobs "$JOBS" --format json \
      -o "$W/b/static.json" > /dev/null 2>> "$LOG"; echo "   exit $?" | tee -a "$LOG"
    log "B2: generic vs static winners, interleaved A/B"
    timeout "$(cap 90)" $PY benchmarks/issue23b_compare.py "$generic" "$W/b/static.json" \
      --rounds 5 -o "$W/b/issue23b.json" > "$W/b/compare.txt" 2>&1
    echo "   exit $?" | tee -a "$LOG"; cat "$W/b/compare.txt" >> "$LOG"
    cp "$W/b/compare.txt" "$OUT/compare_B.txt"
  else
    log "B1: no phase A sweep on this machine ($generic): static comparison skipped"
  fi
  log "B3: issue 25 (capture, bench on the captured samples)"
  mkdir -p "$W/b/i25"
  OUT="$W/b/i25" timeout "$(cap 330)" bash benchmarks/gpu_run_issue25.sh \
    $([ $DRY = 1 ] && echo --dry-run) >> "$LOG" 2>&1; echo "   exit $?" | tee -a "$LOG"
  cp "$W/b/i25/summary.txt" "$OUT/summary_B25.txt" 2>/dev/null
}

phase_c() {
  mkdir -p "$W/c/i24" "$W/c/i23a"
  log "C1: issue 24 (profiles from the cached builds)"
  OUT="$W/c/i24" KEEP_CACHE=1 timeout "$(cap 240)" bash benchmarks/gpu_run_issue24.sh \
    $([ $DRY = 1 ] && echo --dry-run) >> "$LOG" 2>&1; echo "   exit $?" | tee -a "$LOG"
  cp "$W/c/i24/summary.txt" "$OUT/summary_C24.txt" 2>/dev/null
  local left=$((START + BUDGET_S - $(date +%s) - 20))
  log "C2: issue 23 validity with ${left}s left"
  OUT="$W/c/i23a" BUDGET=$((left > 60 ? left - 60 : 30)) timeout "$(cap "$left")" \
    bash benchmarks/gpu_run_issue23a.sh $([ $DRY = 1 ] && echo --dry-run) >> "$LOG" 2>&1
  echo "   exit $?" | tee -a "$LOG"
}

case $PHASE in
  A) phase_a; mkdir -p "$ROOT/.cutlens/round"; cp "$W/a/sweep3.json" "$ROOT/.cutlens/round/" 2>/dev/null ;;
  B) phase_b ;;
  C) phase_c ;;
  *) echo "PHASE: A, B or C"; exit 2 ;;
esac
log "phase $PHASE done"
