"""The results store: benchmark runs and compile checks, in SQLite under ``.cutlens/``."""
