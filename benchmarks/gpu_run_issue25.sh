#!/usr/bin/env bash
# Issue 25 on one H100/H200 (16 cores, nvcc 13.0, torch + transformers), everything under $OUT:
#  captured.toml   `cutlens capture` of a GPT-2-small-shaped model (2 layers, bf16, batch 8 x
#                  seq 512: M = 4096; torch.compile) with GPU times: the 4 GEMMs of a block
#  bench.json      `cutlens bench gemm_sm90.cu.jinja --samples captured --format json`: every
#                  row verified against the torch reference, "baseline" (torch per sample),
#                  "best", and "captured": per-sample winners and the weighted ratio vs
#                  torch.mm ("vs_torch", weighted by time)
#  summary.txt, run.log   the printed summary and everything the commands said
# The sweep is limited to 4 variant families (6 builds per sample, 24 CUTLASS TUs), so it
# fits: expected ~1.5 min capture (compile + 5 steps), ~2-3 min builds on 16 cores, ~1 min
# bench; about 5 minutes in all (the capture stops at 200 s, the bench at 300 s).
#
#   On the GPU host, in the repository root:  OUT=<dir> bash benchmarks/gpu_run_issue25.sh
#   Anywhere without a GPU (checks the plan):  OUT=<dir> bash benchmarks/gpu_run_issue25.sh --dry-run
#     (captures a 32-wide GPT-2 on the CPU under torch.compile, takes its samples into the
#      template, renders every selected sample x variant; DRY_BUILD=1 also builds one variant)
set -uo pipefail
export PYTHONPATH="$PWD/server${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:?set OUT}
mkdir -p "$OUT"
DRY=0; [ "${1:-}" = "--dry-run" ] && DRY=1
PY=${PYTHON:-python3}
REPO=$PWD
JOBS=${JOBS:-$(nproc)}
export CUTLENS_COMPILE_MEMORY=${CUTLENS_COMPILE_MEMORY:-110G}
LOG="$OUT/run.log"; SUMMARY="$OUT/summary.txt"
: > "$LOG"; : > "$SUMMARY"
log() { echo "== $(date +%T) $*" | tee -a "$LOG"; }
# The project: a copy of the shipped GEMM template whose cutlens.toml takes captured samples.
WORK=${WORK:-$(mktemp -d /tmp/issue25.XXXXXX)}
mkdir -p "$WORK/templates"
cp templates/gemm_sm90.cu.jinja templates/gemm_macros.cuh.jinja "$WORK/templates/"
printf 'samples_from = "captured"\njobs = %s\n' "$JOBS" > "$WORK/cutlens.toml"
T=templates/gemm_sm90.cu.jinja
# Four families of the grid: 128x128 cooperative 1x1, its pingpong 2x1, and the two large
# cooperative tiles with a cluster (each with and without the 128x64 epilogue tile).
VARIANTS=("128x128x64 1x1 cooperative persistent*" "128x128x64 2x1 pingpong persistent*"
          "128x256x64 2x1 cooperative persistent*" "256x128x64 1x2 cooperative persistent*")
{
  echo "host: $(nproc) cores; work project $WORK"
  nvidia-smi -L 2>&1 || echo "no nvidia-smi"
  nvcc --version 2>&1 | tail -1
  $PY -c "import torch, transformers; print('torch', torch.__version__, 'cuda', \
torch.cuda.is_available(), '| transformers', transformers.__version__)" 2>&1
} | tee -a "$SUMMARY"

if [ $DRY = 1 ]; then
  MODEL=(--tiny --batch 2 --seq 8 --steps 2)
else
  MODEL=(--batch 8 --seq 512 --steps 5)
fi
log "capture: GPT-2 ${MODEL[*]} under torch.compile"
(cd "$WORK" && $PY -m cutlens capture -o .cutlens/captured.toml --timeout 200 -- \
  $PY "$REPO/benchmarks/issue25_gpt2.py" "${MODEL[@]}") >> "$SUMMARY" 2>> "$LOG"
rc=$?; echo "   capture exit $rc" | tee -a "$LOG"
[ $rc = 0 ] || { tail -20 "$LOG"; exit 1; }
cp "$WORK/.cutlens/captured.toml" "$OUT/captured.toml"
(cd "$WORK" && $PY -m cutlens variants "$T" --samples captured --variants "${VARIANTS[@]}") \
  > "$OUT/variants.txt" 2>> "$LOG"
grep -E "^(  sample|[0-9]+ variant)" "$OUT/variants.txt" | tee -a "$SUMMARY"

if [ $DRY = 1 ]; then
  log "dry run: render every captured sample x selected variant (Jinja tier)"
  (cd "$WORK" && $PY -m cutlens check "$T" --samples captured --variants "${VARIANTS[@]}" \
    --no-nvcc) >> "$LOG" 2>&1; echo "   check exit $?" | tee -a "$LOG"
  if [ "${DRY_BUILD:-0}" = 1 ]; then
    log "dry run: build one variant of the first captured sample with the real nvcc"
    (cd "$WORK" && $PY -m cutlens bench "$T" --samples first --variants first --build-only \
      --jobs 1) 2>&1 | tee -a "$LOG"
  fi
  log "dry run: the weighted summary on a recorded report of these samples"
  $PY benchmarks/issue25_summary.py "$WORK" --fake >> "$SUMMARY" 2>> "$LOG"
  echo "   summary exit $?" | tee -a "$LOG"
  log "dry run done"; exit 0
fi

log "bench: gemm_sm90 on the captured samples, --jobs $JOBS"
(cd "$WORK" && timeout 300 $PY -m cutlens bench "$T" --samples captured \
  --variants "${VARIANTS[@]}" --jobs "$JOBS" --format json -o "$OUT/bench.json") \
  > /dev/null 2>> "$SUMMARY"; echo "   bench exit $?" | tee -a "$LOG"
$PY benchmarks/issue25_summary.py "$WORK" --report "$OUT/bench.json" 2>&1 | tee -a "$SUMMARY"
log done
