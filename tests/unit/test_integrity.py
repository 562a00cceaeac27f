"""Integrity of what cutlens keeps under ``.cutlens/``: build cache entries carry checksums
and are rebuilt when damaged; a corrupt results database is moved aside and replaced by a
fresh one holding every row still readable; directories and the database are private."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from cutlens.nvcc import cache as build_cache
from cutlens.nvcc.pool import CompileJob, Compiler
from cutlens.nvcc.toolchain import CompileOptions, Mode
from cutlens.results.store import ResultStore, content_hash, is_corrupt

H = content_hash("{# t #}")
SRC = "__global__ void k(float* x) { x[0] = 1; }\n"


def fake_nvcc(tmp_path: Path) -> str:
    """An nvcc stand-in writing a distinct object to its ``-o`` path."""
    path = tmp_path / "fake-nvcc"
    path.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "fake, V0.0.1"; exit 0; fi\n'
                    'for a; do out=$a; done\nhead -c 4096 /dev/urandom > "$out"\n')
    path.chmod(0o755)
    return str(path)


def full_job(nvcc: str) -> CompileJob:
    return CompileJob(source=SRC, mode=Mode.FULL,
                      options=CompileOptions(nvcc=nvcc, cutlass=False), name="unit")


def run(result_dict: dict) -> dict:
    return {"template": "t.cu.jinja", "template_hash": H, "sample": "s", "gpu": "cpu",
            "ms": 1.0, **result_dict}


# --------------------------------------------------------------------------- build cache


async def test_entries_carry_checksums_and_verify(tmp_path):
    nvcc = fake_nvcc(tmp_path)
    c = Compiler(tmp_path / "cache")
    first = await c.compile(full_job(nvcc))
    assert first.ok and first.artifact
    rec = json.loads(c.cache.record_path(first.key, Mode.FULL).read_text())
    assert rec["checksum"] == build_cache.record_checksum(rec)
    assert rec["artifact_sha256"] == build_cache.file_sha256(first.artifact)
    again = await Compiler(tmp_path / "cache").compile(full_job(nvcc))  # a new process
    assert again.cached and again.artifact == first.artifact


@pytest.mark.parametrize("damage", ["truncated", "garbage", "edited", "no-checksum"])
async def test_corrupt_record_is_discarded_and_rebuilt(tmp_path, caplog, damage):
    nvcc = fake_nvcc(tmp_path)
    first = await Compiler(tmp_path / "cache").compile(full_job(nvcc))
    path = Compiler(tmp_path / "cache").cache.record_path(first.key, Mode.FULL)
    text = path.read_text()
    if damage == "truncated":
        path.write_text(text[: len(text) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(len(text)))
    elif damage == "edited":  # valid JSON, one value changed: only the checksum can tell
        rec = json.loads(text)
        rec["duration_s"] = 123.0
        path.write_text(json.dumps(rec))
    else:  # a record from before checksums
        rec = json.loads(text)
        del rec["checksum"]
        path.write_text(json.dumps(rec))
    c = Compiler(tmp_path / "cache")
    with caplog.at_level(logging.WARNING, "cutlens.nvcc.cache"):
        second = await c.compile(full_job(nvcc))
    assert second.ok and not second.cached and c.stats.nvcc_runs == 1
    assert c.cache.discarded == 1 and "discarding" in caplog.text and "rebuilt" in caplog.text
    assert second.duration_s != 123.0
    third = await Compiler(tmp_path / "cache").compile(full_job(nvcc))
    assert third.cached  # the rebuilt entry is sound


@pytest.mark.parametrize("damage", ["flipped", "truncated", "deleted"])
async def test_corrupt_artifact_is_discarded_and_rebuilt(tmp_path, damage):
    nvcc = fake_nvcc(tmp_path)
    first = await Compiler(tmp_path / "cache").compile(full_job(nvcc))
    art = Path(first.artifact)
    data = bytearray(art.read_bytes())
    if damage == "flipped":  # same size, one bit different
        data[100] ^= 0x01
        art.write_bytes(bytes(data))
    elif damage == "truncated":
        art.write_bytes(bytes(data[:1000]))
    else:
        art.unlink()
    c = Compiler(tmp_path / "cache")
    second = await c.compile(full_job(nvcc))
    assert second.ok and not second.cached and c.stats.nvcc_runs == 1
    assert c.cache.discarded == 1
    rebuilt = Path(second.artifact).read_bytes()
    assert len(rebuilt) == 4096 and rebuilt != bytes(data)  # the fake writes fresh bytes
    assert (await Compiler(tmp_path / "cache").compile(full_job(nvcc))).cached


async def test_discard_spares_a_record_another_process_just_wrote(tmp_path, monkeypatch):
    nvcc = fake_nvcc(tmp_path)
    first = await Compiler(tmp_path / "cache").compile(full_job(nvcc))
    c = Compiler(tmp_path / "cache")
    path = c.cache.record_path(first.key, Mode.FULL)
    good = path.read_text()
    path.write_text("{ truncated")
    verify = build_cache.BuildCache._verify

    def racing(data: bytes) -> dict:  # another process stores a sound record meanwhile
        build_cache.atomic_write(path, good)
        return verify(data)

    monkeypatch.setattr(build_cache.BuildCache, "_verify", staticmethod(racing))
    assert c.cache.load(first.key, Mode.FULL) is None and c.cache.discarded == 1
    assert path.read_text() == good  # not deleted: it is not the record found corrupt


async def test_build_links_only_a_verified_object(tmp_path):
    """A damaged object is not linked into a library: BUILD recompiles it first."""
    nvcc = fake_nvcc(tmp_path)
    c = Compiler(tmp_path / "cache")
    full = await c.compile(full_job(nvcc))
    Path(full.artifact).write_bytes(b"not an object")
    c2 = Compiler(tmp_path / "cache")
    build = await c2.compile(CompileJob(SRC, Mode.BUILD, full_job(nvcc).options, name="unit"))
    assert build.ok and c2.stats.nvcc_runs == 2  # the object again, then the link
    assert Path(full.artifact).read_bytes() != b"not an object"


def test_cache_and_store_are_private(tmp_path):
    Compiler(tmp_path / ".cutlens" / "build")
    store = ResultStore(tmp_path)
    for d in (tmp_path / ".cutlens", tmp_path / ".cutlens" / "build"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    store.add(run({"variant_name": "a"}))
    for p in store.path.parent.glob("results.sqlite*"):
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p
    store.close()


def test_private_dir_leaves_existing_directories_alone(tmp_path):
    (tmp_path / "shared").mkdir(mode=0o755)
    os.chmod(tmp_path / "shared", 0o755)
    build_cache.private_dir(tmp_path / "shared" / "a" / "b")
    assert stat.S_IMODE((tmp_path / "shared").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "shared" / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "shared" / "a" / "b").stat().st_mode) == 0o700


# --------------------------------------------------------------------------- results store


def _fill(root: Path, n: int) -> Path:
    with ResultStore(root) as store:
        for i in range(n):
            store.add(run({"variant_name": f"v{i}", "pad": "x" * 400}))
        store.set_check(H, "s", "v0", errors=0, regs=32)
        return store.path


def test_garbage_database_is_moved_aside(tmp_path, caplog):
    path = tmp_path / ".cutlens" / "results.sqlite"
    path.parent.mkdir()
    junk = os.urandom(8192)
    path.write_bytes(junk)
    with caplog.at_level(logging.WARNING, "cutlens.results.store"), ResultStore(tmp_path) as store:
        assert store.quarantined is not None and store.quarantined.read_bytes() == junk
        assert store.quarantined.name.startswith("results.sqlite.corrupt-")
        assert "is corrupt" in caplog.text and store.quarantined.name in caplog.text
        store.add(run({"variant_name": "a"}))
        assert store.count() == 1
    with ResultStore(tmp_path) as again:  # the fresh database is sound
        assert again.quarantined is None and again.count() == 1


def test_damaged_page_keeps_every_readable_run(tmp_path):
    path = _fill(tmp_path, 300)
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 30 * page
    data[20 * page: 20 * page + 64] = b"\xff" * 64  # one leaf page of runs
    path.write_bytes(bytes(data))
    with ResultStore(tmp_path) as store:
        assert store.quarantined is not None
        assert 250 <= store.salvaged < 300 and store.count() == store.salvaged
        assert store.check(H, "s", "v0")["regs"] == 32
        names = {r["variant_name"] for r in store.history(H)}
        assert "v0" in names and "v299" in names
        # no files left beside the quarantined copy by reading it
        assert sorted(p.name for p in path.parent.iterdir()) == sorted(
            ["results.sqlite", "results.sqlite-wal", "results.sqlite-shm",
             store.quarantined.name])


def test_sound_database_is_never_touched(tmp_path):
    path = _fill(tmp_path, 20)
    for _ in range(3):
        with ResultStore(tmp_path) as store:
            assert store.quarantined is None and store.count() == 20
    assert [p.name for p in path.parent.glob("*corrupt*")] == []


def test_an_unopenable_database_is_an_error_not_a_reset(tmp_path):
    """Only corruption moves the file: a path SQLite cannot open raises, keeping it."""
    (tmp_path / ".cutlens" / "results.sqlite").mkdir(parents=True)
    with pytest.raises(sqlite3.OperationalError):
        ResultStore(tmp_path)
    assert (tmp_path / ".cutlens" / "results.sqlite").is_dir()
    assert not list((tmp_path / ".cutlens").glob("*corrupt*"))


def test_is_corrupt_tells_corruption_from_contention():
    assert not is_corrupt(sqlite3.OperationalError("database is locked"))
    assert not is_corrupt(sqlite3.OperationalError("database or disk is full"))
    assert not is_corrupt(ValueError("database disk image is malformed"))
    assert is_corrupt(sqlite3.DatabaseError("database disk image is malformed"))
    assert is_corrupt(sqlite3.DatabaseError("file is not a database"))


class _FailsOnce:
    """A connection whose next statement fails as SQLite does on a damaged page."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db, self.failed = db, False

    def execute(self, *args: object) -> object:
        if not self.failed:
            self.failed = True
            raise sqlite3.DatabaseError("database disk image is malformed")
        return self.db.execute(*args)

    def close(self) -> None:
        self.db.close()


def test_corruption_found_mid_session_keeps_the_new_result(tmp_path):
    _fill(tmp_path, 5)
    with ResultStore(tmp_path) as store:
        store._db = _FailsOnce(store._db)  # type: ignore[assignment]
        store.add(run({"variant_name": "new"}))
        assert store.quarantined is not None
        assert store.count() == 6  # the 5 salvaged and the one being added
        assert store.history(H, variant_name="new")[0]["ms"] == 1.0


def test_full_disk_under_the_store_is_an_error_not_a_reset(tmp_path):
    """SQLite on a real, full 1 MiB tmpfs: adding fails with "database or disk is full",
    every stored run stays, nothing is moved aside, and adding works again once there is
    room."""
    from test_faults_compile import fill, tiny_tmpfs

    with tiny_tmpfs(tmp_path / "fs") as fs:
        with ResultStore(fs) as store:
            store.add(run({"variant_name": "kept"}))
            fill(fs / "filler")
            with pytest.raises(sqlite3.OperationalError, match="full"):
                for i in range(1000):
                    store.add(run({"variant_name": f"v{i}", "pad": "x" * 4000}))
            assert store.quarantined is None
            (fs / "filler").unlink()
            store.add(run({"variant_name": "after"}))
            names = {r["variant_name"] for r in store.history(H)}
            assert {"kept", "after"} <= names
        with ResultStore(fs) as again:
            assert again.quarantined is None and again.count() == len(names)
        assert not list((fs / ".cutlens").glob("*corrupt*"))
