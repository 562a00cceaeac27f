"""Where a compile's time goes: nvcc's phase times (``--time FILE``, a CSV table) and, when
asked for, the device front end's time trace (``--fdevice-time-trace FILE``, Chrome trace
JSON: cicc's template instantiations and headers).

Both are switches of the command line only: they change neither the compiled code nor the
build cache's key (which hashes the mode's flags, not these). ``--time`` writes one CSV row
per phase and is always on for FULL and BUILD; the trace costs compile time (about 5 % of
CPU on a small cute unit, 3.5x the CPU and a 1.3 GB JSON on a CUTLASS 3.x unit:
``docs/bench/compile_time_trace.json``) and is opt-in (``cutlens bench --time-trace``,
``Compiler(time_trace=True)``). nvcc 13.0's trace covers the device side (cicc's front
end, optimizer and code generation, ptxas, and a single span for each host tool); the host
compiler (gcc) has no ``-ftime-trace``, so the host side is known by phase only.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

#: How many instantiations and headers a result keeps.
TOP = 10
_INSTANTIATE = ("Instantiating Template Function", "Instantiating Template Class")
_HEADER = "Processing Header File"


@dataclass
class CompileTimes:
    """Seconds per nvcc phase (summed over architectures) and the costliest template
    instantiations and headers (inclusive seconds, summed over the device passes)."""

    phases: dict[str, float] = field(default_factory=dict)
    top_instantiations: list[tuple[str, float]] = field(default_factory=list)
    top_headers: list[tuple[str, float]] = field(default_factory=list)

    def merge(self, other: CompileTimes) -> CompileTimes:
        """Both compiles' phases summed (an object and its link)."""
        phases = dict(self.phases)
        for k, v in other.phases.items():
            phases[k] = round(phases.get(k, 0.0) + v, 4)
        return CompileTimes(phases, self.top_instantiations or other.top_instantiations,
                            self.top_headers or other.top_headers)


def parse_time_csv(text: str) -> dict[str, float]:
    """Phase name -> seconds from nvcc's ``--time`` table (columns: source file, phase name,
    inputs, output, arch, tool, metric, unit); rows of one phase (one per architecture)
    add up. A row nvcc leaves unnamed (its own PTX step) is ``nvcc (ptx)``."""
    out: dict[str, float] = defaultdict(float)
    for row in csv.reader(io.StringIO(text)):
        cells = [c.strip() for c in row]
        if len(cells) < 8 or cells[1] == "phase name":
            continue
        try:
            value = float(cells[6])
        except ValueError:
            continue
        scale = {"ms": 1e-3, "s": 1.0, "us": 1e-6}.get(cells[7])
        if scale is None:
            continue
        out[cells[1] or "nvcc (ptx)"] += value * scale
    return {k: round(v, 4) for k, v in out.items()}


#: One instantiation or header event as nvcc 13.0 writes it:
#: ``{"args" : {"detail" : "NAME"},"dur" : MICROSECONDS , "name" : "KIND", ...}``.
_EVENT = re.compile(r'\{\s*"args"\s*:\s*\{\s*"detail"\s*:\s*"([^"\\]*(?:\\.[^"\\]*)*)"\s*\}\s*,'
                    r'\s*"dur"\s*:\s*(\d+(?:\.\d*)?)\s*,\s*"name"\s*:\s*"(' +
                    "|".join([*_INSTANTIATE, _HEADER]) + r')"')
#: How much of a trace is read at a time (a CUTLASS 3.x unit's trace is over a gigabyte,
#: most of it millions of distinct instantiations' names).
CHUNK = 1 << 24
#: Events shorter than this (microseconds) are not counted: they cannot make the top, and
#: holding every name of a CUTLASS trace takes a gigabyte (800 MB at 1 ms).
MIN_US = 10_000


def parse_trace(text: str, top: int = TOP) -> tuple[list[tuple[str, float]],
                                                    list[tuple[str, float]]]:
    """The ``top`` costliest template instantiations and headers of a device time trace
    (Chrome trace JSON), as (name, inclusive seconds) summed over the trace's passes."""
    return parse_trace_stream(io.StringIO(text), top)


def parse_trace_stream(f: io.TextIOBase | TextIO, top: int = TOP) -> tuple[
        list[tuple[str, float]], list[tuple[str, float]]]:
    """:func:`parse_trace` over a file read in chunks: only the instantiation and header
    events of at least :data:`MIN_US` are counted (a gigabyte of JSON is never held or
    parsed whole)."""
    sums: dict[str, dict[str, float]] = {"inst": defaultdict(float), "hdr": defaultdict(float)}
    rest = ""
    while True:
        chunk = f.read(CHUNK)
        text = rest + chunk
        # match up to the last event's start, keep that event for the next chunk
        cut = text.rfind('{"args"') if chunk else len(text)
        if cut < 0:  # no event starts here: keep a tail (an event's start may be split)
            cut = max(0, len(text) - 64)
        for m in _EVENT.finditer(text, 0, cut):
            us = float(m.group(2))
            if us < MIN_US:
                continue
            try:
                name = json.loads(f'"{m.group(1)}"')
            except ValueError:
                continue
            sums["hdr" if m.group(3) == _HEADER else "inst"][name] += us * 1e-6
        if not chunk:
            break
        rest = text[cut:]
    return _top(sums["inst"], top), _top(sums["hdr"], top)


def _top(values: dict[str, float], n: int) -> list[tuple[str, float]]:
    ranked = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return [(k, round(v, 4)) for k, v in ranked]


@dataclass
class TimedRun:
    """The files one nvcc run writes its times to."""

    table: Path
    trace: Path | None = None

    def flags(self) -> list[str]:
        out = ["--time", str(self.table)]
        if self.trace is not None:
            out += ["--fdevice-time-trace", str(self.trace)]
        return out

    def command(self, cmd: list[str]) -> list[str]:
        """``cmd`` (nvcc first) with the time switches right after nvcc: its source and
        ``-o`` stay last, where wrappers look for them."""
        return [cmd[0], *self.flags(), *cmd[1:]]

    def collect(self) -> CompileTimes:
        """What the run wrote (empty when it wrote nothing); the files are removed."""
        times = CompileTimes()
        with contextlib.suppress(OSError):
            times.phases = parse_time_csv(self.table.read_text(errors="replace"))
        for path in self._trace_files():
            with contextlib.suppress(OSError), path.open(errors="replace") as f:
                times.top_instantiations, times.top_headers = parse_trace_stream(f)
        for path in [self.table, *self._trace_files()]:
            with contextlib.suppress(OSError):
                os.unlink(path)
        return times

    def _trace_files(self) -> list[Path]:
        # nvcc 13.0 appends ".json" to the name it is given.
        if self.trace is None:
            return []
        return [p for p in (self.trace, self.trace.with_name(self.trace.name + ".json"))
                if p.is_file()]


def timed_run(out_path: Path, trace: bool) -> TimedRun:
    """Time files beside a compile's output (private temporary names in its unit)."""
    stem = f".{out_path.name}.{os.getpid()}.{id(out_path):x}"
    return TimedRun(out_path.with_name(stem + ".time.csv"),
                    out_path.with_name(stem + ".trace") if trace else None)
