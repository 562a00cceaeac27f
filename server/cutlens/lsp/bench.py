"""The ``cutlens.benchmark`` command: sweep a template's variants on the GPU workers (one
runner per project, started once and reused), with progress, storing each result and
refreshing the lenses as results arrive."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from cutlens.bench.runner import Runner
from cutlens.bench.template_sweep import SweepPlan, sweep

if TYPE_CHECKING:
    from cutlens.lsp.server import CutlensServer
    from cutlens.lsp.session import Project, TemplateDoc

log = logging.getLogger("cutlens.lsp")
_RUNNERS: dict[int, Runner] = {}


def runner_for(ls: CutlensServer, proj: Project) -> Runner:
    """The project's runner (its GPU workers stay up between benchmarks)."""
    r = _RUNNERS.get(id(proj))
    if r is None:
        bench = proj.config.bench or {}
        r = Runner(device=str(bench.get("device", "cuda")), gpus=bench.get("devices"),
                   timeout_s=float(bench.get("timeout_s", 60)))
        _RUNNERS[id(proj)] = r
    return r


async def benchmark(ls: CutlensServer, doc: TemplateDoc, variant: Any = None,
                    sample: str | None = None) -> dict:
    """Benchmark every variant (or one) of the active sample."""
    t = doc.template
    if t is None or not t.has_settings:
        return {"error": "not a template with samples/variants"}
    proj = ls.session.project_for(doc.path)
    s = t.sample(sample or doc.active_sample)
    plan = SweepPlan(t, samples=[s.name], variants=[str(variant)] if variant is not None
                     else ["all"])
    done, total = 0, 0
    token = await ls._progress_begin("benchmark: building")
    ls.benchmarking += 1
    ls.status()

    def planned(n: int) -> None:
        nonlocal total
        total = n

    def on_result(r: dict) -> None:
        nonlocal done
        done += 1
        ls._progress_report(token, f"benchmark {done}/{total}: {r.get('variant_name')}",
                            int(100 * done / max(total, 1)))
        ls.refresh_lenses()

    try:
        results = await sweep(plan, proj.renderer, proj.compiler, runner_for(ls, proj),
                              proj.store, on_result=on_result, on_planned=planned)
    finally:
        ls.benchmarking -= 1
        ls._progress_end(token, "benchmark done")
        ls.status()
    ls.refresh_lenses()
    ok = [r for r in results if r.get("ms") is not None and not r.get("error")
          and r.get("kind") != "baseline"]
    best = min(ok, key=lambda r: r["ms"], default=None)
    return {"results": len(results),
            "failed": sum(1 for r in results if r.get("error")),
            "best": {"variant": best["variant_name"], "ms": best["ms"]} if best else None}


async def close_runners() -> None:
    for r in list(_RUNNERS.values()):
        try:
            await r.close()
        except Exception:
            log.exception("closing a runner")
    _RUNNERS.clear()
