"""Measure nvcc modes on a CUTLASS 3.x sm90a GEMM TU: seconds, peak RSS, what each catches.

    python benchmarks/nvcc_modes.py [--reps 2] [--work /tmp/cutlens-nvcc-modes] [--fresh]

Compiles ``benchmarks/gemm_sm90.cu`` with cutlens's common flags (``cutlens.nvcc``) plus each
candidate mode's flags, once clean (``--reps`` times) and once per injected error
(``-DINJECT_*``), one compile at a time. Every run's raw output is kept under ``--work`` so an
interrupted sweep resumes and the summary can be rebuilt (``--summarize``) without compiling.
Writes ``docs/bench/nvcc_modes.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "server"))

from cutlens.nvcc import toolchain as nv  # noqa: E402

TU = ROOT / "benchmarks" / "gemm_sm90.cu"
OUT_JSON = ROOT / "docs" / "bench" / "nvcc_modes.json"

#: Candidate modes: mode flags (after the common flags), output suffix.
CANDIDATES: dict[str, tuple[list[str], str]] = {
    "ptx-syntax-only": (["-ptx", "-fdevice-syntax-only"], ".ptx"),
    "cuda-syntax-only": (["-cuda", "-fdevice-syntax-only"], ".ii"),
    "ptx": (["-ptx"], ".ptx"),
    "cuda": (["-cuda"], ".ii"),
    "c": (["-c", "-Xptxas", "-v", "-Xptxas", "-warn-spills"], ".o"),
    "c-O3": (["-c", "-O3", "-Xptxas", "-v", "-Xptxas", "-warn-spills"], ".o"),
    "shared-O3": (["-shared", "-O3", "-Xptxas", "-v", "-Xptxas", "-warn-spills"], ".so"),
    "c-arch": (["-c", "-arch=sm_90a"], ".o"),  # for comparison: cicc runs twice
    # Without Inductor's -DCUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED (extra GMMA shapes in cute).
    "ptx-syntax-only-noext": (["-ptx", "-fdevice-syntax-only"], ".ptx"),
    "c-noext": (["-c", "-O3", "-Xptxas", "-v", "-Xptxas", "-warn-spills"], ".o"),
}
NOEXT = "-DCUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED"

#: Injected errors (macro in gemm_sm90.cu) and what kind of problem each is.
CASES: dict[str, str] = {
    "BAD_ALIGNMENT": "CollectiveBuilder static_assert (template instantiation, CUTLASS headers)",
    "HOST_TYPE_ERROR": "type error in a non-template host function",
    "HOST_TEMPLATE_ERROR": "error inside a host-only function template, instantiated from host",
    "DEVICE_CALLS_HOST": "a __global__ function calling a host function",
    "HOST_CALLS_DEVICE": "a host function calling a __device__ function",
    "TOO_MUCH_SMEM": "a kernel with 300000 bytes of static shared memory (ptxas)",
    "HOST_ASM_ERROR": "invalid x86 inline asm in host code (only gcc/as sees it)",
    "MISSING_INCLUDE": "#include of a header that does not exist",
}

#: Modes timed and checked on every case; the rest only clean.
SWEEP = ["ptx-syntax-only", "cuda-syntax-only", "ptx", "cuda", "c"]


def run_one(work: Path, cand: str, case: str | None, rep: int, fresh: bool) -> dict:
    """Compile once (or reuse the stored run) and return its record."""
    tag = f"{cand}__{case or 'clean'}__{rep}"
    store = work / f"{tag}.json"
    if store.exists() and not fresh:
        return json.loads(store.read_text())
    flags, suffix = CANDIDATES[cand]
    opts = nv.CompileOptions()
    common = nv.common_flags(opts)
    if cand.endswith("-noext"):
        common = [f for f in common if f != NOEXT]
    cmd = [nv.find_nvcc(), *common, *flags]
    if case:
        cmd.append(f"-DINJECT_{case}")
    out_path = work / f"{tag}{suffix}"
    cmd += [str(TU), "-o", str(out_path)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=nv.compile_env(), cwd=work)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    rec = {
        "mode": cand, "case": case, "rep": rep,
        "seconds": round(seconds, 2),
        # CPU time of nvcc and all its tools: steadier than wall time on a shared machine.
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "returncode": proc.returncode,
        "output": output.decode("utf-8", "replace"),
        "load_before": os.getloadavg()[0],
    }
    if out_path.exists():
        out_path.unlink()
    store.write_text(json.dumps(rec))
    print(f"{tag:45s} {seconds:6.1f} s  cpu {rec['cpu_seconds']:6.1f} s  "
          f"rc={proc.returncode}  {rec['peak_rss_mb']} MB", flush=True)
    return rec


def caught(rec: dict) -> dict:
    """Summarize what a run reported: did it fail, and its first error."""
    from cutlens.nvcc import output as nvcc_output

    msgs = nvcc_output.parse(rec["output"])
    errors = [m for m in msgs if m.severity == "error"]
    first = errors[0] if errors else None
    return {
        "caught": rec["returncode"] != 0,
        "returncode": rec["returncode"],
        "seconds": rec["seconds"],
        "cpu_seconds": rec.get("cpu_seconds"),
        "errors": len(errors),
        "first_error": None if first is None else {
            "tool": first.tool, "file": os.path.basename(first.file or "") or None,
            "line": first.line, "message": first.message[:160],
            "chain_frames": len(first.chain),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path("/tmp/cutlens-nvcc-modes"))
    ap.add_argument("--fresh", action="store_true", help="recompile even if a run is stored")
    ap.add_argument("--summarize", action="store_true", help="only rebuild the JSON")
    ap.add_argument("--modes", nargs="*", default=list(CANDIDATES))
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    runs: list[dict] = []
    for rep in range(args.reps):
        for cand in args.modes:
            if args.summarize and not (args.work / f"{cand}__clean__{rep}.json").exists():
                continue
            runs.append(run_one(args.work, cand, None, rep, args.fresh))
    for case in args.cases:
        for cand in [c for c in SWEEP if c in args.modes]:
            if args.summarize and not (args.work / f"{cand}__{case}__0.json").exists():
                continue
            runs.append(run_one(args.work, cand, case, 0, args.fresh))

    from cutlens.nvcc import output as nvcc_output

    modes: dict[str, dict] = {}
    for cand in CANDIDATES:
        clean = [r for r in runs if r["mode"] == cand and r["case"] is None]
        if not clean:
            continue
        secs = [r["seconds"] for r in clean]
        cpus = [r["cpu_seconds"] for r in clean if r.get("cpu_seconds") is not None]
        res = nvcc_output.parse_resources(clean[0]["output"])
        modes[cand] = {
            "flags": CANDIDATES[cand][0],
            "clean_seconds": secs,
            "clean_seconds_median": round(statistics.median(secs), 2),
            "clean_cpu_seconds": cpus,
            "clean_cpu_seconds_median": round(statistics.median(cpus), 2) if cpus else None,
            "peak_rss_mb": max(r["peak_rss_mb"] for r in clean),
            "clean_ok": all(r["returncode"] == 0 for r in clean),
            "clean_messages": [
                f"{m.tool} {m.severity}: {m.message[:120]}"
                for m in nvcc_output.parse(clean[0]["output"])],
            "kernels": [
                {"kernel": k.kernel[:120], "registers": k.registers, "smem_bytes": k.smem_bytes,
                 "stack_bytes": k.stack_bytes, "spill_stores": k.spill_stores}
                for k in res],
            "cases": {
                r["case"]: caught(r)
                for r in runs if r["mode"] == cand and r["case"] is not None},
        }
    doc = {
        "what": "nvcc modes on benchmarks/gemm_sm90.cu (CUTLASS 3.x sm90a bf16 GEMM, "
                "CollectiveBuilder, KernelTmaWarpSpecializedCooperative), one compile at a time",
        "nvcc": nv.nvcc_version(nv.find_nvcc()),
        "cutlass": nv.cutlass_version(),
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(),
                 "note": "a shared 2-core development VM; other work (test suites, a browser) "
                         "ran at the same time, so wall seconds vary up to 2x between runs; "
                         "cpu_seconds (nvcc and its tools, from wait4) are steadier and, on a "
                         "quiet machine, equal the wall time. Early runs lack cpu_seconds."},
        "common_flags": [f for f in nv.common_flags(nv.CompileOptions()) if not
                         f.startswith("-I")] + ["-I<cutlass include dirs>"],
        "cases": CASES,
        "chosen": {
            "quick": "-ptx -fdevice-syntax-only: the least CPU on a clean TU and the earliest "
                     "report of function-template errors (cicc instantiates host and device "
                     "templates); misses host->device calls (cudafe++), kernel->host calls "
                     "(cicc back end), ptxas and gcc/as errors",
            "full": "-c -O3 -Xptxas -v -Xptxas -warn-spills: everything; cudafe++ runs first, "
                    "so host front-end errors (class-template static_asserts such as "
                    "BAD_ALIGNMENT) come from FULL sooner than from QUICK: run both at once",
            "build": "nvcc -shared on FULL's object (one compile serves check and benchmark); "
                     "-shared -O3 from source costs the same as -c -O3",
            "not_chosen": "-cuda(-fdevice-syntax-only) pays for cudafe++ and cicc in sequence; "
                          "-arch=sm_90a runs cicc twice; -t=0 only matters for several "
                          "-gencode",
        },
        "modes": modes,
    }
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    OUT_JSON.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT_JSON}")


if __name__ == "__main__":
    main()
