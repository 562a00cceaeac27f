#!/usr/bin/env bash
# Issue 18 on one H200 (16 cores, nvcc 13.0, torch + triton), everything under $OUT:
#  (a) square.json        the default gemm_sm90 square sweep (bf16 4096³, 53 variants from 13
#                         builds) from a cold build cache: results, "cold", "sweep_wall_s",
#                         "builds", "gpu", "best" (vs torch.mm), plus "process_wall_s", "jobs"
#  (c) fidelity.json      cutlens vs triton.testing.do_bench on the sweep's 3 best builds and
#                         torch.mm, in one process: "max_abs_diff_pct", "within_2pct"
#  (b) shapes.json        the large (8192³) and skinny (1024×4096×4096) sweeps (26 builds), and
#      three_shapes.json  the three-shape table vs torch.mm with the checks of the issue
#      tables.txt, run.log  the printed tables and everything the commands said
# Expected: (a) ~60-100 s, (c) ~40 s (21 rounds; ROUNDS=N to change), (b) ~150 s; about 5
# minutes in all (the sweep of (b) stops at 330 s). Nothing is fetched: cattrs and nvidia-cutlass come as carried wheels.
#
#   On the GPU host, in the repository root:  OUT=<dir> bash benchmarks/gpu_run_issue18.sh
#   Anywhere without a GPU (checks the plan):  OUT=<dir> bash benchmarks/gpu_run_issue18.sh --dry-run
#     (renders every variant, counts builds, builds the first one with the real nvcc unless
#      DRY_BUILD=0, plans the fidelity run and runs the summary on what exists)
set -uo pipefail
export PYTHONPATH="$PWD/server${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:?set OUT}
mkdir -p "$OUT"
DRY=0; [ "${1:-}" = "--dry-run" ] && DRY=1
PY=${PYTHON:-python3}
T=templates/gemm_sm90.cu.jinja
JOBS=${JOBS:-$(nproc)}
# The VM's memory grows as it is used (MemTotal starts far below its 128 GiB limit), so the
# compile pool's memory bound is given, not read: 13 CUTLASS 3.x TUs at ~3.5 GB fit easily.
export CUTLENS_COMPILE_MEMORY=${CUTLENS_COMPILE_MEMORY:-110G}
LOG="$OUT/run.log"
TABLES="$OUT/tables.txt"
: > "$LOG"; : > "$TABLES"
log() { echo "== $(date +%T) $*" | tee -a "$LOG"; }
now() { date +%s.%N; }
since() { $PY -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
ROOT=$($PY -c "import sys; from pathlib import Path; from cutlens.config import find_root; \
print(find_root(Path(sys.argv[1]).resolve()))" "$T") || { echo "cutlens does not import"; exit 2; }

{
  echo "host: $(nproc) cores, $(awk '/MemTotal|MemAvailable/ {printf "%s %.1f GiB  ", $1, $2/1048576}' /proc/meminfo)"
  nvidia-smi -L 2>&1 || echo "no nvidia-smi"
  nvcc --version 2>&1 | tail -1
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1
  $PY -c "import triton; print('triton', triton.__version__)" 2>&1
  $PY -c "from importlib.metadata import version as v; from cutlens.nvcc.toolchain import \
cutlass_include_dirs as d; print('cattrs', v('cattrs'), '| nvidia-cutlass', v('nvidia-cutlass'), d()[:1])" 2>&1
  echo "jobs $JOBS, compile memory $CUTLENS_COMPILE_MEMORY, build cache $ROOT/.cutlens/build"
} | tee -a "$TABLES"

if [ $DRY = 1 ]; then
  log "dry run: render every sample x variant (Jinja tier), count the builds"
  $PY -m cutlens check "$T" --samples square --samples large --samples skinny --no-nvcc \
    >> "$LOG" 2>&1; echo "   check exit $?" | tee -a "$LOG"
  $PY - "$T" <<'PY' | tee -a "$TABLES"
import sys
from pathlib import Path
from cutlens import config
from cutlens.template.loader import load
p = Path(sys.argv[1]).resolve()
t = load(p, config.load(config.find_root(p)))
for s in ("square", "large", "skinny"):
    vs = t.variants(t.sample(s))
    print(f"{s}: {len(vs)} variants, {len({v.build_name for v in vs})} builds "
          f"(runtime: {', '.join(t.runtime)})")
PY
  if [ "${DRY_BUILD:-1}" = 1 ]; then
    log "dry run: build the first square variant with the real nvcc (--jobs 1)"
    $PY -m cutlens bench "$T" --sample square --variants first --build-only --jobs 1 \
      2>&1 | tee -a "$LOG"
  fi
  log "dry run: plan the fidelity run (three builds, torch.mm)"
  $PY benchmarks/fidelity_do_bench.py "$T" --sample square --dry-run --no-build \
    --variants "128x128x64 1x1 cooperative persistent swizzle=1" \
    "256x128x64 1x2 cooperative persistent swizzle=4 along_m epi=128x64" \
    "128x256x64 2x1 cooperative streamk-forced swizzle=1" -o "$OUT/fidelity_plan.json" \
    2>&1 | tee -a "$LOG"
  $PY benchmarks/issue18_summary.py "$OUT" --jobs "$JOBS" >> "$LOG" 2>&1
  log "dry run done"
  exit 0
fi

# (a) the cold square sweep: no build cache, every TU compiled; bench starts as builds land.
log "(a) cold gemm_sm90 square sweep, --jobs $JOBS"
rm -rf "$ROOT/.cutlens/build"
t0=$(now)
$PY -m cutlens bench "$T" --sample square --jobs "$JOBS" --format table -o "$OUT/square.json" \
  >> "$TABLES" 2>> "$LOG"; rc=$?
WALL=$(since "$t0")
echo "   exit $rc, ${WALL} s (process)" | tee -a "$LOG"
$PY benchmarks/issue18_summary.py "$OUT" --process-wall-s "$WALL" --jobs "$JOBS" > /dev/null 2>> "$LOG"
$PY -c "import json,sys; d=json.load(open(sys.argv[1])); print({k: d.get(k) for k in \
('gpu','cold','sweep_wall_s','process_wall_s','builds','compiled','variants','best')})" \
  "$OUT/square.json" 2>&1 | tee -a "$LOG"

# (c) fidelity on the sweep's three best builds (built: the cache is warm now) and torch.mm.
log "(c) fidelity: cutlens vs triton.testing.do_bench"
$PY benchmarks/fidelity_do_bench.py "$T" --sample square --from-report "$OUT/square.json" \
  --top 3 --rounds "${ROUNDS:-21}" -o "$OUT/fidelity.json" 2>&1 | tee -a "$LOG"

# (b) the two other shapes (their TUs differ: sizes are compiled in), then the table.
log "(b) large and skinny sweeps"
timeout 330 $PY -m cutlens bench "$T" --sample large --sample skinny --jobs "$JOBS" \
  --format table -o "$OUT/shapes.json" >> "$TABLES" 2>> "$LOG"; echo "   exit $?" | tee -a "$LOG"
$PY benchmarks/issue18_summary.py "$OUT" --process-wall-s "$WALL" --jobs "$JOBS" 2>&1 \
  | tee -a "$TABLES"
log done
