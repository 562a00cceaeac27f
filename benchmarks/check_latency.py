"""``cutlens check`` on a CUTLASS 3.x template vs plain ``nvcc -c`` of the same rendered file,
side by side: time to the first nvcc diagnostics (the quick pass), to the complete set (the
full pass), and a re-check of unchanged content.

Each repetition runs, alternately, plain ``nvcc`` (the full pass's exact command line) on the
rendered TU, and a fresh ``cutlens check`` process with an empty build cache; the check
process reports when the Jinja tier, the quick pass and the full pass finished. Two cases:
the clean first variant of ``templates/gemm_sm90.cu.jinja``, and the same with a
CollectiveBuilder configuration CUTLASS rejects (a static_assert).

Usage: python benchmarks/check_latency.py [--reps 2] [--out docs/bench/check_latency.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BAD_GRID = """[variants]
tile = [[64, 128, 64]]
cluster = [[1, 1]]
schedule = ["cooperative"]
scheduler = ["persistent"]
swizzle = [1]
raster = "heuristic"
decomposition = "heuristic"

"""

#: Runs in a fresh interpreter: the check, with timestamps of each tier.
CHECK = """
import json, sys, time
t0 = float(sys.argv[2])
from pathlib import Path
from cutlens.check.run import check_paths
from cutlens.template.selection import Selection
marks = []
def seen(diags):
    marks.append(time.time() - t0)
report = check_paths([Path(sys.argv[1])], Selection("first", "first"), on_diagnostics=seen)
done = time.time() - t0
t1 = time.time()
again = check_paths([Path(sys.argv[1])], Selection("first", "first"))
recheck = time.time() - t1
print(json.dumps({"jinja_s": marks[0], "quick_s": marks[1] if len(marks) > 1 else None,
                  "complete_s": done, "recheck_in_process_s": recheck,
                  "errors": sum(d.severity == "error" for d in report.diagnostics),
                  "same": [d.to_json() for d in report.diagnostics] ==
                          [d.to_json() for d in again.diagnostics]}))
"""


def workspace(bad: bool) -> Path:
    d = Path(tempfile.mkdtemp(prefix="cutlens-check-"))
    src = (REPO / "templates" / "gemm_sm90.cu.jinja").read_text()
    if bad:
        src = src[:src.index("[variants]")] + BAD_GRID + src[src.index("[bench]"):]
    (d / "gemm_sm90.cu.jinja").write_text(src)
    shutil.copy(REPO / "templates" / "gemm_macros.cuh.jinja", d)
    return d


def plain_nvcc(d: Path) -> dict:
    """Render the first sample x variant and compile it with the full pass's command."""
    from cutlens import config as config
    from cutlens.check.nvcc_tier import compile_options
    from cutlens.nvcc.pool import Mode
    from cutlens.nvcc.toolchain import command
    from cutlens.render.renderer import Renderer
    from cutlens.template.loader import load

    path = d / "gemm_sm90.cu.jinja"
    t = load(path, config.load(d))
    s = t.sample(None)
    unit = Renderer().render(t, s, t.variant(s, None))
    tu = d / "plain.cu"
    tu.write_text(unit.text)
    cmd = command(Mode.FULL, compile_options(t), tu, d / "plain.o")
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=d)
    return {"nvcc_c_s": time.time() - t0, "returncode": p.returncode}


def cutlens_check(d: Path) -> dict:
    t0 = time.time()
    p = subprocess.run([sys.executable, "-c", CHECK, str(d / "gemm_sm90.cu.jinja"), str(t0)],
                       capture_output=True, text=True, cwd=d)
    if p.returncode != 0:
        raise SystemExit(p.stderr)
    res = json.loads(p.stdout.strip().splitlines()[-1])
    t1 = time.time()
    cli = subprocess.run([sys.executable, "-m", "cutlens", "check", str(d / "gemm_sm90.cu.jinja"),
                          "--samples", "first", "--variants", "first"],
                         capture_output=True, text=True, cwd=d)
    res["recheck_cli_s"] = time.time() - t1
    res["recheck_cli_exit"] = cli.returncode
    return res


def case(bad: bool, reps: int) -> dict:
    runs = []
    for _ in range(reps):
        d = workspace(bad)
        plain = plain_nvcc(d)
        shutil.rmtree(d / ".cutlens", ignore_errors=True)
        check = cutlens_check(d)
        runs.append({**plain, **check})
        shutil.rmtree(d, ignore_errors=True)
    med = {k: statistics.median(r[k] for r in runs) for k in
           ("nvcc_c_s", "quick_s", "complete_s", "recheck_in_process_s", "recheck_cli_s")}
    return {"case": "static_assert in CollectiveBuilder config" if bad else "clean",
            "runs": runs, "median": med,
            "first_diagnostics_ratio": med["quick_s"] / med["nvcc_c_s"],
            "complete_ratio": med["complete_s"] / med["nvcc_c_s"]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    doc = {"benchmark": "cutlens check vs nvcc -c, gemm_sm90 first variant (CUTLASS 3.x)",
           "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "targets": {"first_diagnostics_ratio": 0.5, "complete_ratio": 1.05,
                       "recheck_s": 0.1},
           "cases": [case(False, args.reps), case(True, args.reps)]}
    text = json.dumps(doc, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
