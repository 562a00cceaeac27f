"""Issue 23 (first part): invalid variants before any full build, measured.

On gemm_sm90 with its ``skip_if`` removed (every combination of its compile-time keys; the
runtime keys pinned to one value each, which changes no build), cold caches:

1. the validity pass (:mod:`cutlens.check.grid_validity`: nvcc's host and device front
   ends over batches of builds), its CPU time (every process it ran, from ``wait4``);
2. a real full compile (``nvcc -c -O3``, the pool's FULL mode, what a build runs before its
   link) of every build in cutlens's compile pool, its CPU time (this process's reaped
   children) and pass/fail per build;
3. agreement (every build called invalid fails, every build called valid compiles) and the
   ratio of the two CPU times (target <= 15 %).

``--source inductor`` does the same on Inductor's CUTLASS 3.x op list for one shape (bf16
4096³, W column-major) through the Inductor bridge: every op ``gen_ops`` yields (the
``[inductor]`` table with ``ops = ["x"]``, which every op name matches), swizzle pinned.

``--limit N`` keeps the first N builds; ``--full invalid`` compiles only the builds called
invalid (they stop in the front end: cheap), for a dry run on a small machine.

    PYTHONPATH=server python benchmarks/validity_bench.py --out validity.json --jobs 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from cutlens import config
from cutlens.check.grid_validity import grid_validity
from cutlens.nvcc.options import compile_options, job_for
from cutlens.nvcc.pool import Compiler, Mode
from cutlens.nvcc.toolchain import find_nvcc, nvcc_version
from cutlens.render.renderer import Renderer
from cutlens.template.discovery import load_template
from cutlens.template.model import Variant
from cutlens.template.selection import Selection

REPO = Path(__file__).resolve().parent.parent
PINNED = {"swizzle": "swizzle = [1]", "raster": 'raster = ["heuristic"]',
          "decomposition": 'decomposition = ["heuristic"]', "splits": "splits = [1]"}


def build_id(v: Variant) -> str:
    return v.build_name or v.name


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def grid_template(folder: Path) -> Path:
    """gemm_sm90 without its skip_if, runtime keys pinned, in ``folder``."""
    src = (REPO / "templates" / "gemm_sm90.cu.jinja").read_text()
    src = re.sub(r'skip_if = """.*?"""\n', "", src, flags=re.S)
    for key, line in PINNED.items():
        src = re.sub(rf"^{key} = \[.*\].*$", line, src, count=1, flags=re.M)
    shutil.copy(REPO / "templates" / "gemm_macros.cuh.jinja", folder)
    out = folder / "gemm_sm90_all.cu.jinja"
    out.write_text(src)
    return out


INDUCTOR_TOML = """\
arch = "sm_90a"
[inductor]
source = "gemm_template.py"
ops = ["x"]
swizzles = [1]
[inductor.samples.square]
X = { dtype = "bfloat16", size = [4096, 4096] }
W = { dtype = "bfloat16", size = [4096, 4096], stride = [1, 4096] }
Y = { dtype = "bfloat16", size = [4096, 4096] }
"""


def inductor_template(folder: Path) -> Path:
    """A copy of the installed Inductor CUTLASS GEMM template, every op of one shape."""
    import torch

    installed = Path(torch.__file__).parent / "_inductor" / "codegen" / "cutlass" / \
        "gemm_template.py"
    shutil.copy(installed, folder / "gemm_template.py")
    (folder / "cutlens.toml").write_text(INDUCTOR_TOML)
    return folder / "gemm_template.py"


async def full_compiles(units: list, t, jobs: int, cache: Path, budget_s: float) -> dict:
    compiler = Compiler(cache, jobs=jobs)
    results: dict[str, dict] = {}

    async def one(u) -> None:
        res = await compiler.compile(job_for(u, Mode.FULL, compile_options(t, u)))
        first = res.errors[0].message.splitlines()[0] if res.errors else ""
        results[build_id(u.variant)] = {"ok": res.ok, "wall_s": round(res.duration_s, 2),
                                         "error": first[:300], "cached": res.cached}

    tasks = [asyncio.ensure_future(one(u)) for u in units]
    _, pending = await asyncio.wait(tasks, timeout=budget_s)
    for p in pending:
        p.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return results


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--jobs", type=int, default=16)
    ap.add_argument("--limit", type=int, default=0, help="the first N builds only")
    ap.add_argument("--full", choices=("all", "invalid", "none"), default="all")
    ap.add_argument("--budget", type=float, default=330.0,
                    help="seconds the full compiles may take in all (the rest: not done)")
    ap.add_argument("--chunk", type=int, default=None)
    ap.add_argument("--source", choices=("gemm", "inductor"), default="gemm")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cutlens-issue23a-"))
    path = grid_template(work) if args.source == "gemm" else inductor_template(work)
    t = load_template(path, config.load(work))
    if t.errors:
        print("\n".join(d.message for d in t.errors), file=sys.stderr)
        return 2
    pairs = Selection(samples="square", variants="all").pairs(t)
    if args.limit:
        pairs = pairs[:args.limit]
    sel = Selection(samples="square",
                    variants=[v.name for _, v in pairs] if args.limit else "all")

    c0, w0 = children_cpu(), time.monotonic()
    gv = grid_validity(t, Renderer(), sel, work / "validity-cache", jobs=args.jobs,
                       chunk=args.chunk)
    validity_wall = time.monotonic() - w0
    validity_children = children_cpu() - c0
    verdicts = {build_id(o.unit.variant): o for o in gv.outcomes}
    rows = {build_id(r.variant): r for r in gv.rows}
    print(f"validity: {len(gv.outcomes)} builds, {len(gv.invalid)} invalid, "
          f"{gv.stats.cpu_s:.1f} s CPU ({gv.stats.side_cpu_s}), {validity_wall:.1f} s wall, "
          f"{gv.stats.runs} front-end runs, {gv.stats.rounds} rounds", flush=True)

    units = [o.unit for o in gv.outcomes]
    if args.full == "invalid":
        units = [o.unit for o in gv.outcomes if o.verdict.valid is False]
    elif args.full == "none":
        units = []
    c1, w1 = children_cpu(), time.monotonic()
    full = asyncio.run(full_compiles(units, t, args.jobs, work / "build", args.budget)) \
        if units else {}
    full_wall = time.monotonic() - w1
    full_cpu = children_cpu() - c1
    print(f"full compiles: {len(full)}/{len(units)} done, {full_cpu:.1f} s CPU, "
          f"{full_wall:.1f} s wall", flush=True)

    builds = []
    disagree = []
    for name, o in verdicts.items():
        r = rows[name]
        f = full.get(name)
        row = {"build": name, "values": o.unit.variant.build_values, "valid": r.valid,
               "how": o.verdict.how}
        if r.valid is not True:
            row.update(reason=r.reason, file=Path(r.file).name if r.file else "", line=r.line,
                       keys=list(r.keys))
        if f is not None:
            row["full"] = f
            if r.valid is not None and f["ok"] != r.valid:
                disagree.append(name)
        builds.append(row)
    compared = [b for b in builds if "full" in b and b["valid"] is not None]
    complete = args.full == "all" and len(full) == len(verdicts)
    doc = {
        "template": "templates/gemm_sm90.cu.jinja without skip_if (runtime keys pinned)"
        if args.source == "gemm" else "Inductor's gemm_template.py, every CUTLASS 3.x op of "
        "bf16 4096^3 (swizzle pinned)",
        "sample": "square", "nvcc": nvcc_version(find_nvcc()), "jobs": args.jobs,
        "builds": len(verdicts), "invalid": sum(1 for b in builds if b["valid"] is False),
        "unknown": sum(1 for b in builds if b["valid"] is None),
        "validity": {"cpu_s": round(gv.stats.cpu_s, 2),
                     "side_cpu_s": {k: round(v, 2) for k, v in gv.stats.side_cpu_s.items()},
                     "children_cpu_s": round(validity_children, 2),
                     "wall_s": round(validity_wall, 2), "front_end_runs": gv.stats.runs,
                     "rounds": gv.stats.rounds, "alone_builds": gv.stats.alone_units},
        "full": {"mode": "nvcc -c -O3 (cutlens FULL)", "which": args.full,
                 "compiled": len(full), "asked": len(units), "cpu_s": round(full_cpu, 2),
                 "wall_s": round(full_wall, 2), "failed": sum(1 for f in full.values()
                                                             if not f["ok"])},
        "compared": len(compared), "agree": len(compared) - len(disagree),
        "disagree": disagree, "complete": complete,
        "cpu_ratio": round(gv.stats.cpu_s / full_cpu, 4) if complete and full_cpu else None,
        "target_ratio": 0.15,
        "summary_diagnostics": [f"{Path(d.file).name}:{d.line}: {d.message}"
                                for d in gv.diagnostics()],
        "rows": builds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    print(json.dumps({k: doc[k] for k in ("builds", "invalid", "unknown", "compared", "agree",
                                          "disagree", "cpu_ratio")}), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return 0 if not disagree else 1


if __name__ == "__main__":
    sys.exit(main())
