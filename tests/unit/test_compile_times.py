"""Where compile time goes: nvcc's ``--time`` table and device time trace parsed from real
recordings (tests/fixtures/nvcc/timing, made by nvcc 13.0 here), a real nvcc run recording
both without changing the build's cache key, the sweep's summary, and the hint for a variant
key that could be a runtime parameter."""

from __future__ import annotations

import asyncio
import csv
import gzip
from pathlib import Path

import pytest

from cutlens.bench.compile_summary import format_summary, runtime_hints, summarize
from cutlens.check.jinja_tier import jinja_check
from cutlens.nvcc.pool import CompileJob, CompileOptions, Compiler, Mode
from cutlens.nvcc.timing import parse_time_csv, parse_trace
from cutlens.template.selection import Selection

from conftest import HAS_NVCC, line_of

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvcc" / "timing"


def _rows_total(path: Path) -> float:
    with path.open() as f:
        rows = [r for r in csv.reader(f)][1:]
    return sum(float(r[6]) for r in rows) / 1000


def test_time_table_of_a_build_sums_each_phase_over_architectures():
    path = FIXTURES / "small_build.time.csv"
    phases = parse_time_csv(path.read_text())
    assert set(phases) == {"gcc (preprocessing 4)", "cudafe++", "gcc (preprocessing 1)",
                           "cicc", "nvcc (ptx)", "ptxas", "fatbinary", "gcc (compiling)",
                           "nvlink", "gcc (linking)", "nvcc (driver)"}
    # two cicc rows (compute_90 PTX and compute_90a) add up
    assert phases["cicc"] == pytest.approx(0.195442 + 0.16877, abs=1e-3)
    assert sum(phases.values()) == pytest.approx(_rows_total(path), abs=2e-3)


def test_time_table_of_a_cute_object():
    phases = parse_time_csv((FIXTURES / "cute_full.time.csv").read_text())
    assert max(phases, key=lambda k: phases[k]) == "cicc"
    assert phases["cudafe++"] > 2.0 and "nvlink" not in phases  # -c: no device link


def test_time_table_ignores_what_is_not_a_row():
    assert parse_time_csv("") == {}
    assert parse_time_csv("a , b\nx.cu , cicc , i , o , sm , nvcc , nan? , ms\n") == {}
    assert parse_time_csv("x.cu , cicc , i , o , sm , nvcc , 2 , s\n") == {"cicc": 2.0}


def test_trace_top_instantiations_and_headers():
    text = gzip.decompress((FIXTURES / "small_build.trace.json.gz").read_bytes()).decode()
    inst, headers = parse_trace(text, top=5)
    assert len(inst) == 5 and len(headers) == 5
    assert [s for _, s in inst] == sorted((s for _, s in inst), reverse=True)
    assert all(s >= 0.01 for _, s in inst)  # events under 10 ms are not counted
    assert headers[0][0].endswith("/cuda_runtime.h") and headers[0][1] > 0.1
    assert parse_trace("not json") == ([], [])
    # nvcc's own layout of an event; an escaped quote in a name
    assert parse_trace('{"traceEvents" : [ {}, {"args" : {"detail" :  "A<\\"x\\">"},'
                       '"dur" : 2000000 , "name" : "Instantiating Template Class", "ph" : '
                       '"X", "pid" : 13, "tid" : 0, "ts" : 1}]}') == ([('A<"x">', 2.0)], [])


@pytest.mark.nvcc
@pytest.mark.skipif(not HAS_NVCC, reason="needs nvcc")
def test_real_nvcc_records_phases_and_trace_without_changing_the_key(tmp_path, monkeypatch):
    from cutlens.nvcc import timing

    monkeypatch.setattr(timing, "MIN_US", 0)  # a small unit's events: count them all
    source = (FIXTURES / "small.cu").read_text()
    job = CompileJob(source=source, mode=Mode.BUILD, name="small",
                     options=CompileOptions(cutlass=False, arch="sm_90a"))
    plain = Compiler(tmp_path / "a", jobs=1)
    traced = Compiler(tmp_path / "b", jobs=1, time_trace=True)
    assert plain.key(job) == traced.key(job)  # the switches are not part of the identity
    res = asyncio.run(traced.compile(job))
    assert res.ok, res.output
    assert {"cicc", "ptxas", "gcc (compiling)", "gcc (linking)"} <= set(res.phases)
    assert all(v >= 0 for v in res.phases.values()) and res.phases["cicc"] > 0
    assert res.top_instantiations and res.top_headers
    assert "--time" in res.command and "--time" not in " ".join(job.options.extra_flags)
    unit_dir = Path(res.artifact).parent  # the time files are gone from the unit
    assert not [p for p in unit_dir.iterdir() if ".time." in p.name or ".trace" in p.name]
    # a cached result keeps the original run's times
    again = asyncio.run(Compiler(tmp_path / "b", jobs=1).compile(job))
    assert again.cached and again.phases == res.phases
    assert again.top_instantiations == [list(x) for x in res.top_instantiations]
    untraced = asyncio.run(plain.compile(job))
    assert untraced.phases and untraced.top_instantiations == []


def test_summary_counts_each_build_once():
    rows = [
        {"build": "b1", "compile": {"phases": {"cicc": 20.0, "cudafe++": 8.0},
                                    "top_instantiations": [["A<1>", 3.0]], "cached": False}},
        {"build": "b1", "compile": {"phases": {"cicc": 20.0, "cudafe++": 8.0},
                                    "top_instantiations": [["A<1>", 3.0]], "cached": False}},
        {"build": "b2", "compile": {"phases": {"cicc": 10.0, "gcc (compiling)": 2.0},
                                    "top_instantiations": [["A<1>", 1.0], ["B", 0.5]],
                                    "cached": True}},
        {"build": None, "error": "render: x"},
    ]
    s = summarize(rows)
    assert s["builds"] == 2 and s["compiled_now"] == 1
    assert s["phases"] == {"cicc": 30.0, "cudafe++": 8.0, "gcc (compiling)": 2.0}
    assert s["dominant_phase"] == "cicc" and s["dominant_share"] == 0.75
    assert s["top_instantiations"] == [["A<1>", 4.0], ["B", 0.5]]
    text = format_summary(s)
    assert "cicc dominates (75 %)" in text and "A<1>" in text
    assert format_summary(summarize([])) == ""


HINTED = """\
{#- cutlens
kind = "cuda"
[samples.s]
X = { dtype = "float32", size = [64] }
Y = { dtype = "float32", size = [64] }
[variants]
scale = [2, 3]
tile = [32, 64]
step = [1, 2]
-#}
extern "C" {
{{ kernel.def_kernel(inputs=[X], outputs=[Y], names_str="X, Y") }} {
  const float factor = {{ scale }};
  using Tile = Int<{{ tile }}>;
  for (int i = 0; i < {{ kernel.size(X, 0) }}; i += {{ step }}) Y[i] = factor * X[i];
  return 0;
}
}
"""


def test_hint_for_a_key_that_only_changes_a_value_in_the_kernel_body(project):
    project.write("t.cu.jinja", HINTED)
    t = project.load("t.cu.jinja")
    units = jinja_check(t, project.renderer, Selection()).units
    hints = runtime_hints(units)
    # tile is a template argument, step a loop's: the compiler may specialise on them
    assert [h["key"] for h in hints] == ["scale"]
    h = hints[0]
    assert h["builds"] == 8 and h["builds_if_runtime"] == 4
    assert h["line"] == line_of(HINTED, "const float factor")
    assert "[variants.runtime]" in h["message"] and "8 build(s) would be 4" in h["message"]
    assert summarize([], hints)["hints"] == hints
    assert "hint: variant key 'scale'" in format_summary(summarize([], hints))


COMPILE = {"seconds": 41.2, "cached": False, "shapes": "generic",
           "phases": {"cicc": 25.6, "cudafe++": 8.8, "gcc (compiling)": 5.0},
           "top_instantiations": [["cute::gemm<...>", 3.1]], "top_headers": []}


def test_store_keeps_compile_times_and_migrates_an_older_database(tmp_path):
    import sqlite3

    from cutlens.results.store import ResultStore

    db_dir = tmp_path / ".cutlens"
    db_dir.mkdir()
    old = sqlite3.connect(db_dir / "results.sqlite")  # the first schema: no compile column
    old.executescript("""
        CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL,
            kind TEXT NOT NULL DEFAULT 'variant', template TEXT, template_hash TEXT NOT NULL,
            sample TEXT NOT NULL DEFAULT '', variant_name TEXT NOT NULL DEFAULT '',
            variant TEXT, gpu TEXT NOT NULL DEFAULT '', nvcc TEXT NOT NULL DEFAULT '',
            flags_hash TEXT NOT NULL DEFAULT '', ms REAL, ms_min REAL, spread_pct REAL,
            iters INTEGER, tflops REAL, gbps REAL, workspace_bytes INTEGER, regs INTEGER,
            smem INTEGER, spills INTEGER, verified INTEGER, max_abs_err REAL, error TEXT,
            raw TEXT);
        INSERT INTO runs (ts, template_hash, sample, variant_name, ms)
            VALUES (1.0, 'h', 's', 'old', 2.0);
        PRAGMA user_version=1;""")
    old.close()
    store = ResultStore(tmp_path)
    store.add({"template_hash": "h", "sample": "s", "variant_name": "new", "ms": 1.0,
               "compile": COMPILE})
    rows = {r["variant_name"]: r for r in store.latest("h")}
    assert rows["new"]["compile"] == COMPILE and rows["old"]["compile"] is None
    store.close()


def test_hover_of_a_variant_key_says_where_its_build_spent_its_time(project):
    from cutlens.lsp import hover

    path = project.write("t.cu.jinja", HINTED)
    t = project.load("t.cu.jinja")
    s = t.sample(None)
    unit = project.renderer.render(t, s, t.variant(s, None))
    runs = [{"sample": "s", "variant_name": unit.variant.name, "ms": 1.0, "compile": COMPILE}]
    ln = line_of(HINTED, "const float factor") - 1
    col = HINTED.splitlines()[ln].index("scale") + 1
    md = hover.hover(t, unit, str(path), HINTED, ln, col, runs=runs).contents.value
    assert "**build**: 41.2 s of nvcc — cicc 25.6 s, cudafe++ 8.8 s" in md
    assert "`cute::gemm<...>` 3.1 s" in md and "one build serves every shape" in md
    md = hover.hover(t, unit, str(path), HINTED, ln, col, runs=[]).contents.value
    assert "**build**" not in md


def test_trace_read_in_chunks_matches_the_whole_json(monkeypatch):
    """A CUTLASS unit's trace is over a gigabyte: it is scanned in chunks, and gives what
    parsing the whole JSON gives, wherever the chunks split it."""
    import io
    import json
    from collections import defaultdict

    from cutlens.nvcc import timing

    text = gzip.decompress((FIXTURES / "small_build.trace.json.gz").read_bytes()).decode()
    for min_us in (0, 1000, 10_000):  # every event; 1 ms or more; 10 ms (the default)
        inst: dict[str, float] = defaultdict(float)
        for e in json.loads(text)["traceEvents"]:
            if e.get("name", "").startswith("Instantiating Template") and \
                    e["dur"] >= min_us:
                inst[e["args"]["detail"]] += e["dur"] * 1e-6
        want = sorted(inst.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
        assert want
        monkeypatch.setattr(timing, "MIN_US", min_us)
        for chunk in (997, 4096, 1 << 24):
            monkeypatch.setattr(timing, "CHUNK", chunk)
            got, _ = timing.parse_trace_stream(io.StringIO(text), top=8)
            assert [n for n, _ in got] == [n for n, _ in want]
            assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-4)
