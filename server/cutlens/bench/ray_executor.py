"""``cutlens bench --executor ray``: compile as Ray CPU tasks, benchmark on Ray GPU actors.

- **Compile**: each unit is a Ray task (``num_cpus=1``, ``max_retries``) that runs the
  ordinary :class:`~cutlens.nvcc.pool.Compiler` on its node, over a node-local build cache, and
  returns the compile result plus the library's bytes as a second object. The driver keeps
  only a reference to the bytes (named by their sha256: the artifact becomes
  ``ray-object:<sha256>``); no filesystem is shared.
- **Bench**: one :class:`BenchActor` per GPU (``num_gpus=1``, or ``1/K`` with
  ``workers_per_gpu=K``; ``gpu_resource`` names another resource, e.g. a fake one in tests).
  An actor holds a local :class:`~cutlens.bench.runner.Runner` with one worker process: the
  same worker, time limits, crash handling and timing/verification code as a local sweep,
  kept warm across variants. A request's library bytes travel to the actor's node through
  Ray's object store and are written there under their hash before the worker loads them.
- **Faults**: a task lost with its worker or node is retried (``max_retries``); a killed
  actor is restarted, on another node if need be, and its in-flight request retried
  (``max_restarts`` / ``max_task_retries``). A kernel that crashes or hangs is not a lost
  task: the actor's runner turns it into an error result, as locally.

Results come back to the driver, which stores each as it arrives. The only module that
imports ``ray``; nothing on the language server's import path imports this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayError

from cutlens.bench.executor import Executor, ExecutorConfig
from cutlens.bench.protocol import error_result
from cutlens.bench.runner import Runner
from cutlens.errors import UsageError
from cutlens.nvcc.cache import atomic_write
from cutlens.nvcc.output import CompilerMessage
from cutlens.nvcc.pool import CompileJob, Compiler, CompileResult

#: How a library held in Ray's object store is named in a signature.
ARTIFACT_PREFIX = "ray-object:"
#: Retries of a compile task, restarts of an actor and retries of its requests.
RETRIES = 3


def node_dir(*parts: str) -> Path:
    """A directory of this node for cutlens' Ray work: ``$CUTLENS_RAY_DIR`` or a temp dir."""
    base = os.environ.get("CUTLENS_RAY_DIR") or os.path.join(
        tempfile.gettempdir(), f"cutlens-ray-{os.getuid()}")
    path = Path(base, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def compile_on_node(job: CompileJob, cache_dir: str | None) -> tuple[dict[str, Any], bytes]:
    """The compile task: build ``job`` here; (the result as JSON and the library's
    ``sha256``, the library's bytes or ``b""``)."""
    res = Compiler(cache_dir or node_dir("build"), jobs=1).compile_sync(job)
    data = Path(res.artifact).read_bytes() if res.ok and res.artifact else b""
    return {"result": res.to_json(),
            "sha256": hashlib.sha256(data).hexdigest() if data else ""}, data


class Artifacts:
    """The libraries of a sweep in Ray's object store, by sha256, counted by use: a library
    is dropped once every request that needs it has been answered."""

    def __init__(self) -> None:
        self._refs: dict[str, tuple[Any, int]] = {}

    def add(self, sha: str, ref: Any) -> str:
        old = self._refs.get(sha)
        self._refs[sha] = (old[0] if old else ref, (old[1] if old else 0) + 1)
        return ARTIFACT_PREFIX + sha

    def get(self, sha: str) -> Any:
        entry = self._refs.get(sha)
        return None if entry is None else entry[0]

    def release(self, sha: str) -> None:
        entry = self._refs.get(sha)
        if entry is None:
            return
        if entry[1] <= 1:
            del self._refs[sha]
        else:
            self._refs[sha] = (entry[0], entry[1] - 1)

    def __len__(self) -> int:
        return len(self._refs)


def _failed(job: CompileJob, why: str) -> CompileResult:
    msg = CompilerMessage(tool="nvcc", severity="error", file=None, line=None, column=None,
                          message=why, code=None, chain=[], raw=why, level="error")
    return CompileResult(mode=job.mode, ok=False, returncode=None, messages=[msg], resources=[],
                         output="", source_path="", companion_paths={}, artifact=None,
                         duration_s=0.0, cached=False)


async def _get(ref: Any) -> Any:
    """Await an object ref (a local or a ``ray://`` client ref alike)."""
    return await asyncio.wrap_future(ref.future())


class RayCompiler:
    """``compile(job)`` as a Ray task; a built library stays in the object store."""

    def __init__(self, artifacts: Artifacts, cache_dir: str | None = None,
                 num_cpus: float = 1.0, max_retries: int = RETRIES) -> None:
        self.artifacts = artifacts
        self.cache_dir = cache_dir
        self._task = ray.remote(num_returns=2, num_cpus=num_cpus,
                                max_retries=max_retries)(compile_on_node)

    def hold(self, key: str) -> None:
        """Nothing to keep: a built library lives in Ray's object store."""

    def release(self, key: str) -> None:
        """Nothing was held."""

    async def compile(self, job: CompileJob) -> CompileResult:
        refs: Any = self._task.remote(job, self.cache_dir)  # num_returns=2
        meta_ref, lib_ref = refs
        try:
            meta = await _get(meta_ref)
        except asyncio.CancelledError:
            ray.cancel(meta_ref)  # interrupts the task: its compiler kills nvcc
            raise
        except RayError as e:
            return _failed(job, f"ray: compile task failed: {e}")
        res = CompileResult.from_json(meta["result"])
        if res.ok and meta["sha256"]:
            res = replace(res, artifact=self.artifacts.add(meta["sha256"], lib_ref))
        return res


class BenchActor:
    """A bench worker on one GPU of some node (wrapped by ``ray.remote`` at start)."""

    def __init__(self, device: str, timeout_s: float, start_timeout_s: float) -> None:
        gpus = None if device == "cpu" else 1  # Ray set CUDA_VISIBLE_DEVICES to our GPU
        self.runner = Runner(device=device, gpus=gpus, timeout_s=timeout_s,
                             start_timeout_s=start_timeout_s)
        self.busy: dict[str, float] = {}  # request id -> when it started (monotonic)

    async def start(self) -> str | None:
        """Start the worker process; why it failed, or None."""
        return (await self.runner.start())[0]

    async def run(self, req: dict[str, Any], lib: bytes | None, sha: str) -> dict[str, Any]:
        """Run one request, its library (``lib``, named ``sha``) written to this node."""
        req = dict(req)
        if lib is not None:
            path = node_dir("libs") / f"{sha}.so"
            if not path.is_file() or path.stat().st_size != len(lib):
                atomic_write(path, lib)
            req["signature"] = {**req["signature"], "library": str(path)}
        self.busy[str(req.get("id"))] = time.monotonic()
        try:
            resp = await self.runner.run(req)
        finally:
            self.busy.pop(str(req.get("id")), None)
        return {**resp, "host": socket.gethostname(), "ray_pid": os.getpid()}

    def state(self) -> dict[str, Any]:
        """This actor's process, its worker's, and the requests it is serving (id -> seconds
        since each started)."""
        slot = self.runner.slots[0]
        now = time.monotonic()
        return {"pid": os.getpid(), "host": socket.gethostname(),
                "busy": {k: now - t for k, t in self.busy.items()},
                "worker_pid": slot.proc.pid if slot.alive else None}

    async def close(self) -> None:
        await self.runner.close()


class RaySlot:
    """A :class:`~cutlens.bench.runner.Runner` slot whose worker is a :class:`BenchActor`,
    created at its first use."""

    def __init__(self, index: int, make_actor: Callable[[], Any], artifacts: Artifacts,
                 start_timeout_s: float) -> None:
        self.index = index
        self.make_actor = make_actor
        self.artifacts = artifacts
        self.start_timeout_s = start_timeout_s
        self.actor: Any = None
        self.last_gpu: str | None = None

    @property
    def gpu(self) -> str | None:
        return self.last_gpu

    @property
    def alive(self) -> bool:
        return self.actor is not None

    def _actor(self) -> Any:
        if self.actor is None:
            self.actor = self.make_actor()
        return self.actor

    async def ensure_started(self) -> str | None:
        try:
            return await asyncio.wait_for(_get(self._actor().start.remote()),
                                          self.start_timeout_s)
        except TimeoutError:
            return f"no Ray bench worker started within {self.start_timeout_s:g} s"
        except RayError as e:
            return f"ray: {e}"

    async def request(self, req: dict[str, Any], timeout_s: float,
                      restart: bool = True) -> dict[str, Any]:
        """Send ``req`` to the actor; Ray failures become error results."""
        lib = str((req.get("signature") or {}).get("library") or "")
        sha = lib[len(ARTIFACT_PREFIX):] if lib.startswith(ARTIFACT_PREFIX) else ""
        ref = self.artifacts.get(sha) if sha else None
        if sha and ref is None:
            return error_result(req, f"library {sha[:12]} is not in the object store")
        try:
            resp = await asyncio.wait_for(
                _get(self._actor().run.remote({**req, "timeout_s": timeout_s}, ref, sha)),
                (timeout_s + self.start_timeout_s) * (RETRIES + 1))
        except TimeoutError:
            return error_result(req, "ray: no answer from the bench worker")
        except RayError as e:
            return error_result(req, f"ray: {type(e).__name__}: {str(e)[:300]}")
        finally:
            if sha:
                self.artifacts.release(sha)
        self.last_gpu = resp.get("gpu") or self.last_gpu
        return dict(resp)

    async def state(self) -> dict[str, Any]:
        """The actor's :meth:`BenchActor.state` (starting it)."""
        return dict(await _get(self._actor().state.remote()))

    async def close(self) -> None:
        if self.actor is None:
            return
        with contextlib.suppress(RayError, TimeoutError):
            await asyncio.wait_for(_get(self.actor.close.remote()), 10)
        with contextlib.suppress(RayError):
            ray.kill(self.actor)
        self.actor = None


def connect(address: str | None) -> bool:
    """Connect to (or start) a Ray cluster unless connected; whether this call did."""
    if ray.is_initialized():
        return False
    if address and address.startswith("ray://"):
        ray.init(address=address)
    else:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    return True


def worker_count(cfg: ExecutorConfig) -> int:
    """``cfg.workers``, else the cluster's units of ``gpu_resource`` x ``workers_per_gpu``."""
    if cfg.workers is not None:
        return cfg.workers
    resources = ray.cluster_resources()
    return int(resources.get(cfg.gpu_resource, 0) * cfg.workers_per_gpu)


def _needs(cfg: ExecutorConfig) -> dict[str, Any]:
    """What one bench actor holds: ``1/workers_per_gpu`` of a GPU (or ``gpu_resource``) and
    no CPU, so that compile tasks keep every core of a GPU node (as a local sweep does)."""
    share = 1.0 / cfg.workers_per_gpu
    if cfg.gpu_resource == "GPU":
        return {"num_cpus": 0, "num_gpus": share}
    return {"num_cpus": 0, "resources": {cfg.gpu_resource: share}}


@contextlib.asynccontextmanager
async def open_ray(cfg: ExecutorConfig, bench: bool = True,
                   start_timeout_s: float = 300.0) -> AsyncIterator[Executor]:
    """The Ray executor; shuts Ray down on exit if it connected."""
    connected = connect(cfg.address)
    try:
        n = worker_count(cfg)
        if bench and n < 1:
            raise UsageError(f"the Ray cluster has no {cfg.gpu_resource!r} resource: no bench "
                             "worker can run (--gpu-resource, --workers)")
        artifacts = Artifacts()
        cls = ray.remote(max_restarts=RETRIES, max_task_retries=RETRIES, **_needs(cfg))(
            BenchActor)
        make = functools.partial(cls.remote, cfg.device, cfg.timeout_s, start_timeout_s)
        slots = [RaySlot(i, make, artifacts, start_timeout_s) for i in range(max(n, 0))]
        # no finalists' rounds on Ray: a request carries one library to the actor's node
        async with Runner(slots=slots, timeout_s=cfg.timeout_s, device=cfg.device,
                          rounds=False) as runner:
            yield Executor("ray", RayCompiler(artifacts, cfg.cache_dir), runner)
    finally:
        if connected:
            ray.shutdown()

