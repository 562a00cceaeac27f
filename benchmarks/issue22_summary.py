#!/usr/bin/env python3
"""Issue 22's summary: from the three gemm_sm90 sweeps and their do_bench checks under OUT,
one JSON (``issue22.json``) and a short Markdown table (``summary.md``).

    python benchmarks/issue22_summary.py OUT [--checks DIR]

Per shape: the sweep's wall time, rows verified / unstable, whether an unstable row was
reported best (never should be), every checked lens latency against the interleaved
``do_bench`` median (target ±2 %), the winner's ratio to ``torch.mm`` in the report against
the interleaved ratio (target 1 %), the finalists with their intervals, and whether every
verified row has ``sol_pct`` / ``bound``; the ceilings and how they were measured.
Missing inputs are reported as missing (the dry run has none).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

SHAPES = ("square", "large", "skinny")


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def shape_summary(sample: str, sweep: dict[str, Any] | None,
                  check: dict[str, Any] | None) -> dict[str, Any]:
    """One shape's figures (see the module)."""
    out: dict[str, Any] = {"sample": sample, "sweep": sweep is not None,
                           "check": check is not None}
    if sweep is not None:
        rows = [r for r in sweep["results"] if r.get("sample") == sample]
        verified = [r for r in rows if r.get("verified") and r.get("ms") is not None]
        best = (sweep.get("best") or {}).get(sample) or {}
        best_row = next((r for r in rows if r["variant_name"] == best.get("variant_name")), {})
        out.update(
            sweep_wall_s=sweep.get("sweep_wall_s"), builds=sweep.get("builds"),
            cold=sweep.get("cold"), rows=len(rows), verified=len(verified),
            unstable=sum(1 for r in rows if r.get("stable") is False),
            best=best, best_is_unstable=best_row.get("stable") is False,
            best_sol_pct=best_row.get("sol_pct"), best_bound=best_row.get("bound"),
            every_verified_row_has_sol=all(r.get("sol_pct") is not None and r.get("bound")
                                           for r in verified),
            finalists=(sweep.get("finalists") or {}).get(sample),
            gpu=sweep.get("gpu"))
    if check is not None:
        w = check.get("winner") or {}
        out.update(
            lens_vs_do_bench=[{k: e.get(k) for k in ("name", "lens_ms", "do_bench_ms",
                                                      "diff_pct", "stable")}
                              for e in check.get("libraries") or []],
            max_abs_diff_pct=check.get("max_abs_diff_pct"),
            within_2pct=check.get("within_2pct"), winner=w,
            winner_within_1pct=w.get("within_1pct"),
            do_bench_fastest=check.get("do_bench_fastest"), check_gpu=check.get("gpu"),
            do_bench_rounds={e["name"]: e.get("do_bench_rounds")
                             for e in check.get("libraries") or []},
            check_wall_s=check.get("wall_s"), rounds=check.get("rounds"))
    return out


def summarize(out_dir: Path, checks: Path) -> dict[str, Any]:
    shapes = []
    ceilings = None
    for s in SHAPES:
        sweep = _load(out_dir / f"sweep_{s}.json")
        ceilings = ceilings or (sweep or {}).get("ceilings")
        shapes.append(shape_summary(s, sweep, _load(checks / f"check_{s}.json")))
    done = [x for x in shapes if x["sweep"] and x["check"]]
    return {"shapes": shapes, "ceilings": ceilings,
            "all_within_2pct": bool(done) and all(x.get("within_2pct") for x in done),
            "all_winners_within_1pct": bool(done) and all(x.get("winner_within_1pct")
                                                          for x in done),
            "no_unstable_best": all(not x.get("best_is_unstable") for x in shapes),
            "complete": len(done) == len(SHAPES)}


def _f(x: Any, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


def table(doc: dict[str, Any]) -> str:
    lines = ["| shape | sweep s | verified | unstable | best | ms | SOL | vs torch (report) "
             "| vs torch (interleaved) | max lens−do_bench |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for x in doc["shapes"]:
        b = x.get("best") or {}
        w = x.get("winner") or {}
        iv = b.get("interval")
        rep = _f(b.get("vs_torch"), ".3f") + (f" [{iv[0]:.3f}–{iv[1]:.3f}]" if iv else "") + \
            (" tie" if b.get("tie") else "")
        sol = (f"{x['best_sol_pct']:.0f}% {x.get('best_bound')}"
               if x.get("best_sol_pct") is not None else "—")
        lines.append(
            f"| {x['sample']} | {_f(x.get('sweep_wall_s'), '.0f')} | {x.get('verified', '—')} "
            f"| {x.get('unstable', '—')} | {b.get('variant_name', '—')} "
            f"| {_f(b.get('ms'), '.4f')} | {sol} | {rep} "
            f"| {_f(w.get('interleaved_vs_torch'), '.3f')} "
            f"| {_f(x.get('max_abs_diff_pct'), '.2f')} % |")
    c = doc.get("ceilings") or {}
    if c:
        lines.append("")
        lines.append(f"Measured ceilings on {c.get('gpu')} (driver {c.get('driver')}): "
                     + ", ".join(f"{d} {v} TFLOP/s" for d, v in
                                 (c.get("compute_tflops") or {}).items())
                     + f"; copy {c.get('memory_gbps')} GB/s.")
    lines.append("")
    lines.append(f"all lens latencies within ±2 %: {doc['all_within_2pct']} · winners within "
                 f"1 %: {doc['all_winners_within_1pct']} · no unstable best: "
                 f"{doc['no_unstable_best']} · complete: {doc['complete']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--checks", type=Path, help="where check_<shape>.json are (default OUT)")
    args = ap.parse_args(argv)
    doc = summarize(args.out, args.checks or args.out)
    (args.out / "issue22.json").write_text(json.dumps(doc, indent=2) + "\n")
    text = table(doc)
    (args.out / "summary.md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
