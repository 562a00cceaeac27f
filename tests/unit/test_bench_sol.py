"""Speed of light, honest winners and the JSON contract from recorded measurements (no GPU):
ceilings and their cache, the best-row rule, finalists' intervals, the report, the store's
migration and the lens text."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from cutlens.bench import report as report_mod
from cutlens.bench.best import best_row, best_rows, can_be_best, is_ok
from cutlens.bench.ceilings import (
    cache_key,
    cache_path,
    load_cache,
    missing,
    report_ceilings,
    save_entry,
    signature_dtype,
    sol_text,
    speed_of_light,
)
from cutlens.bench.finalists import entries, final_round, median_interval, pick
from cutlens.bench.protocol import TimingConfig
from cutlens.lsp.lenses import bench_text, sample_text
from cutlens.results.store import SCHEMA_VERSION, ResultStore

#: Ceilings as measured on an H100 80GB HBM3 (bf16 torch.mm at 8192³; copy_ of 2 GiB).
H100 = {"gpu": "NVIDIA H100 80GB HBM3", "driver": "580.82.07",
        "compute_tflops": {"bfloat16": 794.6}, "memory_gbps": 2900.0,
        "how": {"compute": {"bfloat16": {"method": "torch.mm", "best_shape": [8192] * 3}}}}


# ---- ceilings ----------------------------------------------------------------------------
def test_speed_of_light_picks_the_nearer_ceiling():
    gemm = {"tflops": 731.0, "gbps": 535.0, "dtype": "bfloat16"}  # 4096³ bf16 at 0.188 ms
    sol = speed_of_light(gemm, H100)
    assert sol == {"sol_pct": 92.0, "bound": "compute", "compute_pct": 92.0,
                   "memory_pct": 18.4}
    copy = {"tflops": 0.4, "gbps": 2610.0, "dtype": "bfloat16"}  # an elementwise kernel
    assert speed_of_light(copy, H100)["bound"] == "memory"
    assert speed_of_light(copy, H100)["sol_pct"] == 90.0
    # no ceiling for the dtype: memory only; no ceilings at all: nothing
    assert speed_of_light({**gemm, "dtype": "float8_e4m3fn"}, H100)["bound"] == "memory"
    assert speed_of_light(gemm, None)["sol_pct"] is None
    assert sol_text({"sol_pct": 91.6, "bound": "compute"}) == \
        "92 % of measured peak (compute-bound)"


def test_ceilings_cache_per_gpu_and_driver(tmp_path):
    path = tmp_path / "c" / "ceilings.json"
    assert cache_path({"CUTLENS_CEILINGS": str(path)}) == path
    assert cache_path({"XDG_CACHE_HOME": "/x"}).as_posix() == "/x/cutlens/ceilings.json"
    key = cache_key(H100["gpu"], H100["driver"])
    save_entry(path, key, H100)
    save_entry(path, cache_key("NVIDIA H200", "580"), {"memory_gbps": 4000.0})
    data = load_cache(path)
    assert data[key]["compute_tflops"] == {"bfloat16": 794.6} and len(data) == 2
    assert missing(data[key], ["bfloat16", "float16"]) == (["float16"], False)
    assert missing(None, ["bfloat16"]) == (["bfloat16"], True)
    path.write_text("{not json")
    assert load_cache(path) == {}


def test_report_ceilings_label_the_datasheet():
    c = report_ceilings(H100)
    assert c["compute_tflops"] == {"bfloat16": 794.6} and c["how"]
    assert "datasheet" in c["datasheet"]["label"] and "not measured" in c["datasheet"]["label"]
    assert c["datasheet"]["compute_tflops"]["bfloat16"] == 989.4
    assert report_ceilings(None) is None


def test_signature_dtype():
    sig = {"args": [{"kind": "size", "value": 4}, {"kind": "input", "none": True},
                    {"kind": "input", "dtype": "int32"},
                    {"kind": "input", "dtype": "bfloat16"}, {"kind": "output",
                                                             "dtype": "float32"}]}
    assert signature_dtype(sig) == "bfloat16"
    assert signature_dtype({"args": []}) is None


# ---- the best row ------------------------------------------------------------------------
def row(name, ms, sample="s", **kw):
    return {"sample": sample, "variant_name": name, "ms": ms, "verified": True, "error": None,
            **kw}


def test_an_unstable_row_is_never_best():
    """The 8192³ sweep of issue 22: its fastest row had a 14.5 % spread."""
    lucky = row("lucky", 1.30, stable=False, spread_pct=14.5)
    steady = row("steady", 1.41, stable=True)
    assert is_ok(lucky) and not can_be_best(lucky)
    assert best_rows([lucky, steady])["s"] is steady
    assert best_row([lucky]) is None
    assert best_row([row("wrong", 0.1, verified=False), row("x", 0.2)])["variant_name"] == "x"


def test_finalists_alone_compete_where_they_ran():
    """A finalist's figure is from the interleaved rounds; a row that was not a finalist
    keeps its sweep figure, which may read lower on a cooler GPU: it cannot win."""
    rows = [row("sweep-only", 1.40), row("a", 1.45, finalist={"rounds": 7}),
            row("b", 1.43, finalist={"rounds": 7}), row("other", 0.5, sample="t")]
    best = best_rows(rows)
    assert best["s"]["variant_name"] == "b" and best["t"]["variant_name"] == "other"


# ---- finalists ---------------------------------------------------------------------------
def test_median_interval_order_statistics():
    assert median_interval([5.0, 1.0, 3.0, 2.0, 4.0]) == (1.0, 5.0)  # n=5: 93.8 % coverage
    assert median_interval([1, 2, 3, 4, 5, 6, 7]) == (1, 7)  # n=7: [2, 6] covers only 87.5 %
    assert median_interval(list(range(9))) == (1, 7)         # n=9: 96 %
    assert median_interval(list(range(20))) == (5, 14)
    assert median_interval([2.0]) == (2.0, 2.0)
    with pytest.raises(ValueError):
        median_interval([])


#: Per-round medians (ms) at 8192³ bf16 on an H100 (issue 22's interleaved do_bench run):
#: the sweep's winner against torch.mm, a clear loser, in 7 rounds.
ROUNDS = {
    "256x128x64 1x2 coop": [1.512, 1.498, 1.521, 1.505, 1.530, 1.509, 1.517],
    "128x128x64 1x1 coop": [1.640, 1.652, 1.633, 1.661, 1.648, 1.655, 1.644],
    "reference": [1.503, 1.496, 1.510, 1.499, 1.524, 1.511, 1.508],
}


def test_entries_tie_and_interval():
    es = entries(ROUNDS)
    assert [e["variant_name"] for e in es] == ["256x128x64 1x2 coop", "128x128x64 1x1 coop"]
    win, lose = es
    assert win["ms"] == 1.512 and win["rounds"] == 7
    lo, hi = win["interval"]
    assert lo <= win["vs_reference"] <= hi and lo <= 1.0 <= hi and win["tie"] is True
    assert lose["tie"] is False and lose["interval"][1] < 1.0
    ratios = sorted(r / t for r, t in zip(ROUNDS["reference"], ROUNDS["128x128x64 1x1 coop"],
                                          strict=True))
    assert lose["vs_reference"] == ratios[3]  # the median of the per-round ratios
    # no reference: no ratio, no tie
    assert entries({"a": [1.0, 1.1, 1.2]})[0]["tie"] is None


def test_pick_takes_the_best_few_that_can_win():
    rows = [row("a", 1.0), row("b", 0.9, stable=False), row("c", 1.1), row("d", 1.2),
            row("e", 1.3), row("x", 2.0, sample="t")]
    got = pick(rows, 3)
    assert [r["variant_name"] for r in got["s"]] == ["a", "c", "d"]
    assert [r["variant_name"] for r in got["t"]] == ["x"]


def test_final_round_emits_round_figures():
    """The rounds request goes out with each finalist's signature and the reference; the
    answer (recorded) updates the finalists' rows and the reference's."""
    rows = [row("256x128x64 1x2 coop", 1.40, tflops=785.0, stable=True),
            row("128x128x64 1x1 coop", 1.55, stable=True), row("slow", 3.0)]
    reqs = {("s", r["variant_name"]): {"signature": {"library": r["variant_name"]},
                                       "bench": {}} for r in rows}
    base = {"s": {"signature": {"library": ""}, "bench": {"reference": "Y = X @ W"}}}
    base_rows = {"s": {"kind": "baseline", "sample": "s", "variant_name": "torch",
                       "ms": 1.45}}
    sent, emitted = [], []

    async def run(req):
        sent.append(req)
        return {"error": None, "per_round": ROUNDS, "gpu_state": {"reference": {"temp_c": 70}}}

    cfg = TimingConfig(finalists=2, rounds=7)
    fin = asyncio.run(final_round(run, rows, reqs, base, base_rows, cfg, emitted.append))
    assert len(sent) == 1 and sent[0]["op"] == "rounds" and sent[0]["rounds"] == 7
    assert [c["name"] for c in sent[0]["candidates"]] == ["256x128x64 1x2 coop",
                                                          "128x128x64 1x1 coop"]
    assert sent[0]["reference"]["bench"] == {"reference": "Y = X @ W"}
    assert [e["variant_name"] for e in fin["s"]] == ["256x128x64 1x2 coop",
                                                     "128x128x64 1x1 coop"]
    win = emitted[0]
    assert win["ms"] == 1.512 and win["sweep_ms"] == 1.40 and win["finalist"]["tie"] is True
    assert win["tflops"] == pytest.approx(785.0 * 1.40 / 1.512)
    ref = emitted[-1]
    assert ref["kind"] == "baseline" and ref["ms"] == 1.508 and ref["gpu_state"]["temp_c"] == 70


def test_final_round_keeps_the_sweep_figures_on_error():
    async def run(req):
        return {"error": "worker crashed (signal 11, SIGSEGV)"}

    emitted: list = []
    fin = asyncio.run(final_round(run, [row("a", 1.0)], {("s", "a"): {"signature": {},
                                                                       "bench": {}}},
                                  {}, {}, TimingConfig(), emitted.append))
    assert fin == {} and emitted == []


# ---- report: the JSON contract -----------------------------------------------------------
def sweep_results():
    base = {"op": "baseline", "kind": "baseline", "sample": "s", "variant_name": "torch",
            "ms": 1.45, "tflops": 758.0, "gpu": "NVIDIA H100 80GB HBM3"}
    state = {"sm_clock_mhz": 1755, "temp_c": 61, "power_w": 688.2, "throttle": ["sw_power_cap"]}
    return [
        {**row("lucky", 1.30, stable=False, spread_pct=14.5), "sol_pct": 95.0,
         "bound": "compute", "gpu_state": state},
        {**row("a", 1.40, stable=True, spread_pct=0.4), "sol_pct": 92.0, "bound": "compute",
         "gpu_state": state},
        row("broken", None, error="returned 7"),
        base,
        # the finalist round's figure for "a", emitted after the sweep's
        {**row("a", 1.512, stable=True, spread_pct=0.4, sweep_ms=1.40), "sol_pct": 85.2,
         "bound": "compute", "gpu_state": state,
         "finalist": {"rounds": 7, "vs_reference": 0.997, "interval": [0.99, 1.004],
                      "tie": True, "ms_interval": [1.505, 1.521]}},
    ]


def test_report_contract():
    fin = {"s": [{"variant_name": "a", "ms": 1.512, "interval": [0.99, 1.004],
                  "vs_reference": 0.997, "tie": True, "ms_interval": [1.505, 1.521],
                  "rounds": 7}]}
    rep = report_mod.make_report(sweep_results(), nvcc="13.0",
                                 sweep={"ceilings": report_ceilings(H100), "finalists": fin})
    doc = json.loads(report_mod.to_json(rep))
    assert {"ceilings", "finalists", "best"} <= set(doc)
    assert doc["ceilings"]["compute_tflops"]["bfloat16"] == 794.6
    assert doc["ceilings"]["memory_gbps"] == 2900.0 and doc["ceilings"]["how"]
    f = doc["finalists"]["s"][0]
    assert {"variant_name", "ms", "interval", "vs_reference", "tie"} <= set(f)
    for r in doc["results"]:
        assert {"sol_pct", "bound", "stable", "gpu_state"} <= set(r), r
    names = [r["variant_name"] for r in doc["results"]]
    assert names.count("a") == 1  # the round's figure replaced the sweep's
    a = next(r for r in doc["results"] if r["variant_name"] == "a")
    assert a["ms"] == 1.512 and a["gpu_state"]["sm_clock_mhz"] == 1755
    best = doc["best"]["s"]
    assert best["variant_name"] == "a" and best["from"] == "rounds" and best["tie"] is True
    assert best["vs_torch"] == 0.997 and best["interval"] == [0.99, 1.004]


def test_table_and_compare_show_sol_and_instability():
    from rich.console import Console

    rep = report_mod.make_report(sweep_results(), sweep={})
    console = Console(width=200, record=True)
    report_mod.print_table(rep, console)
    text = console.export_text()
    assert "SOL" in text and "85% C" in text and "±14.5% ⚠" in text and "✓ unstable" in text
    assert "best for s: a 1.512 ms — tie with torch (0.990–1.004×)" in text
    rep["results"] = [dict(r, finalist={**r["finalist"], "tie": False, "vs_reference": 1.041,
                                        "interval": [1.02, 1.05]})
                      if r.get("finalist") else r for r in rep["results"]]
    rep["ceilings"] = report_ceilings(H100)
    console = Console(width=200, record=True)
    report_mod.print_table(rep, console)
    text = console.export_text()
    assert "best for s: a 1.512 ms — 1.041× torch [1.020–1.050] (interleaved rounds)" in text
    assert ("measured peak on NVIDIA H100 80GB HBM3: bfloat16 794.6 TFLOP/s (torch.mm "
            "8192×8192×8192), copy 2900.0 GB/s (datasheet, not measured: bfloat16 989.4 "
            "TFLOP/s, 3350.0 GB/s)") in text
    old = json.loads(json.dumps(rep))
    for r in old["results"]:
        if r["variant_name"] == "a":
            r["ms"], r["sol_pct"] = 1.40, 92.0
    cmp = report_mod.compare(rep, old, threshold_pct=5)
    line = report_mod.format_comparison(cmp)
    assert "s/a: 1.400 -> 1.512 ms (+8.0%, 92 -> 85 % of measured peak (compute-bound))" in line


# ---- store -------------------------------------------------------------------------------
V1_RUNS = """CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL,
    kind TEXT NOT NULL DEFAULT 'variant', template TEXT, template_hash TEXT NOT NULL,
    sample TEXT NOT NULL DEFAULT '', variant_name TEXT NOT NULL DEFAULT '', variant TEXT,
    gpu TEXT NOT NULL DEFAULT '', nvcc TEXT NOT NULL DEFAULT '',
    flags_hash TEXT NOT NULL DEFAULT '', ms REAL, ms_min REAL, spread_pct REAL,
    iters INTEGER, tflops REAL, gbps REAL, workspace_bytes INTEGER, regs INTEGER,
    smem INTEGER, spills INTEGER, verified INTEGER, max_abs_err REAL, error TEXT, raw TEXT)"""


def test_store_migrates_a_version_1_database(tmp_path):
    path = tmp_path / ".cutlens" / "results.sqlite"
    path.parent.mkdir()
    db = sqlite3.connect(path)
    db.execute(V1_RUNS)
    db.execute("INSERT INTO runs (ts, template_hash, sample, variant_name, ms) "
               "VALUES (1.0, 'h', 's', 'old', 0.5)")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    store = ResultStore(tmp_path)
    state = {"sm_clock_mhz": 1755, "temp_c": 61, "power_w": 688.2, "throttle": []}
    store.add({"template_hash": "h", "sample": "s", "variant_name": "new", "ms": 0.4,
               "sol_pct": 92.0, "bound": "compute", "stable": False, "gpu_state": state,
               "finalist": {"tie": True, "interval": [0.99, 1.01]}})
    rows = {r["variant_name"]: r for r in store.latest("h")}
    assert rows["old"]["ms"] == 0.5 and rows["old"]["sol_pct"] is None
    assert rows["old"]["stable"] is None
    new = rows["new"]
    assert new["sol_pct"] == 92.0 and new["bound"] == "compute" and new["stable"] is False
    assert new["gpu_state"] == state and new["finalist"]["tie"] is True
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    store.close()


# ---- lens --------------------------------------------------------------------------------
def test_lens_text():
    r = {"ms": 0.188, "tflops": 731.0, "gbps": 535.0, "sol_pct": 92.0, "bound": "compute",
         "verified": True, "stable": True, "workspace_bytes": 0}
    assert bench_text(r) == "0.188 ms · 731 TFLOP/s · 92 % of measured peak (compute-bound) · ✓"
    shaky = {**r, "stable": False, "spread_pct": 14.5}
    assert bench_text(shaky).endswith("· ✓ · ⚠ unstable ±14.5 %")
    runs = [{**shaky, "sample": "s", "variant_name": "lucky", "ms": 0.150},
            {**r, "sample": "s", "variant_name": "a",
             "finalist": {"vs_reference": 0.997, "interval": [0.99, 1.004], "tie": True}}]
    text = sample_text("s", runs, [])
    assert text.startswith("best a: 0.188 ms")
    assert text.endswith("· tie with torch (0.990–1.004×)")


def test_project_config_sets_stability_and_finalists(project):
    from cutlens.bench.template_sweep import timing_from

    project.write("cutlens.toml", "[bench]\nstable_pct = 5\nfinalists = 0\nrounds = 9\n"
                  "settle_min_ms = 250\n")
    project.write("k.cu.jinja", '{#- cutlens\nkind = "cuda"\n-#}\n')
    cfg = timing_from(project.load("k.cu.jinja"))
    assert (cfg.stable_pct, cfg.finalists, cfg.rounds, cfg.settle_min_ms) == (5, 0, 9, 250)
    assert cfg.settle_max_ms == TimingConfig().settle_max_ms  # unset: the default
