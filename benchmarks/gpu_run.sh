#!/usr/bin/env bash
# The GPU-host run behind docs/bench/*.json: cutlens bench over the shipped templates, a
# planted illegal-address variant, runner-vs-event-loop fidelity on a CUTLASS build, and the
# GPU tests. On the GPU host, in the repository root: OUT=<dir> bash benchmarks/gpu_run.sh
set -uo pipefail
export PYTHONPATH="$PWD/server${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:?set OUT}
log() { echo "== $(date +%T) $*"; }
bench() { python3 -m cutlens bench "$@" --format json > /dev/null; echo "   exit $?"; }

# The gemm_sm90 variants timed on the three bf16 shapes: the large-tile cooperative kernels
# that won an earlier H100 exploration, stream-K, and two small-tile references.
GEMM=("128x256x64 2x1 cooperative persistent swizzle=8" "128x256x64 2x1 cooperative persistent swizzle=4"
      "256x128x64 1x2 cooperative persistent swizzle=8" "256x128x64 2x1 cooperative persistent swizzle=8"
      "128x256x64 1x2 cooperative persistent swizzle=8" "256x128x64 1x1 cooperative persistent swizzle=8"
      "128x256x64 2x1 cooperative streamk-forced swizzle=1" "256x128x64 2x1 cooperative streamk-forced swizzle=1"
      "128x256x64 2x1 cooperative streamk swizzle=1" "128x128x64 1x1 cooperative persistent swizzle=1")
SHAPES=(--sample square --sample large --sample skinny)

nvidia-smi -L; nvcc --version | tail -1; python3 -c "import torch; print('torch', torch.__version__)"
log "prebuilding ${#GEMM[@]} gemm_sm90 variants x 3 shapes in the background"
python3 -m cutlens bench templates/gemm_sm90.cu.jinja "${SHAPES[@]}" --variants "${GEMM[@]}" \
  --build-only --jobs 15 > "$OUT/gemm_build.txt" 2>&1 &
BUILD=$!

log "GPU tests"
python3 -m pytest -q -p no:cacheprovider -m gpu tests/unit/test_bench_gpu.py > "$OUT/pytest_gpu.txt" 2>&1
tail -1 "$OUT/pytest_gpu.txt"

log "plain CUDA: copy, bias_act, softmax (large samples, every variant)"
bench templates/copy.cu.jinja -o "$OUT/copy.json" --jobs 1
bench templates/bias_act.cu.jinja --sample large -o "$OUT/bias_act.json" --jobs 1
bench templates/softmax.cu.jinja --sample large -o "$OUT/softmax.json" --jobs 1
log "planted illegal address"
bench benchmarks/gpu/fault.cu.jinja -o "$OUT/fault.json" --jobs 1

log "waiting for the gemm builds"
wait $BUILD; echo "   build exit $?"; grep -c '^ok' "$OUT/gemm_build.txt"
log "gemm_sm90 sweep"
bench templates/gemm_sm90.cu.jinja "${SHAPES[@]}" --variants "${GEMM[@]}" -o "$OUT/gemm_sm90.json"

log "fidelity: runner vs a plain CUDA-event loop on a CUTLASS build"
python3 benchmarks/cutlass_fidelity.py templates/gemm_sm90.cu.jinja square "${GEMM[0]}" "$OUT/fidelity.json"
log done
