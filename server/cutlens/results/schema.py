"""The results database's tables and the conversions between records (plain dicts) and
rows: which columns a run and a check have, JSON-valued columns, filters and ordering."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Mapping
from typing import Any

#: Columns of ``runs`` taken from a record, in order.
RUN_COLUMNS = (
    "kind", "template", "template_hash", "sample", "variant_name", "variant", "gpu", "nvcc",
    "flags_hash", "ms", "ms_min", "spread_pct", "iters", "tflops", "gbps", "workspace_bytes",
    "regs", "smem", "spills", "verified", "max_abs_err", "error",
    "sol_pct", "bound", "stable", "gpu_state", "finalist", "compile",
)
#: Columns added to ``runs`` after version 1, with their SQL types: :func:`migrate` adds
#: them to an older database (their values NULL in its old rows).
ADDED_COLUMNS = (("sol_pct", "REAL"), ("bound", "TEXT"), ("stable", "INTEGER"),
                 ("gpu_state", "TEXT"), ("finalist", "TEXT"), ("compile", "TEXT"))
#: JSON-valued columns of ``runs``.
_JSON_COLUMNS = ("variant", "gpu_state", "finalist", "compile")
CHECK_COLUMNS = ("template", "variant", "nvcc", "flags_hash", "errors", "warnings", "regs",
                 "smem", "spills", "raw")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    kind TEXT NOT NULL DEFAULT 'variant',
    template TEXT,
    template_hash TEXT NOT NULL,
    sample TEXT NOT NULL DEFAULT '',
    variant_name TEXT NOT NULL DEFAULT '',
    variant TEXT,
    gpu TEXT NOT NULL DEFAULT '',
    nvcc TEXT NOT NULL DEFAULT '',
    flags_hash TEXT NOT NULL DEFAULT '',
    ms REAL, ms_min REAL, spread_pct REAL, iters INTEGER, tflops REAL, gbps REAL,
    workspace_bytes INTEGER, regs INTEGER, smem INTEGER, spills INTEGER,
    verified INTEGER, max_abs_err REAL, error TEXT,
    raw TEXT,
    sol_pct REAL, bound TEXT, stable INTEGER, gpu_state TEXT, finalist TEXT,
    compile TEXT  -- the build's compile times (JSON: seconds, phases, top_instantiations)
);
CREATE INDEX IF NOT EXISTS runs_key
    ON runs (template_hash, sample, variant_name, gpu, nvcc, flags_hash, id);
CREATE TABLE IF NOT EXISTS checks (
    template_hash TEXT NOT NULL,
    sample TEXT NOT NULL,
    variant_name TEXT NOT NULL,
    ts REAL NOT NULL,
    template TEXT, variant TEXT, nvcc TEXT, flags_hash TEXT,
    errors INTEGER, warnings INTEGER, regs INTEGER, smem INTEGER, spills INTEGER,
    raw TEXT,
    PRIMARY KEY (template_hash, sample, variant_name)
);
CREATE TABLE IF NOT EXISTS profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    template_hash TEXT NOT NULL,
    sample TEXT NOT NULL,
    variant_name TEXT NOT NULL,
    template TEXT, gpu TEXT NOT NULL DEFAULT '', report TEXT,
    sm_pct REAL, memory_pct REAL, achieved_occupancy_pct REAL, registers INTEGER,
    smem_bytes INTEGER, l2_hit_pct REAL, dram_bytes INTEGER, duration_ns REAL,
    summary TEXT
);
CREATE INDEX IF NOT EXISTS profiles_key ON profiles (template_hash, sample, variant_name, id);
"""
#: Columns of ``profiles`` read from a profile's summary.
PROFILE_COLUMNS = ("sm_pct", "memory_pct", "achieved_occupancy_pct", "registers", "smem_bytes",
                   "l2_hit_pct", "dram_bytes", "duration_ns")


def to_json_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)


def run_row(record: Mapping[str, Any]) -> dict[str, Any]:
    row = {c: record.get(c) for c in RUN_COLUMNS}
    row["kind"] = row["kind"] or ("baseline" if record.get("op") == "baseline" else "variant")
    if row["kind"] == "baseline" and not row["variant_name"]:
        row["variant_name"] = "torch"
    for key in ("sample", "variant_name", "gpu", "nvcc", "flags_hash"):
        row[key] = "" if row[key] is None else str(row[key])
    for key in _JSON_COLUMNS:
        row[key] = to_json_text(row[key])
    for key in ("verified", "stable"):
        if row[key] is not None:
            row[key] = int(bool(row[key]))
    return row


def migrate(db: sqlite3.Connection) -> list[str]:
    """Add the columns of :data:`ADDED_COLUMNS` that an older ``runs`` table lacks (inside
    the caller's transaction); the names added."""
    have = {str(r[1]) for r in db.execute("PRAGMA table_info(runs)")}
    added = []
    for name, kind in ADDED_COLUMNS:
        if name not in have:
            db.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
            added.append(name)
    return added


def _parseto_json_text(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        if d.get(key):
            with contextlib.suppress(ValueError):
                d[key] = json.loads(d[key])
    return d


def run_dict(row: sqlite3.Row) -> dict[str, Any]:
    d = _parseto_json_text(dict(row), *_JSON_COLUMNS, "raw")
    for key in ("verified", "stable"):
        if d.get(key) is not None:
            d[key] = bool(d[key])
    return d


def check_dict(row: sqlite3.Row) -> dict[str, Any]:
    return _parseto_json_text(dict(row), "variant", "raw")


def filters(template_hash: str | None, **eq: Any) -> tuple[str, list[Any]]:
    clauses, args = [], []
    if template_hash is not None:
        clauses.append("template_hash = ?")
        args.append(template_hash)
    for col, val in eq.items():
        if val is not None:
            clauses.append(f"{col} = ?")
            args.append(val)
    return (" AND ".join(clauses) or "1"), args


def latency_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    ok = row.get("ms") is not None and not row.get("error")
    return (not ok, row.get("ms") if ok else 0.0, row.get("sample") or "",
            row.get("variant_name") or "")
