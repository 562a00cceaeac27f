"""Starting the server: stdio (stdin read by the event loop itself) or TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

from cutlens.lsp.app import create_server
from cutlens.lsp.server import CutlensServer

log = logging.getLogger(__name__)

#: The only address ``--tcp`` listens on.
LOOPBACK = "127.0.0.1"


def start(tcp: bool = False, port: int = 2087, log_file: Path | None = None,
          no_exec: bool = False) -> None:
    """Run the server on stdio (default) or TCP on 127.0.0.1 (loopback only: there is no
    option to listen elsewhere)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=logging.INFO, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pygls").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="watchdog")
    server = create_server(no_exec)
    if tcp:
        server.start_tcp(LOOPBACK, port)
    else:
        start_stdio(server)


class _PipeReader:
    """stdin read by the event loop itself (pygls's reader hands every line to a thread:
    four round trips per message, which under a flood of edits on a busy machine leave
    requests queued behind the edits). EOF reads as ``b""``, as pygls expects."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream = stream

    async def readline(self) -> bytes:
        return await self.stream.readline()

    async def readexactly(self, n: int) -> bytes:
        try:
            return await self.stream.readexactly(n)
        except asyncio.IncompleteReadError:
            return b""


def start_stdio(server: CutlensServer) -> None:
    """pygls's stdio loop, reading stdin without threads where it is a pipe or socket (a
    file or terminal falls back to pygls's reader)."""
    from pygls.io_ import StdinAsyncReader, StdoutWriter, run_async

    stop = threading.Event()
    server._stop_event = stop
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stream = asyncio.StreamReader(limit=1 << 20)
        reader: Any
        try:
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream),
                                         sys.stdin.buffer)
            reader = _PipeReader(stream)
        except (ValueError, OSError):  # not a pipe or socket
            reader = StdinAsyncReader(sys.stdin.buffer, server.thread_pool)
        await run_async(stop_event=stop, reader=reader, protocol=server.protocol, logger=log,
                        error_handler=server.report_server_error)

    try:
        asyncio.run(main())
    except BrokenPipeError:
        log.error("connection to the client lost; shutting down")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()  # type: ignore[no-untyped-call]
