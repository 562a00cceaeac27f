"""Which builds of a grid cannot compile, and why, from nvcc's front ends alone.

Two sides (:mod:`cutlens.nvcc.frontend`), no code generation: the host side (host
preprocessor + cudafe++: the class templates the host code needs, where CUTLASS's
``CollectiveBuilder`` and kernel ``static_assert`` checks fire), then, for the builds it lets
through, the device side (cicc's front end: the kernels' bodies, ``#if __CUDA_ARCH__`` code).
Each side runs over many units at once (:mod:`cutlens.check.batch`), in chunks side by side;
an error belongs to the unit its file or instantiation chain names. A batch instantiates a
class template once for all its units, and cudafe++ skips the pending function
instantiations once an error is out, so a chunk's clean units count as valid only when the
chunk had no error; otherwise they go again, without the failing units, until a pass is
clean. A unit that cannot be batched, whose only errors are the batch's own
(:data:`batch.ARTIFACT_RE`), or that a pass never reached, runs alone. Verdicts are cached
by the unit's content key (source, options, nvcc).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cutlens.check import batch
from cutlens.diagnostics import Diagnostic
from cutlens.nvcc import cache as build_cache
from cutlens.nvcc import frontend
from cutlens.nvcc.mapping import map_result
from cutlens.nvcc.messages import CompilerMessage
from cutlens.nvcc.options import job_for
from cutlens.nvcc.output import parse
from cutlens.nvcc.pool import CompileOptions, CompileResult, Mode
from cutlens.render.renderer import RenderedUnit

log = logging.getLogger("cutlens.validity")

_VERSION = "validity-2"
#: Units per batch at least, per side: each batch parses the headers once (a CUTLASS 3.x
#: unit's ~9 s of CPU on the host side, ~14 s on the device side) and each unit adds ~0.5 s
#: and ~3 s, so the host side gets bigger batches; 72 builds still spread over 3-4 processes.
LEAST_PER_BATCH = {"host": 24, "device": 16}
_UNIT = "@@cutlens-unit@@"
_UNCONFIRMED = "unconfirmed"


@dataclass
class Verdict:
    """Whether one build compiles, as far as nvcc's front end can tell."""

    valid: bool | None  # None: not known (the front end did not run, or said nothing usable)
    messages: list[CompilerMessage] = field(default_factory=list)  # its errors
    how: str = "batch"  # "<side> batch" | "<side> alone" | cache | unconfirmed
    note: str = ""  # why it is not known


_VALID = Verdict(True)


@dataclass
class Outcome:
    """A unit's verdict and its errors on template lines."""

    unit: RenderedUnit
    verdict: Verdict
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """The first error, in a line."""
        for d in self.diagnostics:
            if d.severity == "error":
                return d.message.splitlines()[0]
        m = next(iter(self.verdict.messages), None)
        return m.message.splitlines()[0] if m else self.verdict.note


@dataclass
class Pass:
    """The front-end runs behind a set of verdicts."""

    cpu_s: float = 0.0
    #: CPU seconds per side (host, device).
    side_cpu_s: dict[str, float] = field(default_factory=dict)
    runs: int = 0
    batched_units: int = 0
    alone_units: int = 0
    cached_units: int = 0
    rounds: int = 0


Runner = Callable[[CompileOptions, Path], frontend.FrontEndRun]

#: The steps: (side, runner, one round only). The host side, round after round until clean
#: (cheap rounds: ~0.5 s a unit), then the device side over what it lets through. (Putting
#: the device side between a first host round and a confirming one moves the errors a host
#: batch hides onto the device side, whose rounds cost ~6 times more: measured slower.) A
#: side listed twice with ``once`` on its first step confirms there only what that step left.
SIDES: tuple[tuple[str, Runner, bool], ...] = (
    ("host", frontend.run, False), ("device", frontend.run_device, False))


@dataclass
class _Item:
    unit: RenderedUnit
    key: str
    path: Path
    part: batch.Part | None = None


def check_units(units: Sequence[RenderedUnit], options_of: Callable[[RenderedUnit], CompileOptions],
                cache_dir: Path, jobs: int = 1, chunk: int | None = None,
                sides: Sequence[tuple[str, Runner, bool]] = SIDES,
                ) -> tuple[list[Outcome], Pass]:
    """The verdict of every unit (units rendered alike share one)."""
    stats = Pass()
    store = cache_dir / "validity"
    store.mkdir(parents=True, exist_ok=True)
    by_key: dict[str, Verdict] = {}
    groups: dict[CompileOptions, list[_Item]] = {}
    work = Path(tempfile.mkdtemp(prefix="work-", dir=store))
    items: list[_Item] = []
    for u in units:
        options = options_of(u)
        job = job_for(u, Mode.FULL, options)
        key = build_cache.unit_key(job.name, job.source, job.companions, options)
        item = _Item(u, key, work / f"{len(items)}-{job.name}.cu")
        items.append(item)
        if key in by_key or any(key == i.key for g in groups.values() for i in g):
            continue
        cached = _load(store, key)
        if cached is not None:
            by_key[key] = cached
            stats.cached_units += 1
            continue
        groups.setdefault(options, []).append(item)
    try:
        for options, group in groups.items():
            unconfirmed: dict[str, set[str]] = {}  # per side, what its one round left
            for side, runner, once in sides:
                # a side that ran already confirms only what it left unconfirmed
                todo = [i for i in group if side not in unconfirmed or i.key in unconfirmed[side]]
                found: dict[str, Verdict] = {}
                before = stats.cpu_s
                if todo:
                    _settle(todo, options, runner, jobs, chunk, stats, found, side, once)
                stats.side_cpu_s[side] = stats.side_cpu_s.get(side, 0.0) + stats.cpu_s - before
                by_key.update({k: v for k, v in found.items() if v.valid is not True})
                unconfirmed[side] = {k for k, v in found.items() if v.how == _UNCONFIRMED}
                group = [i for i in group if found.get(i.key, _VALID).valid is True]
            by_key.update({i.key: Verdict(True, [], "front end") for i in group})
        for key, v in by_key.items():
            if v.how != "cache":
                by_key[key] = v = _moved(v, next(i.path for i in items if i.key == key), _UNIT)
                _save(store, key, v)
        return [_outcome(i, _moved(by_key[i.key], _UNIT, i.path)) for i in items], stats
    finally:
        _rmtree(work)


def _settle(group: list[_Item], options: CompileOptions, runner: Runner, jobs: int,
            chunk: int | None, stats: Pass, out: dict[str, Verdict], side: str,
            once: bool = False) -> None:
    """Verdicts of ``group`` on one side; ``once``: one batch round, what it cannot confirm
    left valid but :data:`_UNCONFIRMED`."""
    alone: list[_Item] = []
    pending: list[_Item] = []
    for n, item in enumerate(group):
        item.path.write_text(item.unit.text)
        if item.unit.companions:
            alone.append(item)
            continue
        item.part = batch.split(item.unit.text, item.unit.kernel_name, f"__cutlens_{n}",
                                item.path)
        (pending if item.part is not None else alone).append(item)
    while pending:
        stats.rounds += 1
        chunks = _chunks(pending, jobs, chunk or LEAST_PER_BATCH.get(side, 16))
        with cf.ThreadPoolExecutor(max(1, min(jobs, len(chunks)))) as pool:
            results = list(pool.map(lambda c: _run_batch(c, options, runner), chunks))
        again: list[_Item] = []
        for c, (run, messages) in zip(chunks, results, strict=True):
            stats.cpu_s += run.cpu_s
            stats.runs += 1
            stats.batched_units += len(c)
            settled, retry, solo = _judge(c, run, messages, side)
            out.update(settled)
            again += retry
            alone += solo
        if once:
            out.update({i.key: Verdict(True, [], _UNCONFIRMED) for i in again})
            again = []
        elif len(again) == len(pending):  # no progress: each alone
            alone += again
            again = []
        pending = again
    for item in alone:
        run = runner(options, item.path)
        stats.cpu_s += run.cpu_s
        stats.runs += 1
        stats.alone_units += 1
        messages = parse(run.output)
        # An error on a line is the code's; one on none (cudafe++ would not run, nvcc's
        # own complaint) says nothing about the code: not known.
        errors = [m for m in messages if m.severity == "error" and m.file]
        if errors:
            out[item.key] = Verdict(False, errors, f"{side} alone")
        elif run.returncode == 0:
            out[item.key] = Verdict(True, [], f"{side} alone")
        else:
            out[item.key] = Verdict(None, [], f"{side} alone", note=_tail(run))


def _chunks(items: list[_Item], jobs: int, least: int) -> list[list[_Item]]:
    """``items`` in even batches of ``least`` or more, at most ``jobs`` of them."""
    n = max(1, min(jobs, len(items) // max(1, least)))
    size = -(-len(items) // n)
    return [items[i:i + size] for i in range(0, len(items), size)]


def _run_batch(items: list[_Item], options: CompileOptions,
               runner: Runner) -> tuple[frontend.FrontEndRun, list[CompilerMessage]]:
    parts = [i.part for i in items if i.part is not None]
    path = items[0].path.with_name(f"batch-{items[0].path.stem}.cu")
    path.write_text(batch.assemble(parts, path))
    run = runner(options, path)
    return run, parse(run.output)


def _judge(items: list[_Item], run: frontend.FrontEndRun, messages: list[CompilerMessage],
           side: str) -> tuple[dict[str, Verdict], list[_Item], list[_Item]]:
    """(settled verdicts, units to run again in a batch, units to run alone)."""
    paths = [i.path for i in items]
    errors = [m for m in messages if m.severity == "error"]
    if run.timed_out or (run.returncode not in (0, None) and not errors):
        return {}, [], list(items)
    owned: dict[int, list[CompilerMessage]] = {}
    for m in errors:
        k = batch.owner(m, paths)
        if k is not None:
            owned.setdefault(k, []).append(m)
    clean = not errors and run.returncode == 0 and not batch.stopped(messages, run.output)
    settled: dict[str, Verdict] = {}
    retry: list[_Item] = []
    solo: list[_Item] = []
    for k, item in enumerate(items):
        mine = owned.get(k, [])
        real = [m for m in mine if not batch.is_artifact(m)]
        if real:
            settled[item.key] = Verdict(False, real, f"{side} batch")
        elif mine:
            solo.append(item)
        elif clean:
            settled[item.key] = Verdict(True, [], f"{side} batch")
        else:
            retry.append(item)
    return settled, retry, solo


def _outcome(item: _Item, v: Verdict) -> Outcome:
    if v.valid is not False:
        return Outcome(item.unit, v)
    res = CompileResult(mode=Mode.FULL, ok=False, returncode=1, messages=v.messages,
                        resources=[], output="", source_path=str(item.path),
                        companion_paths={}, artifact=None, duration_s=0.0, cached=False)
    return Outcome(item.unit, v, map_result(item.unit, res))


def _tail(run: frontend.FrontEndRun) -> str:
    if run.timed_out:
        return "the front end ran out of time"
    lines = [ln for ln in run.output.strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else f"the front end exited {run.returncode}")[:300]


# --------------------------------------------------------------------------- cache


def _entry(store: Path, key: str) -> Path:
    return store / f"{key}.json"


def _load(store: Path, key: str) -> Verdict | None:
    try:
        d = json.loads(_entry(store, key).read_text())
    except (OSError, ValueError):
        return None
    if d.get("version") != _VERSION:
        return None
    return Verdict(d["valid"], [CompilerMessage.from_json(m) for m in d["messages"]], "cache",
                   d.get("note", ""))


def _save(store: Path, key: str, v: Verdict) -> None:
    if v.valid is None:
        return  # an unknown verdict says nothing about the code
    text = json.dumps({"version": _VERSION, "valid": v.valid, "note": v.note,
                       "messages": [m.to_json() for m in v.messages]})
    try:
        tmp = _entry(store, key).with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(_entry(store, key))
    except OSError as e:
        log.warning("validity cache: cannot write %s: %s", store, e)


def _moved(v: Verdict, old: Path | str, new: Path | str) -> Verdict:
    """``v`` with its messages naming ``new`` where they named ``old`` (a unit's file, or the
    placeholder the cache keeps)."""
    if not v.messages:
        return v
    text = json.dumps([m.to_json() for m in v.messages]).replace(
        json.dumps(str(old))[1:-1], json.dumps(str(new))[1:-1])
    return Verdict(v.valid, [CompilerMessage.from_json(m) for m in json.loads(text)], v.how,
                   v.note)


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
