#!/usr/bin/env bash
# GPU-host run behind docs/bench/scale_*.json (issue #8): the same gemm_sm90 sweep with two
# bench workers sharing the one GPU, with one, and with two again; the same variants must come
# back verified from each. Then the GPU tests. Faster after gpu_run_gemm.sh (builds cached).
#   OUT=<dir> bash benchmarks/gpu_run_scale.sh
set -uo pipefail
export PYTHONPATH="$PWD/server${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:?set OUT}
TMPD=$(mktemp -d)  # per-run wall time and store timestamps, folded into scale_compare.json
log() { echo "== $(date +%T) $*"; }
T=templates/gemm_sm90.cu.jinja
GEMM=$(sed -n '/^GEMM=(/,/)$/p' benchmarks/gpu_run_gemm.sh)
eval "$GEMM"
log "build (square, cached when gpu_run_gemm.sh ran before)"
python3 -m cutlens bench $T --sample square --variants "${GEMM[@]}" --build-only --jobs 15 \
  > "$OUT/scale_build.txt" 2>&1; echo "   exit $?"
# two workers first, then one, then two again: a first-sweep effect shows in either order
for run in 2 1 2b; do
  w=${run%b}
  log "square sweep, $w worker(s) on GPU 0 ($run)"
  start=$(date +%s.%N)
  python3 -m cutlens bench $T --sample square --variants "${GEMM[@]}" --gpus 0 \
    --workers-per-gpu $w --format json -o "$OUT/scale_w$run.json" > /dev/null
  echo "   exit $?  wall $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s" \
    | tee "$TMPD/scale_w$run.wall"
  # when each result reached the store, seconds after the sweep started
  python3 - "$start" <<'PY' | tee "$TMPD/scale_w$run.ts"
import sqlite3, sys
start = float(sys.argv[1])
db = sqlite3.connect("templates/.cutlens/results.sqlite")
rows = db.execute("SELECT ts, kind, variant_name FROM runs WHERE ts >= ? ORDER BY ts",
                  (start,)).fetchall()
print(" ".join(f"{ts - start:.1f}" for ts, _, _ in rows))
PY
done
python3 - "$OUT" "$TMPD" <<'PY' | tee "$OUT/scale_compare.json"
import json, sys, pathlib
out, tmp = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
runs = ("1", "2", "2b")
docs = {w: json.loads((out / f"scale_w{w}.json").read_text()) for w in runs}
walls = {w: float((tmp / f"scale_w{w}.wall").read_text().split("wall ")[1].split()[0])
         for w in runs}
stored_at = {w: [float(x) for x in (tmp / f"scale_w{w}.ts").read_text().split()] for w in runs}
res = {w: {r["variant_name"]: r for r in d["results"]} for w, d in docs.items()}
same = sorted(res["1"]) == sorted(res["2"]) == sorted(res["2b"])
verified = {w: sorted(n for n, r in rs.items() if r.get("verified")) for w, rs in res.items()}
print(json.dumps({
    "gpu": docs["1"].get("gpu"), "variants": len(res["1"]),
    "executor": {w: docs[w].get("executor") for w in runs},
    "workers": {w: docs[w].get("workers") for w in runs},
    "same_variants": same, "verified": {w: len(v) for w, v in verified.items()},
    "same_verified": verified["1"] == verified["2"] == verified["2b"],
    "errors": {w: {n: r.get("error") for n, r in rs.items() if r.get("error")}
               for w, rs in res.items()},
    "wall_s": walls, "stored_at_s": stored_at, "wall_ratio_2_over_1": walls["2b"] / walls["1"],
}, indent=2))
PY
log "GPU tests"
python3 -m pytest -q -p no:cacheprovider -m gpu tests/unit/test_bench_gpu.py > "$OUT/pytest_gpu.txt" 2>&1
tail -3 "$OUT/pytest_gpu.txt"
log done
