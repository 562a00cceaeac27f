"""``cutlens bench`` output: table, JSON, CSV, ``--compare`` and ``--plot``; torch-free.
(Over 450 lines: the five output forms share their row model, so they stay together.)

The CLI collects the runner's results (variants and the per-sample torch baseline) and calls::

    report = make_report(results, gpu=None, nvcc="13.0")   # baseline results may be mixed in
    print_table(report, console)                            # --format table (rich)
    text = format_report(report, "json" | "csv")             # --format json / csv
    cmp = compare(report, load_report("BASELINE.json"), threshold_pct=5)   # --compare
    print_comparison(cmp, console); sys.exit(cmp.exit_code)
    plot(report, "OUT.png")                                  # --plot (matplotlib, lazily)

The report is the JSON document::

    {"gpu", "nvcc",
     "executor", "workers",                         # local | ray; bench workers of the sweep
     "sweep_wall_s", "builds", "compiled", "cached",  # the sweep (cutlens bench): wall time,
     "cold", "variants",                              # distinct TUs, how many nvcc compiled
     "best": {"<sample>": {"variant_name", "ms", "torch_ms", "vs_torch", "interval", "tie",
                           "from"}},                 # from: "rounds" (finalists) or "sweep"
     "ceilings": {"compute_tflops": {dtype: x}, "memory_gbps", "how", "datasheet"?},
     "finalists": {"<sample>": [{"variant_name", "ms", "ms_interval", "interval",
                                 "vs_reference", "tie", "rounds"}]},
     "results": [{"template", "sample", "variant", "variant_name", "ms", "ms_min", "spread_pct",
                  "tflops", "gbps", "workspace_bytes", "verified", "error",
                  "sol_pct", "bound", "stable", "gpu_state",   # always present (may be null)
                  "regs", "smem", "spills", "sweep_ms", "finalist", "build",
                  "compile": {"seconds", "cached", "phases": {"<phase>": s},
                              "top_instantiations": [[name, s]], "top_headers": [[name, s]],
                              "shapes": "generic" | "static", "static_sizes"}, ...}],
                                                     # sorted by latency, failures last
     "compile_summary": {...},                       # cutlens bench: bench/compile_summary.py
     "baseline": {"<sample>": {"ms", "tflops", "gbps"}}}

``sol_pct`` / ``bound``: share of the nearer measured ceiling (:mod:`.ceilings`); ``stable``:
False when the spread stayed above the threshold (never the best row); ``gpu_state``: NVML
during the timing. ``ceilings`` / ``finalists`` come with the sweep's figures.

``spread_pct`` is the interquartile range of the timed calls as % of the median. ``regs`` /
``smem`` / ``spills`` (ptxas) are present when the results carried them. A row is *ok* when
it has a time, no error and was not found wrong (``verified`` is not False); the best row
of each sample is chosen by :mod:`cutlens.bench.best` (never an unstable one).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cutlens.bench.best import best_rows as _best_of
from cutlens.bench.best import is_ok
from cutlens.bench.ceilings import ceilings_text, ratio_text, sol_text

#: Keys of a result row in the JSON report, in order.
ROW_KEYS = ("template", "sample", "variant", "variant_name", "ms", "ms_min", "spread_pct",
            "tflops", "gbps", "workspace_bytes", "verified", "error", "regs", "smem", "spills",
            "build", "sol_pct", "bound", "compute_pct", "memory_pct", "dtype", "stable",
            "attempts", "gpu_state", "sweep_ms", "finalist", "compile")
#: Row keys left out of a row when None (the others are always there: the JSON contract).
_OPTIONAL = ("regs", "smem", "spills", "build", "compute_pct", "memory_pct", "dtype",
             "attempts", "sweep_ms", "finalist", "compile")
CSV_KEYS = ("kind", "template", "sample", "variant_name", "variant", "ms", "ms_min",
            "spread_pct", "tflops", "gbps", "sol_pct", "bound", "stable", "workspace_bytes",
            "regs", "smem", "spills", "verified", "error", "best")
BASELINE_NAME = "torch"


# ---- building ---------------------------------------------------------------------------
def is_baseline(result: Mapping[str, Any]) -> bool:
    return result.get("op") == "baseline" or result.get("kind") == "baseline"


def _row(result: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {k: result.get(k) for k in ROW_KEYS}
    if row["variant"] is None:
        row["variant"] = {}
    if not row["variant_name"]:
        row["variant_name"] = _variant_label(row["variant"])
    for k in _OPTIONAL:
        if row[k] is None:
            del row[k]
    return row


def _variant_label(variant: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in variant.items()) or "default"


def sort_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """Fastest ok rows first; failures after, by name."""
    ok = is_ok(row)
    return (not ok, row["ms"] if ok else math.inf, str(row.get("sample") or ""),
            str(row.get("variant_name") or ""))


def make_report(results: Iterable[Mapping[str, Any]], *, gpu: str | None = None,
                nvcc: str | None = None,
                baseline: Mapping[str, Mapping[str, Any]] | None = None,
                executor: str | None = None, workers: int | None = None,
                sweep: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON report from runner results. Baseline results (``op`` or ``kind`` ==
    ``baseline``) among ``results`` become ``baseline[sample]``; ``baseline`` adds more.
    ``executor`` / ``workers``: what ran the sweep (``local`` or ``ray``, how many bench
    workers). ``sweep``: the sweep's figures (``SweepStats.to_json()``), added as they are,
    with ``best`` (each sample's fastest ok variant against the torch baseline)."""
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    base = {}
    for r in results:  # a row emitted again (a finalist's round figures) replaces the first
        if gpu is None and r.get("gpu"):
            gpu = r["gpu"]
        if is_baseline(r):
            base[str(r.get("sample") or "")] = _baseline_entry(r)
        else:
            by_key[(r.get("sample"), r.get("variant_name") or id(r))] = _row(r)
    rows = list(by_key.values())
    for sample, b in (baseline or {}).items():
        base[sample] = _baseline_entry(b)
    rows.sort(key=sort_key)
    rep: dict[str, Any] = {"gpu": gpu, "nvcc": nvcc, "executor": executor, "workers": workers}
    if sweep is not None:
        rep.update(sweep)
        rep["best"] = _best_vs_torch(rows, base)
    rep.update(results=rows, baseline=base)
    return rep


def _best_vs_torch(rows: list[dict[str, Any]], base: Mapping[str, Mapping[str, Any]]) -> dict[str,
                   Any]:
    """Each sample's best row against the reference: from the finalists' interleaved rounds
    (``interval``, ``tie``) where they ran, else from the sweep's figures."""
    best: dict[str, dict[str, Any]] = {}
    for s, row in _best_of(rows).items():
        torch_ms = (base.get(s) or {}).get("ms")
        fin = row.get("finalist") or {}
        vs = fin.get("vs_reference") or (torch_ms / row["ms"] if torch_ms and row["ms"]
                                         else None)
        best[s] = {"variant_name": row["variant_name"], "ms": row["ms"], "torch_ms": torch_ms,
                   "vs_torch": vs, "interval": fin.get("interval"), "tie": fin.get("tie"),
                   "from": "rounds" if fin else "sweep"}
    return best


def _baseline_entry(b: Mapping[str, Any]) -> dict[str, Any]:
    entry = {"ms": b.get("ms"), "tflops": b.get("tflops"), "gbps": b.get("gbps")}
    if b.get("error"):
        entry["error"] = b["error"]
    for k in ("ms_min", "spread_pct", "sol_pct", "bound", "stable", "gpu_state", "sweep_ms",
              "finalist"):
        if b.get(k) is not None:
            entry[k] = b[k]
    return entry


def best_rows(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The best row of each sample (:func:`cutlens.bench.best.best_rows`)."""
    return _best_of(report["results"])


def samples(report: Mapping[str, Any]) -> list[str]:
    """Samples in first-seen order (results, then baseline-only samples)."""
    seen: dict[str, None] = {}
    for row in report["results"]:
        seen.setdefault(str(row.get("sample") or ""), None)
    for s in report.get("baseline", {}):
        seen.setdefault(s, None)
    return list(seen)


def table_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of the table and CSV: per sample, variants and the torch baseline sorted by
    latency (failures last), with ``kind`` and ``best`` set."""
    best = {id(r) for r in best_rows(report).values()}
    out = []
    for s in samples(report):
        group = [dict(r, kind="variant", best=id(r) in best) for r in report["results"]
                 if str(r.get("sample") or "") == s]
        b = report.get("baseline", {}).get(s)
        if b is not None:
            group.append({"kind": "baseline", "template": None, "sample": s, "variant": {},
                          "variant_name": BASELINE_NAME, "ms": b.get("ms"),
                          "ms_min": b.get("ms_min"), "spread_pct": b.get("spread_pct"),
                          "tflops": b.get("tflops"), "gbps": b.get("gbps"),
                          "sol_pct": b.get("sol_pct"), "bound": b.get("bound"),
                          "workspace_bytes": None, "verified": None, "error": b.get("error"),
                          "best": False})
        group.sort(key=sort_key)
        out.extend(group)
    return out


# ---- formats ----------------------------------------------------------------------------
def to_json(report: Mapping[str, Any], indent: int | None = 2) -> str:
    return json.dumps(_clean(report), indent=indent)


def to_csv(report: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_KEYS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in table_rows(report):
        row = dict(row)
        row["variant"] = json.dumps(row.get("variant") or {}, sort_keys=True)
        w.writerow({k: "" if row.get(k) is None else row.get(k) for k in CSV_KEYS})
    return buf.getvalue()


def format_report(report: Mapping[str, Any], fmt: str) -> str:
    """``json`` or ``csv`` text of the report (``table`` goes through :func:`print_table`)."""
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report)
    raise ValueError(f"unknown format {fmt!r} (json, csv; table prints with print_table)")


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a report written with ``--format json``."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ValueError(f"{path}: not a cutlens bench JSON report")
    data.setdefault("baseline", {})
    return data


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


# ---- table ------------------------------------------------------------------------------
def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "—"
    return f"{ms:.4f}" if ms < 1 else (f"{ms:.3f}" if ms < 100 else f"{ms:.1f}")


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "—"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}".replace(".0 ", " ")
    return str(n)


def _num(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:,.{digits}f}"


def status_text(row: Mapping[str, Any]) -> str:
    """``✓``, ``✗ <reason>`` or ``ref`` for the torch row (``?`` when not verified)."""
    if row.get("kind") == "baseline":
        return f"✗ {row['error']}" if row.get("error") else "ref"
    if row.get("error"):
        return f"✗ {row['error']}"
    if row.get("verified") is False:
        return "✗ mismatch"
    mark = "✓" if row.get("verified") else "? (no reference)"
    return f"{mark} unstable" if row.get("stable") is False else mark


#: On a terminal, the ✓/✗ column gets the width the others leave, at least this; longer
#: errors are listed in full under the table.
STATUS_WIDTH_MIN = 12


def render_table(report: Mapping[str, Any], title: str | None = None,
                 status_width: int | None = None) -> Any:
    """A ``rich.table.Table`` of the report: per sample, sorted by latency, best marked ★.
    ``status_width``: cut the ✓/✗ column there (an ellipsis; never one word per line)."""
    from rich.table import Table
    from rich.text import Text

    gpu = report.get("gpu") or "?"
    ran = (f" · {report['executor']}, {report.get('workers') or '?'} worker(s)"
           if report.get("executor") else "")
    table = Table(title=title or f"{gpu} · nvcc {report.get('nvcc') or '?'}{ran}",
                  title_justify="left")
    table.add_column("", width=1)
    table.add_column("variant", overflow="fold")
    table.add_column("sample")
    for name in ("ms", "spread", "TFLOP/s", "GB/s", "SOL", "workspace", "regs", "smem"):
        table.add_column(name, justify="right")
    table.add_column("✓/✗", no_wrap=True, overflow="ellipsis", max_width=status_width)
    rows = table_rows(report)
    for i, row in enumerate(rows):
        end = i + 1 == len(rows) or rows[i + 1]["sample"] != row["sample"]
        status = status_text(row)
        style = ("bold green" if row.get("best") else
                 "dim" if row.get("kind") == "baseline" else
                 "red" if status.startswith("✗") else "")
        spread = row.get("spread_pct")
        table.add_row(
            "★" if row.get("best") else "", Text(str(row["variant_name"])),
            Text(str(row["sample"] or "")),
            fmt_ms(row.get("ms")),
            "—" if spread is None or row.get("ms") is None else
            f"±{spread:.1f}%" + (" ⚠" if row.get("stable") is False else ""),
            _num(row.get("tflops")), _num(row.get("gbps"), 0), sol_text(row, short=True) or "—",
            fmt_bytes(row.get("workspace_bytes")),
            "—" if row.get("regs") is None else str(row["regs"]),
            fmt_bytes(row.get("smem")),
            Text(status, style="green" if status == "✓" else ("red" if "✗" in status else "")),
            style=style, end_section=end)
    return table


def print_table(report: Mapping[str, Any], console: Any = None) -> None:
    """Print :func:`render_table` (and the best variant of each sample); on a terminal,
    errors too long for the table in full under it."""
    from rich.console import Console
    from rich.markup import escape

    console = console or Console()
    width = None
    if console.is_terminal:  # the other columns at their width; ✓/✗ gets what is left
        rest = console.measure(render_table(report, status_width=1)).maximum - 1
        width = max(console.width - rest, STATUS_WIDTH_MIN)
    console.print(render_table(report, status_width=width))
    cut = [r for r in table_rows(report) if width and len(status_text(r)) > width]
    if cut:
        console.print("failures:", style="red", markup=False)
        for r in cut:
            console.print(f"  {r['sample'] or '-'} / {r['variant_name']}: {status_text(r)}",
                          markup=False, soft_wrap=True)
    base = report.get("baseline", {})
    for sample, row in best_rows(report).items():
        b = base.get(sample) or {}
        vs = ""
        fin = row.get("finalist") or {}
        if fin.get("vs_reference"):
            vs = f" — {ratio_text(fin['vs_reference'], fin.get('interval'), fin.get('tie'))}" \
                 f" (interleaved rounds)"
        elif b.get("ms") and row.get("ms"):
            ratio = b["ms"] / row["ms"]
            vs = (f" — {ratio:.2f}× faster than torch" if ratio >= 1 else
                  f" — {1 / ratio:.2f}× slower than torch")
        if sol_text(row):
            vs += f" · {sol_text(row)}"
        console.print(f"best for [bold]{escape(sample or '-')}[/]: "
                      f"[bold green]{escape(str(row['variant_name']))}[/] "
                      f"{fmt_ms(row['ms'])} ms{escape(vs)}")
    text = ceilings_text(report.get("ceilings"))
    if text:
        console.print(text, style="dim", markup=False, highlight=False)


# ---- compare ----------------------------------------------------------------------------
@dataclass
class Change:
    """One row matched between the baseline report and this one."""

    template: str | None
    sample: str
    variant_name: str
    old_ms: float | None
    new_ms: float | None
    delta_pct: float | None
    note: str = ""
    #: Share of the measured ceiling then and now; whether this run's row is stable.
    old_sol_pct: float | None = None
    new_sol_pct: float | None = None
    bound: str | None = None
    stable: bool | None = None


@dataclass
class Comparison:
    """Outcome of ``--compare``: exit code 1 when anything regressed."""

    threshold_pct: float
    regressions: list[Change] = field(default_factory=list)
    improvements: list[Change] = field(default_factory=list)
    unchanged: list[Change] = field(default_factory=list)
    missing: list[tuple[Any, ...]] = field(default_factory=list)   # in the baseline only
    new: list[tuple[Any, ...]] = field(default_factory=list)       # in this report only

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0

    def to_json(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"threshold_pct": self.threshold_pct,
                "regressions": [asdict(c) for c in self.regressions],
                "improvements": [asdict(c) for c in self.improvements],
                "unchanged": [asdict(c) for c in self.unchanged],
                "missing": [list(k) for k in self.missing], "new": [list(k) for k in self.new]}


def _keyed(report: Mapping[str, Any], with_template: bool) -> dict[tuple[Any, ...], dict[str, Any]]:
    out = {}
    for row in report["results"]:
        key = (str(row.get("sample") or ""), str(row.get("variant_name") or ""))
        out[((row.get("template"),) if with_template else ()) + key] = row
    return out


def compare(current: Mapping[str, Any], baseline: Mapping[str, Any],
            threshold_pct: float) -> Comparison:
    """Match rows by (template, sample, variant_name) — by (sample, variant_name) when each
    report covers one template — and flag a regression when a row got slower by more than
    ``threshold_pct`` percent, or worked in the baseline and fails now."""
    templates = {r.get("template") for r in current["results"]}
    old_templates = {r.get("template") for r in baseline["results"]}
    with_template = not (len(templates) <= 1 and len(old_templates) <= 1)
    new, old = _keyed(current, with_template), _keyed(baseline, with_template)
    cmp = Comparison(threshold_pct=threshold_pct)
    for key, row in new.items():
        prev = old.get(key)
        if prev is None:
            cmp.new.append(key)
            continue
        change = Change(template=row.get("template"), sample=key[-2], variant_name=key[-1],
                        old_ms=prev.get("ms"), new_ms=row.get("ms"), delta_pct=None,
                        old_sol_pct=prev.get("sol_pct"), new_sol_pct=row.get("sol_pct"),
                        bound=row.get("bound"), stable=row.get("stable"))
        if is_ok(prev) and not is_ok(row):
            change.note = f"now fails: {row.get('error') or 'mismatch'}"
            cmp.regressions.append(change)
        elif not is_ok(prev) and is_ok(row):
            change.note = "fixed"
            cmp.improvements.append(change)
        elif not is_ok(prev):
            cmp.unchanged.append(change)
        else:
            change.delta_pct = 100.0 * (row["ms"] - prev["ms"]) / prev["ms"]
            if change.delta_pct > threshold_pct:
                cmp.regressions.append(change)
            elif change.delta_pct < -threshold_pct:
                cmp.improvements.append(change)
            else:
                cmp.unchanged.append(change)
    cmp.missing = [k for k in old if k not in new]
    return cmp


def format_comparison(cmp: Comparison) -> str:
    """Plain-text summary of a comparison (regressions first)."""
    def line(c: Change) -> str:
        what = f"{c.sample}/{c.variant_name}"
        if c.delta_pct is not None:
            sol = ""
            if c.new_sol_pct is not None:
                old = f"{c.old_sol_pct:.0f} -> " if c.old_sol_pct is not None else ""
                sol = f", {old}{c.new_sol_pct:.0f} % of measured peak ({c.bound}-bound)"
            unstable = " [unstable]" if c.stable is False else ""
            return (f"  {what}: {fmt_ms(c.old_ms)} -> {fmt_ms(c.new_ms)} ms "
                    f"({c.delta_pct:+.1f}%{sol}){unstable}")
        return f"  {what}: {c.note}"

    out = []
    if cmp.regressions:
        out.append(f"{len(cmp.regressions)} regression(s) beyond {cmp.threshold_pct:g}%:")
        out += [line(c) for c in cmp.regressions]
    else:
        out.append(f"no regression beyond {cmp.threshold_pct:g}%")
    if cmp.improvements:
        out.append(f"{len(cmp.improvements)} improvement(s):")
        out += [line(c) for c in cmp.improvements]
    if cmp.missing:
        out.append(f"{len(cmp.missing)} row(s) of the baseline not run: "
                   + ", ".join("/".join(str(p) for p in k[-2:]) for k in cmp.missing))
    return "\n".join(out)


def print_comparison(cmp: Comparison, console: Any = None) -> None:
    from rich.console import Console

    console = console or Console()
    for text in format_comparison(cmp).splitlines():
        style = "red" if cmp.regressions and not text.startswith(("no ", "  ")) else None
        console.print(text, style=style, highlight=False, markup=False)


# ---- plot ------------------------------------------------------------------------------
def plot(report: Mapping[str, Any], out: str | Path, title: str | None = None) -> Path:
    """Latency per variant (:func:`cutlens.bench.plot.plot_report`; matplotlib lazily)."""
    from cutlens.bench.plot import plot_report

    return plot_report(report, out, title, samples(report), table_rows(report), fmt_ms)
