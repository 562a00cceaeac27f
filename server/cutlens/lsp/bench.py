"""The ``cutlens.benchmark`` command: sweep a template's variants on the project's GPU
workers (started once, kept between benchmarks), with progress, storing each result and
refreshing the lenses as results arrive."""

from __future__ import annotations

import logging
from typing import Any

from cutlens.bench.best import best_row
from cutlens.bench.template_sweep import SweepPlan, sweep
from cutlens.lsp import progress
from cutlens.lsp.server import CutlensServer
from cutlens.lsp.session import TemplateDoc
from cutlens.template.selection import Selection

log = logging.getLogger(__name__)


async def benchmark(ls: CutlensServer, doc: TemplateDoc, variant: Any = None,
                    sample: str | None = None) -> dict[str, Any]:
    """Benchmark every variant (or one) of the active sample."""
    t = doc.template
    if t is None or not (t.has_settings or t.engine == "driver"):
        return {"error": "not a template with samples/variants"}
    proj = ls.session.project_for(doc.path)
    try:
        s = t.sample(sample or doc.active_sample)
    except KeyError as e:
        return {"error": str(e.args[0])}
    sel = Selection([s.name], [] if variant is None else [str(variant)])
    if sel.unmatched(t):
        return {"error": f"no variant {variant!r} in sample {s.name!r}"}
    plan = SweepPlan(t, sel)
    done, total = 0, 0
    bar = await progress.start(ls, "benchmark: building")
    ls.benchmarking += 1
    ls.status()

    def planned(n: int) -> None:
        nonlocal total
        total = n

    def on_result(r: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        bar.report(f"benchmark {done}/{total}: {r.get('variant_name')}", done, total)
        ls.refresh_lenses()

    try:
        results = await sweep(plan, proj.renderer, proj.compiler, proj.runner, proj.store,
                              on_result=on_result, on_planned=planned)
    finally:
        ls.benchmarking -= 1
        bar.end("benchmark done")
        ls.status()
    ls.refresh_lenses()
    best = best_row(r for r in results if r.get("kind") != "baseline")
    return {"results": len(results),
            "failed": sum(1 for r in results if r.get("error")),
            "best": {"variant": best["variant_name"], "ms": best["ms"]} if best else None}
