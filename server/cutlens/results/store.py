"""Results store: every benchmark run, and the latest check, in SQLite under ``.cutlens/``.

``ResultStore(workspace_root)`` opens ``<root>/.cutlens/results.sqlite`` in WAL mode. Each
benchmark result is one row of ``runs``, never overwritten, committed on its own: killing a
sweep midway loses no finished result. A run is identified by the template's content hash,
sample, variant name, GPU name, nvcc version and a hash of the compile flags; ``kind`` is
``variant`` for a built variant and ``baseline`` for the timed reference expression (variant
name ``torch``). ``checks`` keeps only the latest compile check per (template hash, sample,
variant): error/warning counts and ptxas' registers, shared memory and spills, which the LSP
lenses show until a benchmark exists.

Integrity: opening runs ``PRAGMA quick_check``. A database SQLite calls corrupt ("database
disk image is malformed", "file is not a database"), at open or later, is moved aside to
``results.sqlite.corrupt-<time>`` (with its WAL) and a fresh one is started holding every
run and check that can still be read from the old one, with a warning; nothing else (a
locked or unreadable database, a full disk) ever moves or drops the file. The directory is
created ``0o700`` and the database file ``0o600``.

Records are plain dicts with the keys of :data:`RUN_COLUMNS` (missing keys are NULL;
``variant`` is a dict, stored as JSON; ``verified`` a bool or None) — the runner's results
plus ``template``, ``template_hash``, ``nvcc``, ``flags_hash`` and the ptxas figures. Reads
return the same dicts, with ``id``, ``ts`` (Unix seconds) and ``raw`` (the full record added)
parsed back.

    store = ResultStore(root)
    store.add({**result, "template": "gemm.cu.jinja", "template_hash": h, "nvcc": "13.0"})
    store.latest(h)            # newest run per (sample, variant_name), fastest first
    store.history(h, sample="square", variant_name="128x128")   # newest first
    store.set_check(h, "square", "128x128", errors=0, regs=168, smem=98304, spills=0)
    store.with_checks(h, rows)  # rows + regs/smem/spills of their latest check
    store.add_profile(h, "square", "128x128", report=".../x.ncu-rep", summary={...})
    store.profile(h, "square", "128x128")   # the latest Nsight Compute summary

``profiles`` (schema version 3; created in an older database when it is opened) keeps every
Nsight Compute profile: the report's path, the summary's main figures as columns and the
whole summary as JSON.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from cutlens.results.schema import (
    CHECK_COLUMNS,
    PROFILE_COLUMNS,
    RUN_COLUMNS,
    SCHEMA,
    check_dict,
    filters,
    latency_key,
    migrate,
    run_dict,
    run_row,
    to_json_text,
)

log = logging.getLogger(__name__)

DB_DIR = ".cutlens"
DB_NAME = "results.sqlite"
#: 2: ``runs`` gained ``sol_pct``, ``bound``, ``stable``, ``gpu_state``, ``finalist``
#: (issue 22); an older database gets them when opened (:func:`~.schema.migrate`).
#: 3: the ``profiles`` table (issue 24), created in an older database when it is opened.
#: 4: ``runs.compile`` (the build's compile times, issue 23), added by ``migrate``.
SCHEMA_VERSION = 4

#: SQLite result codes that mean the file itself is damaged (not busy, full or unreadable).
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26

_F = TypeVar("_F", bound=Callable[..., Any])


class CorruptDatabase(sqlite3.DatabaseError):
    """``PRAGMA quick_check`` found problems."""


def is_corrupt(exc: BaseException) -> bool:
    """True for errors saying the database file is damaged or not a database."""
    if isinstance(exc, CorruptDatabase):
        return True
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    msg = str(exc).lower()
    return "malformed" in msg or "not a database" in msg


def _healing(fn: _F) -> _F:
    """Run a store method; if the database turns out corrupt, start a fresh one (the bad
    file moved aside) and run the method once more."""

    @functools.wraps(fn)
    def wrapper(self: ResultStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except sqlite3.DatabaseError as e:
            if not is_corrupt(e):
                raise
            self._recover(e)
            return fn(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def content_hash(text: str | bytes) -> str:
    """SHA-256 hex digest of a template's content."""
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def flags_hash(flags: Sequence[str] | str) -> str:
    """Short stable hash of compile flags (order kept: flag order can matter)."""
    text = flags if isinstance(flags, str) else "\0".join(flags)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ResultStore:
    """SQLite store of benchmark runs and latest check results; safe across threads."""

    def __init__(self, workspace_root: str | Path, path: str | Path | None = None) -> None:
        from cutlens.nvcc.cache import private_dir

        self.path = Path(path) if path else Path(workspace_root) / DB_DIR / DB_NAME
        private_dir(self.path.parent)
        self._lock = threading.RLock()
        #: Where a corrupt database was moved to by this store (None: never happened), and
        #: how many of its runs were copied into the fresh one.
        self.quarantined: Path | None = None
        self.salvaged = 0
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as e:
            if not is_corrupt(e):
                raise
            self._restart(e)

    def _open(self) -> sqlite3.Connection:
        """Connect, check the file's integrity and create the schema."""
        with contextlib.suppress(FileExistsError):  # private before SQLite creates it
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False,
                             isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout=30000")
            db.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL keeps every committed transaction across a process kill
            # (only a power loss can take the last ones).
            db.execute("PRAGMA synchronous=NORMAL")
            problems = [str(r[0]) for r in db.execute("PRAGMA quick_check(20)")]
            if problems != ["ok"]:
                raise CorruptDatabase("; ".join(problems)[:500])
            with _Transaction(db, self._lock):
                for stmt in SCHEMA.split(";"):
                    if stmt.strip():
                        db.execute(stmt)
                migrate(db)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            db.close()
            raise
        return db

    def _restart(self, exc: BaseException) -> None:
        """The database is corrupt: move it (and its WAL) aside, open a fresh one and copy
        into it every run and check that can still be read from the old one."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 0
        while aside.exists() or aside.with_name(aside.name + "-wal").exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        moved = True
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:  # another process moved it first
            moved = False
        if moved:
            for suffix in ("-wal", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}-shm")  # an index of the WAL, rebuilt by SQLite
        self._db = self._open()
        if not moved:
            return
        self.quarantined = aside
        runs, checks = self._salvage(aside)
        self.salvaged = runs
        log.warning("results store %s is corrupt (%s); moved it to %s and started a fresh "
                    "one with the %d run(s) and %d check(s) still readable",
                    self.path, exc, aside.name, runs, checks)

    def _salvage(self, old: Path, chunk: int = 256) -> tuple[int, int]:
        """Copy the readable rows of a corrupt database into the open one (best effort:
        ranges of ids, then single ids where a range fails)."""
        had_wal = Path(f"{old}-wal").exists()
        try:
            src = sqlite3.connect(f"file:{old}?mode=ro", uri=True)
        except sqlite3.Error:
            return 0, 0
        src.row_factory = sqlite3.Row  # by column name: an older schema has fewer columns
        runs: list[sqlite3.Row] = []
        checks: list[sqlite3.Row] = []
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(self._tidy, old, had_wal)
            cleanup.enter_context(contextlib.closing(src))
            try:
                hi = int(src.execute("SELECT MAX(id) FROM runs").fetchone()[0] or 0)
            except (sqlite3.Error, TypeError, ValueError):
                hi = 0
            for lo in range(0, hi + 1, chunk):
                try:
                    runs += src.execute("SELECT * FROM runs WHERE id BETWEEN ? AND ?",
                                        (lo, lo + chunk - 1)).fetchall()
                    continue
                except sqlite3.Error:
                    pass
                for i in range(lo, lo + chunk):
                    with contextlib.suppress(sqlite3.Error):
                        runs += src.execute("SELECT * FROM runs WHERE id = ?", (i,)).fetchall()
            with contextlib.suppress(sqlite3.Error):
                checks = src.execute("SELECT * FROM checks").fetchall()
        copied = {"runs": 0, "checks": 0}
        with self._tx():
            for table, rows in (("runs", runs), ("checks", checks)):
                for row in rows:  # one by one: a damaged row must not stop the others
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute(f"INSERT OR IGNORE INTO {table} "
                                         f"({', '.join(row.keys())}) VALUES "
                                         f"({', '.join('?' * len(row))})", tuple(row))
                        copied[table] += 1
        return copied["runs"], copied["checks"]

    @staticmethod
    def _tidy(old: Path, had_wal: bool) -> None:
        """Remove the WAL index (and an empty WAL) that reading ``old`` left beside it."""
        with contextlib.suppress(OSError):
            os.unlink(f"{old}-shm")
        wal = Path(f"{old}-wal")
        with contextlib.suppress(OSError):
            if not had_wal and wal.stat().st_size == 0:
                wal.unlink()

    def _recover(self, exc: BaseException) -> None:
        """The open database turned out corrupt: start over as at open."""
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._restart(exc)

    # ---- plumbing ------------------------------------------------------------------------
    def _tx(self) -> _Transaction:
        return _Transaction(self._db, self._lock)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- runs ----------------------------------------------------------------------------
    @_healing
    def add(self, record: Mapping[str, Any], ts: float | None = None) -> int:
        """Store one result (committed before returning); returns its row id."""
        row = run_row(record)
        if not row["template_hash"]:
            raise ValueError("a result needs template_hash")
        cols = ["ts", *RUN_COLUMNS, "raw"]
        values = [time.time() if ts is None else ts, *(row[c] for c in RUN_COLUMNS),
                  json.dumps(dict(record), default=str)]
        with self._tx():
            cur = self._db.execute(
                f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                values)
        return int(cur.lastrowid or 0)

    @_healing
    def latest(self, template_hash: str, *, kind: str | None = "variant", gpu: str | None = None,
               nvcc: str | None = None, flags_hash: str | None = None) -> list[dict[str, Any]]:
        """Newest run per (kind, sample, variant_name), fastest first (failures last).
        ``gpu`` / ``nvcc`` / ``flags_hash`` / ``kind`` narrow it; None means any."""
        where, args = filters(template_hash, kind=kind, gpu=gpu, nvcc=nvcc,
                               flags_hash=flags_hash)
        sql = (f"SELECT * FROM runs WHERE id IN (SELECT MAX(id) FROM runs WHERE {where} "
               "GROUP BY kind, sample, variant_name)")
        with self._lock:
            rows = [run_dict(r) for r in self._db.execute(sql, args)]
        return sorted(rows, key=latency_key)

    def baselines(self, template_hash: str, gpu: str | None = None) -> dict[str, dict[str, Any]]:
        """Newest timed reference expression per sample."""
        return {r["sample"]: r for r in self.latest(template_hash, kind="baseline", gpu=gpu)}

    @_healing
    def history(self, template_hash: str | None = None, *, sample: str | None = None,
                variant_name: str | None = None, gpu: str | None = None,
                kind: str | None = None, template: str | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, narrowed by any of the arguments."""
        where, args = filters(template_hash, sample=sample, variant_name=variant_name, gpu=gpu,
                               kind=kind, template=template)
        sql = f"SELECT * FROM runs WHERE {where} ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            return [run_dict(r) for r in self._db.execute(sql, args)]

    @_healing
    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    # ---- checks --------------------------------------------------------------------------
    @_healing
    def set_check(self, template_hash: str, sample: str, variant_name: str, *,
                  errors: int = 0, warnings: int = 0, regs: int | None = None,
                  smem: int | None = None, spills: int | None = None,
                  template: str | None = None, variant: Mapping[str, Any] | None = None,
                  nvcc: str | None = None, flags_hash: str | None = None,
                  raw: Any = None, ts: float | None = None) -> None:
        """Replace the check result of (template hash, sample, variant)."""
        values = {"template": template, "variant": to_json_text(variant), "nvcc": nvcc,
                  "flags_hash": flags_hash, "errors": errors, "warnings": warnings,
                  "regs": regs, "smem": smem, "spills": spills, "raw": to_json_text(raw)}
        cols = ["template_hash", "sample", "variant_name", "ts", *CHECK_COLUMNS]
        with self._tx():
            self._db.execute(
                f"INSERT OR REPLACE INTO checks ({', '.join(cols)}) "
                f"VALUES ({', '.join('?' * len(cols))})",
                [template_hash, sample, variant_name, time.time() if ts is None else ts,
                 *(values[c] for c in CHECK_COLUMNS)])

    @_healing
    def check(self, template_hash: str, sample: str, variant_name: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM checks WHERE template_hash=? AND sample=? AND variant_name=?",
                (template_hash, sample, variant_name)).fetchone()
        return check_dict(row) if row else None

    def with_checks(self, template_hash: str, rows: Iterable[Mapping[str, Any]]
                    ) -> list[dict[str, Any]]:
        """Copies of ``rows`` with ``regs`` / ``smem`` / ``spills`` filled in from the latest
        check of the same (sample, variant_name) where a row lacks them."""
        checks = {(c["sample"], c["variant_name"]): c for c in self.checks(template_hash)}
        out = []
        for row in rows:
            row = dict(row)
            c = checks.get((str(row.get("sample") or ""), str(row.get("variant_name") or "")))
            if c is not None:
                for key in ("regs", "smem", "spills"):
                    if row.get(key) is None and c.get(key) is not None:
                        row[key] = c[key]
            out.append(row)
        return out

    @_healing
    def checks(self, template_hash: str) -> list[dict[str, Any]]:
        """Latest check of every (sample, variant) of a template."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM checks WHERE template_hash=? "
                                    "ORDER BY sample, variant_name", (template_hash,))
            return [check_dict(r) for r in rows]


    # ---- profiles ------------------------------------------------------------------------
    @_healing
    def add_profile(self, template_hash: str, sample: str, variant_name: str, *,
                    summary: Mapping[str, Any], report: str = "", template: str | None = None,
                    gpu: str = "", ts: float | None = None) -> int:
        """Add an Nsight Compute profile of (template hash, sample, variant)."""
        cols = ["ts", "template_hash", "sample", "variant_name", "template", "gpu", "report",
                *PROFILE_COLUMNS, "summary"]
        values = [time.time() if ts is None else ts, template_hash, sample, variant_name,
                  template, gpu, report, *(summary.get(c) for c in PROFILE_COLUMNS),
                  to_json_text(dict(summary))]
        with self._tx():
            cur = self._db.execute(f"INSERT INTO profiles ({', '.join(cols)}) VALUES "
                                   f"({', '.join('?' * len(cols))})", values)
        return int(cur.lastrowid or 0)

    @_healing
    def profiles(self, template_hash: str) -> list[dict[str, Any]]:
        """The latest profile of every (sample, variant) of a template."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM profiles WHERE id IN (SELECT MAX(id) FROM profiles WHERE "
                "template_hash=? GROUP BY sample, variant_name) ORDER BY sample, variant_name",
                (template_hash,)).fetchall()
        return [check_dict(r) | {"summary": json.loads(r["summary"] or "{}")} for r in rows]

    def profile(self, template_hash: str, sample: str, variant_name: str) -> dict[str, Any] | None:
        """The latest profile of one (sample, variant), or None."""
        return next((p for p in self.profiles(template_hash)
                     if p["sample"] == sample and p["variant_name"] == variant_name), None)


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` under the store's lock (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self.db, self.lock = db, lock

    def __enter__(self) -> None:
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.lock.release()


