"""Per-key debounce and cancellation of asyncio work (one pending task per key)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

log = logging.getLogger(__name__)


class Debouncer:
    """``schedule(key, delay, fn)`` runs ``fn()`` after ``delay`` seconds unless another
    call for the same key comes first; a newer call also cancels the running one."""

    def __init__(self) -> None:
        self._tasks: dict[Hashable, asyncio.Task[Any]] = {}

    def schedule(self, key: Hashable, delay: float,
                 fn: Callable[[], Awaitable[Any]]) -> asyncio.Task[Any]:
        self.cancel(key)

        async def run() -> Any:
            if delay > 0:
                await asyncio.sleep(delay)
            return await fn()

        task = asyncio.get_running_loop().create_task(run())
        self._tasks[key] = task

        def done(t: asyncio.Task[Any]) -> None:
            if self._tasks.get(key) is t:
                self._tasks.pop(key, None)
            if not t.cancelled() and t.exception() is not None:
                log.error("task %s failed", key, exc_info=t.exception())

        task.add_done_callback(done)
        return task

    def cancel(self, key: Hashable) -> bool:
        """Cancel the pending or running task of ``key``; True when there was one."""
        task = self._tasks.pop(key, None)
        if task is not None and not task.done():
            task.cancel()
            return True
        return False

    def pending(self, key: Hashable) -> asyncio.Task[Any] | None:
        return self._tasks.get(key)

    def cancel_all(self) -> None:
        for key in list(self._tasks):
            self.cancel(key)
