#!/usr/bin/env bash
# GPU-host run behind docs/bench/scale_*.json (issue #8): the same gemm_sm90 sweep with one
# bench worker and with two workers sharing the one GPU; the same variants must come back
# verified from both. Then the GPU tests. Run after gpu_run_gemm.sh (its builds are cached).
#   OUT=<dir> bash benchmarks/gpu_run_scale.sh
set -uo pipefail
export PYTHONPATH="$PWD/server${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:?set OUT}
log() { echo "== $(date +%T) $*"; }
T=templates/gemm_sm90.cu.jinja
GEMM=$(sed -n '/^GEMM=(/,/)$/p' benchmarks/gpu_run_gemm.sh)
eval "$GEMM"
for w in 1 2; do
  log "square sweep, $w worker(s) on GPU 0"
  start=$(date +%s.%N)
  python3 -m cutlens bench $T --sample square --variants "${GEMM[@]}" --gpus 0 \
    --workers-per-gpu $w --format json -o "$OUT/scale_w$w.json" > /dev/null
  echo "   exit $?  wall $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s" \
    | tee "$OUT/scale_w$w.wall"
done
python3 - "$OUT" <<'PY' | tee "$OUT/scale_compare.json"
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
docs = {w: json.loads((out / f"scale_w{w}.json").read_text()) for w in (1, 2)}
walls = {w: float((out / f"scale_w{w}.wall").read_text().split("wall ")[1].split()[0])
         for w in (1, 2)}
res = {w: {r["variant_name"]: r for r in d["results"]} for w, d in docs.items()}
same = sorted(res[1]) == sorted(res[2])
verified = {w: sorted(n for n, r in rs.items() if r.get("verified")) for w, rs in res.items()}
print(json.dumps({
    "gpu": docs[1].get("gpu"), "variants": len(res[1]),
    "executor": {w: docs[w].get("executor") for w in (1, 2)},
    "workers": {w: docs[w].get("workers") for w in (1, 2)},
    "same_variants": same, "verified_1": len(verified[1]), "verified_2": len(verified[2]),
    "same_verified": verified[1] == verified[2],
    "errors": {w: {n: r.get("error") for n, r in rs.items() if r.get("error")}
               for w, rs in res.items()},
    "wall_s": walls, "wall_ratio_2_over_1": walls[2] / walls[1],
}, indent=2))
PY
log "GPU tests"
python3 -m pytest -q -p no:cacheprovider -m gpu tests/ > "$OUT/pytest_gpu.txt" 2>&1
tail -3 "$OUT/pytest_gpu.txt"
log done
