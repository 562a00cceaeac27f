"""Issue 25's summary: the bench on captured samples — rows verified, each sample's winner
against torch, the weighted ratio (``captured`` of the report, :mod:`cutlens.bench.captured`).

    python benchmarks/issue25_summary.py PROJECT --report bench.json
    python benchmarks/issue25_summary.py PROJECT --fake   # dry run: synthetic timings that
                                                          # exercise the summary, no figures
Exit 1 when a row failed verification or the report has no ``captured`` section.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cutlens import config
from cutlens.bench import captured as summary_mod
from cutlens.bench.report import is_ok, make_report
from cutlens.template.loader import load

T = "templates/gemm_sm90.cu.jinja"


def fake_report(project: Path) -> dict:
    """Synthetic rows for the template's captured samples (dry run only: not measured)."""
    t = load((project / T).resolve(), config.load(project))
    rows = []
    for i, s in enumerate(x for x in t.samples if x.origin == "captured"):
        rows.append({"op": "baseline", "sample": s.name, "ms": 1.0, "ok": True})
        rows.append({"sample": s.name, "variant_name": "synthetic", "ms": 0.9 + 0.1 * i,
                     "verified": True, "ok": True})
    rep = make_report(rows)
    weights = {s.name: s.weight or 0.0 for s in t.samples if s.origin == "captured"}
    rep["captured"] = summary_mod.summary(rep, weights, "count", "torch.mm")
    return rep


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("project", type=Path)
    p.add_argument("--report", type=Path)
    p.add_argument("--fake", action="store_true")
    a = p.parse_args()
    rep = fake_report(a.project) if a.fake else json.loads(a.report.read_text())
    rows = rep.get("results", [])
    bad = [r for r in rows if not is_ok(r)]
    print(f"{len(rows)} rows, {len(rows) - len(bad)} verified ok, {len(bad)} failed"
          + (" (synthetic timings: dry run)" if a.fake else ""))
    for r in bad[:10]:
        print(f"  FAILED {r.get('sample')} / {r.get('variant_name')}: "
              f"{r.get('error') or r.get('status')}")
    cap = rep.get("captured")
    if not cap:
        print("no captured summary in the report")
        return 1
    sys.stdout.write(summary_mod.headline(cap))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
