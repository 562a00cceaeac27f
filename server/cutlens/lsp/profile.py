"""Nsight Compute in the editor: the ``cutlens.profile`` command (one variant, optionally
against a baseline variant, in the project's compile pool, off the event loop), a "Profile"
lens on each variant line (the figures of its latest profile once there is one), and the
latest profile in the hover of a variant's line."""

from __future__ import annotations

import asyncio
from typing import Any

from lsprotocol import types as lsp

from cutlens import trust
from cutlens.bench.ncu import ProfileError
from cutlens.bench.profile import VariantFailed, compare, locate_ncu, profile_variant
from cutlens.bench.profile_text import hover_markdown
from cutlens.lsp import progress
from cutlens.lsp.lenses import active_sample, variant_lines
from cutlens.lsp.server import CutlensServer
from cutlens.lsp.session import TemplateDoc
from cutlens.results.store import ResultStore
from cutlens.template.model import Template

#: One profile at a time per server: ncu replays kernels and holds the GPU's counters.
_LOCK = asyncio.Lock()


async def profile(ls: CutlensServer, doc: TemplateDoc, variant: Any = None,
                  sample: str | None = None, baseline: Any = None,
                  timeout_s: float = 300.0) -> dict[str, Any]:
    """Profile one variant (default: the active one) of a sample (default: the active one);
    with ``baseline``, that variant too and the differences."""
    if not ls.session.trusted:
        return {"error": "a profile runs workspace code (nvcc, the compiled kernel): not in "
                         "an untrusted workspace. " + trust.HOW_TO_TRUST}
    t = doc.template
    if t is None or not t.has_settings:
        return {"error": "not a template with samples/variants"}
    proj = ls.session.project_for(doc.path)
    try:
        s = t.sample(sample or doc.active_sample)
        v = t.variant(s, variant if variant is not None else doc.active_variant)
        b = t.variant(s, baseline) if baseline is not None else None
        ncu_path = await asyncio.to_thread(locate_ncu, t)
    except KeyError as e:
        return {"error": str(e.args[0]) if e.args else str(e)}
    except ProfileError as e:
        return {"error": str(e)}
    bar = await progress.start(ls, f"profile: {v.name}")
    try:
        async with _LOCK:
            p = await profile_variant(t, s.name, v.name, proj.compiler, timeout_s=timeout_s,
                                      store=proj.store, ncu_path=ncu_path)
            out: dict[str, Any] = {"profile": p.to_json(), "open": p.open_command}
            if b is not None:
                bar.report(f"profile: {b.name} (baseline)", 1, 2)
                q = await profile_variant(t, s.name, b.name, proj.compiler,
                                          timeout_s=timeout_s, store=proj.store,
                                          ncu_path=ncu_path)
                out["baseline"] = q.to_json()
                out["comparison"] = cmp = compare(p, q)
                out["open"] = cmp["open"]
    except (ProfileError, VariantFailed) as e:
        return {"error": str(e)}
    finally:
        bar.end("profile done")
    ls.refresh_lenses()
    return out


def list_lenses(uri: str, t: Template, sample_name: str | None) -> list[lsp.CodeLens]:
    """A "Profile" lens on each line of one variant (a ``[[variant]]`` table; unresolved:
    no results read). A grid's line keeps its one summary lens: its variants are profiled
    from the results view, or as the active variant."""
    sample = active_sample(t, sample_name)
    out = []
    for vl in variant_lines(t, sample):
        if vl.shared:
            continue
        pos = lsp.Position(max(vl.line0, 0), 0)
        out.append(lsp.CodeLens(range=lsp.Range(pos, pos), data={
            "uri": uri, "sample": sample.name, "kind": "profile",
            "names": [v.name for v in vl.variants]}))
    return out


def _target(names: list[str], runs: list[dict[str, Any]], sample: str,
            active: str | None) -> str:
    """Which variant a line's lens profiles: its own; on a shared line the active variant,
    else the fastest benchmarked one, else the first."""
    if len(names) == 1:
        return names[0]
    if active in names:
        return active
    ran = [r for r in runs if r.get("sample") == sample and r.get("variant_name") in names
           and r.get("ms") is not None and not r.get("error")]
    return min(ran, key=lambda r: r["ms"])["variant_name"] if ran else names[0]


def resolve_lens(lens: lsp.CodeLens, t: Template, runs: list[dict[str, Any]], store: ResultStore,
                 active: str | None) -> lsp.CodeLens:
    """``⏱ Profile <variant>`` or, once profiled, ``ncu: SM 81 % · mem 39 % · occ 19 %``."""
    data: dict[str, Any] = lens.data if isinstance(lens.data, dict) else {}
    sample = str(data.get("sample"))
    names = [str(n) for n in data.get("names") or []]
    name = _target(names, runs, sample, active)
    row = store.profile(t.content_hash, sample, name) if names else None
    who = f" {name}" if len(names) > 1 else ""
    if row is not None:
        s = row.get("summary") or {}
        title = (f"ncu{who}: SM {s.get('sm_pct') or 0:.0f} % · mem "
                 f"{s.get('memory_pct') or 0:.0f} % · occupancy "
                 f"{s.get('achieved_occupancy_pct') or 0:.0f} % (profile again)")
    else:
        title = f"⏱ Profile{who}"
    cmd = lsp.Command(title=title, command="cutlens.profile",
                      arguments=[data.get("uri"), name, sample])
    return lsp.CodeLens(range=lens.range, command=cmd, data=lens.data)


def hover_text(t: Template, store: ResultStore, sample_name: str | None, line0: int,
               active: str | None) -> str | None:
    """The latest profile of the variant whose line ``line0`` is (the active variant of a
    shared line), as Markdown; None when there is none."""
    sample = active_sample(t, sample_name)
    for vl in variant_lines(t, sample):
        if vl.line0 != line0:
            continue
        names = [v.name for v in vl.variants]
        name = names[0] if len(names) == 1 else active if active in names else None
        row = store.profile(t.content_hash, sample.name, name) if name else None
        if row is not None:
            return f"**{name}**: " + hover_markdown(row)
    return None
