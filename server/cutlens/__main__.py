"""``python -m cutlens``: the CLI (``python -m cutlens lsp`` starts the language server)."""

from .cli import main

raise SystemExit(main())
