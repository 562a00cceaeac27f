"""The Ray executor on a local Ray cluster (2 CPUs, a ``fake_gpu`` resource standing in for
GPUs): compile tasks run nvcc and return the library's bytes, bench actors run CPU workers;
a bench actor killed mid-request is restarted and its request retried; an interrupted sweep
keeps what finished; ``cutlens bench --executor ray --address`` against ``ray start --head``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from cutlens import config as config_mod
from cutlens.bench.executor import ExecutorConfig
from cutlens.bench.launch import open_executor
from cutlens.bench.protocol import run_request
from cutlens.render.renderer import Renderer
from cutlens.results.store import ResultStore
from cutlens.template.discovery import load_template

from conftest import fakelib

ray = pytest.importorskip("ray")
pytest.importorskip("torch")  # the bench workers import it

from cutlens.bench.ray_executor import ARTIFACT_PREFIX, Artifacts  # noqa: E402
from cutlens.bench.template_sweep import SweepPlan, sweep  # noqa: E402

FAKE_GPUS = 2

#: A host-side "kernel" built by nvcc (the project times each for ~0.5 s: long enough to kill
#: a worker while it serves one).
TEMPLATE = """\
{#- cutlens
kind = "cuda"
[samples.vec]
X = { dtype = "float32", size = [64, 32] }
Y = { dtype = "float32", size = [64, 32] }
[variants]
unroll = [1, 2, 4]
fail = [false, true]
skip_if = "fail and unroll > 1"
[bench]
reference = "Y = X * 2"
-#}
{{ template.header() }}
{{ template.globals() }}
extern "C" {
{{ kernel.def_kernel(inputs=[X], outputs=[Y], names_str="X, Y") }} {
  const int64_t rows = {{ kernel.size(X, 0) }}, cols = {{ kernel.size(X, 1) }};
  if (workspace_size) { *workspace_size = 0; return 0; }
{% if fail %}  return 3;{% endif %}
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; c += {{ unroll }})
      for (int u = 0; u < {{ unroll }}; ++u)
        {{ kernel.ptr(Y) }}[r * cols + c + u] = 2.0f * {{ kernel.ptr(X) }}[r * cols + c + u];
  return 0;
}
}
"""
VARIANTS = {"unroll=1 no-fail", "unroll=2 no-fail", "unroll=4 no-fail", "unroll=1 fail"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One local Ray cluster for the module; its nodes keep their files under a temp dir."""
    node = tmp_path_factory.mktemp("raynode")
    ray.init(address="local", num_cpus=2, resources={"fake_gpu": FAKE_GPUS},
             logging_level="WARNING", log_to_driver=False,
             runtime_env={"env_vars": {"CUTLENS_RAY_DIR": str(node)}})
    yield node
    ray.shutdown()


def ray_cfg(**kw) -> ExecutorConfig:
    return ExecutorConfig(**{"kind": "ray", "device": "cpu", "gpu_resource": "fake_gpu",
                             "timeout_s": 120, **kw})


def test_artifacts_are_counted_by_use():
    a = Artifacts()
    assert a.add("abc", "ref1") == ARTIFACT_PREFIX + "abc"
    assert a.add("abc", "ref2") == ARTIFACT_PREFIX + "abc"  # same bytes: the first ref kept
    assert a.get("abc") == "ref1" and len(a) == 1
    a.release("abc")
    assert a.get("abc") == "ref1"
    a.release("abc")
    assert a.get("abc") is None and len(a) == 0
    a.release("abc")  # harmless


async def test_actors_run_libraries_shipped_as_bytes(cluster, lib, tmp_path):
    data = lib.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    async with open_executor(ray_cfg(), tmp_path) as ex:
        assert ex.name == "ray" and ex.workers == FAKE_GPUS
        ex.compiler.artifacts.add(sha, ray.put(data))
        ex.compiler.artifacts.add(sha, ray.put(data))
        remote = Path(ARTIFACT_PREFIX + sha)  # no such path here: only the bytes travel
        ok, segv = await asyncio.gather(*(
            ex.runner.run(run_request({**fakelib.gemm_signature(lib, k), "library": str(remote)},
                                      fakelib.GEMM_BENCH, timing=fakelib.FAST_TIMING,
                                      variant_name=k))
            for k in ("fake_gemm", "fake_segv")))
        assert ok["verified"] is True and ok["error"] is None and ok["ms"] > 0
        assert ok["gpu"].startswith("cpu") and ok["host"] == socket.gethostname()
        # a crashing kernel is an error result (the actor's worker died), not a lost task
        assert segv["error"] == "worker crashed (signal 11, SIGSEGV)"
        assert len(ex.compiler.artifacts) == 0  # released once both requests were answered
        missing = await ex.runner.run(run_request(
            {**fakelib.gemm_signature(lib), "library": ARTIFACT_PREFIX + "0" * 64},
            fakelib.GEMM_BENCH, timing=fakelib.FAST_TIMING))
        assert "not in the object store" in missing["error"]
    assert (cluster / "libs" / f"{sha}.so").read_bytes() == data


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("rayproj")
    (root / "cutlens.toml").write_text(
        '[bench]\ndevice = "cpu"\nwarmup_ms = 1\nrep_ms = 500\nmin_iters = 5\n'
        'max_iters = 1000000\nflush_bytes = 65536\n')
    (root / "v.cu.jinja").write_text(TEMPLATE)
    return root


def _template(root: Path):
    cfg = config_mod.load(root)
    return cfg, load_template(root / "v.cu.jinja", cfg)


async def _kill_a_busy_actor(slots, min_busy_s: float = 0.1) -> tuple[int, set[str]]:
    """SIGKILL the first bench actor found serving a request for ``min_busy_s``; its pid
    and the ids of the requests it was serving."""
    while True:
        for slot in slots:
            if slot.actor is None:
                continue
            state = await slot.state()
            busy = {k for k, s in state["busy"].items() if s >= min_busy_s}
            if busy:
                os.kill(state["pid"], signal.SIGKILL)
                return state["pid"], busy
        await asyncio.sleep(0.05)


@pytest.mark.nvcc
async def test_sweep_loses_nothing_when_a_worker_is_killed(cluster, project):
    cfg, t = _template(project)
    store = ResultStore(cfg.root)
    async with open_executor(ray_cfg(), cfg.root / ".cutlens" / "build") as ex:
        killer = asyncio.ensure_future(_kill_a_busy_actor(ex.runner.slots))
        results = await sweep(SweepPlan(t), Renderer(), ex.compiler, ex.runner, store)
        killed_pid, killed_ids = await asyncio.wait_for(killer, 5)
        assert len(ex.compiler.artifacts) == 0
    rows = {r["variant_name"]: r for r in results if r.get("kind") != "baseline"}
    assert set(rows) == VARIANTS and len(results) == len(VARIANTS) + 1
    assert next(r for r in results if r.get("kind") == "baseline")["ms"] > 0
    for name in VARIANTS - {"unroll=1 fail"}:
        assert rows[name]["verified"] is True and rows[name]["error"] is None, rows[name]
    assert rows["unroll=1 fail"]["error"] == "returned 3"
    # the requests the killed actor was serving were retried on its restarted successor
    retried = [r for r in results if r["id"] in killed_ids]
    assert retried and all(r["error"] is None and r["ray_pid"] != killed_pid for r in retried)
    # every result is in the store; nvcc ran on the Ray node, not in the project
    assert len(store.history(t.content_hash)) == len(results)
    assert not (cfg.root / ".cutlens" / "build").exists()
    assert any((cluster / "build").iterdir())


@pytest.mark.nvcc
async def test_interrupted_sweep_keeps_finished_results(cluster, project):
    cfg, t = _template(project)
    store = ResultStore(cfg.root)
    before = len(store.history(t.content_hash))
    seen: list[dict] = []
    async with open_executor(ray_cfg(), cfg.root / ".cutlens" / "build") as ex:
        task = asyncio.ensure_future(sweep(SweepPlan(t), Renderer(), ex.compiler, ex.runner,
                                           store, on_result=seen.append))
        while len(seen) < 2:
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert 2 <= len(seen) < len(VARIANTS) + 1
    assert len(store.history(t.content_hash)) - before == len(seen)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "ray start exited"
        with socket.socket() as s, contextlib.suppress(OSError):
            s.connect(("127.0.0.1", port))
            return
        time.sleep(0.2)
    raise AssertionError(f"the head node did not listen on {port} within {timeout_s} s")


@pytest.mark.nvcc
def test_cli_against_a_started_head_node(cluster, project):
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.exists():
        pytest.skip("no ray command")
    port = _free_port()
    short = Path(tempfile.mkdtemp(prefix="crt"))  # Ray's socket paths must stay short
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
           "CUTLENS_RAY_DIR": str(cluster), "RAY_ADDRESS": ""}  # its build cache
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
         '--resources={"fake_gpu": 1}', f"--temp-dir={short}",
         "--disable-usage-stats"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, head)
        out = subprocess.run(
            [sys.executable, "-m", "cutlens", "bench", str(project / "v.cu.jinja"),
             "--executor", "ray", "--address", f"127.0.0.1:{port}", "--gpu-resource",
             "fake_gpu", "--variants", "unroll=2 no-fail", "--format", "json"],
            capture_output=True, text=True, cwd=project, env=env, timeout=240)
        assert out.returncode == 0, out.stderr[-3000:]
        rep = json.loads(out.stdout)
        assert (rep["executor"], rep["workers"]) == ("ray", 1)
        assert [(r["variant_name"], r["verified"]) for r in rep["results"]] == [
            ("unroll=2 no-fail", True)]
        assert rep["baseline"]["vec"]["ms"] > 0
    finally:
        head.send_signal(signal.SIGTERM)  # --block: stops the processes it started
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        shutil.rmtree(short, ignore_errors=True)
