"""The compile pool, the cache and nvcc's command lines (real nvcc on tiny TUs; a fake nvcc
script for timeouts, crashes and cancellation)."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from cutlens import cuda_install
from cutlens.nvcc import cache as build_cache
from cutlens.nvcc import toolchain as nv
from cutlens.nvcc.pool import CompileJob, Compiler, CompileResult
from cutlens.nvcc.toolchain import CompileOptions, Mode

try:
    NVCC: str | None = nv.find_nvcc()
except nv.NvccNotFound:
    NVCC = None

TINY = CompileOptions(cutlass=False)
OK_SRC = """#include "config.inc"
__global__ void scale(float* x) { x[threadIdx.x] *= FACTOR; }
extern "C" int kernel(float* x) { scale<<<1, 32>>>(x); return 0; }
"""
CALLS_HOST = """int host_only(int x) { return x + 1; }
__global__ void k(int* out) { out[0] = host_only(out[0]); }
"""
TEMPLATE_ERR = """template <typename T>
__global__ void k(T* out) { out[0] = out[0].missing; }
template __global__ void k<int>(int*);
"""


def job(source: str = OK_SRC, mode: Mode = Mode.QUICK, options: CompileOptions = TINY,
        name: str = "unit", factor: str = "2.0f") -> CompileJob:
    return CompileJob(source=source, mode=mode, options=options, name=name,
                      companions={"config.inc": f"#define FACTOR {factor}\n"})


def fake_nvcc(tmp_path: Path, body: str) -> str:
    """A shell script standing in for nvcc; ``--version`` answers like nvcc."""
    path = tmp_path / "fake-nvcc"
    path.write_text("#!/bin/sh\n"
                    'if [ "$1" = "--version" ]; then echo "fake nvcc, V0.0.1"; exit 0; fi\n'
                    + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def session_members(sid: int) -> list[int]:
    """Live processes whose session id is ``sid`` (nvcc runs as a session leader)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            out.append(int(d))
    return out


# --------------------------------------------------------------------------- nvcc.py


def test_find_nvcc_order(tmp_path, monkeypatch):
    def exe(rel: str) -> str:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("#!/bin/sh\n")
        p.chmod(0o755)
        return str(p)

    configured, cudacxx = exe("cfg/nvcc"), exe("cxx/nvcc")
    home_nvcc, path_nvcc = exe("home/bin/nvcc"), exe("path/nvcc")
    monkeypatch.setenv("CUDACXX", cudacxx)
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    assert nv.find_nvcc(configured) == configured
    assert nv.find_nvcc() == cudacxx
    monkeypatch.delenv("CUDACXX")
    assert nv.find_nvcc() == home_nvcc
    monkeypatch.delenv("CUDA_HOME")
    monkeypatch.delenv("CUDA_PATH", raising=False)
    assert nv.find_nvcc() == path_nvcc
    with pytest.raises(nv.NvccNotFound, match="configured nvcc"):
        nv.find_nvcc(str(tmp_path / "nope"))


def test_find_nvcc_not_found_message(tmp_path, monkeypatch):
    for var in ("CUDACXX", "CUDA_HOME", "CUDA_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(cuda_install, "_executable", lambda p: None)
    with pytest.raises(nv.NvccNotFound, match=r"Tried: \$CUDACXX \(unset\)"):
        nv.find_nvcc()


def test_gencode_derivation():
    assert nv.gencode("sm_90a") == ["-gencode", "arch=compute_90a,code=sm_90a"]
    assert nv.gencode("sm_80") == ["-gencode", "arch=compute_80,code=sm_80"]
    assert nv.gencode("100f") == ["-gencode", "arch=compute_100f,code=sm_100f"]
    assert nv.gencode("compute_90") == ["-gencode", "arch=compute_90,code=compute_90"]
    with pytest.raises(ValueError):
        nv.gencode("hopper")


@pytest.mark.nvcc
def test_command_flags_per_mode():
    opts = CompileOptions(include_dirs=("/proj/include",), defines=("FOO=1",),
                          extra_flags=("-lineinfo",))
    full = nv.command(Mode.FULL, opts, "/c/k.cu", "/c/k.o")
    assert full[0] == NVCC and full[-3:] == ["/c/k.cu", "-o", "/c/k.o"]
    joined = " ".join(full)
    for flag in ("-std=c++17", "--expt-relaxed-constexpr", "-gencode arch=compute_90a,code=sm_90a",
                 "-Xcompiler=-fPIC", "-DCUTLASS_ENABLE_TENSOR_CORE_MMA=1", "-DNDEBUG",
                 "-DCUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED", "-DFOO=1", "-I/proj/include",
                 "-lineinfo", "-c", "-Xptxas -v", "-Xptxas -warn-spills"):
        assert flag in joined
    assert "-w" not in full and not any(f.startswith("-arch") for f in full)
    assert any(f.endswith("cutlass_library/source/include") for f in full)
    quick = nv.command(Mode.QUICK, opts, "/c/k.cu", os.devnull)
    assert [f for f in quick if f in ("-ptx", "-cuda", "-fdevice-syntax-only", "-c")] == list(
        nv.MODE_FLAGS[Mode.QUICK])
    assert "-shared" in nv.command(Mode.BUILD, opts, "/c/k.cu", "/c/k.so")
    noext = nv.command(Mode.FULL, CompileOptions(cutlass_defines=("NDEBUG",)), "k.cu", "k.o")
    assert "-DNDEBUG" in noext and not any("MMA" in f for f in noext)
    bare = nv.command(Mode.FULL, CompileOptions(cutlass=False), "k.cu", "k.o")
    assert not any("CUTLASS" in f or "cutlass" in f for f in bare)


def test_cutlass_include_dirs_exist():
    dirs = nv.cutlass_include_dirs()
    assert len(dirs) == 2
    assert Path(dirs[0], "cutlass", "cutlass.h").is_file()
    assert Path(dirs[1], "cutlass", "util").is_dir()


@pytest.mark.nvcc
def test_nvcc_version():
    assert nv.nvcc_version(NVCC).count(".") == 2


# --------------------------------------------------------------------------- cache key


@pytest.mark.nvcc
def test_key_depends_on_content_flags_and_project_headers(tmp_path):
    inc = tmp_path / "include"
    inc.mkdir()
    (inc / "h.h").write_text("// v1\n")
    opts = CompileOptions(cutlass=False, include_dirs=(str(inc),))
    k = build_cache.unit_key("u", "src", {"a.inc": "1"}, opts)
    assert k == build_cache.unit_key("u", "src", {"a.inc": "1"}, opts)
    assert k != build_cache.unit_key("u", "src2", {"a.inc": "1"}, opts)
    assert k != build_cache.unit_key("u", "src", {"a.inc": "2"}, opts)
    assert k != build_cache.unit_key("v", "src", {"a.inc": "1"}, opts)
    assert k != build_cache.unit_key("u", "src", {"a.inc": "1"},
                                     CompileOptions(cutlass=False, include_dirs=(str(inc),),
                                                    arch="sm_80"))
    build_cache._fp_memo.clear()
    (inc / "h.h").write_text("// v2, longer\n")
    assert k != build_cache.unit_key("u", "src", {"a.inc": "1"}, opts)


def test_include_fingerprint_is_cheap(monkeypatch):
    """The CUTLASS wheel's directories are fingerprinted by version and top-level entries,
    never walked (a walk of its ~900 files is what would be slow). Checked by what it reads,
    not by a time: a timed assertion flakes on a loaded machine."""
    dirs = nv.cutlass_include_dirs()
    if not dirs:
        pytest.skip("no nvidia-cutlass wheel")
    build_cache._fp_memo.clear()

    def no_walk(*a, **k):
        raise AssertionError("walked the CUTLASS headers")

    monkeypatch.setattr(build_cache.os, "walk", no_walk)
    monkeypatch.setattr(build_cache, "_dir_fingerprint", no_walk)
    fp = build_cache.include_fingerprint(dirs)
    assert fp == build_cache.include_fingerprint(dirs)  # memoised, same value
    build_cache._fp_memo.clear()
    monkeypatch.setattr(nv, "cutlass_version", lambda: "0.0.0-other")
    assert build_cache.include_fingerprint(dirs) != fp  # a new wheel version: a new key


async def until(pred, what: str, guard_s: float = 60) -> None:
    """Poll ``pred`` until true; ``guard_s`` only stops a hang (it is no measurement)."""
    deadline = time.monotonic() + guard_s
    while not pred():
        assert time.monotonic() < deadline, f"waited {guard_s:g} s for {what}"
        await asyncio.sleep(0.02)


# --------------------------------------------------------------------------- real nvcc


@pytest.mark.nvcc
async def test_cache_hit_runs_no_nvcc_and_survives_restart(tmp_path):
    c = Compiler(tmp_path / "cache", jobs=2)
    first = await c.compile(job(mode=Mode.FULL))
    assert first.ok and not first.cached and c.stats.nvcc_runs == 1
    assert first.artifact and first.artifact.endswith("unit.o") and Path(first.artifact).is_file()
    assert [r.mangled for r in first.resources] == ["_Z5scalePf"]
    again = await c.compile(job(mode=Mode.FULL))
    assert again.cached and c.stats.nvcc_runs == 1 and c.stats.cache_hits == 1
    assert again.resources == first.resources and again.artifact == first.artifact
    # A new process (new Compiler) over the same directory: still no nvcc.
    c2 = Compiler(tmp_path / "cache")
    third = await c2.compile(job(mode=Mode.FULL))
    assert third.cached and c2.stats.nvcc_runs == 0
    # Moving the cache directory rebases the stored paths.
    shutil.move(tmp_path / "cache", tmp_path / "moved")
    c3 = Compiler(tmp_path / "moved")
    moved = await c3.compile(job(mode=Mode.FULL))
    assert moved.cached and moved.source_path.startswith(str(tmp_path / "moved"))
    assert Path(moved.artifact).is_file()


@pytest.mark.nvcc
async def test_errors_are_cached_with_messages_and_chain(tmp_path):
    c = Compiler(tmp_path, jobs=1)
    r = await c.compile(job(TEMPLATE_ERR, Mode.FULL))
    assert not r.ok and r.returncode not in (0, None) and r.artifact is None
    [m] = r.errors
    assert m.file == r.source_path and m.line == 2
    assert m.chain[0].file == r.source_path and m.chain[0].line == 3
    r2 = await c.compile(job(TEMPLATE_ERR, Mode.FULL))
    assert r2.cached and c.stats.nvcc_runs == 1
    assert r2.messages == r.messages
    assert not list(Path(r.source_path).parent.glob("*.part"))


@pytest.mark.nvcc
async def test_concurrent_same_key_runs_nvcc_once(tmp_path):
    c = Compiler(tmp_path, jobs=2)
    results = await asyncio.gather(*(c.compile(job(mode=Mode.QUICK)) for _ in range(4)))
    assert all(r.ok for r in results)
    assert c.stats.nvcc_runs == 1 and c.stats.joined == 3


@pytest.mark.nvcc
async def test_companions_written_beside_tu(tmp_path):
    c = Compiler(tmp_path)
    r = await c.compile(job(mode=Mode.QUICK, factor="3.0f"))
    assert r.ok, r.output
    tu = Path(r.source_path)
    assert tu.name == "unit.cu" and tu.read_text() == OK_SRC
    inc = Path(r.companion_paths["config.inc"])
    assert inc.parent == tu.parent and inc.read_text() == "#define FACTOR 3.0f\n"
    assert tu.parent.name == r.key and tu.parent.parent.name == r.key[:2]
    broken = await c.compile(job(mode=Mode.QUICK, factor="(((("))
    assert not broken.ok and broken.key != r.key
    assert any(m.file == broken.source_path and m.line == 2 for m in broken.errors)


@pytest.mark.nvcc
async def test_quick_and_full_both_delivered_on_the_same_tu(tmp_path):
    c = Compiler(tmp_path)
    quick, full = await asyncio.gather(c.compile(job(CALLS_HOST, Mode.QUICK)),
                                       c.compile(job(CALLS_HOST, Mode.FULL)))
    assert quick.source_path == full.source_path
    assert quick.ok and quick.artifact is None  # the quick pass does not see it...
    assert not full.ok and full.errors[0].tool == "cicc"  # ...the full pass does
    assert full.errors[0].file == full.source_path


@pytest.mark.nvcc
async def test_build_links_the_full_object(tmp_path):
    c = Compiler(tmp_path)
    full = await c.compile(job(mode=Mode.FULL))
    build = await c.compile(job(mode=Mode.BUILD))
    assert build.ok and build.artifact.endswith("unit.so") and Path(build.artifact).is_file()
    assert c.stats.nvcc_runs == 2  # the compile, then only the link
    assert build.resources == full.resources
    assert b"kernel" in Path(build.artifact).read_bytes()
    fresh = Compiler(tmp_path / "other")
    direct = await fresh.compile(job(mode=Mode.BUILD))
    assert direct.ok and fresh.stats.nvcc_runs == 2 and not direct.cached
    failed = await fresh.compile(job(TEMPLATE_ERR, Mode.BUILD))
    assert not failed.ok and failed.mode is Mode.BUILD and failed.artifact is None
    assert failed.errors and fresh.stats.nvcc_runs == 3  # no link after a failed compile


@pytest.mark.nvcc
async def test_cancellation_kills_real_nvcc_process_group(tmp_path):
    src = ('#include <cute/tensor.hpp>\n'
           '__global__ void k(float* x) { x[0] = cute::size(cute::make_layout('
           'cute::make_shape(8, 4))); }\n')
    c = Compiler(tmp_path)
    task = asyncio.create_task(c.compile(CompileJob(src, Mode.FULL, CompileOptions())))
    members: list[int] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        pids = c.running_pids()
        if pids:
            members = session_members(pids[0])
            if len(members) >= 2:  # nvcc and one of its tools (gcc, cudafe++, cicc)
                break
    assert len(members) >= 2, "nvcc did not start a child in time"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await until(lambda: not any(alive(p) for p in members), "the killed tools to go")
    # the pool forgets the killed nvcc once its run has reaped it (under load, a moment
    # after the awaiting task saw its cancellation)
    await until(lambda: c.running_pids() == [], "the pool to forget the killed nvcc")
    assert session_members(members[0]) == [] and c.stats.cancelled == 1
    assert not list(Path(tmp_path).rglob("*.json"))  # nothing cached


# --------------------------------------------------------------------------- fake nvcc


async def test_timeout_becomes_a_diagnostic_and_kills_the_group(tmp_path, monkeypatch):
    pidfile = tmp_path / "pids"
    monkeypatch.setenv("CUTLENS_TEST_PIDS", str(pidfile))
    fake = fake_nvcc(tmp_path, 'sleep 60 &\necho $! >> "$CUTLENS_TEST_PIDS"\n'
                               'echo $$ >> "$CUTLENS_TEST_PIDS"\necho "compiling..."\nwait\n')
    c = Compiler(tmp_path / "cache")
    opts = CompileOptions(nvcc=fake, cutlass=False, timeout_s=1.0)
    # a hang guard, not a measurement: the fake's `sleep 60` must not be waited for
    r = await asyncio.wait_for(c.compile(job(options=opts, mode=Mode.FULL)), 50)
    assert r.timed_out and not r.ok and r.returncode is None
    assert r.errors[-1].tool == "nvcc" and r.errors[-1].message == "nvcc timed out after 1 s"
    assert "compiling..." in r.output
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) == 2
    await until(lambda: not any(alive(p) for p in pids), "the killed group to go")
    again = await c.compile(job(options=opts, mode=Mode.FULL))
    assert again.timed_out and c.stats.nvcc_runs == 2  # timeouts are not cached
    assert c.stats.timeouts == 2


async def test_crashed_nvcc_becomes_a_diagnostic(tmp_path):
    fake = fake_nvcc(tmp_path, 'echo "about to crash"\nkill -SEGV $$\n')
    c = Compiler(tmp_path / "cache")
    r = await c.compile(job(options=CompileOptions(nvcc=fake, cutlass=False), mode=Mode.FULL))
    assert not r.ok and r.returncode == -11 and not r.timed_out
    [other, crash] = r.messages
    assert other.tool == "other" and other.message == "about to crash"
    assert crash.tool == "nvcc" and crash.message == "nvcc was killed by signal 11 (SIGSEGV)"
    assert c.stats.crashes == 1
    await c.compile(job(options=CompileOptions(nvcc=fake, cutlass=False), mode=Mode.FULL))
    assert c.stats.nvcc_runs == 2  # crashes are not cached


async def test_silent_failure_still_has_an_error(tmp_path):
    fake = fake_nvcc(tmp_path, "exit 3\n")
    c = Compiler(tmp_path / "cache")
    r = await c.compile(job(options=CompileOptions(nvcc=fake, cutlass=False), mode=Mode.QUICK))
    assert not r.ok and r.returncode == 3
    assert r.errors[0].message == "nvcc exited with status 3 without a diagnostic"


async def test_pool_is_bounded_by_jobs(tmp_path):
    fake = fake_nvcc(tmp_path, "sleep 0.3\n")
    c = Compiler(tmp_path / "cache", jobs=2)
    opts = CompileOptions(nvcc=fake, cutlass=False)
    results = await asyncio.gather(*(c.compile(job(options=opts, factor=str(i)))
                                     for i in range(5)))
    assert all(r.ok for r in results)
    assert c.stats.nvcc_runs == 5 and c.stats.peak_running == 2


async def test_cancelling_one_of_two_waiters_keeps_the_compile(tmp_path):
    fake = fake_nvcc(tmp_path, "sleep 1\n")
    c = Compiler(tmp_path / "cache")
    opts = CompileOptions(nvcc=fake, cutlass=False)
    a = asyncio.create_task(c.compile(job(options=opts)))
    b = asyncio.create_task(c.compile(job(options=opts)))
    while c.stats.joined < 1:  # both wait on the one compile (no sleep racing the start)
        await asyncio.sleep(0.02)
    a.cancel()
    r = await b
    assert r.ok and c.stats.nvcc_runs == 1 and c.stats.cancelled == 0
    with pytest.raises(asyncio.CancelledError):
        await a


async def test_cancel_all_gives_cancelled_results(tmp_path):
    fake = fake_nvcc(tmp_path, "sleep 30\n")
    c = Compiler(tmp_path / "cache")
    t = asyncio.create_task(c.compile(job(options=CompileOptions(nvcc=fake, cutlass=False))))
    while not c.running_pids():
        await asyncio.sleep(0.05)
    c.cancel_all()
    r = await t
    assert isinstance(r, CompileResult) and r.cancelled and not r.ok
    assert c.running_pids() == []


async def test_missing_nvcc_is_a_diagnostic(tmp_path):
    c = Compiler(tmp_path)
    r = await c.compile(job(options=CompileOptions(nvcc=str(tmp_path / "none"))))
    assert not r.ok and "configured nvcc" in r.errors[0].message


def test_compile_sync_twice(tmp_path):
    fake = fake_nvcc(tmp_path, "exit 0\n")
    c = Compiler(tmp_path / "cache")
    opts = CompileOptions(nvcc=fake, cutlass=False)
    assert c.compile_sync(job(options=opts)).ok
    assert c.compile_sync(job(options=opts)).cached  # a second event loop works too
