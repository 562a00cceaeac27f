"""Interleaved A/B timing: a template's variants against its torch reference, in rounds.

A sweep times the reference once, before the variants; on a GPU whose clocks drift with
temperature and power that favours whichever ran first. This script times the reference and
each named variant once per round, rotating the order every round, through the same runner
``cutlens bench`` uses, and reports each one's median of round medians (GPU host only)::

    python benchmarks/ab_interleave.py templates/gemm_sm90.cu.jinja square OUT.json \\
        --rounds 7 "256x128x64 1x2 cooperative persistent swizzle=8" ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path

from cutlens import config as config
from cutlens.bench.protocol import baseline_request, run_request
from cutlens.bench.runner import Runner
from cutlens.bench.template_sweep import timing_from
from cutlens.check.nvcc_tier import compile_options, job_for
from cutlens.nvcc.pool import Mode
from cutlens.nvcc.project import compile_pool
from cutlens.render.renderer import Renderer
from cutlens.template.loader import load


def requests(template: Path, sample: str, variants: list[str]) -> dict[str, dict]:
    """Runner requests keyed by name: ``torch`` (the reference) and each built variant."""
    cfg = config.load(config.find_root(template))
    t = load(template, cfg)
    s = t.sample(sample)
    timing = timing_from(t)
    bench = t.bench.to_json()
    compiler = compile_pool(cfg)
    absent = [n for n, node in s.nodes.items() if node is None]
    out: dict[str, dict] = {}
    for name in variants:
        v = t.variant(s, name)
        unit = Renderer().render(t, s, v)
        res = compiler.compile_sync(job_for(unit, Mode.BUILD, compile_options(t)))
        if not res.ok or unit.signature is None:
            sys.exit(f"{name}: build failed\n{res.output}")
        sig = unit.signature.to_json(s.hints, absent, v.values)
        sig["library"] = res.artifact
        sig["values"] = {**v.values, **s.vars}
        if not out:
            out["torch"] = baseline_request(dict(sig, library=""), bench, timing=timing,
                                            sample=sample, variant_name="torch")
        out[name] = run_request(sig, bench, timing=timing, sample=sample, variant_name=name)
    return out


async def interleave(reqs: dict[str, dict], rounds: int) -> dict[str, list[dict]]:
    """Each request once a round, the order rotated by one every round."""
    names = list(reqs)
    runs: dict[str, list[dict]] = {n: [] for n in names}
    async with Runner(gpus=1, timeout_s=300) as runner:
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                res = await runner.run(reqs[name])
                if res.get("error"):
                    sys.exit(f"{name}: {res['error']}")
                runs[name].append({k: res.get(k) for k in ("ms", "ms_min", "spread_pct",
                                                            "iters", "verified")})
    return runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("template", type=Path)
    ap.add_argument("sample")
    ap.add_argument("out", type=Path)
    ap.add_argument("variants", nargs="+")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    runs = asyncio.run(interleave(requests(args.template.resolve(), args.sample,
                                           args.variants), args.rounds))
    base = statistics.median(x["ms"] for x in runs["torch"])
    summary = {name: {"ms": statistics.median(x["ms"] for x in rs),
                      "ms_min": min(x["ms_min"] for x in rs),
                      "vs_torch": base / statistics.median(x["ms"] for x in rs),
                      "verified": all(x.get("verified") is not False for x in rs)}
               for name, rs in runs.items()}
    doc = {"template": args.template.name, "sample": args.sample, "rounds": args.rounds,
           "summary": summary, "runs": runs}
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    for name, s in sorted(summary.items(), key=lambda kv: kv[1]["ms"]):
        print(f"{s['ms']:.4f} ms  {s['vs_torch']:.3f}x torch  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
