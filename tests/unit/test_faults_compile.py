"""Compile faults, each injected for real: nvcc killed mid-compile, nvcc hanging past its
limit, nvcc missing or unrunnable, CUTLASS headers missing, the disk filling up while the
cache is written. Each ends in a clear message, no exception, nothing stale cached, and a
later compile that works."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cutlens.check.jinja_tier import jinja_check
from cutlens.check.nvcc_tier import nvcc_check
from cutlens.nvcc import toolchain as nv
from cutlens.nvcc.pool import CompileJob, Compiler
from cutlens.nvcc.toolchain import CompileOptions, Mode
from test_compile import alive, fake_nvcc, session_members, until

SERVER = str(Path(__file__).resolve().parents[2] / "server")

TINY = CompileOptions(cutlass=False, arch="sm_90a")
#: Small, but long enough (~1-2 s of nvcc) to be caught mid-compile.
SLOW_SRC = """#include <cstdio>
template <int N> struct Fib { static constexpr long v = Fib<N - 1>::v + Fib<N - 2>::v; };
template <> struct Fib<1> { static constexpr long v = 1; };
template <> struct Fib<0> { static constexpr long v = 0; };
__global__ void k(long* out) { out[threadIdx.x] = Fib<60>::v + threadIdx.x; }
"""

TEMPLATE = """\
{#- cutlens
kind = "%s"
[samples.s]
X = { dtype = "float32", size = [256] }
Y = { dtype = "float32", size = [256] }
[variants]
block = [64, 128]
-#}
{{ template.header() }}
__global__ void k(const float* x, float* y) {
  y[threadIdx.x] = x[threadIdx.x] * {{ block }};%s
}
"""


def template(kind: str = "cuda", extra: str = "") -> str:
    return TEMPLATE % (kind, extra)


def cli(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SERVER}
    return subprocess.run([sys.executable, "-m", "cutlens", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def records(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.json")]


def leftovers(root: Path) -> list[Path]:
    """Temporary files of interrupted writes (``.x.tmp``) or nvcc outputs (``.x.part``)."""
    return [p for p in root.rglob(".*") if p.suffix in (".tmp", ".part")]


# --------------------------------------------------------------------------- nvcc killed


@pytest.mark.nvcc
async def test_real_nvcc_killed_mid_compile(tmp_path):
    c = Compiler(tmp_path / "cache")
    job = CompileJob(SLOW_SRC, Mode.FULL, TINY, name="slow")
    task = asyncio.create_task(c.compile(job))
    members: list[int] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(members) < 2 and not task.done():
        await asyncio.sleep(0.02)
        pids = c.running_pids()
        members = session_members(pids[0]) if pids else []
    assert len(members) >= 2, "nvcc did not start a tool in time"
    nvcc_pid = c.running_pids()[0]
    os.kill(nvcc_pid, signal.SIGKILL)
    r = await task
    assert not r.ok and r.returncode == -9 and r.artifact is None
    assert r.errors[-1].tool == "nvcc"
    assert r.errors[-1].message == "nvcc was killed by signal 9 (SIGKILL)"
    assert c.stats.crashes == 1 and c.running_pids() == []
    # SIGKILLed tools take a moment to go (the guard only stops a hang)
    await until(lambda: session_members(nvcc_pid) == [], "the killed nvcc's tools to go")
    assert records(tmp_path / "cache") == [] and leftovers(tmp_path / "cache") == []
    # the next compile runs nvcc again and works
    again = await c.compile(job)
    assert again.ok and not again.cached and Path(again.artifact).is_file()
    assert c.stats.nvcc_runs == 2
    assert (await c.compile(job)).cached


async def test_killed_nvcc_leaves_no_straggler_and_answers_at_once(tmp_path, monkeypatch):
    """Killing nvcc alone leaves its tools running, holding the output pipe: the pool must
    kill the rest of the group and answer without waiting for them."""
    pidfile = tmp_path / "pids"
    monkeypatch.setenv("CUTLENS_TEST_PIDS", str(pidfile))
    fake = fake_nvcc(tmp_path, 'sleep 60 &\necho $! >> "$CUTLENS_TEST_PIDS"\n'
                               'echo $$ >> "$CUTLENS_TEST_PIDS"\necho "cicc running"\nwait\n')
    c = Compiler(tmp_path / "cache")
    job = CompileJob("int x;\n", Mode.FULL, CompileOptions(nvcc=fake, cutlass=False))
    task = asyncio.create_task(c.compile(job))
    while not (pidfile.exists() and len(pidfile.read_text().split()) == 2):
        await asyncio.sleep(0.02)
    child, nvcc_pid = (int(p) for p in pidfile.read_text().split())
    os.kill(nvcc_pid, signal.SIGKILL)
    # answers without waiting for the straggler's `sleep 60` (a guard, not a measurement)
    r = await asyncio.wait_for(task, 45)
    assert r.errors[-1].message == "nvcc was killed by signal 9 (SIGKILL)"
    assert "cicc running" in r.output
    await until(lambda: not alive(child) and not alive(nvcc_pid), "the group to go")


# --------------------------------------------------------------------------- nvcc hangs


def test_hanging_nvcc_times_out_in_the_cli(tmp_path):
    pidfile = tmp_path / "pids"
    fake = fake_nvcc(tmp_path, f'sleep 300 &\necho $! >> {pidfile}\necho $$ >> {pidfile}\n'
                               "wait\n")
    (tmp_path / "cutlens.toml").write_text(f'nvcc = "{fake}"\ncompile_timeout_s = 1\n')
    (tmp_path / "t.cu.jinja").write_text(template())
    # the stragglers' `sleep 300` is not waited for: cli()'s own limit (120 s) guards that
    out = cli(tmp_path, "check", "t.cu.jinja")
    assert out.returncode == 1, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if "timed out" in ln]
    assert lines == ["t.cu.jinja:1:1: error: nvcc timed out after 1 s"], out.stdout
    assert "Traceback" not in out.stderr
    pids = [int(p) for p in pidfile.read_text().split()]
    # 2 variants x (quick, full) x (nvcc, its child), and the validity pass's nvcc --dryrun
    # (timed out: that pass then says nothing)
    assert len(pids) == 10
    deadline = time.monotonic() + 60  # a guard against a hang, not a measurement
    while [p for p in pids if alive(p)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if alive(p)] == []
    assert records(tmp_path / ".cutlens") == []  # timeouts are never cached


# --------------------------------------------------------------------------- nvcc missing


def test_missing_nvcc_is_one_error_and_jinja_still_works(tmp_path):
    (tmp_path / "cutlens.toml").write_text('nvcc = "/nonexistent/bin/nvcc"\n')
    bad_in_one = "\n  {% if block == 128 %}{{ undefined_name }}{% endif %}"
    (tmp_path / "t.cu.jinja").write_text(template(extra=bad_in_one))
    out = cli(tmp_path, "check", "t.cu.jinja")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "t.cu.jinja:12:" in out.stdout and "'undefined_name' is undefined" in out.stdout
    nvcc_lines = [ln for ln in out.stdout.splitlines() if "nvcc" in ln]
    assert nvcc_lines == [
        "t.cu.jinja:1:1: error: configured nvcc '/nonexistent/bin/nvcc' is not an executable "
        "file (the `nvcc` key of cutlens.toml / [tool.cutlens], or the editor's cutlens.nvcc "
        "setting) [s/block=64]"], out.stdout


async def test_nvcc_that_cannot_run_is_a_diagnostic(tmp_path):
    broken = tmp_path / "nvcc"
    broken.write_text("#!/nonexistent/interpreter\n")
    broken.chmod(0o755)
    c = Compiler(tmp_path / "cache")
    r = await c.compile(CompileJob("int x;\n", Mode.QUICK,
                                   CompileOptions(nvcc=str(broken), cutlass=False)))
    assert not r.ok and r.errors[0].message.startswith(f"{broken} does not run: ")
    assert c.stats.nvcc_runs == 0


def test_bare_nvcc_name_not_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(nv.NvccNotFound, match="configured nvcc 'nvcc'"):
        nv.find_nvcc("nvcc")


def test_unwritable_cache_is_one_error_and_jinja_still_works(tmp_path):
    """``.cutlens`` cannot be a directory (a file is in the way, as a read-only workspace
    also makes it): one error per template, no traceback."""
    (tmp_path / ".cutlens").write_text("in the way\n")
    bad_in_one = "\n  {% if block == 128 %}{{ undefined_name }}{% endif %}"
    (tmp_path / "t.cu.jinja").write_text(template(extra=bad_in_one))
    out = cli(tmp_path, "check", "t.cu.jinja")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "'undefined_name' is undefined" in out.stdout
    cache = [ln for ln in out.stdout.splitlines() if "build cache" in ln]
    assert cache == [f"t.cu.jinja:1:1: error: cannot write the build cache under "
                     f"{tmp_path / '.cutlens' / 'build'}: Not a directory [s/block=64]"]


# --------------------------------------------------------------------------- CUTLASS missing


def _check(project, name: str) -> tuple[list, Compiler]:
    t = project.load(name)
    compiler = Compiler(project.root / ".cutlens" / "build")
    nc = asyncio.run(nvcc_check(jinja_check(t, project.renderer), compiler))
    return [d for d in nc.diagnostics() if d.severity == "error"], compiler


def test_cutlass_override_pointing_nowhere_is_one_error_naming_the_key(project):
    project.write("cutlens.toml", 'arch = "sm_90a"\ncutlass_include_dirs = ["vendor/cutlass"]\n')
    project.write("t.cu.jinja", template("cutlass"))
    errors, compiler = _check(project, "t.cu.jinja")
    assert [e.message for e in errors] == [
        f"CUTLASS headers not found: `cutlass_include_dirs` (cutlens.toml:2) is "
        f"{project.root / 'vendor' / 'cutlass'}, and no cutlass/cutlass.h is there"]
    assert errors[0].line == 1 and errors[0].file.endswith("t.cu.jinja")
    assert compiler.stats.nvcc_runs == 0  # no wall of #include errors: nvcc never ran


def test_missing_cutlass_wheel_blocks_only_cutlass_templates(project, monkeypatch, tmp_path):
    monkeypatch.setattr(nv, "cutlass_include_dirs", lambda: [])
    fake = writing_nvcc(tmp_path)
    project.write("cutlens.toml", f'nvcc = "{fake}"\n')
    project.write("c.cu.jinja", template("cutlass"))
    project.write("k.cu.jinja", template("cuda"))
    errors, compiler = _check(project, "c.cu.jinja")
    assert len(errors) == 1 and compiler.stats.nvcc_runs == 0
    assert errors[0].message.startswith("CUTLASS headers not found: the nvidia-cutlass wheel "
                                        "is not installed")
    errors, compiler = _check(project, "k.cu.jinja")
    assert errors == [] and compiler.stats.nvcc_runs == 4


# --------------------------------------------------------------------------- disk full


@contextlib.contextmanager
def disk_full_on(monkeypatch: pytest.MonkeyPatch, name_part: str) -> Iterator[list[str]]:
    """Make writes to temporary files whose name contains ``name_part`` fail half-way with
    ENOSPC, as a full disk does. Yields the names that failed."""
    real = os.fdopen
    failed: list[str] = []

    class Full(io.BufferedWriter):
        def write(self, data) -> int:  # type: ignore[override]
            super().write(bytes(data)[: len(data) // 2])
            self.flush()
            failed.append(os.path.basename(self.name_))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.name_)

    def fdopen(fd: int, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if name_part in os.path.basename(target):
            f = Full(io.FileIO(fd, "wb"))
            f.name_ = target  # type: ignore[attr-defined]
            return f
        return real(fd, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(os, "fdopen", fdopen)
        yield failed


def writing_nvcc(tmp_path: Path) -> str:
    return fake_nvcc(tmp_path, 'for a; do out=$a; done\necho object > "$out"\n')


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
async def test_disk_full_while_storing_the_record(tmp_path, monkeypatch):
    opts = CompileOptions(nvcc=writing_nvcc(tmp_path), cutlass=False)
    job = CompileJob("int x;\n", Mode.FULL, opts, name="unit")
    c = Compiler(tmp_path / "cache")
    with disk_full_on(monkeypatch, "full.json") as failed:
        r = await c.compile(job)
    assert failed, "the injected fault did not fire"
    assert r.ok and Path(r.artifact).read_text() == "object\n"  # the result is reported
    [warn] = [m for m in r.messages if m.severity == "warning"]
    assert warn.message.startswith("result not cached: cannot write the build cache under ")
    assert "No space left on device" in warn.message
    unit = Path(r.source_path).parent
    assert not (unit / "full.json").exists() and leftovers(tmp_path / "cache") == []
    again = await c.compile(job)  # the disk has room again: compiled and cached
    assert again.ok and not again.cached and c.stats.nvcc_runs == 2
    assert [m for m in again.messages if m.severity == "warning"] == []
    assert (await c.compile(job)).cached


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
async def test_disk_full_while_writing_the_unit(tmp_path, monkeypatch):
    opts = CompileOptions(nvcc=writing_nvcc(tmp_path), cutlass=False)
    job = CompileJob("int x;\n", Mode.QUICK, opts, name="unit")
    c = Compiler(tmp_path / "cache")
    with disk_full_on(monkeypatch, "unit.cu") as failed:
        r = await c.compile(job)
    assert failed and not r.ok and c.stats.nvcc_runs == 0
    assert r.errors[0].message.startswith("cannot write the build cache under ")
    assert "No space left on device" in r.errors[0].message
    assert leftovers(tmp_path / "cache") == [] and records(tmp_path / "cache") == []
    again = await c.compile(job)
    assert again.ok and c.stats.nvcc_runs == 1


async def test_nvcc_out_of_space_is_not_cached(tmp_path):
    fake = fake_nvcc(tmp_path, "echo \"/tmp/x.s: Fatal error: can't write 12 bytes to section "
                               ".text of a.o: 'No space left on device'\"\nexit 1\n")
    c = Compiler(tmp_path / "cache")
    job = CompileJob("int x;\n", Mode.FULL, CompileOptions(nvcc=fake, cutlass=False))
    r = await c.compile(job)
    assert not r.ok and "No space left on device" in r.errors[0].message
    assert records(tmp_path / "cache") == []
    await c.compile(job)
    assert c.stats.nvcc_runs == 2  # asked again, nvcc runs again


@contextlib.contextmanager
def tiny_tmpfs(where: Path, size: str = "1m") -> Iterator[Path]:
    where.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount")
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                          str(where)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> None:
    """Write ``path`` until the file system is full."""
    with open(path, "wb", buffering=0) as f:
        chunk = b"\0" * 4096
        with contextlib.suppress(OSError):
            while True:
                f.write(chunk)


@pytest.mark.nvcc
async def test_real_full_disk_under_the_cache(tmp_path):
    """The cache on a real 1 MiB tmpfs, filled after the unit is written: nvcc cannot write
    its object. The failure is reported and not cached; once there is room, it compiles."""
    with tiny_tmpfs(tmp_path / "fs") as fs:
        c = Compiler(fs / "cache")
        job = CompileJob(SLOW_SRC, Mode.FULL, TINY, name="unit")
        c._prepare(job)  # the TU is on disk, as after an earlier quick pass
        fill(fs / "filler")
        r = await c.compile(job)
        assert not r.ok and r.artifact is None
        assert "No space left on device" in r.output and r.errors, r.output
        assert records(fs) == [] and leftovers(fs / "cache") == []
        (fs / "filler").unlink()
        again = await c.compile(job)
        assert again.ok and not again.cached and Path(again.artifact).is_file()
        assert (await c.compile(job)).cached
