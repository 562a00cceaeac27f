"""End to end in a real VS Code: code-server (npm) in Debian's Chromium, driven by Playwright.

The test itself is ``extension/e2e/run.mjs`` (see ``extension/README.md``); this runs it against
this environment's server (``sys.executable -m cutlens lsp``) and the packaged ``.vsix``. It needs
``extension/e2e/setup.sh`` (code-server, chromium) and ``npm run build && npm run package``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
E2E_DIR = Path(os.environ.get("CUTLENS_E2E_DIR", REPO / ".e2e"))
CODE_SERVER = E2E_DIR / "node_modules/code-server/out/node/entry.js"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js"),
    pytest.mark.skipif(not CODE_SERVER.exists() or not Path("/usr/bin/chromium").exists(),
                       reason="needs code-server and chromium: run extension/e2e/setup.sh"),
    pytest.mark.nvcc,  # the C++ diagnostic
    pytest.mark.timeout(900),
]


def _vsix() -> Path:
    found = sorted(REPO.glob("cutlens-*.vsix"), key=lambda p: p.stat().st_mtime)
    if not found:
        pytest.fail("no cutlens-*.vsix: run `npm run build && npm run package` first")
    return found[-1]


def test_vscode_extension_end_to_end():
    env = {**os.environ, "CUTLENS_PYTHON": sys.executable, "CUTLENS_VSIX": str(_vsix())}
    r = subprocess.run(["node", str(REPO / "extension/e2e/run.mjs")], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=900)
    print(r.stdout[-20000:])
    tail = f"{r.stdout[-8000:]}\n{r.stderr[-4000:]}"
    assert r.returncode == 0, f"VS Code end-to-end test failed:\n{tail}"
