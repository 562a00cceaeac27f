"""``cutlens watch``: re-checks on every change and prints only what changed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

TEMPLATE = "{#- cutlens\n[variants]\nv = [1]\n-#}\nint a = {{ v }};\n"


def read_until(proc: subprocess.Popen, needle: str, timeout: float = 60) -> str:
    out = ""
    deadline = time.monotonic() + timeout
    while needle not in out:
        assert time.monotonic() < deadline, f"timed out waiting for {needle!r}:\n{out}"
        line = proc.stdout.readline()  # type: ignore[union-attr]
        out += line
    return out


def test_watch_prints_new_and_fixed_problems(tmp_path: Path):
    t = tmp_path / "w.cu.jinja"
    t.write_text(TEMPLATE)
    proc = subprocess.Popen([sys.executable, "-u", "-m", "cutlens", "watch", "--no-nvcc",
                             str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        first = read_until(proc, "watching for changes")
        assert "0 error(s)" in first and "+ " not in first
        t.write_text(TEMPLATE.replace("{{ v }}", "{{ w }}"))
        out = read_until(proc, "watching for changes")
        assert "+ w.cu.jinja:5:12: error: 'w' is undefined" in out
        t.write_text(TEMPLATE)
        out = read_until(proc, "watching for changes")
        assert "- fixed: w.cu.jinja:5:12: error: 'w' is undefined" in out
    finally:
        proc.terminate()
        proc.wait(10)
