"""Assembling the language server: the server's state, the tiers' scheduler, every feature,
command and custom request."""

from __future__ import annotations

from cutlens.lsp import commands, features
from cutlens.lsp.server import CutlensServer
from cutlens.lsp.tiers import Tiers


def create_server(no_exec: bool = False) -> CutlensServer:
    """A server with every feature registered (``no_exec``: never trusted)."""
    server = CutlensServer(no_exec)
    server.tiers = Tiers(server)
    features.register_lifecycle(server)
    features.register_documents(server)
    features.register_views(server)
    features.register_assists(server)
    commands.register(server)
    return server
