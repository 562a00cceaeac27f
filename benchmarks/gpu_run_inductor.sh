#!/usr/bin/env bash
# Issue 15 on one H200: Inductor's own CUTLASS3xGemmTemplate (the torch installed there) on a
# bf16 4096³ GEMM, several ops × swizzles built once per op and benchmarked by cutlens through
# Inductor's kernel ABI (verified against X @ W), beside Inductor's own max-autotune of the
# same GEMM, in one run. Writes under $OUT:
#   inductor_cutlens.json   cutlens bench --format json of the configured ops × swizzles
#   inductor_autotune.json  Inductor's AUTOTUNE table (every choice's time), its pick
#   inductor_bridge.json    the two side by side (benchmarks/inductor_compare.py)
#   inductor.log            what the commands said
#   On the GPU host, in the repository root:  OUT=<dir> bash benchmarks/gpu_run_inductor.sh
set -uo pipefail
export PYTHONPATH="$PWD/server${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:?set OUT}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
REPO=$PWD
LOG="$OUT/inductor.log"
export CUTLENS_COMPILE_MEMORY=${CUTLENS_COMPILE_MEMORY:-110G}
P=$(mktemp -d /tmp/inductor-proj.XXXX)
GT=$($PY -c "import torch, pathlib; print(pathlib.Path(torch.__file__).parent / '_inductor/codegen/cutlass/gemm_template.py')")
SAMPLE='{"X": {"dtype": "bfloat16", "size": [4096, 4096]}, "W": {"dtype": "bfloat16", "size": [4096, 4096], "stride": [1, 4096]}, "Y": {"dtype": "bfloat16", "size": [4096, 4096]}}'
cat > "$P/cutlens.toml" <<TOML
arch = "sm_90a"
[inductor]
max_ops = ${MAX_OPS:-6}
swizzles = [1, 2, 4, 8]
timeout_s = 500
[inductor.samples.square]
X = { dtype = "bfloat16", size = [4096, 4096] }
W = { dtype = "bfloat16", size = [4096, 4096], stride = [1, 4096] }
Y = { dtype = "bfloat16", size = [4096, 4096] }
TOML
cd "$P"
{
  echo "== $(date +%T) torch $($PY -c 'import torch; print(torch.__version__)'), $GT"
  echo "== $(date +%T) the cases"
  $PY -m cutlens variants "$GT"
  echo "== $(date +%T) cutlens bench (builds, then every case verified and timed)"
  s=$(date +%s)
  $PY -m cutlens bench "$GT" --format json -o "$OUT/inductor_cutlens.json" --jobs "$(nproc)" \
    > /dev/null
  echo "   exit $?, $(( $(date +%s) - s )) s"
  echo "== $(date +%T) Inductor's own max-autotune (ATEN,CUTLASS; ${CONFIGS:-8} configs x 4 swizzles)"
  s=$(date +%s)
  timeout 400 $PY -m cutlens.inductor.autotune --cache "$P/.cutlens/inductor-autotune" \
    --sample "$SAMPLE" --configs "${CONFIGS:-8}" -o "$OUT/inductor_autotune.json"
  echo "   exit $?, $(( $(date +%s) - s )) s"
  $PY "$REPO/benchmarks/inductor_compare.py" "$P" "$OUT/inductor_cutlens.json" \
    "$OUT/inductor_autotune.json" -o "$OUT/inductor_bridge.json"
  cp "$P/.cutlens/results.sqlite" "$OUT/inductor_results.sqlite" 2>/dev/null
} 2>&1 | tee "$LOG"
