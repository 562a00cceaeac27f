"""``cutlens bench --plot``: latency per variant as bars, one panel per sample (matplotlib,
imported here only)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cutlens.bench.best import is_ok


def plot_report(report: Mapping[str, Any], out: str | Path, title: str | None,
                names: list[str], table: list[dict[str, Any]],
                fmt_ms: Callable[[float | None], str]) -> Path:
    """Latency per variant as horizontal bars, one panel per sample: best in green, failures
    marked, interquartile spread as error bars, torch baseline as a dashed line. PNG/SVG/PDF
    by extension; matplotlib (Agg) is imported here only. ``names``: the samples; ``table``:
    the report's table rows (:func:`cutlens.bench.report.table_rows`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = names or [""]
    groups = {s: [r for r in table if r["sample"] == s and r["kind"] == "variant"]
              for s in names}
    height = sum(max(len(g), 1) * 0.35 + 1.2 for g in groups.values())
    fig = Figure(figsize=(9, max(2.5, height)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    base = report.get("baseline", {})
    for ax, sample in zip(axes, names, strict=True):
        rows = groups[sample]
        ok = [r for r in rows if is_ok(r)]
        failed = [r for r in rows if not is_ok(r)]
        labels = [r["variant_name"] for r in ok + failed]
        ys = list(range(len(labels)))
        if ok:
            ax.barh(ys[: len(ok)], [r["ms"] for r in ok], height=0.6,
                    xerr=[(r.get("spread_pct") or 0) * r["ms"] / 200 for r in ok],
                    color=["#2ca02c" if r.get("best") else "#4c72b0" for r in ok],
                    error_kw={"elinewidth": 0.8, "capsize": 2})
            for y, r in zip(ys, ok, strict=False):
                ax.text(r["ms"], y, f" {fmt_ms(r['ms'])}", va="center", fontsize=8)
        for y, r in zip(ys[len(ok):], failed, strict=True):
            ax.text(0, y, f" x {r.get('error') or 'mismatch'}", va="center", fontsize=8,
                    color="#c44e52")
        b = base.get(sample) or {}
        right = max([r["ms"] for r in ok] + [b.get("ms") or 0.0] + [1e-9])
        if b.get("ms"):
            ax.axvline(b["ms"], color="#555555", linestyle="--", linewidth=1,
                       label=f"torch (reference) {fmt_ms(b['ms'])} ms")
            ax.legend(loc="lower right", fontsize=8)
        ax.set_yticks(ys, labels, fontsize=8)
        ax.set_ylim(len(labels) - 0.5 if labels else 0.5, -0.5)  # fastest on top
        ax.set_xlim(0, right * 1.18)
        ax.set_xlabel("latency (ms, median; whiskers: interquartile spread)")
        ax.set_title(f"sample {sample}" if sample else "latency per variant", fontsize=10)
    fig.suptitle(title or f"{report.get('gpu') or '?'} · nvcc {report.get('nvcc') or '?'}")
    out = Path(out)
    fig.savefig(out, dpi=120)
    return out
