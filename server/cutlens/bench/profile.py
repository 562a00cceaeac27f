"""Profile one variant with Nsight Compute: render it, build its library (the compile pool:
the build cache a check or a benchmark filled is reused), write the run request, run the
profile harness under ``ncu`` (its process group killed past the time limit), read the report
back as CSV and summarise it (:mod:`cutlens.bench.ncu`). The ``.ncu-rep`` and its request stay
in the project's ``.cutlens/profiles``; the summary goes to the results store. Shared by
``cutlens profile`` and the language server. Torch-free.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cutlens.bench import ncu
from cutlens.bench.ncu import ProfileError
from cutlens.bench.protocol import run_request
from cutlens.bench.template_sweep import _signature
from cutlens.nvcc.mapping import map_result
from cutlens.nvcc.options import compile_options, job_for
from cutlens.nvcc.pool import Compiler, CompileResult, Mode
from cutlens.nvcc.toolchain import NvccNotFound, find_nvcc, run_sync
from cutlens.render.hooks import HookError
from cutlens.render.renderer import RenderedUnit, Renderer, RenderFailure
from cutlens.results.store import ResultStore
from cutlens.template.model import Template, slugify

#: Where reports are kept, under the project root.
PROFILES_DIR = Path(".cutlens") / "profiles"
#: Seconds allowed for reading a report back.
EXPORT_TIMEOUT_S = 120.0


class VariantFailed(Exception):
    """The variant cannot be profiled: it does not render or build (exit 1, like check)."""


@dataclass
class Profile:
    """One variant's profile: where the report is, and its summary."""

    template: str
    sample: str
    variant: str
    report: str
    request: str
    summary: dict[str, Any]
    command: list[str] = field(default_factory=list)
    #: Seconds: the build (0 when cached), ncu's run, reading the report back.
    build_s: float = 0.0
    build_cached: bool = False
    ncu_s: float = 0.0
    export_s: float = 0.0

    @property
    def open_command(self) -> str:
        return ncu.ui_command(self.report)

    def to_json(self) -> dict[str, Any]:
        return {"template": self.template, "sample": self.sample, "variant": self.variant,
                "report": self.report, "request": self.request, "open": self.open_command,
                "command": self.command, "build_s": round(self.build_s, 3),
                "build_cached": self.build_cached, "ncu_s": round(self.ncu_s, 3),
                "export_s": round(self.export_s, 3), "summary": self.summary}


def render_variant(t: Template, sample: str | None, variant: str | None) -> RenderedUnit:
    """The rendered unit of one sample × variant (KeyError: no such sample or variant)."""
    s = t.sample(sample)
    v = t.variant(s, variant)
    u = Renderer().render(t, s, v)
    if isinstance(u, RenderFailure):
        first = u.diagnostics[0].message if u.diagnostics else "render failed"
        raise VariantFailed(f"{v.name}: does not render: {first}")
    return u


async def build(t: Template, u: RenderedUnit, compiler: Compiler) -> CompileResult:
    """The variant's library (from the build cache when it was built before)."""
    res = await compiler.compile(job_for(u, Mode.BUILD, compile_options(t, u)))
    if not res.ok or res.artifact is None:
        errs = [d for d in map_result(u, res) if d.severity == "error"]
        where = f" ({errs[0].file}:{errs[0].line}: {errs[0].message})" if errs else ""
        raise VariantFailed(f"{u.variant.name}: does not build: {len(errs)} nvcc error(s)"
                            f"{where}")
    return res


def report_path(root: Path, t: Template, u: RenderedUnit) -> Path:
    stem = slugify(t.path.name.split(".")[0], "template")
    name = f"{stem}.{slugify(u.sample.name, 'sample')}.{u.variant.slug}"
    return root / PROFILES_DIR / f"{name}.ncu-rep"


def harness_env() -> dict[str, str]:
    """The harness imports this cutlens: its folder goes first on PYTHONPATH."""
    here = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return env


def run_ncu(ncu_path: str, u: RenderedUnit, res: CompileResult, report: Path,
            timeout_s: float, warmup: int = 3) -> tuple[list[str], float]:
    """Profile the built library into ``report``: the command and its seconds."""
    report.parent.mkdir(parents=True, exist_ok=True)
    request = report.with_suffix(".request.json")
    if (u.signature is None and u.call is None) or res.artifact is None:
        raise VariantFailed(f"{u.variant.name}: no kernel signature (kernel.def_kernel is "
                            "never called): cutlens does not know how to call it")
    try:
        signature = _signature(u, res.artifact)
    except HookError as e:
        raise VariantFailed(f"{u.variant.name}: signature: {e}") from None
    # the bench worker's run request (the same signature, seed and data), kept beside the
    # report: `python -m cutlens.bench.profile_harness REQUEST` reproduces the profile
    req = run_request(signature, dict(u.bench or {}),
                      sample=u.sample.name, variant_name=u.variant.name)
    request.write_text(json.dumps(req, indent=1, default=str))
    target = [sys.executable, "-m", "cutlens.bench.profile_harness", str(request),
              "--warmup", str(warmup)]
    cmd = ncu.profile_command(ncu_path, str(report),
                              target, [r.mangled for r in res.resources if r.mangled])
    report.unlink(missing_ok=True)
    out = run_sync(cmd, cwd=report.parent, timeout_s=timeout_s, env=harness_env())
    if out.timed_out:
        raise ProfileError(f"ncu ran past the time limit ({timeout_s:.0f} s) and was stopped "
                           "(its process group killed): raise --timeout, or profile a "
                           "smaller sample")
    why = ncu.failure_message(out.output)  # (ncu can exit 0 after ERR_NVGPUCTRPERM)
    if out.returncode != 0 or not report.is_file() or why is not None:
        raise ProfileError(why or f"ncu failed (exit {out.returncode}): "
                                  f"{ncu.last_error_lines(out.output)}")
    return cmd, out.duration_s


def read_report(ncu_path: str, report: Path) -> tuple[dict[str, Any], float]:
    """The summary of a report (ncu's raw page as CSV), and the seconds it took."""
    out = run_sync(ncu.export_command(ncu_path, str(report)), timeout_s=EXPORT_TIMEOUT_S)
    if out.returncode != 0 or out.timed_out:
        raise ProfileError(f"ncu could not read {report} back: "
                           f"{ncu.last_error_lines(out.output)}")
    records = ncu.parse_raw(out.output)
    if not records:
        raise ProfileError(ncu.failure_message(out.output) or
                           f"{report} holds no kernel: no kernel of the variant was profiled")
    summary = ncu.summarize(records)
    gpu = records[0].get("device__attribute_display_name") or records[0].get("Device")
    summary["gpu"] = str(gpu) if gpu not in (None, "") else ""
    return summary, out.duration_s


def locate_ncu(t: Template) -> str:
    """ncu for the template's toolkit (nvcc's folder first)."""
    try:
        nvcc: str | None = find_nvcc(compile_options(t).nvcc)
    except NvccNotFound:
        nvcc = None
    return ncu.find_ncu(nvcc)


async def profile_variant(t: Template, sample: str | None, variant: str | None,
                          compiler: Compiler, *, timeout_s: float = 300.0, warmup: int = 3,
                          store: ResultStore | None = None,
                          ncu_path: str | None = None) -> Profile:
    """Build (or reuse) and profile one variant; the summary is stored when ``store``."""
    ncu_path = ncu_path or locate_ncu(t)  # no ncu: say so before building
    u = await asyncio.to_thread(render_variant, t, sample, variant)
    t0 = time.monotonic()
    res = await build(t, u, compiler)
    build_s = time.monotonic() - t0
    report = report_path(t.config.root, t, u)
    cmd, ncu_s = await asyncio.to_thread(run_ncu, ncu_path, u, res, report, timeout_s, warmup)
    summary, export_s = await asyncio.to_thread(read_report, ncu_path, report)
    p = Profile(template=t.path.name, sample=u.sample.name, variant=u.variant.name,
                report=str(report), request=str(report.with_suffix(".request.json")),
                summary=summary, command=cmd, build_s=0.0 if res.cached else build_s,
                build_cached=res.cached, ncu_s=ncu_s, export_s=export_s)
    if store is not None:
        store.add_profile(t.content_hash, p.sample, p.variant, template=p.template,
                          gpu=summary.get("gpu") or "", report=p.report, summary=summary)
    return p


def compare(p: Profile, baseline: Profile) -> dict[str, Any]:
    """A variant's profile against a baseline variant's: the differences, and the command
    that opens both reports in the Nsight Compute UI (there, *Add Baseline* on the second
    shows ncu's own comparison)."""
    return {"variant": p.variant, "baseline": baseline.variant,
            "difference": ncu.difference(p.summary, baseline.summary),
            "open": ncu.ui_command(p.report, baseline.report)}
