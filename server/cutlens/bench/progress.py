"""Rich progress display for a sweep: ``benchmark 3/8 · best 0.1234 ms (128x128x64)``.

    with SweepProgress(total=len(variants) + len(samples)) as progress:
        async for result in runner.sweep(requests):
            progress.update(result)
            store.add(...)

``total`` may grow while builds are still being discovered (:meth:`SweepProgress.add_total`).
Torch-free; rich is imported when the display starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cutlens.bench.best import is_ok
from cutlens.bench.report import fmt_ms, is_baseline


class SweepProgress:
    """A transient rich progress bar that names the best result so far."""

    def __init__(self, total: int | None = None, console: Any = None,
                 description: str = "benchmark") -> None:
        self.total = total
        self.console = console
        self.description = description
        self.done = 0
        self.failed = 0
        self.best: Mapping[str, Any] | None = None
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> SweepProgress:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        # markup=False: variant names are text ("[128, 256]" is not a style tag)
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}",
                                                              markup=False),
                                  BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                  TextColumn("{task.fields[note]}", markup=False),
                                  console=self.console,
                                  transient=True)
        self._progress.__enter__()
        self._task = self._progress.add_task(self.description, total=self.total, note="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None

    def add_total(self, n: int = 1) -> None:
        """More requests were queued (builds arrive while the sweep runs)."""
        self.total = (self.total or 0) + n
        if self._progress is not None:
            self._progress.update(self._task, total=self.total)

    def note(self) -> str:
        parts = []
        if self.best is not None:
            parts.append(f"best {fmt_ms(self.best.get('ms'))} ms "
                         f"({self.best.get('variant_name') or '?'})")
        if self.failed:
            parts.append(f"{self.failed} ✗")
        return " · ".join(parts)

    def update(self, result: Mapping[str, Any]) -> None:
        """Count one finished result."""
        self.done += 1
        if not is_baseline(result):
            if is_ok(result):
                if self.best is None or result["ms"] < self.best["ms"]:
                    self.best = result
            else:
                self.failed += 1
        if self._progress is not None:
            self._progress.update(self._task, advance=1, note=self.note())
