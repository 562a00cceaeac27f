"""Issue 23 (shape-generic builds, compile time per build): compare two ``cutlens bench
--format json`` reports of the same sweep, one with shape-generic builds and one with
``--static-sizes``, and (on a GPU host) time each sample's two winners' builds interleaved.

    python benchmarks/issue23b_compare.py GENERIC.json STATIC.json -o OUT.json \\
        [--template templates/gemm_sm90.cu.jinja --rounds 7] [--no-ab]

``OUT.json``: per sample the winner of each sweep and their difference (``within_1pct``),
the interleaved A/B of the generic and static builds of both winners (``ab``: median of
round medians, the two builds of one variant timed in the same rounds), the builds and
verified rows of each report, and the compile summary (phases, dominant phase, costliest
instantiations) of each. ``--no-ab`` (or no GPU) leaves the A/B out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from cutlens import config
from cutlens.bench.protocol import run_request
from cutlens.bench.report import best_rows, is_ok
from cutlens.bench.runner import Runner
from cutlens.bench.template_sweep import _signature, timing_from
from cutlens.nvcc.options import compile_options, job_for
from cutlens.nvcc.pool import Mode
from cutlens.nvcc.project import compile_pool
from cutlens.render.renderer import RenderedUnit, Renderer
from cutlens.render.shapes import render_shape_generic
from cutlens.template.loader import load


def winners(generic: dict, static: dict) -> dict[str, dict[str, Any]]:
    """Each sample's winner in both reports and how far apart they are."""
    out = {}
    g, s = best_rows(generic), best_rows(static)
    for sample in sorted(set(g) | set(s)):
        a, b = g.get(sample), s.get(sample)
        entry: dict[str, Any] = {
            "generic": {"variant_name": a["variant_name"], "ms": a["ms"]} if a else None,
            "static": {"variant_name": b["variant_name"], "ms": b["ms"]} if b else None}
        if a and b:
            entry["diff_pct"] = round(100 * (a["ms"] - b["ms"]) / b["ms"], 3)
            entry["within_1pct"] = abs(entry["diff_pct"]) <= 1.0
            entry["same_variant"] = a["variant_name"] == b["variant_name"]
        out[sample] = entry
    return out


def report_facts(rep: dict) -> dict[str, Any]:
    rows = rep.get("results", [])
    return {"builds": rep.get("builds"), "compiled": rep.get("compiled"),
            "cold": rep.get("cold"), "variants": rep.get("variants"),
            "sweep_wall_s": rep.get("sweep_wall_s"), "rows": len(rows),
            "verified": sum(1 for r in rows if r.get("verified") is True),
            "ok": sum(1 for r in rows if is_ok(r)),
            "all_verified": bool(rows) and all(r.get("verified") is True for r in rows),
            "compile_summary": rep.get("compile_summary")}


def build_phases(rep: dict) -> list[dict[str, Any]]:
    """One entry per build: its seconds, phases and top instantiations (first row's)."""
    seen: dict[str, dict] = {}
    for r in rep.get("results", []):
        c, b = r.get("compile"), r.get("build")
        if b and isinstance(c, dict) and b not in seen:
            seen[b] = {"build": b, "variant_name": r.get("variant_name"),
                       "samples": sorted({x["sample"] for x in rep["results"]
                                          if x.get("build") == b}),
                       "seconds": c.get("seconds"), "phases": c.get("phases"),
                       "top_instantiations": (c.get("top_instantiations") or [])[:3]}
    return list(seen.values())


def _request(t: Any, unit: RenderedUnit, compiler: Any, label: str) -> dict:
    res = compiler.compile_sync(job_for(unit, Mode.BUILD, compile_options(t, unit)))
    if not res.ok or res.artifact is None:
        sys.exit(f"{label}: build failed\n{res.output[-2000:]}")
    return run_request(_signature(unit, res.artifact), t.bench.to_json(),
                       timing=timing_from(t), sample=unit.sample.name, variant_name=label)


async def ab(template: Path, pairs: dict[str, list[str]], rounds: int) -> dict[str, Any]:
    """For each sample, the generic and static builds of each named variant, each timed
    once a round (order rotated), in one bench worker."""
    cfg = config.load(config.find_root(template))
    t = load(template, cfg)
    r = Renderer()
    compiler = compile_pool(cfg)
    reqs: dict[str, dict] = {}
    for sample, names in pairs.items():
        s = t.sample(sample)
        for name in dict.fromkeys(names):
            v = t.variant(s, name)
            g = render_shape_generic(r, t, s, v)
            st = r.render(t, s, v)
            assert isinstance(g, RenderedUnit) and isinstance(st, RenderedUnit)
            reqs[f"{sample}|{name}|generic"] = _request(t, g, compiler, name)
            reqs[f"{sample}|{name}|static"] = _request(t, st, compiler, name)
    keys = list(reqs)
    runs: dict[str, list[float]] = {k: [] for k in keys}
    async with Runner(gpus=1, timeout_s=300) as runner:
        for i in range(rounds):
            for k in keys[i % len(keys):] + keys[:i % len(keys)]:
                res = await runner.run(reqs[k])
                if res.get("error") or res.get("verified") is False:
                    sys.exit(f"{k}: {res.get('error') or 'not verified'}")
                runs[k].append(res["ms"])
    out: dict[str, Any] = {}
    for sample, names in pairs.items():
        for name in dict.fromkeys(names):
            g = statistics.median(runs[f"{sample}|{name}|generic"])
            st = statistics.median(runs[f"{sample}|{name}|static"])
            out.setdefault(sample, {})[name] = {
                "generic_ms": g, "static_ms": st,
                "diff_pct": round(100 * (g - st) / st, 3),
                "within_1pct": abs(g - st) / st <= 0.01}
    return {"rounds": rounds, "samples": out}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("generic", type=Path)
    ap.add_argument("static", type=Path)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--template", type=Path, default=Path("templates/gemm_sm90.cu.jinja"))
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-ab", action="store_true")
    args = ap.parse_args()
    generic = json.loads(args.generic.read_text())
    static = json.loads(args.static.read_text())
    w = winners(generic, static)
    doc: dict[str, Any] = {
        "generic": report_facts(generic), "static": report_facts(static), "winners": w,
        "all_within_1pct": bool(w) and all(e.get("within_1pct") for e in w.values()),
        "builds_generic": build_phases(generic)}
    if not args.no_ab:
        pairs = {s: [x["variant_name"] for x in (e["generic"], e["static"]) if x]
                 for s, e in w.items()}
        doc["ab"] = asyncio.run(ab(args.template.resolve(), pairs, args.rounds))
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({"generic_builds": doc["generic"]["builds"],
                      "static_builds": doc["static"]["builds"],
                      "all_verified": doc["generic"]["all_verified"]
                      and doc["static"]["all_verified"],
                      "winners": w}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
