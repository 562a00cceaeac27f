"""Report formats, --compare and --plot."""

from __future__ import annotations

import csv
import io
import json

import pytest
from rich.console import Console

from cutlens.bench.progress import SweepProgress
from cutlens.bench.report import (
    compare,
    format_comparison,
    format_report,
    load_report,
    make_report,
    plot,
    print_comparison,
    print_table,
    table_rows,
)

TEMPLATE = "templates/gemm.cu.jinja"


def res(name: str, ms: float | None, sample: str = "square", error: str | None = None,
        verified: bool | None = True, **kw) -> dict:
    return {"id": name, "op": "run", "template": TEMPLATE, "sample": sample,
            "variant": {"tile": name}, "variant_name": name, "ms": ms,
            "ms_min": None if ms is None else ms * 0.98, "ms_max": None, "spread_pct": 1.2,
            "iters": 100, "tflops": None if ms is None else 1.0 / ms,
            "gbps": None if ms is None else 2.0 / ms, "workspace_bytes": 1024,
            "verified": verified, "max_abs_err": 0.0, "error": error, "gpu": "NVIDIA H100",
            "worker": 0, **kw}


def base(sample: str, ms: float) -> dict:
    return {"op": "baseline", "sample": sample, "ms": ms, "tflops": 1 / ms, "gbps": 2 / ms,
            "ms_min": ms, "spread_pct": 0.5, "error": None, "gpu": "NVIDIA H100"}


@pytest.fixture()
def report() -> dict:
    results = [
        res("b", 0.20, regs=168, smem=98304),
        res("a", 0.10, regs=128, smem=65536),
        res("wrong", None, verified=False, error="mismatch: Y: max abs err 0.5 > tol 0.01"),
        res("segv", None, verified=None, error="worker crashed (signal 11, SIGSEGV)"),
        res("a", 0.50, sample="tall"),
        base("square", 0.15), base("tall", 0.40),
    ]
    return make_report(results, nvcc="13.0")


def test_make_report_schema(report):
    assert report["gpu"] == "NVIDIA H100" and report["nvcc"] == "13.0"
    assert set(report["baseline"]) == {"square", "tall"}
    assert set(report["baseline"]["square"]) >= {"ms", "tflops", "gbps"}
    row = report["results"][0]
    assert list(row)[:12] == ["template", "sample", "variant", "variant_name", "ms", "ms_min",
                              "spread_pct", "tflops", "gbps", "workspace_bytes", "verified",
                              "error"]
    # sorted by latency, failures last
    assert [r["variant_name"] for r in report["results"]] == ["a", "b", "a", "segv", "wrong"]
    doc = json.loads(format_report(report, "json"))
    assert doc == json.loads(json.dumps(report))
    assert "worker" not in row and "id" not in row


def test_table_rows_group_per_sample_with_torch(report):
    rows = table_rows(report)
    assert [(r["sample"], r["variant_name"], r["best"]) for r in rows] == [
        ("square", "a", True), ("square", "torch", False), ("square", "b", False),
        ("square", "segv", False), ("square", "wrong", False),
        ("tall", "torch", False), ("tall", "a", True)]


def test_table_output(report):
    console = Console(record=True, width=160, color_system=None)
    print_table(report, console)
    text = console.export_text()
    assert "★" in text and "torch" in text and "✗ worker crashed (signal 11" in text
    assert "✗ mismatch" in text and "96 KiB" in text and "±1.2%" in text
    assert "best for square: a 0.1000 ms — 1.50× faster than torch" in text
    assert "best for tall: a 0.5000 ms — 1.25× slower than torch" in text


def test_csv(report):
    rows = list(csv.DictReader(io.StringIO(format_report(report, "csv"))))
    assert rows[0]["variant_name"] == "a" and rows[0]["best"] == "True"
    assert rows[1]["kind"] == "baseline" and rows[1]["variant_name"] == "torch"
    assert json.loads(rows[0]["variant"]) == {"tile": "a"}
    assert rows[3]["error"].startswith("worker crashed") and rows[3]["ms"] == ""


def test_unknown_format(report):
    with pytest.raises(ValueError):
        format_report(report, "xml")


def _with(report: dict, name: str, sample: str = "square", **changes) -> dict:
    new = json.loads(json.dumps(report))
    for r in new["results"]:
        if r["variant_name"] == name and r["sample"] == sample:
            r.update(changes)
    return new


def test_compare_exit_codes(report, tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(format_report(report, "json"))
    old = load_report(path)
    same = compare(report, old, threshold_pct=5)
    assert same.exit_code == 0 and not same.regressions

    slower = compare(_with(report, "a", ms=0.104), old, threshold_pct=5)  # +4%: within
    assert slower.exit_code == 0

    slower = compare(_with(report, "a", ms=0.12), old, threshold_pct=5)   # +20%
    assert slower.exit_code == 1
    (change,) = slower.regressions
    assert (change.sample, change.variant_name) == ("square", "a")
    assert change.delta_pct == pytest.approx(20.0)
    text = format_comparison(slower)
    assert "1 regression(s) beyond 5%" in text and "square/a: 0.1000 -> 0.1200 ms (+20.0%)" in text

    broken = compare(_with(report, "b", ms=None, error="returned 3"), old, threshold_pct=5)
    assert broken.exit_code == 1 and broken.regressions[0].note == "now fails: returned 3"

    faster = compare(_with(report, "b", ms=0.1), old, threshold_pct=5)
    assert faster.exit_code == 0 and faster.improvements[0].variant_name == "b"

    fixed = compare(_with(report, "wrong", ms=0.3, error=None, verified=True), old, 5)
    assert fixed.exit_code == 0 and fixed.improvements[0].note == "fixed"

    # rows only in the baseline are listed, not regressions
    subset = dict(report, results=report["results"][:1])
    partial = compare(subset, old, threshold_pct=5)
    assert partial.exit_code == 0 and len(partial.missing) == 4

    console = Console(record=True, width=120, color_system=None)
    print_comparison(slower, console)
    assert "regression" in console.export_text()


def test_compare_matches_by_template_when_several(report):
    other = json.loads(json.dumps(report))
    for r in other["results"]:
        r["template"] = "other.cu.jinja"
    both = dict(report, results=report["results"] + other["results"])
    slow = _with(both, "a", ms=0.3)  # both templates' "a" on square got slower
    cmp = compare(slow, both, threshold_pct=5)
    assert {c.template for c in cmp.regressions} == {TEMPLATE, "other.cu.jinja"}


def test_load_report_rejects_other_json(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("[1, 2]")
    with pytest.raises(ValueError):
        load_report(p)


def test_plot(report, tmp_path):
    pytest.importorskip("matplotlib")
    out = plot(report, tmp_path / "lat.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_progress_counts(report):
    console = Console(record=True, width=120, force_terminal=False)
    with SweepProgress(total=2, console=console) as p:
        p.update(res("a", 0.1))
        p.add_total(1)
        p.update(res("x", None, error="returned 2"))
        p.update(base("square", 0.2))
    assert p.done == 3 and p.failed == 1 and p.best["variant_name"] == "a"
    assert "best 0.1000 ms (a)" in p.note() and "1 ✗" in p.note()
