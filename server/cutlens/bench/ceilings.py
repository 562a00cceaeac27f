"""Speed of light per row: this GPU's *measured* ceilings and each row's share of them.

* **Compute ceiling** per dtype: the best dense-GEMM rate ``torch.mm`` reaches on this GPU
  over a few large shapes (:mod:`cutlens.bench.ceiling_probe`, in the worker), in TFLOP/s.
* **Memory ceiling**: the measured device-to-device copy bandwidth, in GB/s.

Both are measured once per (GPU, driver) — compute once per dtype too — and cached in a JSON
file (:func:`cache_path`: ``$CUTLENS_CEILINGS``, else ``$XDG_CACHE_HOME/cutlens/ceilings.json``,
else ``~/.cache/cutlens/ceilings.json``)::

    {"NVIDIA H100 80GB HBM3|580.82.07": {
        "gpu": ..., "driver": ...,
        "compute_tflops": {"bfloat16": 752.1},
        "memory_gbps": 2894.0,
        "how": {"compute": {"bfloat16": {"method": "torch.mm", "shapes": [...],
                                         "best_shape": [8192, 8192, 8192],
                                         "measured_at": "2026-12-07T22:00:00Z"}},
                "memory": {"method": "copy_", "bytes": ..., "measured_at": ...}}}}

A row's ``sol_pct`` is its share of the nearer ceiling — ``max(tflops / compute,
gbps / memory)`` in percent — and ``bound`` says which (``"compute"`` or ``"memory"``).
:data:`DATASHEET` holds vendor peaks, shown only labelled as such. Torch-free.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Dense tensor-core peaks from NVIDIA's datasheets (TFLOP/s; no sparsity) and memory
#: bandwidth (GB/s), by a substring of the device name. Shown labelled "datasheet" only.
DATASHEET: dict[str, dict[str, float]] = {
    "H100 80GB HBM3": {"float16": 989.4, "bfloat16": 989.4, "float32": 494.7,
                       "float8_e4m3fn": 1978.9, "memory_gbps": 3350.0},
    "H200": {"float16": 989.4, "bfloat16": 989.4, "float32": 494.7,
             "float8_e4m3fn": 1978.9, "memory_gbps": 4800.0},
}

#: Element sizes of the dtypes a signature names (for the default ``bytes``).
ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "int8": 1, "uint8": 1,
            "int16": 2, "int32": 4, "int64": 8, "bool": 1, "float8_e4m3fn": 1,
            "float8_e5m2": 1}


def cache_path(env: Mapping[str, str] | None = None) -> Path:
    """Where measured ceilings are kept (see the module)."""
    env = os.environ if env is None else env
    if env.get("CUTLENS_CEILINGS"):
        return Path(env["CUTLENS_CEILINGS"])
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else \
        Path.home() / ".cache"
    return base / "cutlens" / "ceilings.json"


def cache_key(gpu: str, driver: str | None) -> str:
    return f"{gpu}|{driver or '?'}"


def load_cache(path: Path) -> dict[str, Any]:
    """The cache file's entries (empty when missing or unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_entry(path: Path, key: str, entry: Mapping[str, Any]) -> None:
    """Write one entry (atomically: a temporary file renamed over the cache)."""
    data = load_cache(path)
    data[key] = dict(entry)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ceilings-")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
        os.replace(tmp, path)


def missing(entry: Mapping[str, Any] | None, dtypes: list[str]) -> tuple[list[str], bool]:
    """(dtypes without a compute ceiling, whether the memory ceiling is missing)."""
    entry = entry or {}
    have = entry.get("compute_tflops") or {}
    return [d for d in dtypes if d not in have], entry.get("memory_gbps") is None


def datasheet(gpu: str | None) -> dict[str, float] | None:
    """The vendor peaks of a device name, or None."""
    for name, peaks in DATASHEET.items():
        if gpu and name in gpu:
            return dict(peaks)
    return None


def signature_dtype(signature: Mapping[str, Any]) -> str | None:
    """The dtype a row's work is counted in: its first floating-point input buffer's."""
    for a in signature.get("args") or []:
        if a.get("kind") in ("input", "inout") and not a.get("none") and a.get("dtype"):
            d = str(a["dtype"])
            if d.startswith(("float", "bfloat")):
                return d
    return None


def speed_of_light(row: Mapping[str, Any], ceilings: Mapping[str, Any] | None
                   ) -> dict[str, Any]:
    """``sol_pct``, ``bound``, ``compute_pct``, ``memory_pct`` of a row (its ``tflops``,
    ``gbps`` and ``dtype``) against measured ceilings; None where a figure is missing."""
    out: dict[str, Any] = {"sol_pct": None, "bound": None, "compute_pct": None,
                           "memory_pct": None}
    if not ceilings:
        return out
    peak = (ceilings.get("compute_tflops") or {}).get(row.get("dtype") or "")
    mem = ceilings.get("memory_gbps")
    if peak and row.get("tflops"):
        out["compute_pct"] = round(100.0 * row["tflops"] / peak, 1)
    if mem and row.get("gbps"):
        out["memory_pct"] = round(100.0 * row["gbps"] / mem, 1)
    shares = [(p, b) for p, b in ((out["compute_pct"], "compute"),
                                  (out["memory_pct"], "memory")) if p is not None]
    if shares:
        out["sol_pct"], out["bound"] = max(shares)
    return out


def report_ceilings(entry: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The report's ``ceilings``: the measured entry plus the datasheet, labelled."""
    if not entry:
        return None
    out = dict(entry)
    sheet = datasheet(entry.get("gpu"))
    if sheet is not None:
        out["datasheet"] = {"label": "vendor datasheet peak (dense), not measured",
                            "memory_gbps": sheet.pop("memory_gbps", None),
                            "compute_tflops": sheet}
    return out


def sol_text(row: Mapping[str, Any], short: bool = False) -> str | None:
    """``92 % of measured peak (compute-bound)`` (``short``: ``92% C``), or None."""
    pct, bound = row.get("sol_pct"), row.get("bound")
    if pct is None or bound is None:
        return None
    if short:
        return f"{pct:.0f}% {'C' if bound == 'compute' else 'M'}"
    return f"{pct:.0f} % of measured peak ({bound}-bound)"


def ratio_text(vs: float | None, interval: Any = None, tie: bool | None = None) -> str | None:
    """``1.04× torch [1.02–1.05]`` or ``tie with torch (0.99–1.01×)``, or None."""
    if not vs:
        return None
    if tie:
        lo, hi = interval
        return f"tie with torch ({lo:.3f}–{hi:.3f}×)"
    text = f"{vs:.3f}× torch"
    if interval:
        text += f" [{interval[0]:.3f}–{interval[1]:.3f}]"
    return text


def ceilings_text(c: Mapping[str, Any] | None) -> str | None:
    """``measured peak on <gpu>: bfloat16 794.6 TFLOP/s (torch.mm 8192×8192×8192), copy
    2900.0 GB/s``, or None."""
    if not c:
        return None
    how = (c.get("how") or {}).get("compute") or {}
    parts = []
    for dtype, tflops in (c.get("compute_tflops") or {}).items():
        shape = (how.get(dtype) or {}).get("best_shape")
        at = f" (torch.mm {'×'.join(str(x) for x in shape)})" if shape else ""
        parts.append(f"{dtype} {tflops} TFLOP/s{at}")
    if c.get("memory_gbps") is not None:
        parts.append(f"copy {c['memory_gbps']} GB/s")
    if not parts:
        return None
    text = f"measured peak on {c.get('gpu') or '?'}: " + ", ".join(parts)
    sheet = c.get("datasheet") or {}
    peaks = [f"{d} {v} TFLOP/s" for d, v in (sheet.get("compute_tflops") or {}).items()
             if d in (c.get("compute_tflops") or {})]
    if sheet.get("memory_gbps"):
        peaks.append(f"{sheet['memory_gbps']} GB/s")
    return text + (f" (datasheet, not measured: {', '.join(peaks)})" if peaks else "")
