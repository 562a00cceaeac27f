"""nvcc's front ends alone: the host side (the host preprocessor and cudafe++, run as nvcc
runs them in a full compile) and the device side (cicc's front end), and nothing after.

nvcc's plan for ``-c`` (``--dryrun``) starts with the host preprocessor and cudafe++, the EDG
front end that parses the whole unit and instantiates every class template the host side
uses: CUTLASS's ``CollectiveBuilder`` and kernel ``static_assert``s fire there, and a full
compile stops there when they do. cicc, ptxas and the host compiler never run. What it cannot
see: errors in device code that only the device pass compiles (``#if __CUDA_ARCH__``
bodies: :func:`run_device` sees those), ptxas's and the host compiler's.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cutlens.nvcc import toolchain as nv
from cutlens.nvcc.toolchain import CompileOptions, Mode

#: cudafe++ stops after this many errors by default (EDG's 100); a batch of many units
#: needs them all.
ERROR_LIMIT = 100000

_ENV_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


class FrontEndUnavailable(RuntimeError):
    """nvcc's plan has no cudafe++ step (an unknown toolkit, or nvcc failed to plan)."""


@dataclass(frozen=True)
class FrontEndRun:
    """How one front-end run ended: merged output, and the CPU time of all its processes."""

    returncode: int | None
    output: str
    cpu_s: float
    wall_s: float
    timed_out: bool = False


def plan(options: CompileOptions, source: Path, workdir: Path) -> tuple[dict[str, str], str]:
    """The environment and the shell script of nvcc's own ``-c`` steps up to cudafe++
    (its temporary files under ``workdir``)."""
    cmd = [*nv.command(Mode.FULL, options, source, workdir / "unit.o"), "--dryrun"]
    env = nv.compile_env()
    env["TMPDIR"] = str(workdir)
    # its own process group, killed whole past the compile time limit (a hung nvcc)
    limit = min(60.0, options.timeout_s)
    run = _spawn(cmd, env, workdir, limit)
    if run.timed_out:
        raise FrontEndUnavailable(f"nvcc --dryrun timed out after {limit:g} s")
    steps: list[str] = []
    for line in run.output.splitlines():
        if not line.startswith("#$ "):
            continue
        body = line[3:].strip()
        m = _ENV_RE.match(body)
        if m and " " not in m.group(1):
            env[m.group(1)] = m.group(2)
            continue
        steps.append(body)
        head = shlex.split(body)[0] if body else ""
        if os.path.basename(head) == "cudafe++":
            # cudafe++'s options come before its input, the last word.
            steps[-1] = body.replace("cudafe++ ", f"cudafe++ --error_limit {ERROR_LIMIT} ", 1)
            return env, "set -e\n" + "\n".join(steps) + "\n"
    raise FrontEndUnavailable(
        "nvcc's --dryrun plan has no cudafe++ step: "
        + (run.output.strip().splitlines() or ["no output"])[-1])


def run(options: CompileOptions, source: Path, timeout_s: float | None = None) -> FrontEndRun:
    """The host side: nvcc's host preprocessor and cudafe++ over ``source``."""
    with tempfile.TemporaryDirectory(prefix="cutlens-fe-", dir=source.parent) as tmp:
        env, script = plan(options, source, Path(tmp))
        return _spawn(["bash", "-c", script], env, Path(tmp), timeout_s or options.timeout_s)


def run_device(options: CompileOptions, source: Path,
               timeout_s: float | None = None) -> FrontEndRun:
    """The device side: cicc's front end alone (``-fdevice-syntax-only``, the QUICK mode),
    which instantiates the kernels' bodies: the ``static_assert`` checks that only device code
    reaches (CUTLASS's ``#if __CUDA_ARCH_FEAT_SM90_ALL`` kernel bodies) fire there."""
    with tempfile.TemporaryDirectory(prefix="cutlens-fe-", dir=source.parent) as tmp:
        env = nv.compile_env()
        env["TMPDIR"] = tmp
        cmd = nv.command(Mode.QUICK, options, source, Path(tmp) / "unit.ptx")
        return _spawn(cmd, env, Path(tmp), timeout_s or options.timeout_s)


def _spawn(argv: list[str], env: dict[str, str], cwd: Path, timeout_s: float) -> FrontEndRun:
    """Run ``argv`` in its own process group, its output merged; CPU time of all it ran."""
    with tempfile.TemporaryFile() as log:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                start_new_session=True)
        status, cpu, timed_out = _wait(proc, timeout_s)
        wall = time.monotonic() - t0
        nv.kill_group(proc.pid)  # stragglers, if any
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
    rc = None if timed_out or status is None else os.waitstatus_to_exitcode(status)
    return FrontEndRun(returncode=rc, output=text, cpu_s=cpu, wall_s=wall, timed_out=timed_out)


def _wait(proc: subprocess.Popen[bytes], timeout_s: float) -> tuple[int | None, float, bool]:
    """Reap ``proc`` with ``wait4`` (its rusage holds its reaped children's CPU time too),
    killing its process group past ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    timed_out = False
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen forgets it
                return status, usage.ru_utime + usage.ru_stime, timed_out
            if time.monotonic() > deadline and not timed_out:
                timed_out = True
                nv.kill_group(proc.pid, signal.SIGKILL)
            time.sleep(0.02)
    except BaseException:
        nv.kill_group(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
