"""Compile scheduling: which waiting nvcc run starts next, and how many run at once.

* **Longest first.** Each run has an :class:`Estimate` (seconds, peak memory): what the
  pool's history recorded for its cost label (the template file: its units cost about the
  same) and mode, else a guess from what the source includes — a CUTLASS 3.x TU (cute,
  CollectiveBuilder: about a minute, 3.5 GB) before a CUTLASS 2.x one before plain CUDA.
  Waiting runs start longest first (submission order among equals), so a sweep's slowest
  TU does not start last and stretch the wall time.
* **Bounded by cores and memory.** At most ``jobs`` runs at once, and the estimated peaks
  of the running ones stay within the memory budget (one run always may start): the
  budget is ``CUTLENS_COMPILE_MEMORY`` (``64G``, ``512M``, bytes), else what the machine
  has available now (``MemAvailable``, within the cgroup's limit). A machine whose memory
  grows as it is used (a VM balloon) reports too little: set the variable there.
* **Learning.** :class:`History` keeps, per label and mode, a running mean of nvcc's wall
  time and the largest peak resident memory seen (sampled from ``/proc`` for the nvcc
  process group: :class:`PeakSampler`), in ``schedule.json`` beside the build cache, so the
  next sweep orders and packs its runs by measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import os
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cutlens.nvcc.toolchain import Mode

log = logging.getLogger(__name__)

GB = 1 << 30
#: Default guesses by kind of TU: (seconds of a FULL compile, peak bytes).
KIND_DEFAULTS: dict[str, tuple[float, int]] = {
    "cutlass3": (60.0, int(3.5 * GB)),
    "cutlass2": (10.0, int(1.5 * GB)),
    "cuda": (3.0, int(0.5 * GB)),
}
#: A mode's share of a FULL compile's time (QUICK stops before code generation; BUILD here
#: is the link of FULL's object).
MODE_FACTOR = {Mode.QUICK: 0.45, Mode.FULL: 1.0, Mode.BUILD: 0.05}
ENV_MEMORY = "CUTLENS_COMPILE_MEMORY"
HISTORY_FILE = "schedule.json"
_CUTLASS3_RE = re.compile(r'#\s*include\s*[<"](?:cute/|cutlass/gemm/collective/|'
                          r'cutlass/epilogue/collective/|cutlass/gemm/kernel/gemm_universal\.hpp)')
_CUTLASS_RE = re.compile(r'#\s*include\s*[<"]cutlass/')
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$", re.I)


def source_kind(source: str) -> str:
    """``cutlass3``, ``cutlass2`` or ``cuda``: what the TU includes."""
    if _CUTLASS3_RE.search(source):
        return "cutlass3"
    if _CUTLASS_RE.search(source):
        return "cutlass2"
    return "cuda"


@dataclass(frozen=True)
class Estimate:
    """What a compile is expected to cost."""

    seconds: float
    peak_bytes: int


def parse_size(text: str) -> int:
    """``64G`` / ``512M`` / ``100GB`` / ``1e9`` -> bytes (binary multiples)."""
    m = _SIZE_RE.match(text)
    if m is None:
        try:
            return int(float(text))
        except ValueError:
            raise ValueError(f"{ENV_MEMORY}={text!r}: expected a size such as 64G or 512M") \
                from None
    scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": GB, "T": 1 << 40}[m.group(2).upper()]
    return int(float(m.group(1)) * scale)


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup v2 memory limit (None: no limit)."""
    try:
        rel = Path("/proc/self/cgroup").read_text().strip().split("::", 1)[1]
        base = Path("/sys/fs/cgroup") / rel.lstrip("/")
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((base / "memory.current").read_text())
    except (OSError, ValueError, IndexError):
        return None


def memory_budget(explicit: int | None = None) -> int | None:
    """Bytes the compiles may use at once: ``explicit``, else ``$CUTLENS_COMPILE_MEMORY``,
    else the memory available now (within the cgroup's limit); None when unknown."""
    if explicit is not None:
        return explicit
    env = os.environ.get(ENV_MEMORY, "").strip()
    if env:
        return parse_size(env)
    room = [r for r in (_meminfo_available(), _cgroup_room()) if r is not None]
    return min(room) if room else None


class History:
    """Per cost label and mode: mean nvcc seconds and the largest peak memory seen, kept
    in a JSON file (best effort: an unreadable or unwritable file is no history)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, dict[str, float]]] = {}
        if path is not None:
            with contextlib.suppress(OSError, ValueError, TypeError):
                data = json.loads(path.read_text())
                if isinstance(data, dict):
                    self._data = {k: v for k, v in data.items() if isinstance(v, dict)}

    def get(self, label: str, mode: Mode) -> dict[str, float] | None:
        entry = self._data.get(label, {}).get(Mode(mode).value)
        return entry if isinstance(entry, dict) else None

    def record(self, label: str, mode: Mode, seconds: float, peak_bytes: int | None) -> None:
        """Fold one finished compile in (mean of the times, max of the peaks) and save."""
        if not label:
            return
        with self._lock:
            entry = dict(self._data.setdefault(label, {}).get(Mode(mode).value) or {})
            n = int(entry.get("n", 0))
            entry["seconds"] = (float(entry.get("seconds", 0.0)) * n + seconds) / (n + 1)
            entry["n"] = n + 1
            if peak_bytes:
                entry["peak_bytes"] = max(int(entry.get("peak_bytes", 0)), int(peak_bytes))
            self._data[label][Mode(mode).value] = entry
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self._data, indent=1, sort_keys=True))
            os.replace(tmp, self.path)
        except OSError as e:
            log.debug("compile history not saved: %s", e)

    def estimate(self, label: str, mode: Mode, source: str) -> Estimate:
        """The recorded cost of ``label`` in ``mode``, else the guess for the source's kind
        (a FULL record stands in for the other modes, scaled)."""
        mode = Mode(mode)
        seconds, peak = KIND_DEFAULTS[source_kind(source)]
        seconds *= MODE_FACTOR[mode]
        full = self.get(label, Mode.FULL)
        if full and full.get("seconds"):
            seconds = float(full["seconds"]) * MODE_FACTOR[mode]
            peak = int(full.get("peak_bytes") or peak)
        own = self.get(label, mode)
        if own and own.get("seconds"):
            seconds = float(own["seconds"])
            peak = int(own.get("peak_bytes") or peak)
        if mode is Mode.BUILD:  # the link step: small whatever the TU
            peak = min(peak, KIND_DEFAULTS["cuda"][1])
        return Estimate(seconds, peak)


class Slots:
    """At most ``jobs`` holders, their estimated peaks within ``budget`` bytes (one holder
    is always admitted), the longest waiting estimate first."""

    def __init__(self, jobs: int, budget: int | None) -> None:
        self.jobs = max(1, jobs)
        self.budget = budget
        self.running = 0
        self.reserved = 0
        self.peak_reserved = 0
        self._waiting: list[tuple[float, int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def _fits(self, peak: int) -> bool:
        if self.running >= self.jobs:
            return False
        if self.running == 0 or self.budget is None:
            return True
        return self.reserved + peak <= self.budget

    def _admit(self, peak: int) -> None:
        self.running += 1
        self.reserved += peak
        self.peak_reserved = max(self.peak_reserved, self.reserved)

    def _wake(self) -> None:
        while self._waiting:
            _, _, peak, fut = self._waiting[0]
            if fut.done():  # cancelled while waiting
                heapq.heappop(self._waiting)
                continue
            if not self._fits(peak):
                return  # strict order: the longest waits for room, nobody passes it
            heapq.heappop(self._waiting)
            self._admit(peak)
            fut.set_result(None)

    @contextlib.asynccontextmanager
    async def hold(self, est: Estimate) -> AsyncIterator[None]:
        """Wait for a slot for a run of ``est``, hold it for the block."""
        peak = est.peak_bytes if self.budget is None else min(est.peak_bytes, self.budget)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (-est.seconds, next(self._seq), peak, fut))
        self._wake()
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():  # admitted as we were cancelled
                self._release(peak)
            else:  # gone from the queue: let the next one in
                self._wake()
            raise
        try:
            yield
        finally:
            self._release(peak)

    def _release(self, peak: int) -> None:
        self.running -= 1
        self.reserved -= peak
        self._wake()


class PeakSampler:
    """Samples the resident memory of watched process groups (nvcc and its tools) from
    ``/proc`` every ``interval_s``; the largest sum seen per group. Linux only: elsewhere
    it records nothing."""

    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self._peaks: dict[int, int] = {}
        self._task: asyncio.Task[Any] | None = None
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self.enabled = Path("/proc/self/stat").exists()

    def watch(self, pgid: int) -> None:
        if not self.enabled:
            return
        self._peaks[pgid] = 0
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = loop.create_task(self._run())

    def forget(self, pgid: int) -> int | None:
        """Stop watching ``pgid``; its peak in bytes (None: never sampled)."""
        peak = self._peaks.pop(pgid, None)
        if not self._peaks and self._task is not None:
            self._task.cancel()
            self._task = None
        return peak or None

    async def _run(self) -> None:
        while self._peaks:
            sizes = await asyncio.to_thread(self.sample, set(self._peaks))
            for pgid, rss in sizes.items():
                if pgid in self._peaks:
                    self._peaks[pgid] = max(self._peaks[pgid], rss)
            await asyncio.sleep(self.interval_s)

    def sample(self, groups: set[int]) -> dict[int, int]:
        """Resident bytes of each of ``groups`` now (processes summed by process group)."""
        out: dict[int, int] = {}
        try:
            entries = os.listdir("/proc")
        except OSError:
            return out
        for d in entries:
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
                pgid, rss = int(fields[2]), int(fields[21])
            except (OSError, IndexError, ValueError):
                continue
            if pgid in groups:
                out[pgid] = out.get(pgid, 0) + rss * self._page
        return out
