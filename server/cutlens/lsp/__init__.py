"""The cutlens language server: a thin LSP layer over the core (render, check, bench)."""
