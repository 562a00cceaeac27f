"""File watching (watchdog): project config, included templates, generator modules and the
project's include dirs; a change re-checks the open templates that depend on it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from cutlens.config.schema import IGNORED_DIRS
from cutlens.lsp.server import CutlensServer
from cutlens.lsp.tiers import CONFIG_NAMES

log = logging.getLogger(__name__)

HEADER_SUFFIXES = {".h", ".hpp", ".cuh", ".hxx", ".inl", ".inc"}


class _Handler(FileSystemEventHandler):
    def __init__(self, callback) -> None:  # type: ignore[no-untyped-def]
        self.callback = callback

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write"):
            return
        for p in (event.src_path, getattr(event, "dest_path", "")):
            if p:
                path = Path(str(p))
                if not IGNORED_DIRS.intersection(path.parts):
                    self.callback(path)


class Watcher:
    """Watches project roots and include dirs; forwards changes to the event loop."""

    def __init__(self, server: CutlensServer, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop
        self.observer = Observer()
        self.watched: set[Path] = set()
        self._pending: set[Path] = set()
        self._handle: asyncio.TimerHandle | None = None

    def watch(self, directory: Path, recursive: bool = True) -> None:
        directory = directory.resolve()
        if directory in self.watched or not directory.is_dir():
            return
        if any(directory.is_relative_to(w) for w in self.watched if recursive):
            return
        self.observer.schedule(_Handler(self._from_thread), str(directory), recursive=recursive)
        self.watched.add(directory)

    def _from_thread(self, path: Path) -> None:
        self.loop.call_soon_threadsafe(self._queue, path)

    def _queue(self, path: Path) -> None:
        self._pending.add(path.resolve())
        if self._handle is None:
            self._handle = self.loop.call_later(0.1, self._flush)

    def _flush(self) -> None:
        self._handle = None
        paths, self._pending = self._pending, set()
        for p in sorted(paths):
            try:
                self.changed(p)
            except Exception:
                log.exception("handling a change of %s", p)

    def changed(self, path: Path) -> None:
        """React to one changed file."""
        ses = self.server.session
        ls = self.server
        if path.name in CONFIG_NAMES and any(path.parent == r for r in ses.projects):
            log.info("project config changed: %s", path)
            self.loop.create_task(ls.reload())
            return
        if str(path) in ses.overlays:
            return  # open in the editor: its own LSP events drive it
        ls.tiers.on_file_changed(path)
        if path.suffix in HEADER_SUFFIXES and self._in_include_dirs(path):
            for doc in ses.docs.values():
                if doc.is_open and ls.session.check_on(doc.path) != "off":
                    ls.tiers.schedule_nvcc(doc, 0.5)

    def _in_include_dirs(self, path: Path) -> bool:
        for proj in self.server.session.projects.values():
            for d in proj.config.include_dirs:
                if path.is_relative_to(Path(d)):
                    return True
        return False

    def refresh(self) -> None:
        """Watch every project root and include dir known now."""
        for root in self.server.session.workspace_roots:
            self.watch(root)
        for proj in list(self.server.session.projects.values()):
            self.watch(proj.root)
            for d in proj.config.include_dirs:
                self.watch(Path(d))

    def stop(self) -> None:
        self.observer.stop()


def start_watcher(server: CutlensServer, loop: asyncio.AbstractEventLoop) -> Watcher:
    w = Watcher(server, loop)
    w.refresh()
    w.observer.daemon = True
    w.observer.start()
    return w
