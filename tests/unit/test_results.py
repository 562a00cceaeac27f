"""The SQLite results store, including a writer killed midway."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cutlens.results.store import ResultStore, content_hash, flags_hash

SERVER = str(Path(__file__).resolve().parents[2] / "server")
H = content_hash("{# template #}")


def result(variant: str, ms: float | None, sample: str = "square", **kw) -> dict:
    return {"template": "gemm.cu.jinja", "template_hash": H, "sample": sample,
            "variant": {"tile": variant}, "variant_name": variant, "gpu": "NVIDIA H100",
            "nvcc": "13.0", "flags_hash": flags_hash(["-O3", "-arch=sm_90a"]), "ms": ms,
            "ms_min": ms, "spread_pct": 1.5, "iters": 100, "tflops": 500.0, "gbps": 300.0,
            "workspace_bytes": 0, "verified": ms is not None, "error": None if ms else "boom",
            **kw}


def test_store_layout_and_wal(tmp_path):
    store = ResultStore(tmp_path)
    assert store.path == tmp_path / ".cutlens" / "results.sqlite"
    mode = store._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    store.close()


def test_add_latest_history(tmp_path):
    with ResultStore(tmp_path) as store:
        store.add(result("a", 2.0), ts=100)
        store.add(result("b", 1.0), ts=101)
        store.add(result("a", 1.5), ts=102)          # a newer run of "a"
        store.add(result("c", None), ts=103)         # a failure
        store.add(result("a", 9.0, gpu="NVIDIA H200"), ts=104)
        store.add({**result("torch", 0.9), "op": "baseline", "variant_name": None,
                   "variant": None}, ts=105)
        assert store.count() == 6

        h100 = store.latest(H, gpu="NVIDIA H100")
        assert [(r["variant_name"], r["ms"]) for r in h100] == [("b", 1.0), ("a", 1.5),
                                                                ("c", None)]
        assert h100[0]["variant"] == {"tile": "b"} and h100[0]["verified"] is True
        assert h100[-1]["error"] == "boom" and h100[-1]["verified"] is False
        assert h100[0]["raw"]["tflops"] == 500.0
        # without a GPU filter the newest of each wins
        assert {r["variant_name"]: r["ms"] for r in store.latest(H)}["a"] == 9.0

        hist = store.history(H, sample="square", variant_name="a")
        assert [r["ms"] for r in hist] == [9.0, 1.5, 2.0]  # newest first, every run kept
        assert [r["ts"] for r in store.history(H, variant_name="a", gpu="NVIDIA H100")] == [
            102, 100]
        assert len(store.history(H, limit=2)) == 2

        base = store.baselines(H)
        assert base["square"]["ms"] == 0.9 and base["square"]["variant_name"] == "torch"
        assert all(r["kind"] == "variant" for r in store.latest(H))
        assert store.latest("other") == []


def test_add_needs_template_hash(tmp_path):
    with ResultStore(tmp_path) as store, pytest.raises(ValueError):
        store.add({"sample": "x"})


def test_checks_keep_latest(tmp_path):
    with ResultStore(tmp_path) as store:
        store.set_check(H, "square", "a", errors=2, regs=255, smem=1024, spills=8,
                        variant={"tile": "a"}, raw={"diagnostics": []})
        store.set_check(H, "square", "a", errors=0, warnings=1, regs=168, smem=98304, spills=0)
        store.set_check(H, "square", "b", errors=0, regs=128)
        c = store.check(H, "square", "a")
        assert (c["errors"], c["warnings"], c["regs"], c["smem"], c["spills"]) == (
            0, 1, 168, 98304, 0)
        assert [x["variant_name"] for x in store.checks(H)] == ["a", "b"]
        assert store.check(H, "square", "zzz") is None


def test_store_shared_between_connections(tmp_path):
    a, b = ResultStore(tmp_path), ResultStore(tmp_path)
    a.add(result("a", 1.0))
    assert b.count() == 1
    a.close()
    b.close()


def test_hashes():
    assert content_hash("x") == content_hash(b"x") and len(content_hash("x")) == 64
    assert flags_hash(["-O3", "-g"]) != flags_hash(["-g", "-O3"])


WRITER = textwrap.dedent("""
    import sys, time
    from cutlens.results.store import ResultStore
    store = ResultStore(sys.argv[1])
    i = 0
    while True:
        store.add({"template_hash": "h", "sample": "s", "variant_name": f"v{i}", "ms": 1.0 + i,
                   "raw_blob": "x" * 4096})
        print(i, flush=True)          # reported only after the commit
        i += 1
        time.sleep(0.002)
""")


def test_kill_midway_loses_no_finished_result(tmp_path):
    env = {**os.environ, "PYTHONPATH": SERVER}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)],
                            stdout=subprocess.PIPE, text=True, env=env)
    reported = -1
    deadline = time.monotonic() + 60
    while reported < 40 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        reported = int(line)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert reported >= 40
    # the database is consistent and holds every result the writer reported as added
    db = sqlite3.connect(tmp_path / ".cutlens" / "results.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with ResultStore(tmp_path) as store:
        names = {r["variant_name"] for r in store.history("h")}
        assert {f"v{i}" for i in range(reported + 1)} <= names
        store.add({"template_hash": "h", "sample": "s", "variant_name": "after"})
        assert store.count() >= reported + 2


def test_with_checks_fills_ptxas_figures(tmp_path):
    with ResultStore(tmp_path) as store:
        store.set_check(H, "square", "a", regs=168, smem=98304, spills=0)
        rows = [{"sample": "square", "variant_name": "a", "ms": 1.0},
                {"sample": "square", "variant_name": "a", "regs": 99},
                {"sample": "square", "variant_name": "b"}]
        out = store.with_checks(H, rows)
        assert (out[0]["regs"], out[0]["smem"], out[0]["spills"]) == (168, 98304, 0)
        assert out[1]["regs"] == 99 and "regs" not in out[2]
        assert "regs" not in rows[0]  # inputs untouched
