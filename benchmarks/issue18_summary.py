#!/usr/bin/env python3
"""Summary of benchmarks/gpu_run_issue18.sh: annotate the cold square sweep's report and
write the three-shape table (each shape's best verified gemm_sm90 variant against torch.mm,
from the sweeps of one run).

    python benchmarks/issue18_summary.py OUT_DIR [--process-wall-s S] [--jobs N]

Reads ``square.json`` (the cold sweep), ``shapes.json`` (the large and skinny samples) and
``fidelity.json`` in OUT_DIR when there; adds ``process_wall_s``, ``jobs`` and ``host`` to
``square.json``; writes ``three_shapes.json``; prints a Markdown table and the checks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

SHAPES = {"square": "4096³", "large": "8192³", "skinny": "1024×4096×4096"}


def best_rows(report: dict) -> dict[str, dict[str, Any]]:
    """Per sample: the best verified variant and the torch baseline of the report."""
    out: dict[str, dict[str, Any]] = {}
    for sample, b in (report.get("best") or {}).items():
        out[sample] = dict(b)
    for sample, base in (report.get("baseline") or {}).items():
        out.setdefault(sample, {"variant_name": None, "ms": None,
                                "torch_ms": base.get("ms"), "vs_torch": None})
    return out


def counts(report: dict, sample: str) -> dict[str, int]:
    rows = [r for r in report.get("results", []) if r.get("sample") == sample]
    return {"variants": len(rows), "verified": sum(r.get("verified") is True for r in rows),
            "errors": sum(bool(r.get("error")) for r in rows),
            "builds": len({r.get("build") for r in rows if r.get("build")})}


def table(reports: list[dict]) -> list[dict[str, Any]]:
    rows = []
    for rep in reports:
        for sample, b in best_rows(rep).items():
            rows.append({"shape": SHAPES.get(sample, sample), "sample": sample,
                         **b, **counts(rep, sample), "gpu": rep.get("gpu")})
    order = list(SHAPES)
    rows.sort(key=lambda r: order.index(r["sample"]) if r["sample"] in order else 99)
    return rows


def markdown(rows: list[dict]) -> str:
    gpus = sorted({(r.get("gpu") or "?").removeprefix("NVIDIA ") for r in rows}) or ["?"]
    lines = [f"| bf16 GEMM ({', '.join(gpus)}) | best gemm_sm90 variant | ms | torch.mm ms |"
             " vs torch.mm | verified |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ms = f"{r['ms']:.4f}" if r.get("ms") else "—"
        tms = f"{r['torch_ms']:.4f}" if r.get("torch_ms") else "—"
        ratio = f"{r['vs_torch']:.3f}×" if r.get("vs_torch") else "—"
        lines.append(f"| {r['shape']} | {r.get('variant_name') or '—'} | {ms} | {tms} | "
                     f"{ratio} | {r['verified']}/{r['variants']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--process-wall-s", type=float)
    ap.add_argument("--jobs", type=int)
    args = ap.parse_args(argv)
    out: Path = args.out
    reports = []
    square_path = out / "square.json"
    if square_path.is_file():
        square = json.loads(square_path.read_text())
        if args.process_wall_s is not None:
            square["process_wall_s"] = round(args.process_wall_s, 2)
        square["jobs"] = args.jobs
        square["host"] = {"cores": os.cpu_count(),
                          "compile_memory": os.environ.get("CUTLENS_COMPILE_MEMORY")}
        square_path.write_text(json.dumps(square, indent=2) + "\n")
        reports.append(square)
    if (out / "shapes.json").is_file():
        reports.append(json.loads((out / "shapes.json").read_text()))
    rows = table(reports)
    doc: dict[str, Any] = {"table": rows, "markdown": markdown(rows)}
    checks: dict[str, Any] = {}
    if reports and square_path.is_file():
        sq = reports[0]
        c = counts(sq, "square")
        checks["square"] = {
            "cold": sq.get("cold"), "sweep_wall_s": sq.get("sweep_wall_s"),
            "process_wall_s": sq.get("process_wall_s"), "builds": sq.get("builds"),
            "variants": c["variants"], "all_verified": c["verified"] == c["variants"] > 0,
            "at_least_40": c["variants"] >= 40,
            "within_100s": (sq.get("sweep_wall_s") or 1e9) <= 100}
    if (out / "fidelity.json").is_file():
        f = json.loads((out / "fidelity.json").read_text())
        checks["fidelity"] = {"max_abs_diff_pct": f.get("max_abs_diff_pct"),
                              "within_2pct": f.get("within_2pct"),
                              "libraries": len(f.get("libraries") or [])}
    checks["vs_torch_at_least_1"] = {r["sample"]: (r.get("vs_torch") or 0) >= 1.0
                                     for r in rows}
    doc["checks"] = checks
    (out / "three_shapes.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(doc["markdown"])
    print(json.dumps(checks, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
