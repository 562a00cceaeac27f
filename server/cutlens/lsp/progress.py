"""Work-done progress (``window/workDoneProgress``) for one long task: "nvcc 3/8 variants",
"benchmark 2/8". A client that does not support it gets nothing, and never an error."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import suppress

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer


class Progress:
    """One progress report: :meth:`start`, :meth:`report` any number of times, :meth:`end`."""

    def __init__(self, server: LanguageServer) -> None:
        self.server = server
        self.token: str | None = None

    async def start(self, message: str) -> Progress:
        caps = self.server.client_capabilities.window
        if not (caps and caps.work_done_progress):
            return self
        token = f"cutlens-{uuid.uuid4().hex[:8]}"
        try:
            await asyncio.wait_for(self.server.work_done_progress.create_async(token), 5)
        except Exception:
            return self
        self.token = token
        self.server.work_done_progress.begin(token, lsp.WorkDoneProgressBegin(
            title="cutlens", message=message, percentage=0, cancellable=False))
        return self

    def report(self, message: str, done: int, total: int) -> None:
        if self.token is not None:
            with suppress(Exception):
                self.server.work_done_progress.report(self.token, lsp.WorkDoneProgressReport(
                    message=message, percentage=int(100 * done / max(total, 1))))

    def end(self, message: str) -> None:
        if self.token is not None:
            with suppress(Exception):
                self.server.work_done_progress.end(self.token,
                                                   lsp.WorkDoneProgressEnd(message=message))
            self.token = None


async def start(server: LanguageServer, message: str) -> Progress:
    """A started progress report."""
    return await Progress(server).start(message)
