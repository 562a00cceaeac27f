"""``cutlens profile`` without a GPU: Nsight Compute's recorded CSV pages parsed into the
summary, the difference of two profiles, finding ncu, the failures (no ncu, no GPU, counters
not permitted, the time limit) as one message and exit 2, and the command end to end with a
real nvcc build and a stand-in ncu (``tests/fixtures/ncu/fake_ncu.py``) that, in ``run`` mode,
runs the real profile harness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cutlens.bench import ncu
from cutlens.results.store import SCHEMA_VERSION, ResultStore

FIX = Path(__file__).parents[1] / "fixtures" / "ncu"
SERVER = Path(__file__).resolve().parents[2] / "server"


def test_raw_page_summary():
    records = ncu.parse_raw((FIX / "raw_gemm_sm90.csv").read_text())
    assert len(records) == 1
    s = ncu.summarize(records)
    assert s["kernel"].startswith("void cutlass::device_kernel<")
    assert s["sm_pct"] == pytest.approx(81.53)
    assert s["memory_pct"] == pytest.approx(38.74)
    assert s["dram_pct"] == pytest.approx(21.09)
    assert s["achieved_occupancy_pct"] == pytest.approx(18.61)
    assert s["theoretical_occupancy_pct"] == pytest.approx(18.75)
    assert s["registers"] == 168
    assert s["smem_bytes"] == 197760  # dynamic + static; "197,760" read with its separators
    assert s["l2_hit_pct"] == pytest.approx(78.46)
    assert s["dram_bytes"] == 101842944 + 33619968
    assert s["duration_ns"] == pytest.approx(204352)
    assert (s["grid_size"], s["block_size"]) == (132, 384)
    # sorted by cycles per issued instruction; "selected" (issuing) and zeros are no stalls
    assert [x["reason"] for x in s["top_stalls"]] == ["gmma", "wait", "barrier",
                                                      "long_scoreboard"]
    assert s["top_stalls"][0]["cycles_per_issue"] == pytest.approx(4.86)
    assert records[0]["device__attribute_display_name"] == "NVIDIA H100 80GB HBM3"


def test_units_scale_to_bytes_and_nanoseconds():
    text = ('"ID","Kernel Name","gpu__time_duration.sum","dram__bytes_read.sum",'
            '"dram__bytes_write.sum"\n"","","usecond","Mbyte","Kbyte"\n'
            '"0","k","1.5","2.5","4"\n')
    s = ncu.summarize(ncu.parse_raw("==PROF== noise\n" + text))
    assert s["duration_ns"] == pytest.approx(1500)
    assert s["dram_bytes"] == 2_500_000 + 4_000


def test_details_page_speed_of_light():
    (rec,) = ncu.parse_details((FIX / "details_sol_gemm_sm90.csv").read_text())
    assert rec["sm_pct"] == pytest.approx(81.55)
    assert rec["memory_pct"] == pytest.approx(38.71)
    assert rec["duration_ns"] == pytest.approx(204450)


def test_details_page_as_ncu_prints_it_on_an_h100():
    """Recorded on an H100 (ncu 2025.x, --csv --section SpeedOfLight): ncu's notes first,
    and metric rows shorter than the header (the rule columns left out)."""
    (rec,) = ncu.parse_details((FIX / "details_sol_h100_recorded.csv").read_text())
    assert rec["sm_pct"] == pytest.approx(67.28)
    assert rec["memory_pct"] == pytest.approx(85.99)
    assert rec["dram_pct"] == pytest.approx(47.40)
    assert rec["duration_ns"] == pytest.approx(234016)


def test_longest_kernel_is_the_summary():
    text = ('"ID","Kernel Name","gpu__time_duration.sum","sm__throughput.avg.pct_of_peak_'
            'sustained_elapsed"\n"","","nsecond","%"\n"0","reduce","1,000","10"\n'
            '"1","gemm","90,000","70"\n')
    s = ncu.summarize(ncu.parse_raw(text))
    assert (s["kernel"], s["sm_pct"], len(s["kernels"])) == ("gemm", 70.0, 2)
    assert ncu.summarize([]) == {"kernels": []}


def test_difference():
    a = {"sm_pct": 80.0, "duration_ns": 200.0, "registers": 168,
         "top_stalls": [{"reason": "wait", "cycles_per_issue": 2.0}]}
    b = {"sm_pct": 60.0, "duration_ns": 400.0, "registers": 90,
         "top_stalls": [{"reason": "long_scoreboard", "cycles_per_issue": 3.0}]}
    d = ncu.difference(a, b)
    assert d["sm_pct"] == {"value": 80.0, "baseline": 60.0, "delta": 20.0}
    assert d["duration_ns"]["ratio"] == 0.5
    assert d["registers"]["delta"] == 78
    assert {s["reason"] for s in d["stalls"]} == {"wait", "long_scoreboard"}


def test_profile_command_profiles_only_the_variants_kernels():
    cmd = ncu.profile_command("/cuda/bin/ncu", "/p/x.ncu-rep", ["python", "-m", "h", "r.json"],
                              ["_Z4copyPfS_", "_Z4copyPfS_"])
    assert cmd[:5] == ["/cuda/bin/ncu", "--target-processes", "all", "--profile-from-start",
                       "off"]
    # the card's clocks are left as they are (no locking to base on a shared GPU)
    assert cmd[cmd.index("--clock-control") + 1] == "none"
    i = cmd.index("--kernel-name")
    assert cmd[i - 2:i] == ["--kernel-name-base", "mangled"]
    assert cmd[i + 1] == "regex:^(_Z4copyPfS_)$"
    assert [cmd[j + 1] for j, a in enumerate(cmd) if a == "--section"] == list(ncu.SECTIONS)
    assert cmd[-4:] == ["python", "-m", "h", "r.json"]
    assert ncu.kernel_filter([]) == []
    assert ncu.export_command("ncu", "r.ncu-rep")[1:] == [
        "--import", "r.ncu-rep", "--csv", "--page", "raw", "--print-units", "base"]
    assert ncu.ui_command("/a b/x.ncu-rep") == "ncu-ui '/a b/x.ncu-rep'"


@pytest.mark.parametrize("recording, says", [
    ("stderr_perm.txt", "ERR_NVGPUCTRPERM"),
    ("stderr_nogpu.txt", "no GPU"),
])
def test_failures_say_what_to_do(recording, says):
    msg = ncu.failure_message((FIX / recording).read_text())
    assert msg is not None and says in msg
    assert ncu.failure_message("==PROF== fine") is None
    assert ncu.last_error_lines("a\n==ERROR== x\nb\n") == "==ERROR== x"


def _exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_find_ncu(tmp_path, monkeypatch):
    monkeypatch.delenv("CUTLENS_NCU", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    nvcc = _exe(tmp_path / "cuda" / "bin" / "nvcc")
    with pytest.raises(ncu.ProfileError, match=r"ncu.*not found.*CUTLENS_NCU"):
        ncu.find_ncu(str(nvcc))
    inner = _exe(tmp_path / "cuda" / "nsight-compute-2025.3.1" / "ncu")
    assert ncu.find_ncu(str(nvcc)) == str(inner)
    beside = _exe(tmp_path / "cuda" / "bin" / "ncu")
    assert ncu.find_ncu(str(nvcc)) == str(beside)
    monkeypatch.setenv("CUTLENS_NCU", str(tmp_path / "nope"))
    with pytest.raises(ncu.ProfileError, match="CUTLENS_NCU"):
        ncu.find_ncu(str(nvcc))


# --------------------------------------------------------------------------- end to end

TEMPLATE = """\
{#- cutlens
kind = "cuda"
[samples.small]
X = { dtype = "float32", size = [16, 32] }
Y = { dtype = "float32", size = [16, 32] }
[variants]
unroll = [1, 2]
-#}
{{ template.header() }}
{{ template.globals() }}
__global__ void scale_kernel(const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = 2.0f * x[i];
}
extern "C" {
{{ kernel.def_kernel(inputs=[X], outputs=[Y], names_str="X, Y") }} {
  if (workspace_size) { *workspace_size = 0; return 0; }
  for (int u = 0; u < {{ unroll }}; ++u) {}
  return 0;
}
}
"""



@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("profile")
    (root / "cutlens.toml").write_text("")
    (root / "p.cu.jinja").write_text(TEMPLATE)
    return root


def profile(root: Path, *args: str, mode: str = "ok", timeout: float = 300,
            **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(SERVER), "CUTLENS_NCU": str(FIX / "fake_ncu.py"),
            "FAKE_NCU_MODE": mode, "FAKE_NCU_CSV": str(FIX / "raw_gemm_sm90.csv"),
            "FAKE_NCU_LOG": str(root / "ncu.log"), **env}
    return subprocess.run([sys.executable, "-m", "cutlens", "profile", str(root / "p.cu.jinja"),
                           *args], capture_output=True, text=True, cwd=root, env=full,
                          timeout=timeout)


@pytest.mark.nvcc
def test_profile_end_to_end(project):
    r = profile(project, "--sample", "small", "--variant", "unroll=2", "--format", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)["profile"]
    assert out["variant"] == "unroll=2" and out["sample"] == "small"
    assert out["summary"]["sm_pct"] == pytest.approx(81.53)
    report = Path(out["report"])
    assert report.is_file() and report.parent == project / ".cutlens" / "profiles"
    assert out["open"] == f"ncu-ui {report}"
    request = json.loads(Path(out["request"]).read_text())
    assert Path(request["signature"]["library"]).is_file()  # the built library
    prof_call = json.loads((project / "ncu.log").read_text().splitlines()[0])
    assert "--profile-from-start" in prof_call
    kernel = prof_call[prof_call.index("--kernel-name") + 1]
    assert "scale_kernel" in kernel  # ptxas's mangled name of the variant's kernel
    assert prof_call[-3:] == [out["request"], "--warmup", "3"]
    t_hash = __import__("hashlib").sha256(TEMPLATE.encode()).hexdigest()
    stored = ResultStore(project).profile(t_hash, "small", "unroll=2")
    assert stored is not None and stored["sm_pct"] == pytest.approx(81.53)
    assert stored["summary"]["registers"] == 168 and stored["report"] == str(report)


@pytest.mark.nvcc
def test_profile_baseline_text(project):
    r = profile(project, "--sample", "small", "--variant", "unroll=2", "--baseline", "0")
    assert r.returncode == 0, r.stderr
    assert "speed of light: SM 81.5 % · memory 38.7 %" in r.stdout
    assert "unroll=2  against  unroll=1" in r.stdout
    assert "open it: ncu-ui " in r.stdout and r.stdout.count(".ncu-rep") >= 4


@pytest.mark.nvcc
@pytest.mark.parametrize("mode, says", [
    ("perm", "ERR_NVGPUCTRPERM"),
    ("run", "no GPU"),  # the real harness runs (CPU torch): no CUDA GPU
])
def test_profile_failures_exit_2(project, mode, says):
    r = profile(project, "--variant", "0", mode=mode)
    assert r.returncode == 2, r.stdout + r.stderr
    assert says in r.stderr and "Traceback" not in r.stderr
    # the same when ncu exits 0 and leaves a report (with no kernel in it)
    r = profile(project, "--variant", "0", mode=mode, FAKE_NCU_RC="0")
    assert r.returncode == 2, r.stdout + r.stderr
    assert says in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.nvcc
def test_profile_past_its_time_limit_is_stopped(project, tmp_path):
    child = tmp_path / "child.pid"
    t0 = time.monotonic()
    r = profile(project, "--variant", "0", "--timeout", "3", mode="hang",
                FAKE_NCU_CHILD=str(child))
    assert r.returncode == 2 and "time limit" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 120
    pid = int(child.read_text())
    time.sleep(0.5)
    stat = Path(f"/proc/{pid}/stat")  # ncu's child went with its process group
    assert not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z"


def test_no_ncu_exits_2(project):
    r = profile(project, CUTLENS_NCU="", PATH="/usr/bin:/bin", CUDACXX="/nonexistent")
    assert r.returncode == 2
    assert "ncu) not found" in r.stderr and "Traceback" not in r.stderr


def test_unknown_variant_is_a_usage_error(project):
    r = profile(project, "--variant", "nope")
    assert r.returncode == 2 and "no variant 'nope'" in r.stderr


def test_harness_without_gpu_says_so(tmp_path):
    req = tmp_path / "r.json"
    req.write_text(json.dumps({"signature": {"library": "/nonexistent.so", "kernel": "k",
                                             "args": []}}))
    r = subprocess.run([sys.executable, "-m", "cutlens.bench.profile_harness", str(req)],
                       capture_output=True, text=True, env={**os.environ,
                                                            "PYTHONPATH": str(SERVER)},
                       timeout=120)
    assert r.returncode == 3
    assert r.stderr.strip().splitlines()[-1] == "cutlens-harness: no CUDA GPU"


def test_store_keeps_profiles_and_migrates_an_older_database(tmp_path):
    import sqlite3

    db = tmp_path / ".cutlens" / "results.sqlite"
    db.parent.mkdir()
    old = sqlite3.connect(db)  # a version 1 database: runs and checks, no profiles table
    old.executescript("CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT "
                      "NULL, kind TEXT NOT NULL DEFAULT 'variant', template TEXT, "
                      "template_hash TEXT NOT NULL, sample TEXT NOT NULL DEFAULT '', "
                      "variant_name TEXT NOT NULL DEFAULT '', variant TEXT, gpu TEXT NOT NULL "
                      "DEFAULT '', nvcc TEXT NOT NULL DEFAULT '', flags_hash TEXT NOT NULL "
                      "DEFAULT '', ms REAL, ms_min REAL, spread_pct REAL, iters INTEGER, "
                      "tflops REAL, gbps REAL, workspace_bytes INTEGER, regs INTEGER, smem "
                      "INTEGER, spills INTEGER, verified INTEGER, max_abs_err REAL, error TEXT,"
                      " raw TEXT); INSERT INTO runs (ts, template_hash, sample, variant_name, "
                      "ms) VALUES (1, 'h', 's', 'v', 0.5); PRAGMA user_version=1;")
    old.close()
    store = ResultStore(tmp_path)
    assert [r["ms"] for r in store.latest("h")] == [0.5]  # the old run is still there
    s = ncu.summarize(ncu.parse_raw((FIX / "raw_gemm_sm90.csv").read_text()))
    store.add_profile("h", "s", "v", summary={**s, "sm_pct": 50.0}, report="/r/old.ncu-rep")
    store.add_profile("h", "s", "v", summary=s, report="/r/new.ncu-rep", gpu="H100")
    store.add_profile("h", "s", "w", summary=s)
    latest = store.profile("h", "s", "v")
    assert latest is not None and latest["report"] == "/r/new.ncu-rep"
    assert (latest["sm_pct"], latest["registers"], latest["gpu"]) == (81.53, 168, "H100")
    assert latest["summary"]["top_stalls"][0]["reason"] == "gmma"
    assert [p["variant_name"] for p in store.profiles("h")] == ["v", "w"]
    assert store.profile("h", "s", "nope") is None
    version = sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION


@pytest.mark.nvcc
def test_a_template_without_a_signature_cannot_be_profiled(tmp_path):
    (tmp_path / "cutlens.toml").write_text("")
    (tmp_path / "p.cu.jinja").write_text('{#- cutlens\nkind = "cuda"\n[variants]\nn = [1]\n-#}\n'
                                         "__global__ void k(int* y) { y[0] = {{ n }}; }\n")
    r = profile(tmp_path)
    assert r.returncode == 1 and "no kernel signature" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_no_nvcc_exits_2(tmp_path):
    (tmp_path / "cutlens.toml").write_text('nvcc = "/nonexistent/bin/nvcc"\n')
    (tmp_path / "p.cu.jinja").write_text(TEMPLATE)
    r = profile(tmp_path)
    assert r.returncode == 2 and "configured nvcc" in r.stderr and "Traceback" not in r.stderr
