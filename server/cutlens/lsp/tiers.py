"""Scheduling the two diagnostic tiers for the editor: when they run (debounced, on change,
on save), on which thread (renders on the render thread, nvcc in the compile pool), what a
newer edit cancels, and what gets published. The tiers themselves are the core's
(:mod:`cutlens.check`)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from cutlens.check.jinja_tier import JinjaCheck, jinja_check
from cutlens.check.nvcc_tier import NvccCheck, UnitCompile, compile_all, modes_for
from cutlens.lsp import progress
from cutlens.lsp.server import CutlensServer
from cutlens.lsp.session import Project, TemplateDoc
from cutlens.lsp.validity import TIER as VALIDITY
from cutlens.lsp.validity import publish_validity
from cutlens.template.discovery import dependencies, parents
from cutlens.template.model import Template

log = logging.getLogger(__name__)

NVCC_CHANGE_DEBOUNCE_S = 0.8
CONFIG_NAMES = ("cutlens.toml", "pyproject.toml")


class Tiers:
    """The tiers of every tracked template of one server."""

    def __init__(self, server: CutlensServer) -> None:
        self.ls = server
        self.session = server.session

    # -- the Jinja tier ----------------------------------------------------------------------
    async def jinja(self, doc: TemplateDoc) -> JinjaCheck | None:
        """Render every sample × variant of ``doc`` and publish the Jinja diagnostics.
        A partial (no settings, included by others) is checked through its parents."""
        version = doc.version
        loop = asyncio.get_running_loop()
        proj = self.session.project_for(doc.path)  # created on the event loop's thread
        files = self.config_problems(proj)
        if doc.path.name in CONFIG_NAMES:  # a config file: its problems are its diagnostics
            self.ls.publish(files | {str(doc.path)})
            return None
        t = await loop.run_in_executor(self.ls.render_pool, self.session.load_template, doc)
        if t is None or doc.version != version:
            return None
        if t.unused_python:  # not ours to check
            doc.jinja, doc.jinja_version = None, version
            if any(self.session.tiers.get((doc.path, tier)) for tier in ("jinja", "nvcc")):
                files |= self.session.set_tier(doc.path, "jinja", [])  # it hosted some
                files |= self.session.set_tier(doc.path, "nvcc", [])
            self.ls.publish(files)
            return None
        parents: list[Template] = []
        if not t.has_settings and t.engine == "jinja":
            parents = await loop.run_in_executor(self.ls.render_pool, self.find_parents,
                                                 doc.path)
            doc.is_partial = bool(parents)
        jc = None
        if doc.checkable:
            jc = await loop.run_in_executor(self.ls.render_pool, jinja_check, t,
                                            proj.renderer)
        if doc.version != version:
            return None  # a newer edit is on its way
        doc.jinja, doc.jinja_version = jc, version
        files |= self.session.set_tier(doc.path, "jinja", jc.diagnostics if jc else [])
        for pt in parents:
            files |= await self.check_parent(pt)
        self.ls.publish(files)
        return jc

    def config_problems(self, proj: Project, publish: bool = False) -> set[str]:
        """The project config's problems, as diagnostics on its file (once per project),
        and the editor settings' as a message; the files to publish."""
        cfg = proj.config
        if proj.settings_problems and not proj.settings_shown:
            proj.settings_shown = True
            self.ls.show_settings_problems(proj.settings_problems)
        if cfg.file is None or (cfg.file, "config") in self.session.tiers:
            return set()
        files = self.session.set_tier(cfg.file, "config", list(cfg.problems))
        files = files if cfg.problems else set()
        if publish:
            self.ls.publish(files)
        return files

    def find_parents(self, path: Path) -> list[Template]:
        """Templates of the project (tracked, or found on disk) whose renders include
        ``path``. Pure: runs on the render thread."""
        tracked = [d.template for d in list(self.session.docs.values())
                   if d.template is not None and d.template.has_settings and path in d.deps]
        if tracked:
            return tracked
        proj = self.session.project_for(path)
        return parents(path, proj.config, self.session.text_of, self.session.overlays)

    async def check_parent(self, template: Template) -> set[str]:
        """Render a (closed) parent of an open partial; its diagnostics land on both."""
        parent = self.session.doc(template.path)
        if parent.is_open:
            return set()  # its own tiers run on its own events
        parent.template = template
        parent.deps = set(dependencies(template))
        proj = self.session.project_for(template.path)
        jc = await asyncio.get_running_loop().run_in_executor(
            self.ls.render_pool, jinja_check, template, proj.renderer)
        parent.jinja, parent.jinja_version = jc, parent.version
        return self.session.set_tier(template.path, "jinja", jc.diagnostics)

    # -- the nvcc tier -----------------------------------------------------------------------
    async def nvcc(self, doc: TemplateDoc) -> NvccCheck | None:
        """Compile every rendered unit (quick and full passes in parallel), publishing each
        pass as it lands; cancelled by a newer edit. Never in an untrusted workspace."""
        if not self.session.trusted:
            self.ls.publish(self.session.set_tier(doc.path, "nvcc", []) |
                            self.session.set_tier(doc.path, VALIDITY, []))
            return None
        if doc.jinja is None or doc.jinja_version != doc.version:
            pending = self.ls.debouncer.pending(("jinja", doc.path))
            if pending is not None and not pending.done():
                # the scheduled Jinja tier renders this version: wait for it, don't render twice
                await asyncio.wait({pending})  # our own cancellation still propagates
            if doc.jinja is None or doc.jinja_version != doc.version:
                await self.jinja(doc)
        jc = doc.jinja
        if jc is None or not jc.units:
            if jc is not None:
                self.ls.publish(self.session.set_tier(doc.path, "nvcc", []))
            return None
        version = doc.version
        proj = self.session.project_for(doc.path)
        nc = NvccCheck.of(jc)
        total, done = len(nc.units), 0
        modes = modes_for("full")
        bar = await progress.start(self.ls, f"nvcc 0/{total} variants")
        self.ls.compiling += 1
        self.ls.status()

        def publish_current() -> None:
            self.ls.publish(self.session.set_tier(doc.path, "nvcc", nc.nvcc_diagnostics()))

        def on_event(ev: tuple[str, UnitCompile]) -> None:
            nonlocal done
            if doc.version != version:
                return
            kind, uc = ev
            if kind == "full" or (uc.full is None and len(modes) == 1):
                done += 1
                bar.report(f"nvcc {done}/{total} variants", done, total)
            publish_current()

        validity = asyncio.ensure_future(publish_validity(self.ls, doc, jc, proj, version))
        try:
            await compile_all(nc, proj.compiler, "full", on_event)
            await validity
        finally:
            validity.cancel()
            self.ls.compiling -= 1
            bar.end("nvcc done")
            self.ls.status()
        if doc.version != version:
            return None
        doc.nvcc = nc
        publish_current()
        await asyncio.to_thread(self.store_checks, proj, nc)
        self.ls.refresh_lenses()
        return nc

    @staticmethod
    def store_checks(proj: Project, nc: NvccCheck) -> None:
        """Keep each unit's compile outcome (errors, registers, smem, spills) for the
        lenses."""
        t = nc.jinja.template
        for uc in nc.units:
            res = uc.final()
            if res is None:
                continue
            main = max(res.resources, key=lambda r: r.registers, default=None)
            errors = sum(1 for m in res.messages if m.severity == "error")
            warnings = sum(1 for m in res.messages if m.severity == "warning")
            try:
                proj.store.set_check(
                    t.content_hash, uc.unit.sample.name, uc.unit.variant.name, errors=errors,
                    warnings=warnings, regs=main.registers if main else None,
                    smem=main.smem_bytes if main else None,
                    spills=(main.spill_stores + main.spill_loads) if main else None,
                    template=str(t.path), variant=uc.unit.variant.values)
            except Exception:
                log.exception("storing check results")

    # -- scheduling --------------------------------------------------------------------------
    def schedule_nvcc(self, doc: TemplateDoc, delay: float = 0.0) -> None:
        doc.nvcc_task = self.ls.debouncer.schedule(("nvcc", doc.path), delay,
                                                   lambda: self.nvcc(doc))

    def schedule_jinja(self, doc: TemplateDoc, delay: float | None = None) -> None:
        delay = self.session.settings.jinja_debounce_s if delay is None else delay
        self.ls.debouncer.schedule(("jinja", doc.path), delay, lambda: self.jinja(doc))

    def recheck_open(self, nvcc_delay: float = 0.2) -> None:
        """Settings or the project config changed: both tiers again for every open template."""
        for doc in self.session.docs.values():
            if doc.is_open:
                self.schedule_jinja(doc, 0)
                if self.session.check_on(doc.path) != "off":
                    self.schedule_nvcc(doc, nvcc_delay)

    def on_file_changed(self, path: Path) -> None:
        """A file changed on disk (watcher) or in the editor: re-check what depends on it."""
        for dep in self.session.dependents(path):
            if dep.path == path:
                continue
            if dep.is_open or dep.jinja is not None:
                self.schedule_jinja(dep, 0.05)
                if dep.is_open and self.session.check_on(dep.path) != "off":
                    self.schedule_nvcc(dep, NVCC_CHANGE_DEBOUNCE_S)
