"""Fidelity on FlashInfer's own JIT templates: do they check clean, and does an injected error
land on the exact template line in the right file?

    python benchmarks/fidelity_flashinfer.py /path/to/flashinfer [--only ID ...]
        [--out docs/bench/fidelity_flashinfer.json] [--no-baseline] [--work DIR]
        [--modes full quick full-only]

The checkout (FlashInfer v0.6.6, ``3rdparty/cutlass`` checked out) is never written to: its
``csrc/`` is copied into a work folder beside symlinks to its ``include/`` and ``3rdparty/``,
with ``examples/flashinfer/cutlens.toml`` as the project config. First every configured
template is checked as is (the baseline: it must be clean); then each mutation edits one
line of one template (a C++ typo, a wrong type, a bad template argument, a Jinja error, in
the kernel-inst template or its companion, in one-line and multi-line statements, errors
reported deep in FlashInfer's and CUTLASS's headers), runs ``cutlens check --format json
--jobs 1`` on the template that renders it, and restores the line. A case is *exact* when
an error lands on the mutated line of the mutated file. ``--modes`` checks each case in
several ``cutlens check --mode``s (exact, and only there, in every one). nvcc runs one unit
at a time; CUTLASS 3.x units take 1-2 minutes each; the whole run took 505 s on 2 cores
(docs/FIDELITY.md).

A toolkit without cuRAND (CUTLASS's tools/util headers include curand_kernel.h) needs its
include dir on ``CPATH``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "examples" / "flashinfer" / "cutlens.toml"

#: The configured templates (examples/flashinfer/cutlens.toml) and what each checks.
TEMPLATES = {
    "single_decode_kernel_inst": "single decode (with single_decode_customize_config)",
    "single_prefill_kernel_inst": "FA2 single prefill (with single_prefill_customize_config)",
    "single_prefill_sm90_kernel_inst": "FA3 single prefill sm90 (with its customize_config)",
    "group_gemm_sm90_kernel_inst": "group GEMM sm90",
    "bf16_gemm_cutlass": "bf16 GEMM sm100 (sm_100a)",
    "tgv_gemm": "TGV GEMM sm100 (sm_100a)",
}
DECODE, DECODE_CFG = "single_decode_kernel_inst", "single_decode_customize_config"
FA2, FA2_CFG = "single_prefill_kernel_inst", "single_prefill_customize_config"
FA3, FA3_CFG = "single_prefill_sm90_kernel_inst", "single_prefill_sm90_customize_config"


@dataclass
class Mutation:
    """Replace ``old`` by ``new`` on the line of ``file`` (a csrc/ template stem) holding
    ``anchor``; check ``owner`` (the template that renders ``file``)."""

    id: str
    owner: str
    file: str
    anchor: str
    old: str
    new: str
    kind: str
    what: str


MUTATIONS: list[Mutation] = [
    # --- single decode: kernel-inst (a 4-line explicit instantiation) and its companion
    Mutation("decode-typo-type", DECODE, DECODE, "cudaStream_t stream);", "cudaStream_t",
             "cudaStrem_t", "C++ typo", "a misspelt type on the last line of the statement"),
    Mutation("decode-wrong-tmp-type", DECODE, DECODE, "* tmp,", "{{ dtype_o }}* tmp",
             "float* tmp", "wrong type",
             "tmp's type does not match Params::DTypeO (no instantiation matches)"),
    Mutation("decode-bad-variant", DECODE, DECODE, "{{ variant_name }}, Params>",
             "{{ variant_name }}, Params>", "Params, Params>", "bad template argument",
             "Params as the attention variant: errors deep in decode.cuh"),
    Mutation("decode-bad-pos-mode", DECODE, DECODE, "{{ pos_encoding_mode }}",
             "{{ pos_encoding_mode }}", "{{ head_dim_qk }}", "bad template argument",
             "an int where a PosEncodingMode is expected (no instantiation matches)"),
    Mutation("decode-huge-head-dim", DECODE, DECODE, "{{ head_dim_qk }}, {{ pos",
             "{{ head_dim_qk }}", "{{ head_dim_qk * 16 }}", "bad template argument",
             "HEAD_DIM_QK=2048: one static_assert deep in cp_async.cuh, about a derived width"),
    Mutation("decode-jinja-undefined", DECODE, DECODE, "* tmp,", "{{ dtype_o }}",
             "{{ dtype_out }}", "Jinja error", "an undefined variable"),
    Mutation("decode-jinja-syntax", DECODE, DECODE, "{{ head_dim_qk }}, {{ pos",
             "{{ head_dim_qk }},", "{{ head_dim_qk },", "Jinja error", "an unclosed {{"),
    Mutation("decode-cfg-typo", DECODE, DECODE_CFG, "constexpr auto USE_LOGITS_SOFT_CAP",
             "constexpr auto", "constexpr autp", "C++ typo (companion)",
             "a misspelt keyword in the companion"),
    Mutation("decode-cfg-member-typo", DECODE, DECODE_CFG, "float* lse;", "float* lse;",
             "flaot* lse;", "C++ typo (companion)", "a misspelt member type in Params"),
    Mutation("decode-cfg-wrong-type", DECODE, DECODE_CFG, "using DTypeKV = {{ dtype_kv }};",
             "{{ dtype_kv }}", "int", "wrong type (companion)",
             "DTypeKV = int: errors deep in decode.cuh's kernels"),
    Mutation("decode-cfg-jinja-undefined", DECODE, DECODE_CFG,
             "constexpr int HEAD_DIM_VO = {{ head_dim_vo }};", "{{ head_dim_vo }}",
             "{{ head_dim_v }}", "Jinja error (companion)", "an undefined variable"),
    # --- FA2 single prefill
    Mutation("fa2-typo-enum", FA2, FA2, "constexpr auto use_custom_mask", "MaskMode::kCustom",
             "MaskMode::kCustm", "C++ typo", "a misspelt enumerator"),
    Mutation("fa2-bad-head-dim", FA2, FA2, "{{ head_dim_qk }}, {{ head_dim_vo }}",
             "{{ head_dim_qk }}", "{{ head_dim_qk // 16 }}", "bad template argument",
             "HEAD_DIM_QK=8 on a long argument line: a zero-sized array deep in prefill.cuh"),
    Mutation("fa2-wrong-tmp-type", FA2, FA2, "* tmp,", "{{ dtype_o }}* tmp", "int* tmp",
             "wrong type", "tmp's type does not match Params::DTypeO"),
    Mutation("fa2-bad-mask-mode", FA2, FA2, "{{ use_fp16_qk_reduction }}, {{ mask_mode }}",
             "{{ use_fp16_qk_reduction }}, {{ mask_mode }}",
             "{{ mask_mode }}, {{ use_fp16_qk_reduction }}", "bad template argument",
             "two arguments swapped on a long line"),
    Mutation("fa2-cfg-typo", FA2, FA2_CFG, "using DTypeQ = {{ dtype_q }};", "using DTypeQ",
             "usng DTypeQ", "C++ typo (companion)", "a misspelt keyword in the companion"),
    Mutation("fa2-fp16-qk-reduction", FA2, FA2, "{{ use_fp16_qk_reduction }}, {{ mask_mode }}",
             "{{ use_fp16_qk_reduction }}", "true", "bad template argument",
             "fp16 QK reduction without FP16_QK_REDUCTION_SUPPORTED: static asserts deep in "
             "prefill.cuh (a half there, and half rendered on the next line)"),
    Mutation("fa2-cfg-wrong-dtype-q", FA2, FA2_CFG, "using DTypeQ = {{ dtype_q }};",
             "{{ dtype_q }}", "float", "wrong type (companion)",
             "DTypeQ = float: static asserts deep in prefill.cuh and mma.cuh"),
    Mutation("fa2-cfg-jinja-filter", FA2, FA2_CFG, "{{ additional_params_decl }}",
             "{{ additional_params_decl }}", "{{ additional_params_decl | nofilter }}",
             "Jinja error (companion)", "an unknown filter"),
    # --- FA3 single prefill (sm90)
    Mutation("fa3-typo-params", FA3, FA3, "Params& params, cudaStream_t stream);",
             "Params& params", "Parms& params", "C++ typo", "a misspelt type"),
    Mutation("fa3-bad-sliding-window", FA3, FA3, "{{ use_sliding_window }}",
             "{{ use_sliding_window }}", "{{ use_sliding_window }}_x", "C++ typo",
             "an undefined name from an expression on a long line"),
    Mutation("fa3-bad-head-dim", FA3, FA3, "<{{ head_dim_qk }}", "<{{ head_dim_qk }}",
             "<{{ head_dim_qk + 8 }}", "bad template argument",
             "HEAD_DIM_QK=136: errors deep in the hopper headers"),
    Mutation("fa3-cfg-bad-dtype", FA3, FA3_CFG, "using DTypeO = cutlass_dtype_t<",
             "cutlass_dtype_t<{{ dtype_o }}>", "cutlass_dtype_t<{{ dtype_o }}, 1>",
             "bad template argument (companion)", "too many template arguments"),
    # --- group GEMM sm90
    Mutation("group-gemm-bad-in-type", "group_gemm_sm90_kernel_inst",
             "group_gemm_sm90_kernel_inst", "CutlassSegmentGEMMSM90Run<", "{{ dtype_in }}",
             "double", "wrong type", "double inputs: errors deep in CUTLASS's collective builder"),
    Mutation("group-gemm-typo", "group_gemm_sm90_kernel_inst", "group_gemm_sm90_kernel_inst",
             "size_t int_buffer_size_in_bytes,", "size_t int_buffer", "size_tt int_buffer",
             "C++ typo", "a misspelt type on the 3rd line of a 5-line statement"),
    Mutation("group-gemm-jinja-undefined", "group_gemm_sm90_kernel_inst",
             "group_gemm_sm90_kernel_inst", "CutlassSegmentGEMMSM90Run<", "{{ dtype_in }}",
             "{{ dtype_inn }}", "Jinja error", "an undefined variable"),
    # --- bf16 GEMM sm100 (one macro instantiation per line)
    Mutation("bf16-gemm-bad-cluster", "bf16_gemm_cutlass", "bf16_gemm_cutlass",
             "2, 2, 1, _2SM);", "_2SM", "_3SM", "C++ typo",
             "an undefined name in the 5th macro instantiation"),
    Mutation("bf16-gemm-bad-tile", "bf16_gemm_cutlass", "bf16_gemm_cutlass",
             "1, 4, 1, _1SM);", "{{ cta_k }}", "{{ cta_k + 1 }}", "bad template argument",
             "CTA K=129 in the 3rd macro instantiation: errors deep in CUTLASS"),
    # --- TGV GEMM sm100
    Mutation("tgv-bad-cta-m", "tgv_gemm", "tgv_gemm", "INSTANTIATE_TGV_GEMM_HOST_BF16_BF16",
             "{{ cta_m }}", "{{ cta_m + 1 }}", "bad template argument",
             "CTA M=65 through a macro: errors deep in the TGV headers"),
    Mutation("tgv-typo-macro", "tgv_gemm", "tgv_gemm", "INSTANTIATE_TGV_GEMM_HOST_BF16_BF16",
             "BF16_BF16(", "BF16_BF15(", "C++ typo", "a misspelt macro"),
    Mutation("tgv-jinja-syntax", "tgv_gemm", "tgv_gemm", '{% if dtype == "bf16" %}',
             'dtype == "bf16"', 'dtype = "bf16"', "Jinja error", "= for =="),
]


@dataclass
class Case:
    id: str
    kind: str
    what: str
    template: str
    file: str
    line: int
    edit: str
    exact: bool = False
    #: Every error landed on the mutated line (no stray error elsewhere).
    only_there: bool = False
    errors: list[dict] = field(default_factory=list)
    returncode: int | None = None
    seconds: float = 0.0
    miss: str = ""
    #: With several ``--modes``: each mode's exact, only_there, errors and seconds.
    by_mode: dict[str, dict] = field(default_factory=dict)


def run_check(work: Path, template: str, mode: str = "full") -> tuple[int, list[dict], float]:
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "cutlens", "check", f"csrc/{template}.jinja",
                          "--format", "json", "--jobs", "1", "--mode", mode],
                         capture_output=True, text=True, cwd=work)
    dt = time.monotonic() - t0
    try:
        diags = json.loads(out.stdout)["diagnostics"]
    except (json.JSONDecodeError, KeyError):
        diags = [{"file": "?", "line": 0, "severity": "error",
                  "message": (out.stdout + out.stderr)[-2000:]}]
    return out.returncode, diags, dt


def summary(d: dict) -> dict:
    return {"file": d["file"], "line": d["line"], "severity": d["severity"],
            "message": d["message"].split("\n", 1)[0][:300],
            "related": [f"{r['file']}:{r['line']}: {r['message'][:120]}"
                        for r in d.get("related", [])][:6]}


def prepare(checkout: Path, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    if (work / "csrc").exists():
        shutil.rmtree(work / "csrc")
    shutil.copytree(checkout / "csrc", work / "csrc")
    for name in ("include", "3rdparty"):
        link = work / name
        if not link.exists():
            link.symlink_to(checkout / name)
    shutil.copy(CONFIG, work / "cutlens.toml")


def mutate(work: Path, m: Mutation, modes: list[str]) -> Case:
    path = work / "csrc" / f"{m.file}.jinja"
    text = path.read_text()
    lines = text.split("\n")
    hits = [i for i, ln in enumerate(lines) if m.anchor in ln and m.old in ln]
    if len(hits) != 1:
        raise SystemExit(f"{m.id}: {len(hits)} lines of {m.file} hold {m.anchor!r} and "
                         f"{m.old!r}")
    i = hits[0]
    before = lines[i]
    lines[i] = before.replace(m.old, m.new, 1)
    case = Case(m.id, m.kind, m.what, m.owner, f"csrc/{m.file}.jinja", i + 1,
                f"{before.strip()}  ->  {lines[i].strip()}")
    path.write_text("\n".join(lines))
    try:
        for mode in modes:
            rc, diags, dt = run_check(work, m.owner, mode)
            errs = [d for d in diags if d["severity"] == "error"]
            on = [d for d in errs if d["file"] == case.file and d["line"] == case.line]
            miss = ("no error reported" if not errs else
                    "" if on else f"landed on {errs[0]['file']}:{errs[0]['line']}")
            case.by_mode[mode] = {"exact": bool(on),
                                  "only_there": bool(errs) and len(on) == len(errs),
                                  "errors": [summary(d) for d in errs], "returncode": rc,
                                  "seconds": round(dt, 1), "miss": miss}
    finally:
        path.write_text(text)
    first = case.by_mode[modes[0]]
    case.returncode, case.errors, case.seconds = (first["returncode"], first["errors"],
                                                  sum(r["seconds"] for r in
                                                      case.by_mode.values()))
    case.exact = all(r["exact"] for r in case.by_mode.values())
    case.only_there = all(r["only_there"] for r in case.by_mode.values())
    case.miss = "; ".join(f"{md}: {r['miss']}" if len(modes) > 1 else r["miss"]
                          for md, r in case.by_mode.items() if r["miss"])
    if len(modes) == 1:
        case.by_mode = {}
    return case


def tool_versions() -> dict:
    out: dict = {"python": platform.python_version(), "machine": platform.machine()}
    try:
        from cutlens.nvcc import toolchain as nv

        out["nvcc"] = nv.nvcc_version(nv.find_nvcc())
    except Exception as e:  # recorded, not fatal
        out["nvcc"] = f"unknown ({e})"
    with contextlib.suppress(OSError):
        out["cutlens_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
            cwd=REPO).stdout.strip()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkout", type=Path, help="a FlashInfer checkout (v0.6.6)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "bench" /
                    "fidelity_flashinfer.json")
    ap.add_argument("--only", nargs="+", help="mutation ids (default: all)")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the clean checks of the unmutated templates")
    ap.add_argument("--modes", nargs="+", default=["full"],
                    choices=["full", "quick", "full-only"],
                    help="cutlens check --mode(s) each case runs in (default: full)")
    ap.add_argument("--work", type=Path, help="work folder (default: a temporary one; its "
                    ".cutlens build cache makes a second run faster)")
    args = ap.parse_args()
    checkout = args.checkout.resolve()
    if not (checkout / "csrc" / "single_decode_kernel_inst.jinja").is_file():
        print(f"{checkout}: not a FlashInfer checkout (no csrc/*.jinja)", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="cutlens-fi-"))
    prepare(checkout, work.resolve())
    commit = subprocess.run(["git", "describe", "--tags", "--always"], capture_output=True,
                            text=True, cwd=checkout).stdout.strip()
    doc: dict = {"flashinfer": {"checkout": str(checkout), "version": commit},
                 "config": str(CONFIG.relative_to(REPO)), "tools": tool_versions(),
                 "cpath": os.environ.get("CPATH", ""), "modes": args.modes, "baseline": [],
                 "cases": []}
    t_all = time.monotonic()
    if not args.no_baseline:
        for t, what in TEMPLATES.items():
            rc, diags, dt = run_check(work, t)
            row = {"template": t, "what": what, "returncode": rc, "seconds": round(dt, 1),
                   "clean": rc == 0 and not diags, "diagnostics": [summary(d) for d in diags]}
            doc["baseline"].append(row)
            print(f"baseline {t:34s} {'clean' if row['clean'] else 'NOT CLEAN'} "
                  f"{dt:6.1f} s", flush=True)
    todo = [m for m in MUTATIONS if not args.only or m.id in args.only]
    for m in todo:
        case = mutate(work, m, args.modes)
        case.seconds = round(case.seconds, 1)
        doc["cases"].append(asdict(case))
        print(f"{'exact' if case.exact else 'MISS ':5s} {m.id:28s} {case.seconds:6.1f} s "
              f"{case.miss}", flush=True)
    cases = doc["cases"]
    doc["score"] = {"exact": sum(c["exact"] for c in cases),
                    "only_there": sum(c["only_there"] for c in cases), "total": len(cases)}
    by_kind: dict[str, list[int]] = {}
    for c in cases:
        k = by_kind.setdefault(c["kind"], [0, 0])
        k[0] += c["exact"]
        k[1] += 1
    doc["by_kind"] = {k: f"{a}/{b}" for k, (a, b) in sorted(by_kind.items())}
    doc["wall_s"] = round(time.monotonic() - t_all, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"exact: {doc['score']['exact']}/{doc['score']['total']}  -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
