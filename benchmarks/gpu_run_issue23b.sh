#!/usr/bin/env bash
# Issue 23 (shape-generic builds, compile time per build) on one H100/H200 (16 cores,
# nvcc 13.0), everything under $OUT:
#  generic.json   cold cache: the three-sample gemm_sm90 sweep (square, large, skinny; 159
#                 variants) with shape-generic builds: "builds" must be 13, every row
#                 verified; each row's "compile" has "phases" and "top_instantiations",
#                 "compile_summary" the dominant phase
#  static.json    the same sweep with --static-sizes (39 builds)
#  issue23b.json  each sample's winner in both sweeps (within_1pct), the interleaved A/B of
#                 the generic and static builds of both winners (--rounds 5), builds, the
#                 per-build phase times
#  trace.json     one build compiled with and without --time-trace, side by side, beside the
#                 sweeps: the trace's cost on a real CUTLASS unit (on a loaded 2-core host
#                 here the traced one took 3.5x the CPU, ptxas minutes instead of 0.4 s)
#                 and its top instantiations; stopped at 465 s from the start
#  run.log, tables.txt
# Expected: generic ~120 s (13 builds, 159 variants x ~0.55 s of timing, finalists),
# static ~220 s (39 builds), A/B ~45 s: ~6.5 minutes; the trace step runs beside them on
# spare cores. Limits: generic 180 s, static 270 s, A/B 70 s, trace 465 s from the start.
#
#   On the GPU host, in the repository root:  OUT=<dir> bash benchmarks/gpu_run_issue23b.sh
#   Anywhere without a GPU (checks the plan):  OUT=<dir> bash benchmarks/gpu_run_issue23b.sh --dry-run
#     (counts the builds of both modes, checks `cutlens variants --format json` units, runs
#      both modes and the comparison end to end on a host-side GEMM with CPU bench workers,
#      and builds the first generic gemm_sm90 unit with the real nvcc unless DRY_BUILD=0)
set -uo pipefail
export PYTHONPATH="$PWD/server${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT=${OUT:?set OUT}
mkdir -p "$OUT"
DRY=0; [ "${1:-}" = "--dry-run" ] && DRY=1
PY=${PYTHON:-python3}
T=templates/gemm_sm90.cu.jinja
JOBS=${JOBS:-$(nproc)}
SAMPLES=(--sample square --sample large --sample skinny)
export CUTLENS_COMPILE_MEMORY=${CUTLENS_COMPILE_MEMORY:-110G}
LOG="$OUT/run.log"; TABLES="$OUT/tables.txt"
: > "$LOG"; : > "$TABLES"
log() { echo "== $(date +%T) $*" | tee -a "$LOG"; }
now() { date +%s.%N; }
since() { $PY -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
START=$(now)
ROOT=$($PY -c "import sys; from pathlib import Path; from cutlens.config import find_root; \
print(find_root(Path(sys.argv[1]).resolve()))" "$T") || { echo "cutlens does not import"; exit 2; }
{
  echo "host: $(nproc) cores"; nvidia-smi -L 2>&1 || echo "no nvidia-smi"
  nvcc --version 2>&1 | tail -1
  echo "jobs $JOBS, build cache $ROOT/.cutlens/build"
} | tee -a "$TABLES"

count_builds() {  # distinct compile jobs of the three samples, shape-generic and static
  $PY - "$T" <<'PY'
import json, sys
from pathlib import Path
from cutlens import config
from cutlens.bench.template_sweep import build_groups
from cutlens.check.jinja_tier import jinja_check
from cutlens.nvcc.options import compile_options
from cutlens.render.renderer import Renderer
from cutlens.template.loader import load
from cutlens.template.selection import Selection
p = Path(sys.argv[1]).resolve()
t = load(p, config.load(config.find_root(p)))
sel = Selection(["square", "large", "skinny"], [])
out = {}
for generic in (True, False):
    jc = jinja_check(t, Renderer(), sel, shape_generic=generic)
    out["generic" if generic else "static"] = {
        "variants": len(jc.units), "failures": len(jc.failures),
        "builds": len(build_groups(jc.units, lambda u: compile_options(t, u))),
        "shapes": sorted({u.shapes or "static" for u in jc.units})}
print(json.dumps(out))
PY
}

if [ $DRY = 1 ]; then
  log "dry run: builds of the three-sample sweep, shape-generic and static"
  count_builds | tee -a "$TABLES"
  log "dry run: cutlens variants --format json gives one unit per build across samples"
  $PY -m cutlens variants "$T" "${SAMPLES[@]}" --format json > "$OUT/variants.json" 2>> "$LOG"
  $PY -c "import json,sys; d=json.load(open(sys.argv[1])); \
u={(s['name'],v['name']):v['unit'] for s in d['samples'] for v in s['variants']}; \
print('variants', len(u), 'units', len(set(u.values())))" "$OUT/variants.json" | tee -a "$TABLES"
  rm -f "$OUT/variants.json"
  log "dry run: both modes and the comparison on a host-side GEMM, CPU bench workers"
  W=$(mktemp -d)
  printf '[bench]\ndevice = "cpu"\nwarmup_ms = 1\nrep_ms = 5\nmin_iters = 5\nmax_iters = 50\nflush_bytes = 1048576\n' > "$W/cutlens.toml"
  $PY - "$W/t.cu.jinja" <<'PY'
import sys
sys.path.insert(0, "tests/unit"); sys.path.insert(0, "tests")
from test_shapes import GEMM
open(sys.argv[1], "w").write(GEMM)
PY
  (cd "$W" && $PY -m cutlens bench t.cu.jinja --format json -o generic.json > /dev/null \
     2>> "$LOG" && $PY -m cutlens bench t.cu.jinja --static-sizes --format json \
     -o static.json > /dev/null 2>> "$LOG"); echo "   benches exit $?" | tee -a "$LOG"
  $PY benchmarks/issue23b_compare.py "$W/generic.json" "$W/static.json" --no-ab \
    -o "$OUT/issue23b_dry.json" 2>&1 | tee -a "$TABLES"
  rm -rf "$W"
  if [ "${DRY_BUILD:-1}" = 1 ]; then
    log "dry run: build the first generic gemm_sm90 unit (three samples) with the real nvcc"
    $PY -m cutlens bench "$T" "${SAMPLES[@]}" --variants first --build-only --jobs 1 \
      2>&1 | tee -a "$LOG"
  fi
  log "dry run done"
  exit 0
fi

trace_step() {  # one build with and without --time-trace, side by side, on spare cores
  $PY - "$T" "$OUT/trace.json" "$1" <<'PY'
import json, shutil, subprocess, sys, tempfile, time
from pathlib import Path
t, left = Path(sys.argv[1]).resolve(), float(sys.argv[3])
procs, dirs, t0 = {}, {}, time.monotonic()
for mode in ("plain", "trace"):
    d = dirs[mode] = Path(tempfile.mkdtemp())
    for f in ("gemm_sm90.cu.jinja", "gemm_macros.cuh.jinja"):
        shutil.copy(t.parent / f, d / f)
    procs[mode] = subprocess.Popen(
        [sys.executable, "-m", "cutlens", "bench", "gemm_sm90.cu.jinja", "--sample", "square",
         "--variants", "first", "--build-only", "--jobs", "1",
         *(["--time-trace"] if mode == "trace" else [])],
        cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
doc = {}
for mode, p in procs.items():
    try:
        out, _ = p.communicate(timeout=max(1.0, left - (time.monotonic() - t0)))
        timed_out = False
    except subprocess.TimeoutExpired:
        import os, signal
        os.killpg(p.pid, signal.SIGINT)  # cutlens cancels its compiles (their nvcc groups)
        try:
            out = p.communicate(timeout=15)[0]
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out = p.communicate()[0]
        timed_out = True
    rec = next((dirs[mode] / ".cutlens" / "build").glob("*/*/build.json"), None)
    r = json.loads(rec.read_text()) if rec else {}
    doc[mode] = {"wall_s": round(time.monotonic() - t0, 1), "rc": p.returncode,
                 "timed_out": timed_out, "line": (out or "").strip()[-300:],
                 "phases": r.get("phases"),
                 "top_instantiations": (r.get("top_instantiations") or [])[:10],
                 "top_headers": (r.get("top_headers") or [])[:5]}
    shutil.rmtree(dirs[mode], ignore_errors=True)
p, q = doc["plain"]["phases"] or {}, doc["trace"]["phases"] or {}
doc["overhead_pct"] = {k: round(100 * (q[k] / p[k] - 1), 1) for k in p if k in q and p[k] > 0.2}
Path(sys.argv[2]).write_text(json.dumps(doc, indent=2) + "\n")
print(json.dumps({k: [doc[k]["wall_s"], doc[k]["timed_out"]] for k in ("plain", "trace")}),
      doc["overhead_pct"])
PY
}
count_builds | tee -a "$TABLES"
# (d) in the background from the start: the generic sweep's 13 builds leave 3 of 16 cores
# free; it is stopped at 465 s from the start (the traced build may not finish: its cost
# is the point)
log "(d) one build with and without --time-trace, in the background (465 s at most)"
trace_step 465 >> "$LOG" 2>&1 &
TRACE_PID=$!
log "(a) cold three-sample sweep, shape-generic builds, --jobs $JOBS"
rm -rf "$ROOT/.cutlens/build"
t0=$(now)
timeout 180 $PY -m cutlens bench "$T" "${SAMPLES[@]}" --jobs "$JOBS" --format table \
  -o "$OUT/generic.json" >> "$TABLES" 2>> "$LOG"; echo "   exit $?, $(since "$t0") s" | tee -a "$LOG"

log "(b) the same sweep with --static-sizes (39 builds), --jobs $JOBS"
t0=$(now)
timeout 270 $PY -m cutlens bench "$T" "${SAMPLES[@]}" --static-sizes --jobs "$JOBS" \
  --format table -o "$OUT/static.json" >> "$TABLES" 2>> "$LOG"
echo "   exit $?, $(since "$t0") s" | tee -a "$LOG"

log "(c) winners compared; generic vs static builds of both winners, interleaved"
timeout 70 $PY benchmarks/issue23b_compare.py "$OUT/generic.json" "$OUT/static.json" \
  --rounds 5 -o "$OUT/issue23b.json" 2>&1 | tee -a "$TABLES"
[ -s "$OUT/issue23b.json" ] || $PY benchmarks/issue23b_compare.py "$OUT/generic.json" \
  "$OUT/static.json" --no-ab -o "$OUT/issue23b.json" 2>&1 | tail -3 | tee -a "$LOG"
log "waiting for (d)"
wait "$TRACE_PID"

log "done in $(since "$START") s"
