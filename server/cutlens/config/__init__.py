"""The project config: ``cutlens.toml`` or ``[tool.cutlens]``, plus the editor's settings."""
