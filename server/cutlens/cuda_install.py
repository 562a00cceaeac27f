"""Finding the CUDA install: nvcc (the project's ``nvcc``, ``$CUDACXX``, ``$CUDA_HOME`` or
``$CUDA_PATH``, ``PATH``, ``/usr/local/cuda``), its version, its folder and the tools beside
it. The one home of this rule: the nvcc stage, the editor's include links and the Inductor
bridge all ask here."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

#: The usual install, looked at last.
DEFAULT_HOME = Path("/usr/local/cuda")


class NvccNotFound(FileNotFoundError):
    """No usable nvcc; the message lists every place that was looked at."""


def _executable(path: str | os.PathLike[str] | None) -> str | None:
    if not path:
        return None
    p = os.fspath(path)
    if os.sep not in p:  # a bare name: look it up on PATH
        return shutil.which(p)
    return p if os.path.isfile(p) and os.access(p, os.X_OK) else None


def find_nvcc(configured: str | None = None) -> str:
    """Locate nvcc: ``configured`` (project config), ``$CUDACXX``, ``$CUDA_HOME/bin/nvcc``
    (also ``$CUDA_PATH``), ``PATH``, then ``/usr/local/cuda/bin/nvcc``.

    A configured value that does not name an executable is an error, not a fallthrough:
    the user asked for that compiler.
    """
    if configured:
        found = _executable(os.path.expanduser(configured))
        if found:
            return os.path.abspath(found)
        raise NvccNotFound(f"configured nvcc {configured!r} is not an executable file (the "
                           "`nvcc` key of cutlens.toml / [tool.cutlens], or the editor's "
                           "cutlens.nvcc setting)")
    tried: list[str] = []
    candidates: list[tuple[str, str | None]] = [("$CUDACXX", os.environ.get("CUDACXX"))]
    for var in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(var)
        candidates.append((f"${var}/bin/nvcc", os.path.join(home, "bin", "nvcc") if home else None))
    candidates.append(("PATH", "nvcc"))
    candidates.append(("default", str(DEFAULT_HOME / "bin" / "nvcc")))
    for label, cand in candidates:
        if not cand:
            tried.append(f"{label} (unset)")
            continue
        found = _executable(cand)
        if found:
            return os.path.abspath(found)
        tried.append(f"{label} ({cand})")
    raise NvccNotFound(
        "nvcc not found; set `nvcc` in cutlens.toml / [tool.cutlens], or $CUDACXX, or "
        "$CUDA_HOME. Tried: " + ", ".join(tried)
    )


def cuda_home(configured: str | None = None) -> Path | None:
    """The CUDA install of the nvcc :func:`find_nvcc` finds (its real ``bin/``'s parent);
    None without one."""
    try:
        return Path(find_nvcc(configured)).resolve().parent.parent
    except NvccNotFound:
        return None


def cuda_homes(configured: str | None = None) -> list[Path]:
    """Every CUDA install worth searching for headers, most likely first: nvcc's, then
    ``$CUDA_HOME``, ``$CUDA_PATH`` and ``/usr/local/cuda`` (nvcc may be a wrapper script
    outside its install)."""
    out: dict[Path, None] = {}
    home = cuda_home(configured)
    if home is not None:
        out[home] = None
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            out[Path(os.environ[var])] = None
    out[DEFAULT_HOME] = None
    return list(out)


def _stat_key(path: str) -> tuple[str, int, int]:
    real = os.path.realpath(path)
    st = os.stat(real)
    return real, st.st_mtime_ns, st.st_size


@functools.lru_cache(maxsize=16)
def _version_text(real: str, _mtime_ns: int, _size: int) -> str:
    try:
        out = subprocess.run([real, "--version"], capture_output=True, text=True, timeout=60,
                             check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        raise NvccNotFound(f"{real} does not run: {e}") from None
    if out.returncode != 0:
        raise NvccNotFound(f"{real} --version failed: {(out.stderr or out.stdout).strip()}")
    return out.stdout.strip()


def nvcc_version_text(nvcc: str) -> str:
    """The full ``nvcc --version`` text (cached per binary; part of the cache key)."""
    return _version_text(*_stat_key(nvcc))


def nvcc_version(nvcc: str) -> str:
    """nvcc's version, e.g. ``"13.0.88"`` (cached per binary path, mtime and size)."""
    text = nvcc_version_text(nvcc)
    m = re.search(r"\bV(\d+\.\d+\.\d+)", text) or re.search(r"release (\d+\.\d+)", text)
    return m.group(1) if m else text.splitlines()[-1]


def cuda_release(nvcc: str) -> str:
    """The CUDA release of :func:`nvcc_version`, ``"13.0"`` (what Inductor's config takes)."""
    return ".".join(nvcc_version(nvcc).split(".")[:2])


def tool_near_nvcc(nvcc: str, name: str) -> str | None:
    """A CUDA tool (``cu++filt``, ``ptxas``...) beside nvcc's real location, or on PATH."""
    for d in {os.path.dirname(os.path.realpath(nvcc)), os.path.dirname(os.path.abspath(nvcc))}:
        cand = os.path.join(d, name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return shutil.which(name)
