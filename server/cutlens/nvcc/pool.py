"""The compile pool: cached, deduplicated, bounded, cancellable nvcc runs.

``Compiler.compile(job)`` answers from the cache when it can (no nvcc), joins a running
compile of the same ``(key, mode)`` instead of starting another, and otherwise runs nvcc in
its own process group when :mod:`cutlens.nvcc.schedule` lets it: longest expected first, at
most ``jobs`` at once and within the memory budget (each run's peak memory is sampled and
learned, with its time, under the job's ``cost`` label). Cancelling the awaiting task kills the
process group (once no other caller waits for that compile); a time limit, a crashed or killed
nvcc, a missing nvcc or a cache that cannot be written (disk full) becomes a message in the
result, never an exception or a hang. Results of failures that say nothing about the code
(signals, timeouts, a full disk, out of memory) are not cached. BUILD links the FULL
object (one compile serves a check and a benchmark). Superseding QUICK's messages by FULL's is
the caller's business: both are delivered, under the same ``source_path``. FULL and BUILD
runs record where their time went (:mod:`cutlens.nvcc.timing`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import signal
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cutlens.config import flags
from cutlens.nvcc import cache as build_cache
from cutlens.nvcc import toolchain as nv
from cutlens.nvcc.output import CompilerMessage, KernelResources, parse, parse_resources
from cutlens.nvcc.schedule import HISTORY_FILE, History, PeakSampler, Slots, memory_budget
from cutlens.nvcc.timing import CompileTimes, timed_run
from cutlens.nvcc.toolchain import CompileOptions, Mode

__all__ = ["CompileJob", "CompileOptions", "CompileResult", "Compiler", "CompilerStats", "Mode"]

log = logging.getLogger(__name__)

#: nvcc output of a failure caused by the machine, not the code: never cached.
_TRANSIENT_RE = re.compile(
    r"No space left on device|Disk quota exceeded|Read-only file system|Cannot allocate memory"
    r"|[Oo]ut of memory|Too many open files|Resource temporarily unavailable"
    r"|died due to signal")


@dataclass
class CompileJob:
    """One translation unit to compile in one mode."""

    source: str
    mode: Mode
    options: CompileOptions = field(default_factory=CompileOptions)
    name: str = "kernel"
    companions: dict[str, str] = field(default_factory=dict)
    #: What the pool learns this job's compile time and memory under (units of one template
    #: cost about the same); not part of the cache key.
    cost: str = ""


@dataclass
class CompileResult:
    """What a compile reported. ``duration_s`` is nvcc's wall time when it ran (for a cached
    result: the original run's); ``messages`` never lacks an error when ``ok`` is False."""

    mode: Mode
    ok: bool
    returncode: int | None
    messages: list[CompilerMessage]
    resources: list[KernelResources]
    output: str
    source_path: str
    companion_paths: dict[str, str]
    artifact: str | None
    duration_s: float
    cached: bool
    timed_out: bool = False
    cancelled: bool = False
    key: str = ""
    command: list[str] = field(default_factory=list)
    #: The nvcc process group's largest resident memory, sampled (None: not measured).
    peak_rss_bytes: int | None = None
    #: Seconds per nvcc phase (``--time``), and the costliest template instantiations and
    #: headers (the device time trace, when the compiler was asked for it).
    phases: dict[str, float] = field(default_factory=dict)
    top_instantiations: list[tuple[str, float]] = field(default_factory=list)
    top_headers: list[tuple[str, float]] = field(default_factory=list)

    @property
    def errors(self) -> list[CompilerMessage]:
        return [m for m in self.messages if m.severity == "error"]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "mode": self.mode.value}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CompileResult:
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in known}  # drop the cache's own keys
        d["mode"] = Mode(d["mode"])
        d["messages"] = [CompilerMessage.from_json(m) for m in d.get("messages", [])]
        d["resources"] = [KernelResources.from_json(r) for r in d.get("resources", [])]
        return cls(**d)


@dataclass
class CompilerStats:
    """Counters (tests and the status bar read them)."""

    nvcc_runs: int = 0  # nvcc processes started (compiles and links)
    cache_hits: int = 0  # answered from the cache without nvcc
    joined: int = 0  # waited on a compile another caller had started
    timeouts: int = 0
    crashes: int = 0  # nvcc killed by a signal or dying inside
    cancelled: int = 0  # nvcc process groups killed by cancellation
    running: int = 0  # nvcc processes alive now
    peak_running: int = 0
    #: Order in which the last nvcc runs started: (job name, mode), for tests and logs.
    started: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=1000))


@dataclass
class _Inflight:
    task: asyncio.Task[CompileResult]
    waiters: int = 0


@dataclass
class _Unit:
    key: str
    source_path: Path
    companion_paths: dict[str, str]


def _nvcc_message(text: str, raw: str = "", severity: str = "error") -> CompilerMessage:
    return CompilerMessage(tool="nvcc", severity=severity,  # type: ignore[arg-type]
                           file=None, line=None, column=None, message=text, code=None,
                           chain=[], raw=raw or text, level=severity)


def _cacheable(res: CompileResult) -> bool:
    """A result that the code decides: a success, or nvcc's own verdict on the code."""
    if res.ok:
        return True
    return (res.returncode is not None and res.returncode > 0 and not res.timed_out
            and not res.cancelled and not _TRANSIENT_RE.search(res.output))


class Compiler:
    """An async pool of nvcc processes over a :class:`BuildCache`: at most ``jobs`` at once
    (default: the cores), their estimated peak memory within ``memory_bytes`` (default:
    ``$CUTLENS_COMPILE_MEMORY``, else the memory available at start), longest first."""

    def __init__(self, cache_dir: str | os.PathLike[str], jobs: int | None = None,
                 memory_bytes: int | None = None,
                 max_bytes: int | None = build_cache.DEFAULT_MAX_BYTES,
                 time_trace: bool = False) -> None:
        #: ``max_bytes``: the build cache's bound (the project's ``[cache] max_size``);
        #: ``time_trace``: record nvcc's device time trace (costs compile time).
        self.time_trace = time_trace
        self.cache = build_cache.BuildCache(cache_dir, max_bytes)
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self.memory_budget = memory_budget(memory_bytes)
        self.history = History(self.cache.root / HISTORY_FILE)
        self.sampler = PeakSampler()
        self.stats = CompilerStats()
        self._inflight: dict[tuple[str, Mode], _Inflight] = {}
        self._slots: tuple[asyncio.AbstractEventLoop, Slots] | None = None
        self._pids: set[int] = set()

    # ------------------------------------------------------------------ public

    async def compile(self, job: CompileJob) -> CompileResult:
        """Compile ``job`` (or answer from the cache / a running identical compile)."""
        mode = Mode(job.mode)
        try:
            unit = await asyncio.to_thread(self._prepare, job)
        except nv.NvccNotFound as e:
            return self._bare_result(job, mode, _Unit("", Path(), {}), source_path="",
                                     messages=[_nvcc_message(str(e))])
        except OSError as e:  # the TU could not be written: disk full, permissions...
            return self._bare_result(job, mode, _Unit("", Path(), {}), source_path="",
                                     messages=[_nvcc_message(
                                         f"cannot write the build cache under "
                                         f"{self.cache.root}: {_oserror(e, self.cache.root)}")])
        ik = (unit.key, mode)
        entry = self._inflight.get(ik)
        if entry is None:
            rec = await asyncio.to_thread(self.cache.load, unit.key, mode)
            entry = self._inflight.get(ik)  # may have started while we read
            if entry is None and rec is None:
                # ...or started and finished: re-read without yielding to the loop.
                rec = self.cache.load(unit.key, mode)
            if entry is None and rec is not None:
                self.stats.cache_hits += 1
                return replace(CompileResult.from_json(rec), cached=True)
        if entry is None:
            task = asyncio.create_task(self._produce(job, mode, unit))
            entry = _Inflight(task)
            self._inflight[ik] = entry
            task.add_done_callback(lambda _t: self._inflight.pop(ik, None))
        else:
            self.stats.joined += 1
        entry.waiters += 1
        try:
            return await asyncio.shield(entry.task)
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if me is not None and me.cancelling():
                entry.waiters -= 1
                if entry.waiters == 0:
                    entry.task.cancel()
                raise
            # The compile was cancelled under us (cancel_all): report it, don't raise.
            return self._bare_result(job, mode, unit, cancelled=True,
                                     messages=[_nvcc_message("compile cancelled")])

    def compile_sync(self, job: CompileJob) -> CompileResult:
        """``compile`` for scripts (runs its own event loop)."""
        return asyncio.run(self.compile(job))

    def cancel_all(self) -> None:
        """Cancel every running compile (their callers get ``cancelled=True`` results)."""
        for entry in list(self._inflight.values()):
            entry.task.cancel()

    def hold(self, key: str) -> None:
        """Keep a unit's artifacts from eviction (a build a benchmark will load) until
        :meth:`release`."""
        self.cache.pin(key)

    def release(self, key: str) -> None:
        self.cache.unpin(key)

    def running_pids(self) -> list[int]:
        """Process ids (= process-group ids) of the nvcc processes running now."""
        return sorted(self._pids)

    def key(self, job: CompileJob) -> str:
        """The cache key of ``job``'s unit (all modes share it)."""
        return build_cache.unit_key(job.name, job.source, job.companions, job.options)

    # ------------------------------------------------------------------ internals

    def slots(self) -> Slots:
        """The admission control of this event loop's nvcc runs."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, Slots(self.jobs, self.memory_budget))
        return self._slots[1]

    def _prepare(self, job: CompileJob) -> _Unit:
        key = self.key(job)
        tu, companions = self.cache.write_unit(key, job.name, job.source, job.companions)
        return _Unit(key, tu, companions)

    def _bare_result(self, job: CompileJob, mode: Mode, unit: _Unit, **kw: object) -> CompileResult:
        base: dict[str, Any] = dict(mode=mode, ok=False, returncode=None, messages=[], resources=[],
                          output="", source_path=str(unit.source_path),
                          companion_paths=dict(unit.companion_paths), artifact=None,
                          duration_s=0.0, cached=False, key=unit.key)
        base.update(kw)
        return CompileResult(**base)

    async def _produce(self, job: CompileJob, mode: Mode, unit: _Unit) -> CompileResult:
        # Pinned from the wait for a slot to its store's end; every scan reads pins live.
        self.cache.pin(unit.key)
        try:
            try:
                res = await self._compile_unit(job, mode, unit)
            except OSError as e:  # nvcc could not start, a temporary file could not be made
                log.warning("compile of %s failed: %s", unit.key[:12], e)
                res = self._bare_result(job, mode, unit, messages=[_nvcc_message(
                    f"nvcc could not run: {_oserror(e)}")])
            if _cacheable(res):
                await self._store(res, mode, unit)
        except BaseException:
            self.cache.unpin(unit.key)
            raise
        with contextlib.suppress(OSError):  # unpinned; a scan again if pins kept it over
            await asyncio.to_thread(self.cache.release, unit.key)
        return res

    async def _store(self, res: CompileResult, mode: Mode, unit: _Unit) -> None:
        """Store a result, then keep the cache within its bound."""
        try:
            await asyncio.to_thread(self.cache.store, unit.key, mode, res.to_json())
        except OSError as e:  # disk full: report the result anyway, uncached
            log.warning("build cache: not storing %s/%s: %s", unit.key[:12], mode.value, e)
            res.messages.append(_nvcc_message(
                f"result not cached: cannot write the build cache under "
                f"{self.cache.root}: {_oserror(e, self.cache.root)}", severity="warning"))
        with contextlib.suppress(OSError):
            await asyncio.to_thread(self.cache.after_store, unit.key)

    async def _compile_unit(self, job: CompileJob, mode: Mode, unit: _Unit) -> CompileResult:
        if mode is Mode.BUILD:
            full = await self.compile(replace(job, mode=Mode.FULL))
            if not full.ok or full.artifact is None:
                return replace(full, mode=Mode.BUILD, artifact=None)
            final = self.cache.artifact_path(unit.key, job.name, Mode.BUILD)
            cmd_out = self.cache.temp_output(unit.key, final)
            link = timed_run(final, trace=False)
            cmd = link.command(nv.link_command(job.options, full.artifact, cmd_out))
            res = await self._run(job, mode, unit, cmd, cmd_out, final)
            _set_times(res, _times(full).merge(await asyncio.to_thread(link.collect)))
            # The library's diagnostics are the object's plus the link's.
            res.messages = full.messages + res.messages
            res.resources = full.resources
            res.output = full.output + res.output
            res.duration_s += full.duration_s
        else:
            if mode is Mode.QUICK:
                final, cmd_out = None, Path(os.devnull)
            else:
                final = self.cache.artifact_path(unit.key, job.name, mode)
                cmd_out = self.cache.temp_output(unit.key, final)
            timed = None if final is None else timed_run(final, self.time_trace)
            cmd = nv.command(mode, job.options, unit.source_path, cmd_out)
            cmd = timed.command(cmd) if timed else cmd
            res = await self._run(job, mode, unit, cmd, cmd_out, final)
            if timed is not None:
                _set_times(res, await asyncio.to_thread(timed.collect))
        return res

    async def _run(self, job: CompileJob, mode: Mode, unit: _Unit, cmd: list[str],
                   out_path: Path, final: Path | None) -> CompileResult:
        """Run one nvcc process group and turn how it ended into a result."""
        unsafe = flags.shell_unsafe_args(cmd)  # nvcc runs its tools through /bin/sh
        if unsafe:
            return self._bare_result(job, mode, unit, messages=[_nvcc_message(
                f"nvcc not run: argument {unsafe[0]!r} holds '$' or '`', which nvcc's "
                "/bin/sh would expand (run commands)")])
        timeout = job.options.timeout_s
        est = self.history.estimate(job.cost, mode, job.source)
        try:
            async with self.slots().hold(est):
                self.stats.started.append((job.name, mode.value))
                outcome, peak = await self._exec(cmd, cwd=unit.source_path.parent,
                                                 timeout_s=timeout)
        except BaseException:
            if final is not None:
                with contextlib.suppress(OSError):
                    out_path.unlink()
            raise
        messages, resources = await asyncio.to_thread(
            lambda: (parse(outcome.output), parse_resources(outcome.output)))
        ok = (outcome.returncode == 0 and not outcome.timed_out
              and (final is None or (out_path.is_file() and out_path.stat().st_size > 0)))
        artifact = None
        if ok and final is not None:
            os.replace(out_path, final)
            artifact = str(final)
        elif final is not None:
            with contextlib.suppress(OSError):
                out_path.unlink()
        if outcome.timed_out:
            messages.append(_nvcc_message(f"nvcc timed out after {timeout:g} s"))
        elif outcome.signal is not None:
            name = signal.Signals(outcome.signal).name if outcome.signal in set(
                signal.Signals) else str(outcome.signal)
            messages.append(_nvcc_message(f"nvcc was killed by signal {outcome.signal} "
                                          f"({name})", outcome.output[-2000:]))
        elif any(m.tool == "nvcc" and "died due to signal" in m.message for m in messages):
            self.stats.crashes += 1
        elif not ok and not any(m.severity == "error" for m in messages):
            messages.append(_nvcc_message(
                f"nvcc exited with status {outcome.returncode} without a diagnostic",
                outcome.output[-2000:]))
        if outcome.returncode == 0 and not outcome.timed_out:
            await asyncio.to_thread(self.history.record, job.cost, mode, outcome.duration_s,
                                    peak)
        return CompileResult(
            mode=mode, ok=ok, returncode=outcome.returncode, messages=messages,
            resources=resources, output=outcome.output,
            source_path=str(unit.source_path), companion_paths=dict(unit.companion_paths),
            artifact=artifact, duration_s=outcome.duration_s, cached=False,
            timed_out=outcome.timed_out, key=unit.key, command=cmd, peak_rss_bytes=peak)

    async def _exec(self, cmd: list[str], cwd: Path,
                    timeout_s: float) -> tuple[nv.RunOutcome, int | None]:
        """Start ``cmd`` as a new session; kill its whole group on timeout or cancellation.
        Also the group's sampled peak resident memory."""
        t0 = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=cwd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True, env=nv.compile_env())
        self.stats.nvcc_runs += 1
        self.stats.running += 1
        self.stats.peak_running = max(self.stats.peak_running, self.stats.running)
        self._pids.add(proc.pid)
        self.sampler.watch(proc.pid)
        chunks: list[bytes] = []

        async def drain() -> None:
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(65536):
                chunks.append(chunk)

        reader = asyncio.create_task(drain())
        timed_out = False
        try:
            if not await _exited(proc, timeout_s):
                timed_out = True
                self.stats.timeouts += 1
            # On a time-out the whole group; else stragglers: the tools of an nvcc that was
            # killed (cicc, gcc) would run on to completion, holding the pipe open.
            nv.kill_group(proc.pid)
            await proc.wait()
            # The pipe closes once every process of the group has exited.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(reader), 10)
        except asyncio.CancelledError:
            self.stats.cancelled += 1
            nv.kill_group(proc.pid)
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(proc.wait()), 10)
            raise
        finally:
            self.stats.running -= 1
            self._pids.discard(proc.pid)
            peak = self.sampler.forget(proc.pid)
            if not reader.done():
                reader.cancel()
        rc = proc.returncode
        if rc is not None and rc < 0 and not timed_out:
            self.stats.crashes += 1
        return nv.RunOutcome(
            returncode=None if timed_out else rc,
            output=b"".join(chunks).decode("utf-8", "replace"),
            duration_s=time.monotonic() - t0, timed_out=timed_out,
            signal=-rc if rc is not None and rc < 0 and not timed_out else None), peak


async def _exited(proc: asyncio.subprocess.Process, timeout_s: float) -> bool:
    """Wait until ``proc`` itself exits (True) or ``timeout_s`` passes (False).

    Not ``proc.wait()`` alone: before Python 3.12 it also waits for the pipes to close, which
    children of a killed nvcc keep open. ``returncode`` is set as soon as the process exits.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    waiter = asyncio.ensure_future(proc.wait())
    try:
        while proc.returncode is None:
            left = deadline - loop.time()
            if left <= 0:
                return False
            await asyncio.wait({waiter}, timeout=min(0.05, left))
        return True
    finally:
        waiter.cancel()


def _times(res: CompileResult) -> CompileTimes:
    return CompileTimes(dict(res.phases),
                        [(str(n), float(s)) for n, s in res.top_instantiations],
                        [(str(n), float(s)) for n, s in res.top_headers])


def _set_times(res: CompileResult, times: CompileTimes) -> None:
    res.phases = times.phases
    res.top_instantiations = times.top_instantiations
    res.top_headers = times.top_headers


def _oserror(e: OSError, under: Path | None = None) -> str:
    """``No space left on device (/path)`` rather than ``[Errno 28] ...`` (the path left
    out when it is ``under`` itself)."""
    what = e.strerror or str(e)
    if not e.filename or (under is not None and str(e.filename) == str(under)):
        return what
    return f"{what} ({e.filename})"
