"""A whole sweep with the finalists' rounds, on the CPU: a real template built by nvcc, CPU
workers, the store (no GPU: the ceilings are not measured, the rounds are forced on)."""

from __future__ import annotations

import asyncio

import pytest

from cutlens.bench import report as report_mod
from cutlens.bench.runner import Runner
from cutlens.bench.template_sweep import SweepPlan, SweepStats, sweep
from cutlens.nvcc.project import compile_pool
from cutlens.render.renderer import Renderer
from cutlens.results.store import ResultStore
from test_bench_cli import TEMPLATE

pytestmark = pytest.mark.nvcc


def test_sweep_with_finalists(project):
    project.write("cutlens.toml", '[bench]\ndevice = "cpu"\nwarmup_ms = 1\nrep_ms = 3\n'
                  "min_iters = 3\nmax_iters = 20\nflush_bytes = 1048576\n")
    project.write("v.cu.jinja", TEMPLATE)
    t = project.load("v.cu.jinja")
    store = ResultStore(project.root)
    stats = SweepStats()

    async def go() -> list[dict]:
        async with Runner(device="cpu", workers=1, timeout_s=120) as runner:
            return await sweep(SweepPlan(t, finalists=True), Renderer(),
                               compile_pool(t.config, 1), runner, store,
                               stats=stats)

    results = asyncio.run(go())
    assert stats.ceilings is None  # no GPU: nothing measured
    assert set(stats.finalists) == {"vec", "nobias"}
    for fin in stats.finalists.values():
        # the two variants that work in each sample, fastest first, with the reference
        assert {e["variant_name"] for e in fin} == {"unroll=1 no-fail", "unroll=2 no-fail"}
        assert fin[0]["ms"] <= fin[1]["ms"]
        for e in fin:
            lo, hi = e["interval"]
            assert lo <= e["vs_reference"] <= hi and e["tie"] == (lo <= 1.0 <= hi)
            assert e["rounds"] == 7
    rep = report_mod.make_report(results, sweep=stats.to_json())
    for sample in ("vec", "nobias"):
        best = rep["best"][sample]
        assert best["from"] == "rounds" and best["variant_name"] == \
            stats.finalists[sample][0]["variant_name"]
        assert best["ms"] == stats.finalists[sample][0]["ms"]
        assert rep["baseline"][sample]["finalist"]["rounds"] == 7
    # each finalist's row carries the round's figure and the sweep's; the store has both
    rows = {(r["sample"], r["variant_name"]): r for r in rep["results"]}
    row = rows[("vec", "unroll=2 no-fail")]
    assert row["finalist"]["rounds"] == 7 and row["sweep_ms"] > 0
    latest = {(r["sample"], r["variant_name"]): r for r in store.latest(t.content_hash)}
    assert latest[("vec", "unroll=2 no-fail")]["finalist"]["rounds"] == 7
    assert len(store.history(t.content_hash, sample="vec", variant_name="unroll=2 no-fail")) == 2
    assert len(results) == len(rep["results"]) + 2  # rows replaced in place, + 2 baselines
