"""Commands (``workspace/executeCommand``) and custom requests (``cutlens/...``)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cutlens import trust
from cutlens.lsp.convert import path_to_uri, uri_to_path
from cutlens.render.renderer import RenderedUnit
from cutlens.template.discovery import discover
from cutlens.template.model import Template

if TYPE_CHECKING:
    from cutlens.lsp.server import CutlensServer
    from cutlens.lsp.session import TemplateDoc

log = logging.getLogger("cutlens.lsp")


def _arg(args: tuple, i: int) -> Any:
    v = args[i] if len(args) > i else None
    return v if v not in ("", None) else None


async def ensure_doc(ls: CutlensServer, uri: str) -> TemplateDoc:
    """The tracked template of ``uri`` (loaded from disk when not open), Jinja tier done."""
    path = uri_to_path(uri)
    doc = ls.session.doc(path, uri)
    if doc.jinja is None or doc.jinja_version != doc.version or doc.template is None:
        await ls.jinja_tier(doc)
    return doc


async def check_docs(ls: CutlensServer, docs: list[TemplateDoc]) -> int:
    """Both tiers for ``docs`` (nvcc regardless of checkOn); the diagnostics count."""
    files: set[str] = set()
    for doc in docs:
        ls.debouncer.cancel(("nvcc", doc.path))
        await ls.jinja_tier(doc)
        await ls.nvcc_tier(doc)
        files |= {d.file for (p, _), ds in ls.session.tiers.items() if p == doc.path
                  for d in ds} | {str(doc.path)}
    return sum(len(ls.session.diagnostics_for(f)) for f in files)


def rendered_payload(ls: CutlensServer, doc: TemplateDoc, sample: str | None,
                     variant: str | int | None) -> dict:
    """The rendered text of a sample × variant and, per rendered line, its template line
    (in the template itself when the line came through an include or macro)."""
    if doc.template is None:
        return {"error": "not a template"}
    try:
        unit = ls.active_unit(doc, sample, None if variant is None else str(variant))
    except KeyError as e:
        return {"error": str(e.args[0])}
    if not isinstance(unit, RenderedUnit):
        msgs = "; ".join(f"{Path(d.file).name}:{d.line}: {d.message}"
                         for d in getattr(unit, "diagnostics", []))
        return {"error": f"render failed: {msgs}", "text": f"// render failed\n// {msgs}\n"}
    root = str(doc.path)
    lines = []
    for i in range(1, len(unit.text.splitlines()) + 1):
        o = unit.source_map.origin(i, root) or unit.source_map.origin(i)
        lines.append({"uri": path_to_uri(o.file), "line": o.line - 1} if o else None)
    return {"text": unit.text, "sample": unit.sample.name, "variant": unit.variant.name,
            "variantIndex": unit.variant.index, "kernelName": unit.kernel_name,
            "lines": lines}


def selection_payload(doc: TemplateDoc) -> dict:
    t: Template | None = doc.template
    if t is None:
        return {"samples": [], "variants": [], "active": {}}
    s = t.sample(doc.active_sample)
    return {"samples": [x.name for x in t.samples] or ["default"],
            "variants": [v.to_json() for v in t.variants(s)],
            "active": {"sample": s.name,
                       "variant": doc.active_variant or (t.variants(s)[0].name
                                                         if t.variants(s) else None)}}


def results_payload(ls: CutlensServer, doc: TemplateDoc) -> dict:
    """The latest benchmark sweep of a template, fastest first, best marked."""
    t = doc.template
    if t is None:
        return {"rows": [], "baseline": {}}
    store = ls.session.project_for(doc.path).store
    runs = store.latest(t.content_hash)
    checks = {(c["sample"], c["variant_name"]): c for c in store.checks(t.content_hash)}
    best: dict[str, float] = {}
    for r in runs:
        if not r.get("error") and r.get("ms") is not None and r.get("verified") is not False:
            best[r["sample"]] = min(best.get(r["sample"], float("inf")), r["ms"])
    rows = []
    for r in runs:
        c = checks.get((r["sample"], r["variant_name"]), {})
        rows.append({
            "sample": r["sample"], "variant": r.get("variant"),
            "variantName": r["variant_name"], "ms": r.get("ms"), "msMin": r.get("ms_min"),
            "spreadPct": r.get("spread_pct"), "tflops": r.get("tflops"),
            "gbps": r.get("gbps"), "workspaceBytes": r.get("workspace_bytes"),
            "regs": r.get("regs") or c.get("regs"), "smemBytes": r.get("smem") or c.get("smem"),
            "spills": r.get("spills") if r.get("spills") is not None else c.get("spills"),
            "verified": r.get("verified"), "error": r.get("error"),
            "best": r.get("ms") is not None and r.get("ms") == best.get(r["sample"])})
    baseline = {k: {"ms": v.get("ms"), "tflops": v.get("tflops"), "gbps": v.get("gbps")}
                for k, v in store.baselines(t.content_hash).items()}
    gpu = next((r.get("gpu") for r in runs if r.get("gpu")), None)
    return {"gpu": gpu, "rows": rows, "baseline": baseline}


def register(server: CutlensServer) -> None:
    """Register the commands and custom requests on ``server``."""
    ses = server.session

    @server.command("cutlens.check")
    async def cmd_check(ls, *args: Any) -> dict:
        uri = _arg(args, 0)
        if uri is not None:
            docs = [await ensure_doc(ls, uri)]
        else:
            docs = [d for d in ses.docs.values() if d.is_open]
        n = await check_docs(ls, docs)
        return {"diagnostics": n, "templates": len(docs)}

    @server.command("cutlens.checkWorkspace")
    async def cmd_check_workspace(ls, *args: Any) -> dict:
        paths: list[Path] = []
        for root in ses.workspace_roots:
            proj = ses.project_for(root)
            paths += await asyncio.to_thread(lambda r=root, c=proj.config: discover([r], c)
                                             .templates)
        docs = [await ensure_doc(ls, path_to_uri(p)) for p in paths]
        n = await check_docs(ls, docs)
        return {"templates": len(docs), "diagnostics": n}

    @server.command("cutlens.showRendered")
    async def cmd_show_rendered(ls, *args: Any) -> dict:
        doc = await ensure_doc(ls, args[0])
        return await asyncio.get_running_loop().run_in_executor(
            ls.render_pool, rendered_payload, ls, doc, _arg(args, 1), _arg(args, 2))

    @server.command("cutlens.selectSample")
    async def cmd_select_sample(ls, *args: Any) -> dict:
        doc = await ensure_doc(ls, args[0])
        name = _arg(args, 1)
        if doc.template is None:
            return {"error": "not a template"}
        if name is None:
            return {"choices": [s.name for s in doc.template.samples]}
        try:
            doc.active_sample = doc.template.sample(str(name)).name
        except KeyError as e:
            return {"error": str(e.args[0])}
        doc.active_variant = None
        ls.refresh_lenses()
        return {"sample": doc.active_sample}

    @server.command("cutlens.selectVariant")
    async def cmd_select_variant(ls, *args: Any) -> dict:
        doc = await ensure_doc(ls, args[0])
        which = _arg(args, 1)
        t = doc.template
        if t is None:
            return {"error": "not a template"}
        s = t.sample(doc.active_sample)
        if which is None:
            return {"choices": [v.to_json() for v in t.variants(s)]}
        try:
            doc.active_variant = t.variant(s, str(which)).name
        except KeyError as e:
            return {"error": str(e.args[0])}
        ls.refresh_lenses()
        return {"variant": doc.active_variant}

    @server.command("cutlens.benchmark")
    async def cmd_benchmark(ls, *args: Any) -> dict:
        from cutlens.lsp.bench import benchmark

        if not ls.session.trusted:
            return {"error": "benchmarks run workspace code (the compiled kernels, the "
                             "[bench] reference): not in an untrusted workspace. "
                             + trust.HOW_TO_TRUST}
        doc = await ensure_doc(ls, args[0])
        return await benchmark(ls, doc, _arg(args, 1), _arg(args, 2))

    @server.feature("cutlens/rendered")
    async def req_rendered(ls, params: Any) -> dict:
        p = _params(params)
        doc = await ensure_doc(ls, p["uri"])
        return await asyncio.get_running_loop().run_in_executor(
            ls.render_pool, rendered_payload, ls, doc, p.get("sample"), p.get("variant"))

    @server.feature("cutlens/selection")
    async def req_selection(ls, params: Any) -> dict:
        doc = await ensure_doc(ls, _params(params)["uri"])
        return selection_payload(doc)

    @server.feature("cutlens/results")
    async def req_results(ls, params: Any) -> dict:
        doc = await ensure_doc(ls, _params(params)["uri"])
        return await asyncio.to_thread(results_payload, ls, doc)


def _params(params: Any) -> dict:
    """Custom request params arrive as a dict or an attrs-like object."""
    if isinstance(params, dict):
        return params
    return {k: getattr(params, k) for k in dir(params) if not k.startswith("_")}
