"""Templates that live in Python: render drivers (functions that yield cases, each a
rendered translation unit), run in a worker process with jinja2 instrumented so that every
line of a case maps back to the ``.py`` line of the template text that produced it."""

from cutlens.pyhost.case import Case

__all__ = ["Case"]
