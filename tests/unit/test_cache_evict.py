"""The build cache stays within its bound (``[cache] max_size``): least recently used units
are evicted, never one in use (a compile running, a build a benchmark holds, a unit another
live process pins, one used moments ago). A fake nvcc writes objects of a known size; the
units' last use is set with ``os.utime`` (no sleeping, no measured time)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cutlens import config
from cutlens.nvcc import cache as build_cache
from cutlens.nvcc.pool import CompileJob, Compiler
from cutlens.nvcc.toolchain import CompileOptions, Mode
from test_compile import fake_nvcc

OBJ = 100_000  # bytes of each fake object


@pytest.fixture
def nvcc(tmp_path: Path) -> str:
    return fake_nvcc(tmp_path, f'for a; do out=$a; done\nhead -c {OBJ} /dev/zero > "$out"\n')


def job(nvcc: str, i: int) -> CompileJob:
    return CompileJob(f"int x{i};\n", Mode.FULL, CompileOptions(nvcc=nvcc, cutlass=False),
                      name=f"u{i}")


def age(c: Compiler, key: str, seconds_ago: float) -> None:
    """Set a unit's last use (its directory's mtime) ``seconds_ago``."""
    t = time.time() - seconds_ago
    os.utime(c.cache.unit_dir(key), (t, t))


async def fill(c: Compiler, nvcc: str, n: int, start: int = 0) -> list[str]:
    keys = []
    for i in range(start, start + n):
        r = await c.compile(job(nvcc, i))
        assert r.ok, r.messages
        keys.append(r.key)
    return keys


def test_max_size_is_a_checked_config_key(tmp_path: Path):
    (tmp_path / "cutlens.toml").write_text('[cache]\nmax_size = "1.5 GiB"\n')
    cfg = config.load(tmp_path)
    assert cfg.problems == [] and cfg.cache.max_bytes == 1536 * 2**20
    assert config.load(tmp_path / "nowhere").cache.max_bytes == 4 * 10**9  # the default
    (tmp_path / "cutlens.toml").write_text('[cache]\nmax_size = "lots"\nmax_sise = 1\n')
    cfg = config.load(tmp_path)
    assert [(d.line, d.severity, d.message) for d in cfg.problems] == [
        (3, "warning", "unknown key 'cache.max_sise' (did you mean 'max_size'?)"),
        (2, "error", "cache.max_size 'lots' is not a size such as '4GB', '500MiB' or a "
                     "number of bytes (0: no bound)")]
    assert cfg.cache.max_bytes == 4 * 10**9  # a bad value keeps the default
    (tmp_path / "cutlens.toml").write_text("[cache]\nmax_size = -1\n")
    assert [d.message for d in config.load(tmp_path).problems] == [
        "cache.max_size must be at least 0, not -1"]
    (tmp_path / "cutlens.toml").write_text("[cache]\nmax_size = 0\n")
    assert config.load(tmp_path).cache.max_bytes == 0  # no bound


async def test_least_recently_used_units_go_first(tmp_path: Path, nvcc: str):
    c = Compiler(tmp_path / "cache", max_bytes=4 * OBJ)
    c.cache.keep_recent_s = 60
    keys = await fill(c, nvcc, 6)
    for i, k in enumerate(keys):  # u0 used longest ago ... u5 most recently
        age(c, k, 3600 - 100 * i)
    # a cache hit is a use: u0 is now the most recently used
    assert (await c.compile(job(nvcc, 0))).cached
    report = c.cache.evict()
    left = {u.key for u in c.cache.units()}
    assert report.before > 4 * OBJ >= report.after
    assert report.evicted == keys[1:4]  # oldest first, until 80 % of the bound
    assert left == {keys[0], keys[4], keys[5]}
    # evicted units compile again (a miss); kept ones are still hits
    assert not (await c.compile(job(nvcc, 1))).cached
    assert (await c.compile(job(nvcc, 5))).cached


async def test_units_in_use_are_never_evicted(tmp_path: Path, nvcc: str):
    c = Compiler(tmp_path / "cache", max_bytes=2 * OBJ)
    keys = await fill(c, nvcc, 5)
    c.hold(keys[0])  # a build a benchmark will load
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:  # pinned by another live process
        (c.cache.unit_dir(keys[1]) / f"{build_cache.PIN_PREFIX}{other.pid}").touch()
        # a pin left by a process that is gone does not count
        (c.cache.unit_dir(keys[2]) / f"{build_cache.PIN_PREFIX}999999999").touch()
        for k in keys:  # long unused (oldest first)...
            age(c, k, 3600)
        age(c, keys[3], 1)  # ...but this one a moment ago: another process may load it
        report = c.cache.evict(protect=[keys[4]])  # the caller's own (a compile running)
        assert report.evicted == [keys[2]]
        assert report.kept_in_use == 4 and report.after > 2 * OBJ  # over: all in use
        c.release(keys[0])
        for k in keys[:2] + keys[3:]:
            age(c, k, 3600)  # (hold/release touched the unit)
        assert c.cache.evict().evicted == [keys[0], keys[3], keys[4]]
        assert {u.key for u in c.cache.units()} == {keys[1]}
    finally:
        other.kill()
        other.wait()


async def test_a_sweep_of_compiles_stays_within_the_bound(tmp_path: Path, nvcc: str):
    """The pool evicts as it stores; running compiles and recent units stay."""
    c = Compiler(tmp_path / "cache", jobs=2, max_bytes=5 * OBJ)
    c.cache.keep_recent_s = 0  # the test's units are all "recent"; the LRU order decides
    first = await fill(c, nvcc, 3)
    for i, k in enumerate(first):
        age(c, k, 3600 - i)
    done: list[int] = []  # the order the compiles finish in (not their start order)

    async def one(i: int):
        r = await c.compile(job(nvcc, i))
        done.append(i)
        return r

    results = await asyncio.gather(*(one(i) for i in range(3, 12)))
    assert all(r.ok for r in results)
    assert c.cache.size() <= 5 * OBJ and c.cache.evicted >= 7
    assert not set(first) & {u.key for u in c.cache.units()}  # the oldest went first
    assert (await c.compile(job(nvcc, done[-1]))).cached  # the last one is there


async def test_unbounded_cache_keeps_everything(tmp_path: Path, nvcc: str):
    c = Compiler(tmp_path / "cache", max_bytes=0)
    keys = await fill(c, nvcc, 4)
    for k in keys:
        age(c, k, 3600)
    assert c.cache.evict().evicted == [] and len(c.cache.units()) == 4


TEMPLATE = """\
{#- cutlens
kind = "cuda"
[variants]
v = [1, 2, 3, 4]
-#}
int x = {{ v }} * %d;
"""


def test_check_keeps_the_project_cache_within_max_size(tmp_path: Path, nvcc: str):
    """Through the real command: a second check (new content) evicts the first one's aged
    units past ``[cache] max_size``."""
    (tmp_path / "cutlens.toml").write_text(f'nvcc = "{nvcc}"\n[cache]\nmax_size = '
                                           f'"{6 * OBJ // 1000}KB"\n')
    (tmp_path / "t.cu.jinja").write_text(TEMPLATE % 1)

    def check() -> None:
        r = subprocess.run([sys.executable, "-m", "cutlens", "check", "t.cu.jinja"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr

    check()
    cache = build_cache.BuildCache(tmp_path / ".cutlens" / "build")
    old = cache.units()
    assert len(old) == 4 and sum(u.size for u in old) > 4 * OBJ  # objects + TUs + records
    for u in old:  # a day later
        t = time.time() - 86400
        os.utime(u.path, (t, t))
    (tmp_path / "t.cu.jinja").write_text(TEMPLATE % 2)
    check()
    now = cache.units()
    assert cache.size() <= 6 * OBJ
    assert {u.key for u in now} & {u.key for u in old} != {u.key for u in old}
    assert len([u for u in now if u.key not in {o.key for o in old}]) == 4  # all the new
