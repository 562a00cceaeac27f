#!/usr/bin/env bash
# A second GPU-host run: gemm_sm90 on the 4096^3 sample with more variants, and the fidelity
# check with the event loop doing the runner's amount of work. OUT=<dir> bash this
set -uo pipefail
export PYTHONPATH="$PWD/server${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:?set OUT}
log() { echo "== $(date +%T) $*"; }
GEMM=("128x256x64 2x1 cooperative persistent swizzle=8" "128x256x64 2x1 cooperative persistent swizzle=4"
      "256x128x64 1x2 cooperative persistent swizzle=8" "256x128x64 2x1 cooperative persistent swizzle=8"
      "128x256x64 1x2 cooperative persistent swizzle=8" "256x128x64 1x1 cooperative persistent swizzle=8"
      "128x256x64 2x1 cooperative streamk swizzle=1" "128x256x64 1x1 cooperative persistent swizzle=4"
      "128x256x64 2x1 cooperative persistent swizzle=1" "256x128x64 1x2 cooperative persistent swizzle=4"
      "128x256x64 1x1 cooperative streamk swizzle=1" "256x128x64 1x1 cooperative streamk swizzle=1")
log build
python3 -m cutlens bench templates/gemm_sm90.cu.jinja --sample square --variants "${GEMM[@]}" \
  --build-only --jobs 14 > "$OUT/gemm_square_build.txt" 2>&1; echo "   exit $?"
log "gemm_sm90 square sweep"
python3 -m cutlens bench templates/gemm_sm90.cu.jinja --sample square --variants "${GEMM[@]}" \
  --format json -o "$OUT/gemm_sm90_square_run2.json" > /dev/null; echo "   exit $?"
log fidelity
python3 benchmarks/cutlass_fidelity.py templates/gemm_sm90.cu.jinja square "${GEMM[0]}" "$OUT/fidelity.json"
log done
