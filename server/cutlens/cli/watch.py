"""``cutlens watch PATH...``: re-check on every change (watchdog), printing only what changed:
``+`` a new problem, ``-`` a fixed one."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from cutlens import config as config_mod
from cutlens.check import formats
from cutlens.check.run import check_paths
from cutlens.config.schema import IGNORED_DIRS
from cutlens.diagnostics import Diagnostic
from cutlens.render.renderer import Renderer
from cutlens.template.selection import Selection


class _Changed(FileSystemEventHandler):
    def __init__(self) -> None:
        self.event = threading.Event()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write"):
            return
        if not IGNORED_DIRS.intersection(Path(str(event.src_path)).parts):
            self.event.set()


def _key(d: Diagnostic) -> tuple[Any, ...]:
    return (*d.key(), tuple(d.samples), tuple(d.variants))


def diff(old: dict[tuple[Any, ...], Diagnostic], new: list[Diagnostic]) -> tuple[list[Diagnostic],
                                                                        list[Diagnostic]]:
    """(appeared, fixed) between two checks."""
    keys = {_key(d): d for d in new}
    return ([d for k, d in keys.items() if k not in old],
            [d for k, d in old.items() if k not in keys])


def run_watch(paths: list[Path], nvcc: bool = True, settle_s: float = 0.2,
              out: TextIO | None = None, selection: Selection | None = None,
              color: bool = False) -> int:
    """Check, then re-check whenever a file under the paths' projects changes."""
    stream = out or sys.stdout
    base = Path.cwd()
    renderer = Renderer()
    handler = _Changed()
    observer = Observer()
    watched: set[Path] = set()
    for p in paths:
        cfg = config_mod.load(config_mod.find_root(p))
        for folder in {cfg.root, *map(Path, cfg.include_dirs)}:
            if folder.is_dir() and folder not in watched:
                observer.schedule(handler, str(folder), recursive=True)
                watched.add(folder)
    observer.daemon = True
    observer.start()
    seen: dict[tuple[Any, ...], Diagnostic] = {}
    first = True
    try:
        while True:
            report = check_paths(paths, selection or Selection(), nvcc=nvcc, renderer=renderer)
            shown, untrusted = formats.untrusted_once(report.diagnostics)
            new, fixed = diff(seen, shown)
            seen = {_key(d): d for d in shown}
            stamp = time.strftime("%H:%M:%S")
            for d in new:
                stream.write("+ " + formats.text([d], base, color))
            for d in fixed:
                stream.write("- fixed: " + formats.text([d], base, color))
            if untrusted and first:
                stream.write(f"{formats.UNTRUSTED_ADVICE}\n")
            first = False
            s = formats.summary(report.diagnostics, len(report.templates))
            stream.write(f"[{stamp}] {s['templates']} template(s), {s['errors']} error(s), "
                         f"{s['warnings']} warning(s); watching for changes\n")
            stream.flush()
            handler.event.wait()
            time.sleep(settle_s)  # let an editor finish writing
            handler.event.clear()
    except KeyboardInterrupt:
        return 0
    finally:
        observer.stop()
