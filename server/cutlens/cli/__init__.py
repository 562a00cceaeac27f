"""The ``cutlens`` command line: a thin layer over the core, one module per command."""

from cutlens.cli.main import main

__all__ = ["main"]
