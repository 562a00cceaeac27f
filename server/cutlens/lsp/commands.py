"""Commands (``workspace/executeCommand``) and custom requests (``cutlens/...``), each with
typed arguments: positional arguments (commands) or a params object (requests) are checked
against an attrs class, and a bad one is answered with ``{"error": ...}``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
from lsprotocol import types as lsp

from cutlens import trust
from cutlens.bench.best import best_rows
from cutlens.config.validate import CONVERTER
from cutlens.lsp import profile as profile_mod
from cutlens.lsp.bench import benchmark
from cutlens.lsp.convert import path_to_uri, uri_to_path
from cutlens.lsp.server import CutlensServer
from cutlens.lsp.session import TemplateDoc
from cutlens.render.unit import RenderedUnit
from cutlens.template.discovery import discover
from cutlens.template.model import Template

log = logging.getLogger(__name__)
_A = TypeVar("_A")


@attrs.define
class UriArgs:
    """``[uri]``."""

    uri: str


@attrs.define
class MaybeUriArgs:
    """``[uri?]`` (none: every open template)."""

    uri: str | None = None


@attrs.define
class RenderedArgs:
    """``[uri, sample?, variant?]``: a sample × variant (default: the active one)."""

    uri: str
    sample: str | None = None
    variant: str | int | None = None


@attrs.define
class SelectArgs:
    """``[uri, name?]``: without a name, the choices."""

    uri: str
    name: str | int | None = None


@attrs.define
class LocationArgs:
    """``[uri, line, character?]``: a place to show (0-based)."""

    uri: str
    line: int
    character: int = 0


@attrs.define
class BenchmarkArgs:
    """``[uri, variant?, sample?]``: one variant (index or name) or all, of a sample (default
    the active one)."""

    uri: str
    variant: str | int | None = None
    sample: str | None = None


@attrs.define
class ProfileArgs:
    """``[uri, variant?, sample?, baseline?]``: one variant (default the active one) of a
    sample (default the active one), and a variant to compare it with."""

    uri: str
    variant: str | int | None = None
    sample: str | None = None
    baseline: str | int | None = None


class BadArguments(ValueError):
    """Arguments that do not fit a command's signature."""


def parse_args(cls: type[_A], args: Any, name: str) -> _A:
    """``cls`` from positional arguments (a list) or a params object (a dict); ``""`` and
    ``null`` mean "left out"."""
    fields = [f.name for f in attrs.fields(cls)]  # type: ignore[arg-type]
    if isinstance(args, list | tuple):
        if len(args) > len(fields):
            raise BadArguments(f"{name} takes at most {len(fields)} argument(s) "
                               f"({', '.join(fields)}), not {len(args)}")
        data = dict(zip(fields, args, strict=False))
    elif isinstance(args, dict):
        data = dict(args)
    elif args is None:
        data = {}
    else:  # an attrs-like params object
        data = {k: getattr(args, k) for k in fields if hasattr(args, k)}
    data = {k: v for k, v in data.items() if k in fields and v not in ("", None)}
    missing = [f.name for f in attrs.fields(cls)  # type: ignore[arg-type]
               if f.default is attrs.NOTHING and f.name not in data]
    if missing:
        raise BadArguments(f"{name}: missing argument(s) {', '.join(missing)}")
    try:
        return CONVERTER.structure(data, cls)
    except Exception as e:  # cattrs wraps the field's error
        inner = getattr(e, "exceptions", [e])
        raise BadArguments(f"{name}: {'; '.join(map(str, inner))}") from None


async def ensure_doc(ls: CutlensServer, uri: str) -> TemplateDoc:
    """The tracked template of ``uri`` (loaded from disk when not open), Jinja tier done."""
    path = uri_to_path(uri)
    doc = ls.session.doc(path, uri)
    if doc.jinja is None or doc.jinja_version != doc.version or doc.template is None:
        await ls.tiers.jinja(doc)
    return doc


async def check_docs(ls: CutlensServer, docs: list[TemplateDoc]) -> int:
    """Both tiers for ``docs`` (nvcc regardless of checkOn); the diagnostics count."""
    files: set[str] = set()
    for doc in docs:
        ls.debouncer.cancel(("nvcc", doc.path))
        await ls.tiers.jinja(doc)
        await ls.tiers.nvcc(doc)
        files |= {d.file for (p, _), ds in ls.session.tiers.items() if p == doc.path
                  for d in ds} | {str(doc.path)}
    return sum(len(ls.session.diagnostics_for(f)) for f in files)


def rendered_payload(ls: CutlensServer, doc: TemplateDoc, sample: str | None,
                     variant: str | int | None) -> dict[str, Any]:
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


def selection_payload(doc: TemplateDoc) -> dict[str, Any]:
    t: Template | None = doc.template
    if t is None:
        return {"samples": [], "variants": [], "active": {}}
    s = t.sample(doc.active_sample)
    vs = t.variants(s)
    return {"samples": [x.name for x in t.sample_list],
            "variants": [v.to_json() for v in vs],
            "active": {"sample": s.name,
                       "variant": doc.active_variant or (vs[0].name if vs else None)}}


def captured_payload(t: Template) -> dict[str, Any]:
    """The captured samples of a template (the results view groups and weights by them)."""
    mine = {s.name: {"weight": s.weight or 0.0, "op": s.info.get("op"),
                     "count": s.info.get("count"), "timeMs": s.info.get("time_ms"),
                     "modules": s.info.get("modules", [])}
            for s in t.samples if s.origin == "captured"}
    if not mine:
        return {}
    by = "time" if any(v["timeMs"] is not None for v in mine.values()) else "count"
    return {"captured": mine, "capturedWeightBy": by}
def profile_row(p: dict[str, Any] | None) -> dict[str, Any] | None:
    """A row's latest Nsight Compute profile, for the results view."""
    if p is None:
        return None
    s = p.get("summary") or {}
    return {"smPct": s.get("sm_pct"), "memoryPct": s.get("memory_pct"),
            "occupancyPct": s.get("achieved_occupancy_pct"), "registers": s.get("registers"),
            "l2HitPct": s.get("l2_hit_pct"), "dramBytes": s.get("dram_bytes"),
            "topStalls": s.get("top_stalls") or [], "report": p.get("report")}


def results_payload(ls: CutlensServer, doc: TemplateDoc) -> dict[str, Any]:
    """The latest benchmark sweep of a template, fastest first, best marked."""
    t = doc.template
    if t is None:
        return {"rows": [], "baseline": {}}
    store = ls.session.project_for(doc.path).store
    runs = store.latest(t.content_hash)
    checks = {(c["sample"], c["variant_name"]): c for c in store.checks(t.content_hash)}
    profiles = {(p["sample"], p["variant_name"]): p for p in store.profiles(t.content_hash)}
    best = best_rows(runs)  # one row per sample (cutlens.bench.best), a tie: the first
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
            "solPct": r.get("sol_pct"), "bound": r.get("bound"), "stable": r.get("stable"),
            "gpuState": r.get("gpu_state"), "finalist": r.get("finalist"),
            "best": best.get(r["sample"]) is r,
            "profile": profile_row(profiles.get((r["sample"], r["variant_name"])))})
    baseline = {k: {"ms": v.get("ms"), "tflops": v.get("tflops"), "gbps": v.get("gbps"),
                    "solPct": v.get("sol_pct"), "bound": v.get("bound")}
                for k, v in store.baselines(t.content_hash).items()}
    gpu = next((r.get("gpu") for r in runs if r.get("gpu")), None)
    return {"gpu": gpu, "rows": rows, "baseline": baseline, **captured_payload(t)}


def register(server: CutlensServer) -> None:
    """Register the commands and custom requests on ``server``."""
    ses = server.session

    def command(name: str, cls: type[_A]) -> Callable[[Callable[[CutlensServer, _A],
                                                                 Awaitable[dict[str, Any]]]], None]:
        """Register ``fn(ls, args)`` as command ``name`` with ``cls`` arguments."""
        def deco(fn: Callable[[CutlensServer, _A], Awaitable[dict[str, Any]]]) -> None:
            @server.command(name)
            async def handler(ls: CutlensServer, *args: Any) -> dict[str, Any]:
                if len(args) == 1 and isinstance(args[0], list):
                    args = tuple(args[0])  # some clients send the list as one argument
                try:
                    parsed = parse_args(cls, list(args), name)
                except BadArguments as e:
                    return {"error": str(e)}
                return await fn(ls, parsed)
        return deco

    def request(name: str, cls: type[_A]) -> Callable[[Callable[[CutlensServer, _A],
                                                                 Awaitable[dict[str, Any]]]], None]:
        def deco(fn: Callable[[CutlensServer, _A], Awaitable[dict[str, Any]]]) -> None:
            @server.feature(name)
            async def handler(ls: CutlensServer, params: Any) -> dict[str, Any]:
                try:
                    parsed = parse_args(cls, params, name)
                except BadArguments as e:
                    return {"error": str(e)}
                return await fn(ls, parsed)
        return deco

    async def in_render_thread(ls: CutlensServer, fn: Callable[..., dict[str, Any]],
                               *a: Any) -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(ls.render_pool, fn, *a)

    @command("cutlens.check", MaybeUriArgs)
    async def cmd_check(ls: CutlensServer, a: MaybeUriArgs) -> dict[str, Any]:
        docs = [await ensure_doc(ls, a.uri)] if a.uri is not None else \
            [d for d in ses.docs.values() if d.is_open]
        n = await check_docs(ls, docs)
        return {"diagnostics": n, "templates": len(docs)}

    @command("cutlens.checkWorkspace", MaybeUriArgs)
    async def cmd_check_workspace(ls: CutlensServer, a: MaybeUriArgs) -> dict[str, Any]:
        paths: list[Path] = []
        for root in ses.workspace_roots:
            proj = ses.project_for(root)
            found = await asyncio.to_thread(discover, [root], proj.config)
            paths += found.templates
        docs = [await ensure_doc(ls, path_to_uri(p)) for p in paths]
        n = await check_docs(ls, docs)
        return {"templates": len(docs), "diagnostics": n}

    @command("cutlens.showRendered", RenderedArgs)
    async def cmd_show_rendered(ls: CutlensServer, a: RenderedArgs) -> dict[str, Any]:
        doc = await ensure_doc(ls, a.uri)
        return await in_render_thread(ls, rendered_payload, ls, doc, a.sample, a.variant)

    @command("cutlens.selectSample", SelectArgs)
    async def cmd_select_sample(ls: CutlensServer, a: SelectArgs) -> dict[str, Any]:
        doc = await ensure_doc(ls, a.uri)
        if doc.template is None:
            return {"error": "not a template"}
        if a.name is None:
            return {"choices": [s.name for s in doc.template.samples]}
        try:
            doc.active_sample = doc.template.sample(str(a.name)).name
        except KeyError as e:
            return {"error": str(e.args[0])}
        doc.active_variant = None
        ls.refresh_lenses()
        return {"sample": doc.active_sample}

    @command("cutlens.selectVariant", SelectArgs)
    async def cmd_select_variant(ls: CutlensServer, a: SelectArgs) -> dict[str, Any]:
        doc = await ensure_doc(ls, a.uri)
        t = doc.template
        if t is None:
            return {"error": "not a template"}
        s = t.sample(doc.active_sample)
        if a.name is None:
            return {"choices": [v.to_json() for v in t.variants(s)]}
        try:
            doc.active_variant = t.variant(s, str(a.name)).name
        except KeyError as e:
            return {"error": str(e.args[0])}
        ls.refresh_lenses()
        return {"variant": doc.active_variant}

    @command("cutlens.benchmark", BenchmarkArgs)
    async def cmd_benchmark(ls: CutlensServer, a: BenchmarkArgs) -> dict[str, Any]:
        if not ls.session.trusted:
            return {"error": "benchmarks run workspace code (the compiled kernels, the "
                             "[bench] reference): not in an untrusted workspace. "
                             + trust.HOW_TO_TRUST}
        doc = await ensure_doc(ls, a.uri)
        return await benchmark(ls, doc, a.variant, a.sample)

    @command("cutlens.profile", ProfileArgs)
    async def cmd_profile(ls: CutlensServer, a: ProfileArgs) -> dict[str, Any]:
        """Nsight Compute on one variant (and a baseline): the summary, the report, the
        command that opens it."""
        doc = await ensure_doc(ls, a.uri)
        return await profile_mod.profile(ls, doc, a.variant, a.sample, a.baseline)

    @command("cutlens.results", UriArgs)
    async def cmd_results(ls: CutlensServer, a: UriArgs) -> dict[str, Any]:
        """The latest sweep (as ``cutlens/results``); a client shows its results view."""
        doc = await ensure_doc(ls, a.uri)
        return await asyncio.to_thread(results_payload, ls, doc)

    @command("cutlens.openLocation", LocationArgs)
    async def cmd_open_location(ls: CutlensServer, a: LocationArgs) -> dict[str, Any]:
        """Ask the client to show a file at a line (``window/showDocument``): the header an
        nvcc error came from."""
        pos = lsp.Position(max(a.line, 0), max(a.character, 0))
        try:
            res = await ls.window_show_document_async(lsp.ShowDocumentParams(
                uri=a.uri, take_focus=True, selection=lsp.Range(pos, pos)))
        except Exception as e:  # a client without window/showDocument
            return {"error": f"the client cannot show documents: {e}", "uri": a.uri,
                    "line": a.line}
        return {"shown": bool(getattr(res, "success", False)), "uri": a.uri, "line": a.line}

    @request("cutlens/rendered", RenderedArgs)
    async def req_rendered(ls: CutlensServer, a: RenderedArgs) -> dict[str, Any]:
        doc = await ensure_doc(ls, a.uri)
        return await in_render_thread(ls, rendered_payload, ls, doc, a.sample, a.variant)

    @request("cutlens/selection", UriArgs)
    async def req_selection(ls: CutlensServer, a: UriArgs) -> dict[str, Any]:
        return selection_payload(await ensure_doc(ls, a.uri))

    @request("cutlens/results", UriArgs)
    async def req_results(ls: CutlensServer, a: UriArgs) -> dict[str, Any]:
        doc = await ensure_doc(ls, a.uri)
        return await asyncio.to_thread(results_payload, ls, doc)
