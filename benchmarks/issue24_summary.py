"""Issue 24's GPU run, summarised: ``cutlens profile`` on two gemm_sm90 variants (wall time,
build and ncu seconds, the summary), ``--baseline`` between them, and the speed-of-light SM %
and memory % of ``ncu --csv`` run by hand on the same libraries against cutlens's (within 1
point). Writes ``issue24.json`` and ``summary.txt`` into the folder.

    python benchmarks/issue24_summary.py OUT
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cutlens.bench import ncu
from cutlens.bench.profile_text import summary_lines

TOLERANCE_POINTS = 1.0
TARGET_S = 60.0


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _hand(path: Path) -> dict[str, Any] | None:
    try:
        recs = ncu.parse_details(path.read_text())
    except OSError:
        return None
    recs = [r for r in recs if r.get("sm_pct") is not None]
    return max(recs, key=lambda r: r.get("duration_ns") or 0.0) if recs else None


def summarize(out: Path) -> tuple[dict[str, Any], list[str]]:
    timings = _load(out / "timings.json") or {}
    result: dict[str, Any] = {"timings": timings, "variants": {}, "checks": {}}
    lines = ["issue 24: cutlens profile on gemm_sm90 (sample square)", ""]
    for tag in ("A", "B"):
        doc = _load(out / f"profile_{tag}.json")
        prof = (doc or {}).get("profile")
        hand = _hand(out / f"hand_{tag}.csv")
        wall = timings.get(f"profile_{tag}_s")
        entry: dict[str, Any] = {"wall_s": wall, "profile": prof, "hand": hand}
        lines.append(f"variant {tag}: {prof['variant'] if prof else '(no profile)'}")
        if prof is not None:
            cold = "cached build" if prof.get("build_cached") else \
                f"cold build {prof.get('build_s', 0):.1f} s"
            lines.append(f"  wall {wall} s ({cold}; ncu {prof.get('ncu_s', 0):.1f} s, "
                         f"report read {prof.get('export_s', 0):.1f} s)")
            lines += [f"  {ln}" for ln in summary_lines(prof["summary"])]
            lines.append(f"  report {prof['report']}")
            no_build = (wall or 0) - (prof.get("build_s") or 0)
            entry["profile_without_build_s"] = round(no_build, 1) if wall else None
            result["checks"][f"{tag}_within_{TARGET_S:.0f}s"] = wall is not None and \
                wall <= TARGET_S
            result["checks"][f"{tag}_within_{TARGET_S:.0f}s_without_build"] = \
                wall is not None and no_build <= TARGET_S
        if prof is not None and hand is not None:
            s = prof["summary"]
            for field in ("sm_pct", "memory_pct"):
                mine, theirs = s.get(field), hand.get(field)
                ok = isinstance(mine, float | int) and isinstance(theirs, float | int) and \
                    abs(mine - theirs) <= TOLERANCE_POINTS
                entry[f"{field}_hand"] = theirs
                entry[f"{field}_diff"] = round(mine - theirs, 3) if ok or (
                    isinstance(mine, float | int) and isinstance(theirs, float | int)) else None
                result["checks"][f"{tag}_{field}_within_1_point"] = ok
            lines.append(f"  by hand (ncu --csv --section SpeedOfLight): SM "
                         f"{hand.get('sm_pct')} % · memory {hand.get('memory_pct')} % "
                         f"(cutlens: {s.get('sm_pct')} / {s.get('memory_pct')})")
        elif prof is not None:
            lines.append("  by hand: no ncu --csv output")
        result["variants"][tag] = entry
        lines.append("")
    base = _load(out / "baseline.json")
    if base is not None and base.get("comparison"):
        cmp = base["comparison"]
        result["baseline"] = cmp
        result["checks"]["baseline_compared"] = bool(cmp.get("difference"))
        lines.append(f"--baseline: {cmp['variant']} against {cmp['baseline']} "
                     f"(wall {timings.get('baseline_s')} s)")
        for f in ("duration_ns", "sm_pct", "memory_pct", "achieved_occupancy_pct",
                  "registers", "l2_hit_pct", "dram_bytes"):
            d = cmp["difference"].get(f)
            if d:
                lines.append(f"  {f:24} {d['value']:>14.3f} vs {d['baseline']:>14.3f}  "
                             f"({d['delta']:+.3f})")
        lines.append(f"  open: {cmp['open']}")
    else:
        lines.append("--baseline: no comparison")
    lines += ["", "checks: " + ", ".join(f"{k}={'ok' if v else 'NO'}"
                                          for k, v in result["checks"].items())]
    return result, lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    args = ap.parse_args(argv)
    result, lines = summarize(args.out)
    (args.out / "issue24.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    (args.out / "summary.txt").write_text("\n".join(lines) + "\n")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
