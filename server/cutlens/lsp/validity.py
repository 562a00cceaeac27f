"""The editor's invalid-variant warnings: the core's validity pass
(:func:`cutlens.check.grid_validity.grid_warnings`) over a document's rendered units, off
the event loop, published as its own tier ("14 of 96 variants cannot compile: ..." on the
grid's line, each failure on the line of its key). A newer edit drops a stale answer."""

from __future__ import annotations

import asyncio
import logging

from cutlens.check.grid_validity import grid_warnings
from cutlens.check.jinja_tier import JinjaCheck
from cutlens.lsp.server import CutlensServer
from cutlens.lsp.session import Project, TemplateDoc

log = logging.getLogger("cutlens.lsp")

TIER = "validity"


async def publish_validity(ls: CutlensServer, doc: TemplateDoc, jc: JinjaCheck,
                           proj: Project, version: int | None) -> None:
    """Judge ``jc``'s units (cached by content: an unchanged grid costs nothing) and
    publish the warnings, unless the document changed meanwhile."""
    t = jc.template
    try:
        diags, _ = await asyncio.to_thread(grid_warnings, t, jc.pairs, jc.units,
                                           proj.compiler.cache.root, proj.compiler.jobs)
    except Exception:  # never the server: the nvcc tier still reports the errors
        log.exception("validity pass of %s", t.path)
        return
    if doc.version != version:
        return
    ls.publish(ls.session.set_tier(doc.path, TIER, diags))
