"""Put a cutlens sweep of Inductor's own templates beside Inductor's own max-autotune of the
same GEMM (issue #15): match the cases (``<op> swizzle=<s>``) with Inductor's choices, store
Inductor's timings in the results store (kind ``inductor``, so the editor's lenses show both)
and write one JSON.

    python benchmarks/inductor_compare.py PROJECT CUTLENS.json AUTOTUNE.json -o OUT.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from cutlens.results.store import ResultStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("project", type=Path)
    ap.add_argument("cutlens", type=Path)
    ap.add_argument("autotune", type=Path)
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args()
    ours = json.loads(args.cutlens.read_text())
    theirs = json.loads(args.autotune.read_text())
    by_case = {f"{r['op']} swizzle={r['swizzle']}": r for r in theirs["rows"] if r["op"]}
    rows = []
    for r in ours["results"]:
        t = by_case.get(r["variant_name"])
        rows.append({"case": r["variant_name"], "cutlens_ms": r.get("ms"),
                     "verified": r.get("verified"), "error": r.get("error"),
                     "tflops": r.get("tflops"), "workspace_bytes": r.get("workspace_bytes"),
                     "inductor_autotune_ms": t["ms"] if t else None})
    ok = [r for r in rows if r["cutlens_ms"] and r["verified"]]
    best = min(ok, key=lambda r: r["cutlens_ms"], default=None)
    aten = [r for r in theirs["rows"] if not r["op"]]
    doc = {"gpu": theirs["gpu"], "torch": theirs["torch"], "nvcc": ours.get("nvcc"),
           "cases": rows, "verified": sum(1 for r in rows if r["verified"]),
           "cutlens_best": best, "inductor_best": theirs["best"],
           "inductor_choices": len(theirs["rows"]), "inductor_aten": aten,
           "inductor_wall_s": theirs["wall_s"]}
    store = ResultStore(args.project)
    cases = {r["case"] for r in rows}
    template_hash = next((h["template_hash"] for h in store.history()
                          if h.get("variant_name") in cases), None)
    if template_hash:  # the lenses show Inductor's figure beside cutlens's
        for r in theirs["rows"]:
            if r["op"]:
                store.add({"kind": "inductor", "template_hash": template_hash,
                           "sample": ours["results"][0]["sample"], "gpu": theirs["gpu"],
                           "variant_name": f"{r['op']} swizzle={r['swizzle']}", "ms": r["ms"],
                           "template": "gemm_template.py"})
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({k: doc[k] for k in ("gpu", "verified", "cutlens_best", "inductor_best")},
                     indent=2))


if __name__ == "__main__":
    main()
