"""Running the program to capture: its own process, the hook of ``boot/`` first on its
``PYTHONPATH``, a time limit; then the records merged and the samples file written.

Each failure is one :class:`CaptureFailed` with one message (the program's exit status and
last lines; nothing captured; past the limit) and the samples file is left as it was.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cutlens import trust
from cutlens.capture.merge import merge, strides_recorded
from cutlens.capture.write import to_toml, write_atomic
from cutlens.template.captured import CapturedSample

BOOT = Path(__file__).resolve().parent / "boot"
#: Lines of the program's output a failure quotes.
TAIL_LINES = 15


class CaptureFailed(Exception):
    """The capture produced no samples file: why, in one message."""


@dataclass
class Captured:
    """A finished capture: its samples and what the samples file says about the run."""

    samples: list[CapturedSample]
    info: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def child_env(out: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The program's environment: the hook first on ``PYTHONPATH``, where to write, and
    Inductor's caches off (a cached graph would skip the hook's pass)."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join([str(BOOT), *filter(None, [env.get("PYTHONPATH")])])
    env["CUTLENS_CAPTURE_OUT"] = str(out)
    env.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "0")
    env.setdefault("TORCHINDUCTOR_AUTOGRAD_CACHE", "0")
    return env


def _pump(stream: IO[str], tail: deque[str], echo: IO[str] | None) -> None:
    for line in stream:
        tail.append(line.rstrip("\n"))
        if echo is not None:
            echo.write(line)
            echo.flush()


def run_program(command: list[str], timeout_s: float, cwd: Path | None = None,
                echo: IO[str] | None = sys.stderr) -> tuple[dict[str, Any], float]:
    """Run ``command`` under the hook; its raw records and the seconds it took."""
    import threading

    trust.require_exec("cutlens capture")
    if not command:
        raise CaptureFailed("no program to run: cutlens capture -- python train.py ARGS")
    with tempfile.TemporaryDirectory(prefix="cutlens-capture-") as tmp:
        out = Path(tmp) / "records.json"
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        start = time.monotonic()
        try:
            proc = subprocess.Popen(command, cwd=cwd, env=child_env(out), text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    errors="replace")
        except OSError as e:
            raise CaptureFailed(f"cannot run {shlex.join(command)}: {e.strerror or e}"
                                ) from None
        assert proc.stdout is not None
        reader = threading.Thread(target=_pump, args=(proc.stdout, tail, echo), daemon=True)
        reader.start()
        try:
            status = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _stop(proc)
            raise CaptureFailed(
                f"{shlex.join(command)} ran past the limit of {timeout_s:g} s and was "
                "stopped; nothing was written (raise --timeout, or run fewer steps)"
                ) from None
        reader.join(timeout=5)
        seconds = time.monotonic() - start
        if status != 0:
            last = "\n".join(f"    {ln}" for ln in tail)
            raise CaptureFailed(f"{shlex.join(command)} failed ({_status(status)}); "
                                f"nothing was written. Its last lines:\n{last}")
        try:
            raw: dict[str, Any] = json.loads(out.read_text())
        except (OSError, ValueError):
            raise CaptureFailed(
                f"{shlex.join(command)} ran, but the capture hook wrote nothing: is it a "
                "Python program using torch (the hook loads as sitecustomize)?") from None
        return raw, seconds


def _status(status: int) -> str:
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def _stop(proc: subprocess.Popen[str]) -> None:
    """Stop the program and everything it started (its own session)."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def capture(command: list[str], output: Path, timeout_s: float, cwd: Path | None = None,
            echo: IO[str] | None = sys.stderr) -> Captured:
    """Run ``command``, merge what it ran, write the samples file at ``output``."""
    raw, seconds = run_program(command, timeout_s, cwd, echo)
    samples = merge(raw)
    if not samples:
        raise CaptureFailed(f"{shlex.join(command)} ran no matmul-family op (mm, addmm, bmm, "
                            "baddbmm, _scaled_mm, _int_mm); nothing was written")
    timed = any(s.time_ms is not None for s in samples)
    info = {"command": list(command), "torch": str(raw.get("torch", "")),
            "device": "cuda" if raw.get("gpu") else "cpu",
            "weight_by": "time" if timed else "count", "seconds": round(seconds, 1),
            # torch < 2.12's profiler gives no strides: compiled ops take their graph
            # node's, eager ones are assumed row-major
            "strides_recorded": any(strides_recorded(c) for c in raw.get("calls", []))}
    if timed:
        info["total_ms"] = round(sum(s.time_ms or 0.0 for s in samples), 6)
    write_atomic(output, to_toml(samples, info))
    return Captured(samples, info, seconds)
