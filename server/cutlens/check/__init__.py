"""Checking templates: the Jinja tier, the nvcc tier, and the one orchestration that the CLI,
the language server, the headless server and bench all call; diagnostics' output formats."""
