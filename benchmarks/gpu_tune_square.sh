#!/usr/bin/env bash
# GPU-host run: widen gemm_sm90's grid for 4096^3 (raster order, swizzle 2/4/8, every cluster
# of the two large cooperative tiles), sweep it, A/B the best against torch.mm in rotating
# rounds, and re-run the runner-vs-event-loop fidelity check.
#   OUT=<dir> bash this [GRID.toml]   (default benchmarks/gpu/tune_large_tiles.toml)
set -uo pipefail
export PYTHONPATH="$PWD/server${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:?set OUT}
log() { echo "== $(date +%T) $*"; }
T=templates/gemm_sm90_tune.cu.jinja
python3 - "${1:-benchmarks/gpu/tune_large_tiles.toml}" <<'PY'
import re, pathlib, sys
src = pathlib.Path("templates/gemm_sm90.cu.jinja").read_text()
grid = pathlib.Path(sys.argv[1]).read_text()
# the grid file replaces [variants] from `tile =` through skip_if; it may end in [[variant]]s
src = re.sub(r'(?ms)^tile = .*?^skip_if = """.*?"""\n', lambda m: grid, src, count=1)
pathlib.Path("templates/gemm_sm90_tune.cu.jinja").write_text(src)
PY
python3 -m cutlens variants $T > "$OUT/tune_variants.txt"; grep -c "^  \\[" "$OUT/tune_variants.txt"
log build
python3 -m cutlens bench $T --sample square --build-only --jobs 15 > "$OUT/tune_build.txt" 2>&1
echo "   exit $? ($(grep -c '^ok' "$OUT/tune_build.txt") ok)"
log sweep
python3 -m cutlens bench $T --sample square --format json -o "$OUT/tune_square.json" > /dev/null
echo "   exit $?"
python3 - "$OUT/tune_square.json" > "$OUT/top.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rs = sorted((r for r in d["results"] if r.get("ms") and r.get("verified")), key=lambda r: r["ms"])
print(d["baseline"]["square"]["ms"], file=sys.stderr)
for r in rs[:4]:
    print(r["variant_name"])
PY
cat "$OUT/top.txt"
mapfile -t TOP < "$OUT/top.txt"
python3 benchmarks/cublas_kernel.py 4096 4096 4096 || true
python3 benchmarks/cublas_kernel.py 8192 8192 8192 || true
python3 benchmarks/cublas_kernel.py 1024 4096 4096 || true
log "A/B interleaved"
python3 benchmarks/ab_interleave.py $T square "$OUT/ab_square.json" --rounds 7 "${TOP[@]}"
log fidelity
python3 benchmarks/cutlass_fidelity.py $T square "${TOP[0]}" "$OUT/fidelity.json"
log done
