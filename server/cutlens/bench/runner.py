"""Runner: one benchmark worker process per GPU, started lazily and reused; torch-free.

The server and the CLI never touch CUDA: they send requests (built with
:func:`cutlens.bench.protocol.run_request` / ``baseline_request``) to a :class:`Runner`::

    async with Runner(timeout_s=60) as runner:          # one worker per visible GPU
        result = await runner.run(run_request(signature, bench, sample="s", variant_name="v"))
        async for result in runner.sweep(requests):      # (async) iterable, as builds finish
            ...

Each worker runs ``python -m cutlens.bench.worker`` with ``CUDA_VISIBLE_DEVICES`` set to its
GPU. A request that crashes the worker (segfault), outlives ``timeout_s`` (the worker is
killed), or faults its CUDA context (illegal address, out of memory: the worker answers
``fatal`` and exits) becomes a result with ``error`` set — ``worker crashed (signal 11,
SIGSEGV)``, ``timed out after 60 s``, ``illegal memory access``, ``out of memory`` — and
the next request on that GPU gets a fresh worker. Results are the worker's response plus the
request's context keys (``template``, ``sample``, ``variant``, ``variant_name``, ...), ``gpu``
(the device name) and ``worker`` (its index); a crash adds ``log``, the worker's stderr tail.

GPUs come from ``gpus`` (a count or a list of ``CUDA_VISIBLE_DEVICES`` entries), else the
environment's ``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi -L``. An entry listed twice, or
``workers_per_gpu=K``, gives that GPU several workers (they run concurrently, so their
timings contend; verification is unaffected). ``device="cpu"`` runs ``workers`` CPU workers
(tests; fake libraries computing on host memory). ``slots`` replaces the worker processes
with other objects of :class:`WorkerSlot`'s interface (the Ray executor's actors).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

from cutlens.bench.protocol import context_of, error_result, next_id
from cutlens.errors import UsageError

log = logging.getLogger(__name__)

#: Directory holding the ``cutlens`` package, put on the workers' PYTHONPATH.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_STREAM_LIMIT = 64 << 20
_GPU_LINE = re.compile(r"^GPU (\d+):", re.M)


def visible_gpus(env: dict[str, str] | None = None) -> list[str]:
    """``CUDA_VISIBLE_DEVICES`` entries to give one worker each: the environment's list when
    set, else one per ``nvidia-smi -L`` line; empty when neither finds a GPU."""
    cvd = (os.environ if env is None else env).get("CUDA_VISIBLE_DEVICES")
    if cvd is not None:
        entries = [e.strip() for e in cvd.split(",") if e.strip()]
        return [] if entries[:1] == ["-1"] else entries
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return _GPU_LINE.findall(out)


def parse_gpus(spec: str | None) -> list[str] | None:
    """``--gpus``: ``all`` (or empty) -> None (every visible GPU); ``0,1`` -> ``["0", "1"]``
    (an entry listed twice gets two workers)."""
    if spec is None or spec.strip().lower() in ("", "all"):
        return None
    ids = [e.strip() for e in spec.split(",")]
    if not all(ids):
        raise UsageError(f"--gpus {spec!r}: expected 'all' or a comma-separated list of GPUs")
    return ids


def crash_reason(returncode: int | None) -> str:
    """``worker crashed (signal 11, SIGSEGV)`` / ``worker exited with status 3``."""
    if returncode is None:
        return "worker stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "?"
        return f"worker crashed (signal {-returncode}, {name})"
    return f"worker exited with status {returncode}"


class WorkerSlot:
    """One worker process for one GPU (or the CPU); restarted after it dies."""

    def __init__(self, index: int, visible: str | None, *, device: str, python: str,
                 env: dict[str, str] | None, start_timeout_s: float) -> None:
        self.index = index
        self.visible = visible
        self.device = device
        self.python = python
        self.extra_env = dict(env or {})
        self.start_timeout_s = start_timeout_s
        self.proc: asyncio.subprocess.Process | None = None
        self.hello: dict[str, Any] = {}
        self.starts = 0
        self.stderr_tail: deque[str] = deque(maxlen=200)
        self._stderr_task: asyncio.Task[Any] | None = None
        self._warm_task: asyncio.Task[Any] | None = None
        self._lock = asyncio.Lock()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def gpu(self) -> str | None:
        return self.hello.get("gpu")

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        if self.device == "cpu":
            env["CUDA_VISIBLE_DEVICES"] = ""
        elif self.visible is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.visible
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(list(self.stderr_tail)[-lines:])

    async def start(self) -> None:
        """Start the worker and wait for its hello line; raises RuntimeError on failure
        (leaving no process behind)."""
        await self.stop()
        self.stderr_tail.clear()
        self.starts += 1
        dev = "cpu" if self.device == "cpu" else "cuda"
        self.proc = await asyncio.create_subprocess_exec(
            self.python, "-m", "cutlens.bench.worker", "--device", dev,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self._env(), start_new_session=True,
            limit=_STREAM_LIMIT)
        self._stderr_task = asyncio.create_task(self._drain_stderr(self.proc))
        try:
            assert self.proc.stdout is not None  # started with stdout=PIPE
            line = await asyncio.wait_for(self.proc.stdout.readline(), self.start_timeout_s)
            if not line:
                rc = await self.proc.wait()
                await self._finish_stderr()
                tail = self.log_tail(5)
                raise RuntimeError(f"{crash_reason(rc)} at start" + (f": {tail}" if tail else ""))
            self.hello = json.loads(line)
        except BaseException as e:
            await self.kill()
            self.proc = None
            if isinstance(e, TimeoutError):
                raise RuntimeError(
                    f"worker did not start within {self.start_timeout_s:g} s") from None
            if isinstance(e, ValueError):
                raise RuntimeError(f"bad hello from worker: {line[:200]!r}") from None
            raise
        log.debug("worker %d started: %s", self.index, self.hello)

    async def _drain_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while True:
            line = await proc.stderr.readline()
            if not line:
                return
            text = line.decode(errors="replace").rstrip()
            self.stderr_tail.append(text)
            log.debug("worker %d: %s", self.index, text)

    async def _finish_stderr(self) -> None:
        if self._stderr_task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._stderr_task, 2)
            self._stderr_task = None

    async def kill(self) -> None:
        """SIGKILL the worker's process group and reap it."""
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        await proc.wait()
        await self._finish_stderr()

    async def stop(self, grace_s: float = 2.0) -> None:
        """Ask the worker to exit; kill it if it does not within ``grace_s``."""
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, RuntimeError):
                proc.stdin.write(b'{"op": "exit"}\n')
                await proc.stdin.drain()
                proc.stdin.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), grace_s)
        await self.kill()
        self.proc = None

    async def ensure_started(self) -> str | None:
        """Start the worker unless it runs; the failure reason, or None."""
        async with self._lock:
            return await self._ensure_started()

    async def _ensure_started(self) -> str | None:
        if self.alive:
            return None
        try:
            await self.start()
        except (RuntimeError, OSError, ValueError) as e:
            return str(e)
        return None

    def restart_soon(self) -> None:
        """Start a replacement in the background (after a death), so that the next request
        doesn't wait for torch to import; a failure shows at the next request."""
        if self._warm_task is None or self._warm_task.done():
            self._warm_task = asyncio.create_task(self.ensure_started())

    async def close(self) -> None:
        if self._warm_task is not None:
            self._warm_task.cancel()
            await asyncio.gather(self._warm_task, return_exceptions=True)
            self._warm_task = None
        async with self._lock:
            await self.stop()

    async def request(self, req: dict[str, Any], timeout_s: float,
                      restart: bool = True) -> dict[str, Any]:
        """Send one request and wait for its answer; every failure becomes an error result.
        After the worker dies, a replacement starts in the background when ``restart``."""
        resp = await self._request(req, timeout_s)
        if restart and self.proc is not None and not self.alive:
            self.restart_soon()  # it died serving this request (crash, time-out, fault)
        return resp

    async def _request(self, req: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        async with self._lock:
            failure = await self._ensure_started()
            if failure is not None:
                return error_result(req, f"worker failed to start: {failure}",
                                    log=self.log_tail())
            assert self.proc is not None and self.proc.stdin and self.proc.stdout
            try:
                self.proc.stdin.write((json.dumps(req, default=str) + "\n").encode())
                await self.proc.stdin.drain()
                line = await asyncio.wait_for(self.proc.stdout.readline(), timeout_s)
            except TimeoutError:
                await self.kill()
                return error_result(req, f"timed out after {timeout_s:g} s",
                                    log=self.log_tail())
            except (BrokenPipeError, ConnectionResetError):
                line = b""
            except asyncio.CancelledError:
                await self.kill()  # the worker is mid-request: its state is unknown
                raise
            if not line:
                rc = await self.proc.wait()
                await self._finish_stderr()
                return error_result(req, crash_reason(rc), log=self.log_tail())
            try:
                resp: dict[str, Any] = json.loads(line)
            except json.JSONDecodeError:
                await self.kill()
                return error_result(req, f"bad worker answer: {line[:200]!r}")
            if resp.get("id") != req.get("id"):
                await self.kill()
                return error_result(req, f"worker answered {resp.get('id')!r}, "
                                         f"expected {req.get('id')!r}")
            if resp.get("fatal"):
                # The worker exits by itself after a fatal error; make sure of it.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.proc.wait(), 10)
                await self.kill()
                resp.setdefault("log", self.log_tail())
            return resp


class Runner:
    """Distributes benchmark requests over one worker per GPU."""

    def __init__(self, *, device: str = "cuda", gpus: int | Sequence[str] | None = None,
                 workers: int | None = None, timeout_s: float = 60.0,
                 start_timeout_s: float = 300.0, python: str | None = None,
                 env: dict[str, str] | None = None, restart_eagerly: bool = True,
                 workers_per_gpu: int = 1, slots: Sequence[Any] | None = None,
                 rounds: bool = True) -> None:
        """``device``: ``cuda`` or ``cpu``. ``gpus``: how many GPUs (or which
        ``CUDA_VISIBLE_DEVICES`` entries) to use; default all visible. ``workers``: CPU
        workers for ``device="cpu"`` (default 1). ``workers_per_gpu``: workers started for
        each GPU (or CPU worker). ``timeout_s``: per-request limit (a request's own
        ``timeout_s`` key overrides it). ``python``: the interpreter that has torch.
        ``restart_eagerly``: after a worker dies, start its replacement right away (in the
        background) rather than at the next request. ``slots``: ready-made slots instead.
        ``rounds``: whether its workers serve ``rounds`` requests (several libraries in one
        request: the finalists of a sweep); Ray's slots carry one library per request."""
        self.device = device
        self.rounds = rounds
        self.timeout_s = timeout_s
        self.restart_eagerly = restart_eagerly
        self._idle: asyncio.Queue[Any] | None = None
        self._closed = False
        if slots is not None:
            self.slots: list[Any] = list(slots)
            return
        if workers_per_gpu < 1:
            raise UsageError("workers_per_gpu must be at least 1")
        if device == "cpu":
            ids: list[str | None] = [None] * max(1, workers or 1)
        else:
            found = visible_gpus({**os.environ, **(env or {})})
            if isinstance(gpus, int):
                ids = list(found[:gpus]) if len(found) >= gpus else [str(i) for i in range(gpus)]
            elif gpus is not None:
                ids = [str(g) for g in gpus]
            else:
                ids = list(found) or [None]  # no GPU found: one worker, which will say why
        ids = [v for v in ids for _ in range(workers_per_gpu)]
        self.slots = [WorkerSlot(i, v, device=device, python=python or sys.executable, env=env,
                                 start_timeout_s=start_timeout_s) for i, v in enumerate(ids)]

    @property
    def workers(self) -> int:
        """How many workers (slots) serve this runner's requests."""
        return len(self.slots)

    def _queue(self) -> asyncio.Queue[Any]:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for slot in self.slots:
                self._idle.put_nowait(slot)
        return self._idle

    async def __aenter__(self) -> Runner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def run(self, req: dict[str, Any]) -> dict[str, Any]:
        """Run one request on the next free worker; never raises for a failed kernel."""
        if self._closed:
            raise RuntimeError("runner is closed")
        req = dict(req)
        req.setdefault("id", next_id())
        timeout = float(req.get("timeout_s") or self.timeout_s)
        queue = self._queue()
        slot = await queue.get()
        try:
            restart = self.restart_eagerly and not self._closed
            resp = await slot.request(req, timeout, restart=restart)
        finally:
            queue.put_nowait(slot)
        return {**context_of(req), **resp, "gpu": slot.gpu, "worker": slot.index}

    async def start(self) -> list[str | None]:
        """Start every worker now (each failure reason, or None). Optional: workers start at
        their first request anyway; calling this while the first builds compile hides the
        workers' start (torch import, CUDA context) behind the compile."""
        return list(await asyncio.gather(*(s.ensure_started() for s in self.slots)))

    async def info(self) -> list[dict[str, Any]]:
        """Each worker's ``info`` answer (starting the workers)."""
        return list(await asyncio.gather(
            *(s.request({"op": "info", "id": next_id()}, self.timeout_s) for s in self.slots)))

    async def sweep(self, requests: Iterable[dict[str, Any]] | AsyncIterable[dict[str, Any]]
                    ) -> AsyncIterator[dict[str, Any]]:
        """Run requests as they arrive (e.g. as builds finish compiling), on all workers at
        once; yield each result as soon as it is ready (completion order)."""
        done: asyncio.Queue[Any] = asyncio.Queue()
        tasks: set[asyncio.Task[Any]] = set()
        end = object()

        async def one(req: dict[str, Any]) -> None:
            try:
                done.put_nowait(await self.run(req))
            except Exception as e:
                done.put_nowait({**context_of(req), **error_result(req, f"runner: {e}")})

        async def feed() -> None:
            try:
                if isinstance(requests, AsyncIterable):
                    async for req in requests:
                        _spawn(req)
                else:
                    for req in requests:
                        _spawn(req)
                        await asyncio.sleep(0)
            except Exception as e:
                done.put_nowait(e)
            done.put_nowait(end)

        def _spawn(req: dict[str, Any]) -> None:
            task = asyncio.create_task(one(req))
            tasks.add(task)

        feeder = asyncio.create_task(feed())
        fed = False
        received = 0
        try:
            while not fed or received < len(tasks):
                item = await done.get()
                if item is end:
                    fed = True
                elif isinstance(item, Exception):
                    raise item
                else:
                    received += 1
                    yield item
        finally:
            feeder.cancel()
            for t in tasks:
                t.cancel()
            await asyncio.gather(feeder, *tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop every worker."""
        self._closed = True
        await asyncio.gather(*(s.close() for s in self.slots), return_exceptions=True)
