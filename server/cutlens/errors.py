"""Errors every stage may raise for the command line and the server to report as such."""

from __future__ import annotations


class UsageError(Exception):
    """The user asked for something that cannot be done as asked (bad arguments, options
    that do not go together, a missing tool): the CLI prints the message alone and exits 2;
    every other exception is a cutlens bug (exit 2 too, with a log of the traceback)."""
