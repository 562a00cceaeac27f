"""``python -m cutlens``: the CLI (``python -m cutlens lsp`` starts the language server)."""

from cutlens.cli.main import main

raise SystemExit(main())
