#!/usr/bin/env python3
"""Fidelity against ``triton.testing.do_bench``: the same libraries timed by cutlens and by
do_bench in one process.

    python benchmarks/fidelity_do_bench.py templates/gemm_sm90.cu.jinja --sample square \\
        (--variants NAME ... | --from-report SWEEP.json --top 3) [--rounds 3] -o OUT.json
    ... --dry-run      # no GPU: render, build (unless --no-build), marshal on the CPU, plan

For each library (a built variant, called with its runtime arguments) and for the sample's
torch reference (``torch.mm``), every round times:

* ``cutlens``: a ``run`` request (``baseline`` for torch) served by cutlens's bench worker
  code (:class:`cutlens.bench.worker.Worker`, in this process: the code ``cutlens bench``'s
  worker processes run), verification included, timing config from the template;
* ``do_bench``: ``triton.testing.do_bench(fn, warmup, rep, return_mode="median")`` on
  tensors allocated here the way a user's script does (``torch.randn`` inputs, the
  signature's sizes and strides), sharing no code with cutlens;
* ``do_bench_uniform``: the same on U(-1, 1) inputs (cutlens's distribution before issue
  18), to measure how much the data alone moves a figure.

The order of the three rotates every round, and each figure is the median over rounds.
``diff_pct`` = 100 * (cutlens - do_bench) / do_bench; the JSON has ``max_abs_diff_pct`` over
all libraries and torch, and ``within_2pct``.

``--lens-check SWEEP.json`` (issue 22) is the independent check of a sweep's figures: no
cutlens timing code at all. The sweep's best row, its finalists and its ``--top`` builds,
and ``torch.mm``, are timed by ``do_bench`` (median) in interleaved rounds — every
round times each of them once, the order rotating — right after the sweep, in the state a
user finds the GPU in. For each, the figure the lens shows (the report's row / baseline
``ms``) against the do_bench median over rounds (``diff_pct``, target ±2 %), and the
winner's ratio to torch in the report (``best.vs_torch``) against the interleaved ratio
(median of the per-round ratios; target 1 %)::

    python benchmarks/fidelity_do_bench.py templates/gemm_sm90.cu.jinja --sample large \
        --lens-check large.json --rounds 15 -o check_large.json
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "server"))

from cutlens import config  # noqa: E402
from cutlens.bench.protocol import baseline_request, run_request  # noqa: E402
from cutlens.bench.template_sweep import _signature, build_groups, timing_from  # noqa: E402
from cutlens.nvcc.options import compile_options  # noqa: E402
from cutlens.nvcc.project import compile_pool  # noqa: E402
from cutlens.render.renderer import RenderedUnit, Renderer  # noqa: E402
from cutlens.render.shapes import render_shape_generic  # noqa: E402
from cutlens.template.loader import load  # noqa: E402

METHODS = ("cutlens", "do_bench", "do_bench_uniform")


# ----------------------------------------------------------------------- choosing libraries
def top_variants(report: dict, sample: str, n: int) -> list[str]:
    """The ``n`` fastest verified variants of ``sample`` in a sweep report, one per build."""
    rows = sorted((r for r in report["results"] if r.get("sample") == sample and r.get("ms")
                   and r.get("verified") and not r.get("error")), key=lambda r: r["ms"])
    out, builds = [], set()
    for r in rows:
        if r.get("build") in builds:
            continue
        builds.add(r.get("build"))
        out.append(r["variant_name"])
        if len(out) == n:
            break
    return out


def diff_pct(ours: float, theirs: float) -> float:
    return 100.0 * (ours - theirs) / theirs


def summarize(entry: dict) -> dict:
    """Median per method over the rounds, and the differences."""
    for m in METHODS:
        vals = [r[m] for r in entry["rounds"] if r.get(m) is not None]
        entry[f"{m}_ms"] = statistics.median(vals) if vals else None
    if entry["cutlens_ms"] and entry["do_bench_ms"]:
        entry["diff_pct"] = diff_pct(entry["cutlens_ms"], entry["do_bench_ms"])
    if entry["do_bench_uniform_ms"] and entry["do_bench_ms"]:
        entry["data_effect_pct"] = diff_pct(entry["do_bench_uniform_ms"], entry["do_bench_ms"])
    return entry


def rotation(round_index: int) -> list[str]:
    """The order of the methods in a round: rotated, so no method always goes first."""
    k = round_index % len(METHODS)
    return [*METHODS[k:], *METHODS[:k]]


# ----------------------------------------------------------------------- do_bench's side
def user_tensors(signature: dict, device: str, dist: str, seed: int) -> dict[str, Any]:
    """Tensors for the signature's buffers as a user's script makes them (independent of
    cutlens's marshalling): inputs ``randn`` (or U(-1, 1)), outputs empty, with the
    signature's sizes, strides and offsets."""
    import torch

    gen = torch.Generator(device=device).manual_seed(seed)
    out: dict[str, Any] = {}
    for a in signature["args"]:
        if a["kind"] not in ("input", "output", "inout") or a.get("none"):
            continue
        dtype = getattr(torch, a["dtype"])
        size, stride, offset = a["size"], a["stride"], int(a.get("offset") or 0)
        numel = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) + 1
        base = torch.empty(numel, dtype=dtype, device=device)
        if a["kind"] != "output":
            if dist == "randn":
                base.copy_(torch.randn(numel, generator=gen, device=device))
            else:
                base.copy_(torch.rand(numel, generator=gen, device=device).mul_(2).sub_(1))
        out[a["name"]] = (base, torch.as_strided(base, size, stride, offset))
    return out


_CTYPES = {"int": ctypes.c_int, "uint8_t": ctypes.c_uint8, "int32_t": ctypes.c_int32,
           "int64_t": ctypes.c_int64, "double": ctypes.c_double, "float": ctypes.c_float,
           "bool": ctypes.c_bool, "unsigned": ctypes.c_uint, "size_t": ctypes.c_size_t}


def library_call(signature: dict, tensors: dict, stream: int | None,
                 device: str = "cuda") -> tuple[Any, Any]:
    """``(fn, keep)``: a no-argument callable running the library's kernel on ``tensors``
    (workspace queried and allocated), and what must stay alive while it is used."""
    import torch

    lib = ctypes.CDLL(signature["library"], mode=ctypes.RTLD_LOCAL)
    kfn = getattr(lib, signature["kernel"])
    types, values = [], []
    for a in signature["args"]:
        if a["kind"] == "size":
            types.append(ctypes.c_int64)
            values.append(ctypes.c_int64(int(a["value"])))
        elif a["kind"] == "scalar":
            t = _CTYPES[a["ctype"]]
            types.append(t)
            values.append(t(a["value"]))
        else:
            types.append(ctypes.c_void_p)
            ptr = None if a.get("none") else tensors[a["name"]][0].data_ptr()
            values.append(ctypes.c_void_p(ptr))
    kfn.restype = ctypes.c_int
    kfn.argtypes = [*types, ctypes.POINTER(ctypes.c_size_t), ctypes.c_void_p, ctypes.c_void_p]
    s = ctypes.c_void_p(stream)
    ws = ctypes.c_size_t(0)
    nulls = [ctypes.c_void_p(None) if t is ctypes.c_void_p else v
             for t, v in zip(types, values, strict=True)]
    if kfn(*nulls, ctypes.byref(ws), None, s) != 0:
        raise RuntimeError("workspace query failed")
    workspace = torch.zeros(max(ws.value, 1), dtype=torch.uint8, device=device)
    args = [*values, None, ctypes.c_void_p(workspace.data_ptr() if ws.value else None), s]

    def fn() -> None:
        if kfn(*args) != 0:
            raise RuntimeError("kernel returned non-zero")

    return fn, (lib, workspace, tensors)


def do_bench_ms(fn: Any, timing: dict) -> float:
    from triton.testing import do_bench

    return float(do_bench(fn, warmup=timing["warmup_ms"], rep=timing["rep_ms"],
                          return_mode="median"))


def torch_call(signature: dict, tensors: dict) -> Any:
    """The sample's torch reference as a user writes it: ``torch.mm(X, W)``."""
    import torch

    x, w = tensors["X"][1], tensors["W"][1]
    return lambda: torch.mm(x, w)


# ----------------------------------------------------------------------- the run
def plan(template: Path, sample: str, variants: list[str], build: bool,
         static_sizes: bool = False) -> dict:
    """Render (and build) the variants as ``cutlens bench`` does (shape-generic builds
    unless ``static_sizes`` or the template's ``[bench] static_sizes``: the sweep's own
    libraries, from its build cache); their signatures, with the library paths."""
    path = template.resolve()
    cfg = config.load(config.find_root(path))
    t = load(path, cfg)
    s = t.sample(sample)
    renderer = Renderer()
    generic = not (static_sizes or t.bench.static_sizes)
    units = []
    for name in variants:
        v = t.variant(s, name)
        u = (render_shape_generic(renderer, t, s, v) if generic
             else renderer.render(t, s, v))
        if not isinstance(u, RenderedUnit):
            raise SystemExit(f"{name}: render failed: {u.diagnostics[0].message}")
        units.append(u)
    libs: dict[str, str] = {}
    if build:
        compiler = compile_pool(cfg)
        groups = build_groups(units, compile_options(t))
        results = asyncio.run(_build(compiler, [job for job, _ in groups]))
        for (_, us), res in zip(groups, results, strict=True):
            if not res.ok:
                raise SystemExit(f"build failed: {res.errors[0].message if res.errors else ''}")
            for u in us:
                libs[u.variant.name] = res.artifact
    return {"template": t, "sample": s, "units": units, "libraries": libs,
            "timing": timing_from(t).to_json(), "bench": t.bench.to_json()}


async def _build(compiler: Any, jobs: list) -> list:
    return list(await asyncio.gather(*(compiler.compile(j) for j in jobs)))


def todo_of(p: dict) -> list[tuple[str, dict, str]]:
    """(name, signature, op) of each library of the plan, then the torch reference."""
    todo = [(u.variant.name, _signature(u, p["libraries"][u.variant.name]), "run")
            for u in p["units"]]
    todo.append(("torch.mm", _signature(p["units"][0], ""), "baseline"))
    return todo


def measure(todo: list[tuple[str, dict, str]], bench: dict, timing: dict, rounds: int,
            device: str = "cuda", bencher: Any = None) -> list[dict]:
    """Each library (and the reference) timed by every method, ``rounds`` times, the
    methods' order rotating. ``bencher(fn, timing)``: do_bench (another timer in tests)."""
    import torch

    from cutlens.bench.worker import Worker

    bencher = bencher or do_bench_ms
    worker = Worker(device)
    stream = torch.cuda.current_stream().cuda_stream if device != "cpu" else None
    entries: list[dict] = []
    for name, sig, op in todo:
        entry: dict[str, Any] = {"name": name, "op": op, "rounds": []}
        data = {d: user_tensors(sig, device, d, seed=1) for d in ("randn", "uniform")}
        fns = {d: (library_call(sig, data[d], stream, device) if op == "run"
                   else (torch_call(sig, data[d]), None)) for d in data}
        for r in range(rounds):
            res: dict[str, Any] = {"order": rotation(r)}
            for m in res["order"]:
                if m == "cutlens":
                    make = run_request if op == "run" else baseline_request
                    req = make(sig, bench, timing=timing, device=device)
                    out = worker.handle(req)
                    if out.get("error"):
                        raise SystemExit(f"{name}: cutlens: {out['error']}")
                    res[m] = out["ms"]
                    res["verified"] = out.get("verified")
                else:
                    res[m] = bencher(fns["randn" if m == "do_bench" else "uniform"][0], timing)
            entry["rounds"].append(res)
        entries.append(summarize(entry))
        print(f"{name:70} cutlens {entry['cutlens_ms']:.4f}  do_bench {entry['do_bench_ms']:.4f}"
              f"  diff {entry['diff_pct']:+.2f}%  (U(-1,1) data {entry['data_effect_pct']:+.2f}%)",
              flush=True)
    return entries


def report(entries: list[dict]) -> dict:
    """``max_abs_diff_pct`` over the libraries and the reference, and ``within_2pct``."""
    diffs = [abs(e["diff_pct"]) for e in entries if e.get("diff_pct") is not None]
    worst = max(diffs) if diffs else None
    return {"libraries": entries, "max_abs_diff_pct": worst,
            "within_2pct": worst is not None and worst <= 2.0}


# ----------------------------------------------------------------------- the lens check
def lens_variants(report: dict, sample: str, top: int) -> list[str]:
    """The libraries to check: the report's best row, its finalists of ``sample`` (figures
    from the interleaved rounds) and its ``top`` builds (figures from the sweep)."""
    best = (report.get("best") or {}).get(sample)
    names = [best["variant_name"]] if best else []
    names += [f["variant_name"] for f in (report.get("finalists") or {}).get(sample) or []]
    names += top_variants(report, sample, top)
    return list(dict.fromkeys(names))


def interleaved(calls: dict[str, Any], timing: dict, rounds: int,
                bencher: Any = None) -> dict[str, list[float]]:
    """Each call timed by ``bencher`` (do_bench) once per round, the order rotating."""
    bencher = bencher or do_bench_ms
    names = list(calls)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        k = r % len(names)
        for n in [*names[k:], *names[:k]]:
            out[n].append(bencher(calls[n], timing))
    return out


def lens_check(report: dict, sample: str, per_round: dict[str, list[float]],
               torch_name: str = "torch.mm") -> dict:
    """The lens figures of ``report`` against interleaved do_bench medians (see the
    module)."""
    rows = {r["variant_name"]: r for r in report["results"] if r.get("sample") == sample}
    lens = {n: (rows.get(n) or {}).get("ms") for n in per_round if n != torch_name}
    lens[torch_name] = ((report.get("baseline") or {}).get(sample) or {}).get("ms")
    libs = []
    for name, times in per_round.items():
        med = statistics.median(times)
        e: dict[str, Any] = {"name": name, "lens_ms": lens.get(name), "do_bench_ms": med,
                             "do_bench_rounds": times,
                             "stable": (rows.get(name) or {}).get("stable"),
                             "sol_pct": (rows.get(name) or {}).get("sol_pct"),
                             "bound": (rows.get(name) or {}).get("bound")}
        e["diff_pct"] = diff_pct(e["lens_ms"], med) if e["lens_ms"] else None
        libs.append(e)
    diffs = [abs(e["diff_pct"]) for e in libs if e["diff_pct"] is not None]
    best = (report.get("best") or {}).get(sample) or {}
    winner: dict[str, Any] = {"name": best.get("variant_name"),
                              "report_vs_torch": best.get("vs_torch"),
                              "report_interval": best.get("interval"),
                              "report_tie": best.get("tie"), "from": best.get("from")}
    if best.get("variant_name") in per_round and torch_name in per_round:
        ratios = [t / w for t, w in zip(per_round[torch_name], per_round[best["variant_name"]],
                                        strict=True)]
        winner["interleaved_vs_torch"] = statistics.median(ratios)
        if winner["report_vs_torch"]:
            winner["diff_pct"] = diff_pct(winner["report_vs_torch"],
                                          winner["interleaved_vs_torch"])
            winner["within_1pct"] = abs(winner["diff_pct"]) <= 1.0
    fastest = min((e for e in libs if e["name"] != torch_name),
                  key=lambda e: e["do_bench_ms"], default=None)
    return {"sample": sample, "libraries": libs, "winner": winner,
            "do_bench_fastest": fastest["name"] if fastest else None,
            "max_abs_diff_pct": max(diffs) if diffs else None,
            "within_2pct": bool(diffs) and max(diffs) <= 2.0,
            "unstable_best": any(e["name"] == best.get("variant_name") and e["stable"] is False
                                 for e in libs)}


def run_lens_check(args: argparse.Namespace) -> dict:
    report = json.loads(args.lens_check.read_text())
    names = lens_variants(report, args.sample, args.top)
    # a sweep with shape-generic rendering on says so in its rows ("shapes"); one with
    # --static-sizes rendered plainly: build what the sweep built
    static = not any("shapes" in r for r in report["results"])
    p = plan(args.template, args.sample, names, build=not (args.dry_run and args.no_build),
             static_sizes=static)
    doc: dict[str, Any] = {"template": args.template.name, "sample": args.sample,
                           "variants": names, "rounds": args.rounds, "timing": p["timing"],
                           "method": "triton.testing.do_bench(median), interleaved rounds"}
    if args.dry_run:
        doc.update(dry_run=True, libraries=p["libraries"])
        return doc
    import torch
    import triton

    stream = torch.cuda.current_stream().cuda_stream
    calls: dict[str, Any] = {}
    keep = []
    for u in p["units"]:
        sig = _signature(u, p["libraries"][u.variant.name])
        fn, k = library_call(sig, user_tensors(sig, "cuda", "randn", seed=1), stream)
        calls[u.variant.name] = fn
        keep.append(k)
    sig0 = _signature(p["units"][0], "")
    calls["torch.mm"] = torch_call(sig0, user_tensors(sig0, "cuda", "randn", seed=1))
    per_round = interleaved(calls, p["timing"], args.rounds)
    doc.update(gpu=torch.cuda.get_device_name(), torch=torch.__version__,
               triton=triton.__version__, **lens_check(report, args.sample, per_round))
    for e in doc["libraries"]:
        print(f"{e['name']:70} lens {e['lens_ms'] or float('nan'):.4f}  do_bench "
              f"{e['do_bench_ms']:.4f}  diff {e['diff_pct'] or 0:+.2f}%", flush=True)
    return doc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("template", type=Path)
    ap.add_argument("--sample", default="square")
    ap.add_argument("--variants", nargs="*", default=[])
    ap.add_argument("--from-report", type=Path, help="a cutlens bench JSON: take its --top")
    ap.add_argument("--top", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-o", "--output", type=Path)
    ap.add_argument("--dry-run", action="store_true", help="no GPU: plan only")
    ap.add_argument("--no-build", action="store_true", help="with --dry-run: do not build")
    ap.add_argument("--lens-check", type=Path,
                    help="a sweep's JSON: check its lens figures against interleaved do_bench")
    args = ap.parse_args(argv)
    if args.lens_check is not None:
        t0 = time.monotonic()
        doc = run_lens_check(args)
        doc["wall_s"] = round(time.monotonic() - t0, 2)
        text = json.dumps(doc, indent=2, default=str)
        if args.output is not None:
            args.output.write_text(text + "\n")
        if not args.dry_run:
            print(f"{args.sample}: max |lens - do_bench| {doc['max_abs_diff_pct']:.2f}% "
                  f"(within 2 %: {doc['within_2pct']}); winner {doc['winner']}")
        return 0
    variants = list(args.variants)
    if args.from_report is not None:
        variants += top_variants(json.loads(args.from_report.read_text()), args.sample,
                                 args.top)
    if len(variants) < 1:
        ap.error("no variants (give --variants or --from-report)")
    t0 = time.monotonic()
    p = plan(args.template, args.sample, variants, build=not (args.dry_run and args.no_build))
    doc: dict[str, Any] = {"template": args.template.name, "sample": args.sample,
                           "variants": variants, "rounds": args.rounds,
                           "timing": p["timing"], "methods": list(METHODS)}
    if args.dry_run:
        from cutlens.bench.marshal import marshal

        for u in p["units"]:
            sig = _signature(u, p["libraries"].get(u.variant.name, ""))
            m = marshal(sig, "cpu")
            print(f"{u.variant.name}: {len(m.args)} args "
                  f"({', '.join(a.name for a in m.args if a.kind == 'scalar')} at call time), "
                  f"library {sig['library'] or '(not built)'}")
        doc.update(dry_run=True, libraries=p["libraries"])
    else:
        import torch
        import triton

        entries = measure(todo_of(p), p["bench"], p["timing"], args.rounds)
        doc.update(gpu=torch.cuda.get_device_name(), torch=torch.__version__,
                   triton=triton.__version__, **report(entries))
    doc["wall_s"] = round(time.monotonic() - t0, 2)
    text = json.dumps(doc, indent=2, default=str)
    if args.output is not None:
        args.output.write_text(text + "\n")
    if not args.dry_run:
        print(f"max |diff| {doc['max_abs_diff_pct']:.2f}% (within 2 %: {doc['within_2pct']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
