#!/usr/bin/env bash
# GPU-host run behind docs/bench/gemm_sm90*.json: gemm_sm90's leading variants (the earlier
# sweeps' winners and the 5 tuned [[variant]]s) on the three bf16 shapes, the table and plot,
# then each shape's best three in interleaved rounds against torch.mm (ab_interleave.py).
# On the GPU host, in the repository root: OUT=<dir> bash benchmarks/gpu_run_gemm.sh
set -uo pipefail
export PYTHONPATH="$PWD/server${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:?set OUT}
log() { echo "== $(date +%T) $*"; }
T=templates/gemm_sm90.cu.jinja
GEMM=("256x128x64 1x2 cooperative persistent swizzle=4 along_m epi=128x64"
      "256x128x64 1x2 cooperative persistent swizzle=8 along_m epi=128x64"
      "128x256x64 2x1 cooperative persistent swizzle=2 along_m epi=128x64"
      "128x256x64 1x1 cooperative persistent swizzle=8 along_m epi=128x64"
      "128x256x64 2x1 cooperative streamk swizzle=1 along_m epi=128x64"
      "128x256x64 2x1 cooperative persistent swizzle=8" "128x256x64 2x1 cooperative persistent swizzle=4"
      "256x128x64 1x2 cooperative persistent swizzle=8" "256x128x64 2x1 cooperative persistent swizzle=8"
      "128x256x64 1x2 cooperative persistent swizzle=8" "256x128x64 1x1 cooperative persistent swizzle=8"
      "128x256x64 2x1 cooperative streamk-forced swizzle=1" "128x256x64 2x1 cooperative streamk swizzle=1"
      "128x128x64 1x1 cooperative persistent swizzle=1")
SHAPES=(--sample square --sample large --sample skinny)
nvidia-smi -L; nvcc --version | tail -1; python3 -c "import torch; print('torch', torch.__version__)"
log "build ${#GEMM[@]} variants x 3 shapes"
python3 -m cutlens bench $T "${SHAPES[@]}" --variants "${GEMM[@]}" --build-only --jobs 15 \
  > "$OUT/gemm_build.txt" 2>&1
echo "   exit $? ($(grep -c '^ok' "$OUT/gemm_build.txt") ok)"
log "bench"
python3 -m cutlens bench $T "${SHAPES[@]}" --variants "${GEMM[@]}" --format json \
  -o "$OUT/gemm_sm90.json" --plot "$OUT/gemm_sm90.png" > /dev/null; echo "   exit $?"
for s in square large skinny; do
  python3 - "$OUT/gemm_sm90.json" $s > "$OUT/top_$s.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rs = sorted((r for r in d["results"] if r["sample"] == sys.argv[2] and r.get("ms")
             and r.get("verified")), key=lambda r: r["ms"])
print("\n".join(r["variant_name"] for r in rs[:3]))
PY
  mapfile -t TOP < "$OUT/top_$s.txt"
  log "A/B $s"
  python3 benchmarks/ab_interleave.py $T $s "$OUT/ab_$s.json" --rounds 5 "${TOP[@]}"
done
log done
