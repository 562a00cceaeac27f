"""Nsight Compute (``ncu``): where it is, the command lines that profile a variant and read a
report back, its CSV pages parsed into a per-kernel summary, the difference of two summaries,
and its failures turned into one message saying what to do.

Torch-free: the profiled process is :mod:`cutlens.bench.profile_harness`.
"""

from __future__ import annotations

import csv
import glob
import io
import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

from cutlens.nvcc.toolchain import tool_near_nvcc

#: The sections that answer "why is it slow".
SECTIONS = ("SpeedOfLight", "MemoryWorkloadAnalysis", "Occupancy", "LaunchStats",
            "WarpStateStats", "SchedulerStats")
#: Metrics collected beside the sections (the DRAM bytes and L2 hit rate of the summary).
EXTRA_METRICS = ("dram__bytes_read.sum", "dram__bytes_write.sum", "lts__t_sector_hit_rate.pct")

#: Summary field -> the raw metric it reads (``ncu --page raw``).
SUMMARY_METRICS: dict[str, str] = {
    "duration_ns": "gpu__time_duration.sum",
    "sm_pct": "sm__throughput.avg.pct_of_peak_sustained_elapsed",
    "memory_pct": "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed",
    "dram_pct": "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed",
    "achieved_occupancy_pct": "sm__warps_active.avg.pct_of_peak_sustained_active",
    "theoretical_occupancy_pct": "sm__maximum_warps_per_active_cycle_pct",
    "registers": "launch__registers_per_thread",
    "smem_static_bytes": "launch__shared_mem_per_block_static",
    "smem_dynamic_bytes": "launch__shared_mem_per_block_dynamic",
    "grid_size": "launch__grid_size",
    "block_size": "launch__block_size",
    "l2_hit_pct": "lts__t_sector_hit_rate.pct",
    "issue_active_pct": "smsp__issue_active.avg.pct_of_peak_sustained_active",
    "eligible_warps": "smsp__warps_eligible.avg.per_cycle_active",
}
#: Summary field -> the label the details page gives it (``ncu --page details``).
DETAILS_LABELS: dict[str, str] = {
    "duration_ns": "Duration",
    "sm_pct": "Compute (SM) Throughput",
    "memory_pct": "Memory Throughput",
    "dram_pct": "DRAM Throughput",
    "achieved_occupancy_pct": "Achieved Occupancy",
    "theoretical_occupancy_pct": "Theoretical Occupancy",
    "registers": "Registers Per Thread",
    "grid_size": "Grid Size",
    "block_size": "Block Size",
    "l2_hit_pct": "L2 Hit Rate",
}
_STALL = re.compile(r"^smsp__average_warps_issue_stalled_(?P<reason>\w+?)_per_issue_active"
                    r"\.ratio$")
#: Units ncu prints (``--print-units auto``) -> the factor to the summary's unit (bytes,
#: nanoseconds); ncu's prefixes are decimal.
_SCALE = {"byte": 1.0, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "Tbyte": 1e12,
          "nsecond": 1.0, "usecond": 1e3, "msecond": 1e6, "second": 1e9,
          "ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
_NUMBER = re.compile(r"^-?[\d,]*\.?\d+(?:[eE][-+]?\d+)?$")
#: Stall reasons that are not stalls (a warp issuing, or ready and not picked).
_NOT_STALLS = {"selected"}


class ProfileError(RuntimeError):
    """A profile could not be taken; the message says what to do (the CLI exits 2)."""


# --------------------------------------------------------------------------- finding ncu


def find_ncu(nvcc: str | None, configured: str | None = None) -> str:
    """``ncu`` beside nvcc (the CUDA toolkit cutlens compiles with), in the toolkit's
    ``nsight-compute-*`` folder, on PATH, or in ``/opt/nvidia/nsight-compute``.
    ``configured`` ($CUTLENS_NCU) wins when set."""
    configured = configured or os.environ.get("CUTLENS_NCU")
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return os.path.abspath(configured)
        raise ProfileError(f"$CUTLENS_NCU ({configured}) is not an executable file: point it "
                           "at Nsight Compute's ncu, or unset it")
    tried: list[str] = []
    if nvcc:
        near = tool_near_nvcc(nvcc, "ncu")
        if near:
            return near
        cuda = os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
        tried.append(os.path.join(cuda, "bin", "ncu"))
        for cand in sorted(glob.glob(os.path.join(cuda, "nsight-compute*", "ncu")),
                           reverse=True):
            if os.access(cand, os.X_OK):
                return cand
        tried.append(os.path.join(cuda, "nsight-compute-*", "ncu"))
    for cand in sorted(glob.glob("/opt/nvidia/nsight-compute/*/ncu"), reverse=True):
        if os.access(cand, os.X_OK):
            return cand
    tried += ["PATH", "/opt/nvidia/nsight-compute/*/ncu"]
    raise ProfileError(
        "Nsight Compute (ncu) not found: install it (it comes with the CUDA toolkit, or as "
        "the nsight-compute package), or set $CUTLENS_NCU to its ncu. Tried: "
        + ", ".join(tried))


def ui_command(*reports: str) -> str:
    """The command that opens reports in the Nsight Compute UI."""
    import shlex

    return " ".join(["ncu-ui", *(shlex.quote(r) for r in reports)])


# --------------------------------------------------------------------------- command lines


def kernel_filter(mangled: Iterable[str]) -> list[str]:
    """``--kernel-name`` for the variant's own kernels (their mangled names, from ptxas), so
    that the harness's torch kernels (data, workspace) are never profiled."""
    names = sorted({n for n in mangled if re.fullmatch(r"[A-Za-z0-9_$.]+", n)})
    if not names:
        return []
    alts = "|".join(re.escape(n) for n in names)
    return ["--kernel-name-base", "mangled", "--kernel-name", f"regex:^({alts})$"]


def profile_command(ncu: str, report: str, target: Sequence[str],
                    kernels: Iterable[str] = ()) -> list[str]:
    """Profile ``target`` (the harness) into ``report`` (``.ncu-rep``): only inside the
    harness's profiler range (``cudaProfilerStart``/``Stop``: the warm-up launches stay
    outside), only the variant's kernels, with :data:`SECTIONS`. ``--clock-control none``:
    the clocks stay as the card runs them (ncu would otherwise lock them to base, changing
    a shared GPU's settings and measuring another state than the lens's timings)."""
    cmd = [ncu, "--target-processes", "all", "--profile-from-start", "off",
           "--clock-control", "none",
           *kernel_filter(kernels)]
    for s in SECTIONS:
        cmd += ["--section", s]
    cmd += ["--metrics", ",".join(EXTRA_METRICS), "--export", report, "--force-overwrite",
            *target]
    return cmd


def export_command(ncu: str, report: str, page: str = "raw") -> list[str]:
    """Read a report back as CSV (``--page raw``: every metric by its name, base units)."""
    return [ncu, "--import", report, "--csv", "--page", page, "--print-units", "base"]


# --------------------------------------------------------------------------- failures

#: (what ncu or the harness printed, what to do) — the first that matches is the message.
_FAILURES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"ERR_NVGPUCTRPERM"),
     "the GPU's performance counters are not permitted for this user (ERR_NVGPUCTRPERM): "
     "run as root, or load the driver with NVreg_RestrictProfilingToAdminUsers=0 "
     "(https://developer.nvidia.com/ERR_NVGPUCTRPERM); in a container, add "
     "--cap-add=SYS_ADMIN"),
    (re.compile(r"cutlens-harness: no CUDA GPU|No (?:supported )?(?:CUDA-capable |supported )?"
                r"(?:GPU )?devices? (?:were |was )?found|no CUDA-capable device", re.I),
     "no GPU: Nsight Compute needs an NVIDIA GPU on this machine (run cutlens profile on a "
     "GPU host; nvidia-smi should list it)"),
    (re.compile(r"not supported on this device|Profiling is not supported", re.I),
     "Nsight Compute cannot profile this GPU (too old or too new for this ncu): use the ncu "
     "of a newer CUDA toolkit ($CUTLENS_NCU)"),
    (re.compile(r"cutlens-harness: (?P<why>.+)"), "the variant could not be run: {why}"),
    (re.compile(r"No kernels were profiled", re.I),
     "no kernel of the variant was profiled: the library launched none of the kernels ptxas "
     "compiled (does the kernel return early for this sample?)"),
)


def failure_message(output: str) -> str | None:
    """What to do about a failed profile, from ncu's and the harness's output (None: not
    recognised)."""
    for pat, text in _FAILURES:
        m = pat.search(output)
        if m is not None:
            return text.format(**m.groupdict())
    return None


def last_error_lines(output: str, n: int = 3) -> str:
    """The last ``==ERROR==`` lines (or the last lines) of ncu's output, for a failure no
    rule recognises."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errs = [ln for ln in lines if ln.startswith("==ERROR==")]
    return " / ".join((errs or lines)[-n:]) or "no output"


# --------------------------------------------------------------------------- CSV pages


def _number(text: str, unit: str = "") -> float | None:
    t = text.strip()
    if not t or not _NUMBER.match(t):
        return None
    return float(t.replace(",", "")) * _SCALE.get(unit.strip(), 1.0)


def _csv_rows(text: str) -> list[list[str]]:
    """The CSV part of ncu's output (its ``==PROF==`` lines and the harness's left out)."""
    lines = [ln for ln in text.splitlines() if ln.startswith('"')]
    return list(csv.reader(io.StringIO("\n".join(lines))))


def parse_raw(text: str) -> list[dict[str, Any]]:
    """``ncu --csv --page raw``: one dict per profiled kernel launch, metric name -> value
    (numbers in base units: bytes, nanoseconds, %), plus ``ID``, ``Kernel Name``..."""
    rows = _csv_rows(text)
    if not rows:
        return []
    header = rows[0]
    units = rows[1] if len(rows) > 1 and not (rows[1] and rows[1][0].strip()) else None
    out = []
    for row in rows[2 if units is not None else 1:]:
        if not row or not row[0].strip():
            continue
        rec: dict[str, Any] = {}
        for i, name in enumerate(header):
            cell = row[i] if i < len(row) else ""
            value = _number(cell, units[i] if units is not None and i < len(units) else "")
            rec[name] = value if value is not None and "__" in name else cell
        out.append(rec)
    return out


def parse_details(text: str) -> list[dict[str, Any]]:
    """``ncu --csv`` (the details page): one dict per kernel launch, summary field ->
    value, read from the section rows' metric labels (:data:`DETAILS_LABELS`)."""
    by_id: dict[str, dict[str, Any]] = {}
    rows = _csv_rows(text)
    if not rows:
        return []
    header = rows[0]
    col = {name: i for i, name in enumerate(header)}
    need = ("ID", "Kernel Name", "Metric Name", "Metric Unit", "Metric Value")
    if any(n not in col for n in need):
        return []
    labels = {v: k for k, v in DETAILS_LABELS.items()}
    last = max(col[n] for n in need)  # a metric row leaves the rule columns out
    for row in rows[1:]:
        if len(row) <= last:
            continue
        rec = by_id.setdefault(row[col["ID"]], {"kernel": row[col["Kernel Name"]]})
        field = labels.get(row[col["Metric Name"]])
        if field is None:
            continue
        value = _number(row[col["Metric Value"]], row[col["Metric Unit"]])
        if value is not None:
            rec.setdefault(field, value)
    return list(by_id.values())


# --------------------------------------------------------------------------- summary


def _int(x: Any) -> int | None:
    return int(x) if isinstance(x, float | int) else None


def kernel_summary(rec: dict[str, Any], top: int = 4) -> dict[str, Any]:
    """The "why" figures of one kernel launch from its raw metrics."""
    out: dict[str, Any] = {"kernel": rec.get("Kernel Name") or rec.get("Function Name") or "",
                           "id": _int(_number(str(rec.get("ID", "")))),
                           "block": rec.get("Block Size") or None,
                           "grid": rec.get("Grid Size") or None}
    for field, metric in SUMMARY_METRICS.items():
        v = rec.get(metric)
        out[field] = v if isinstance(v, float) else None
    for field in ("registers", "smem_static_bytes", "smem_dynamic_bytes", "grid_size",
                  "block_size"):
        out[field] = _int(out[field])
    read, write = rec.get("dram__bytes_read.sum"), rec.get("dram__bytes_write.sum")
    if isinstance(read, float) and isinstance(write, float):
        out["dram_bytes"] = int(read + write)
    else:
        total = rec.get("dram__bytes.sum")
        out["dram_bytes"] = int(total) if isinstance(total, float) else None
    smem = [out["smem_static_bytes"], out["smem_dynamic_bytes"]]
    out["smem_bytes"] = sum(s for s in smem if s is not None) if any(
        s is not None for s in smem) else None
    stalls = []
    for name, v in rec.items():
        m = _STALL.match(name)
        if m and isinstance(v, float) and m["reason"] not in _NOT_STALLS and v > 0:
            stalls.append({"reason": m["reason"], "cycles_per_issue": round(v, 3)})
    stalls.sort(key=lambda s: -float(s["cycles_per_issue"]))
    out["top_stalls"] = stalls[:top]
    return out


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The profile's summary: every kernel launch's figures, and the main kernel's (the
    longest) at the top level."""
    kernels = [kernel_summary(r) for r in records]
    if not kernels:
        return {"kernels": []}
    main = max(kernels, key=lambda k: k.get("duration_ns") or 0.0)
    return {**main, "kernels": kernels}


#: Fields compared by :func:`difference` (numbers only).
COMPARED = ("duration_ns", "sm_pct", "memory_pct", "dram_pct", "achieved_occupancy_pct",
            "theoretical_occupancy_pct", "registers", "smem_bytes", "l2_hit_pct",
            "dram_bytes", "issue_active_pct", "eligible_warps")


def difference(summary: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """``summary`` against ``baseline``, field by field: both values, the difference and,
    for non-percent fields, the ratio; the stall reasons side by side."""
    out: dict[str, Any] = {}
    for f in COMPARED:
        a, b = summary.get(f), baseline.get(f)
        if not isinstance(a, int | float) or not isinstance(b, int | float):
            continue
        entry: dict[str, Any] = {"value": a, "baseline": b, "delta": round(a - b, 4)}
        if not f.endswith("_pct") and b:
            entry["ratio"] = round(a / b, 4)
        out[f] = entry
    mine = {s["reason"]: s["cycles_per_issue"] for s in summary.get("top_stalls", [])}
    theirs = {s["reason"]: s["cycles_per_issue"] for s in baseline.get("top_stalls", [])}
    out["stalls"] = [{"reason": r, "value": mine.get(r), "baseline": theirs.get(r)}
                     for r in dict.fromkeys([*mine, *theirs])]
    return out
