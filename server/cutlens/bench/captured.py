"""The summary of a bench on captured samples (``--samples captured``): each sample's winner
— the template's fastest verified variant or the torch reference — and one figure for the
model: its captured GEMM time with the winners against with torch alone, weighted as the
samples file says (by time on a GPU, else by calls)::

    on this model's GEMMs: 1.04× torch.mm, weighted by time

With weights w (summing to 1 over the benchmarked samples), the template's ratio is
``1 / Σ w·(best_ms / torch_ms)`` (the time the model's GEMMs would take with the template's
best variants instead of torch's), and with per-shape winners ``1 / Σ w·min(1, best/torch)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cutlens.bench.report import best_rows


def summary(report: Mapping[str, Any], weights: Mapping[str, float], weight_by: str,
            reference: str = "torch") -> dict[str, Any] | None:
    """The ``captured`` section of a report (None when no captured sample has both a
    verified variant and a torch time)."""
    best = best_rows(report)
    base = report.get("baseline", {})
    per: dict[str, dict[str, Any]] = {}
    for name, w in weights.items():
        row, b = best.get(name), base.get(name) or {}
        torch_ms = b.get("ms") if not b.get("error") else None
        entry: dict[str, Any] = {"weight": w, "torch_ms": torch_ms,
                                 "best_ms": row["ms"] if row else None,
                                 "variant_name": row["variant_name"] if row else None}
        if row and torch_ms:
            entry["vs_torch"] = torch_ms / row["ms"]
            entry["winner"] = "template" if row["ms"] < torch_ms else "torch"
        else:
            entry["winner"] = "torch" if torch_ms else None
        per[name] = entry
    both = {n: e for n, e in per.items() if e.get("vs_torch")}
    total = sum(e["weight"] for e in both.values())
    if not both or total <= 0:
        return None
    rel = sum(e["weight"] / total / e["vs_torch"] for e in both.values())
    rel_winners = sum(e["weight"] / total * min(1.0, 1 / e["vs_torch"]) for e in both.values())
    return {"weight_by": weight_by, "reference": reference, "samples": per,
            "covered_weight": total, "vs_torch": 1 / rel, "vs_torch_winners": 1 / rel_winners}


def headline(s: Mapping[str, Any]) -> str:
    """``on this model's GEMMs: 1.04× torch.mm, weighted by time`` and its details."""
    missing = [n for n, e in s["samples"].items() if not e.get("vs_torch")]
    lines = [f"on this model's GEMMs: {s['vs_torch']:.2f}× {s['reference']}, weighted by "
             f"{s['weight_by']} ({s['covered_weight']:.0%} of the captured "
             f"{s['weight_by']} benchmarked); with per-shape winners "
             f"{s['vs_torch_winners']:.2f}×"]
    for name, e in s["samples"].items():
        if e.get("vs_torch"):
            lines.append(f"  {name:<16} {e['weight']:6.1%}  {e['winner']:<8} "
                         f"{e['vs_torch']:.2f}× ({e['best_ms']:.4f} ms vs {e['torch_ms']:.4f} "
                         f"ms, {e['variant_name']})")
    if missing:
        lines.append(f"  not compared (no verified variant or no torch time): "
                     f"{', '.join(missing)}")
    return "\n".join(lines) + "\n"
