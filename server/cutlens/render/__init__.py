"""Rendering a template for one sample × variant: the sandboxed, source-marking Jinja
environment, the ``kernel``/``template`` hooks, the C expression printer and source maps."""
