"""``cutlens profile TEMPLATE --sample S --variant V [--baseline V2]``: one variant under
Nsight Compute (:mod:`cutlens.bench.profile`): the summary that says why it is slow (speed of
light, occupancy, registers, shared memory, stalls, L2, DRAM), the report kept in
``.cutlens/profiles`` and the command that opens it; with ``--baseline`` the differences.

Exit 0: profiled; 1: the variant does not render or build; 2: usage, or no profile could be
taken (no ncu, no GPU, counters not permitted, the time limit) — one line saying what to do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from cutlens.bench import project
from cutlens.bench.ncu import ProfileError
from cutlens.bench.profile import Profile, VariantFailed, compare, locate_ncu, profile_variant
from cutlens.bench.profile_text import profile_lines
from cutlens.cli.bench import require_nvcc
from cutlens.cli.common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, load_one
from cutlens.errors import UsageError
from cutlens.results.store import ResultStore


def add_parser(sub: Any, command: Any, template_help: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = command(
        sub, "profile", "profile one variant with Nsight Compute: why it is slow",
        selection=False)
    p.add_argument("template", type=Path, help=template_help)
    p.add_argument("--sample", metavar="S", help="the sample (default: the first)")
    p.add_argument("--variant", metavar="V", help="the variant: its name or index "
                   "(default: the first)")
    p.add_argument("--baseline", metavar="V2", help="also profile variant V2 and show "
                   "the differences (V against V2)")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text (default) or json")
    p.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                   help="stop ncu after this long (its process group is killed; default 300)")
    p.add_argument("--warmup", type=int, default=3, metavar="N",
                   help="calls before the profiled one (default 3)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="parallel nvcc processes for the build")
    return p


async def _profile(args: argparse.Namespace) -> tuple[Profile, Profile | None]:
    t = load_one(args.template)
    if t.broken:
        first = t.errors[0].message if t.errors else "cannot be loaded"
        raise VariantFailed(f"{t.path.name}: {first}")
    try:  # usage errors before anything is built
        s = t.sample(args.sample)
        for v in (args.variant, args.baseline):
            if v is not None:
                t.variant(s, v)
    except KeyError as e:
        raise UsageError(str(e.args[0]) if e.args else str(e)) from None
    require_nvcc(t, "local")  # no nvcc: one usage error, before anything else
    ncu_path = locate_ncu(t)
    cfg = t.config
    compiler = project.compile_pool(cfg, args.jobs)
    store = ResultStore(cfg.root)
    kw = {"timeout_s": args.timeout, "warmup": args.warmup, "store": store,
          "ncu_path": ncu_path}
    p = await profile_variant(t, args.sample, args.variant, compiler, **kw)
    base = None
    if args.baseline is not None:
        base = await profile_variant(t, args.sample, args.baseline, compiler, **kw)
    return p, base


def run_profile(args: argparse.Namespace) -> int:
    if not args.template.exists():
        raise UsageError(f"{args.template}: no such file")
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    try:
        p, base = asyncio.run(_profile(args))
    except ProfileError as e:  # (no nvcc is a UsageError, reported by main)
        sys.stderr.write(f"cutlens profile: {e}\n")
        return EXIT_USAGE
    except VariantFailed as e:
        sys.stderr.write(f"cutlens profile: {e}\n")
        return EXIT_PROBLEMS
    cmp = compare(p, base) if base is not None else None
    if args.format == "json":
        out: dict[str, Any] = {"profile": p.to_json()}
        if base is not None and cmp is not None:
            out["baseline"] = base.to_json()
            out["comparison"] = cmp
        sys.stdout.write(json.dumps(out, indent=2, default=str) + "\n")
        return EXIT_OK
    lines = profile_lines(p.to_json())
    if base is not None and cmp is not None:
        lines += ["", *profile_lines(base.to_json())]
        lines += ["", *comparison_lines(cmp)]
    lines += ["", f"open it: {cmp['open'] if cmp else p.open_command}"]
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK


_LABELS = {"duration_ns": ("duration", 1e-6, "ms"), "sm_pct": ("SM % of SOL", 1, "%"),
           "memory_pct": ("memory % of SOL", 1, "%"),
           "achieved_occupancy_pct": ("achieved occupancy", 1, "%"),
           "registers": ("registers", 1, ""), "smem_bytes": ("shared memory", 1 / 1024, "KB"),
           "l2_hit_pct": ("L2 hit rate", 1, "%"), "dram_bytes": ("DRAM", 1e-6, "MB")}


def comparison_lines(cmp: dict[str, Any]) -> list[str]:
    """``V against V2``: one line per figure, the two values and the difference."""
    out = [f"{cmp['variant']}  against  {cmp['baseline']}"]
    diff = cmp["difference"]
    for f, (label, scale, unit) in _LABELS.items():
        d = diff.get(f)
        if d is None:
            continue
        a, b, delta = d["value"] * scale, d["baseline"] * scale, d["delta"] * scale
        out.append(f"  {label:20} {a:10.3f} {unit:3} vs {b:10.3f}   ({delta:+.3f})")
    stalls = ", ".join(f"{s['reason']} {s['value'] or 0:.2f} vs {s['baseline'] or 0:.2f}"
                       for s in diff.get("stalls", [])[:4])
    if stalls:
        out.append(f"  stalls (cycles per issued instruction): {stalls}")
    return out
