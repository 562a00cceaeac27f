"""Finding nvcc, the flags of each compile mode, and running nvcc as a process group.

Modes (flags chosen by measurement: ``benchmarks/nvcc_modes.py``, ``docs/bench/nvcc_modes.json``):

* ``QUICK`` — ``-ptx -fdevice-syntax-only``: gcc's preprocessor, then cicc's EDG front end,
  which parses the whole TU and instantiates every template (device and host), and stops
  before code generation. About half the CPU time of ``-c`` on a CUTLASS 3.x GEMM. Misses
  what cudafe++ (host front end: host code calling ``__device__`` functions), cicc's back end
  (kernels calling host functions), ptxas and gcc find. Run it beside FULL: FULL's cudafe++
  reports host-side errors (class-template ``static_assert``s included) before QUICK's cicc
  finishes, and QUICK reports function-template errors long before FULL reaches cicc.
* ``FULL`` — ``-c -O3`` to an object with ``-Xptxas -v -Xptxas -warn-spills``: every
  diagnostic (cudafe++, cicc, ptxas, gcc) plus per-kernel resource usage. Host ``-O3`` costs
  little over ``-O0`` and makes the object the one BUILD needs.
* ``BUILD`` — the shared library: :func:`link_command` links FULL's object (``-shared``, about
  a second) so a check followed by a benchmark compiles once; ``command(Mode.BUILD, ...)``
  gives the one-step ``-shared -O3`` equivalent from source.

One architecture is compiled with ``-gencode arch=compute_XX,code=sm_XX`` (``-arch=sm_XX``
would run cicc twice: for the virtual and the real architecture).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cutlens.cuda_install import (
    NvccNotFound,
    find_nvcc,
    nvcc_version,
    nvcc_version_text,
    tool_near_nvcc,
)

__all__ = ["NvccNotFound", "find_nvcc", "nvcc_version", "nvcc_version_text", "tool_near_nvcc"]

#: Defines Inductor passes for its CUTLASS kernels (torch/_inductor/codegen/cuda).
CUTLASS_DEFINES: tuple[str, ...] = (
    "CUTLASS_ENABLE_TENSOR_CORE_MMA=1",
    "CUTLASS_ENABLE_SM90_EXTENDED_MMA_SHAPES=1",
    "CUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED",
    "NDEBUG",
)

_ARCH_RE = re.compile(r"^(?:sm_|compute_)?(\d{2,3})([af]?)$")
_EDG_CODE_RE = re.compile(r"^\d+(?:-D)?$")


class Mode(StrEnum):
    """What a compile produces."""

    QUICK = "quick"
    FULL = "full"
    BUILD = "build"


@dataclass(frozen=True)
class CompileOptions:
    """Compiler settings that, with the source, decide a compile's result."""

    nvcc: str | None = None
    arch: str = "sm_90a"
    std: str = "c++17"
    include_dirs: tuple[str, ...] = ()
    defines: tuple[str, ...] = ()
    extra_flags: tuple[str, ...] = ()
    #: What cutlens adds for CUTLASS by default: the nvidia-cutlass wheel's include dirs
    #: (unless ``cutlass_include_dirs`` names others) and Inductor's CUTLASS defines (unless
    #: ``cutlass_defines`` says which). False drops those defaults only.
    cutlass: bool = True
    timeout_s: float = 600.0
    #: The CUTLASS defines; None: Inductor's, :data:`CUTLASS_DEFINES` (with ``cutlass``).
    #: ``CUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED`` alone costs ~10 s of CPU per TU that
    #: includes cute (benchmarks/nvcc_modes.py); a project not using the extended GMMA
    #: shapes can leave it out.
    cutlass_defines: tuple[str, ...] | None = None
    #: ``extra_flags`` are the whole command line (a project's own, e.g. Inductor's): no
    #: cutlens defaults, and the modes add no optimisation level of their own.
    exact_flags: bool = False
    #: The CUTLASS include dirs; None: the nvidia-cutlass wheel's (with ``cutlass``).
    cutlass_include_dirs: tuple[str, ...] | None = None
    #: ``-isystem`` dirs: no warnings from their headers.
    system_include_dirs: tuple[str, ...] = ()
    #: The template's own folder: searched for ``#include "..."`` before the include dirs
    #: (gcc's ``-iquote``), as if the rendered file sat beside the template.
    template_include_dirs: tuple[str, ...] = ()
    #: A stamp of the headers in those folders (their sizes and times), so that editing one
    #: changes the compile's cache key (the build cache fingerprints only ``-I`` dirs).
    template_headers_stamp: str = ""
    #: Warning codes left out (EDG numbers go to nvcc as ``--diag-suppress``).
    diag_suppress: tuple[str, ...] = ()


# --------------------------------------------------------------------------- CUTLASS


@functools.lru_cache(maxsize=1)
def cutlass_root() -> str | None:
    """``<site-packages>/cutlass_library/source`` of the ``nvidia-cutlass`` wheel, if present."""
    spec = importlib.util.find_spec("cutlass_library")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        src = Path(loc) / "source"
        if (src / "include" / "cutlass" / "cutlass.h").is_file():
            return str(src)
    return None


def cutlass_include_dirs() -> list[str]:
    """CUTLASS's ``include`` and ``tools/util/include`` from the wheel ([] without it)."""
    root = cutlass_root()
    if root is None:
        return []
    dirs = [os.path.join(root, "include"), os.path.join(root, "tools", "util", "include")]
    return [d for d in dirs if os.path.isdir(d)]


def cutlass_version() -> str | None:
    """The installed ``nvidia-cutlass`` distribution's version."""
    from importlib import metadata

    try:
        return metadata.version("nvidia-cutlass")
    except metadata.PackageNotFoundError:
        return None


# --------------------------------------------------------------------------- flags


def gencode(arch: str) -> list[str]:
    """``sm_90a`` → ``['-gencode', 'arch=compute_90a,code=sm_90a']`` (also ``90a``,
    ``sm_100f``); ``compute_90`` → PTX only (``code=compute_90``)."""
    m = _ARCH_RE.match(arch.strip())
    if not m:
        raise ValueError(f"unsupported arch {arch!r}; expected sm_XY, sm_XYa or sm_XYf")
    num, suffix = m.groups()
    virtual = f"compute_{num}{suffix}"
    code = virtual if arch.startswith("compute_") else f"sm_{num}{suffix}"
    return ["-gencode", f"arch={virtual},code={code}"]


_PTXAS_V = ("-Xptxas", "-v", "-Xptxas", "-warn-spills")

#: Flags each mode adds after the common ones (before the output). BUILD's flags make the
#: library in one step from source; the compile pool instead links FULL's object
#: (:func:`link_command`), which holds the same code, so a check followed by a benchmark
#: compiles once.
MODE_FLAGS: Mapping[Mode, tuple[str, ...]] = {
    Mode.QUICK: ("-ptx", "-fdevice-syntax-only"),
    Mode.FULL: ("-c", "-O3", *_PTXAS_V),
    Mode.BUILD: ("-shared", "-O3", *_PTXAS_V),
}

#: Artifact suffix per mode (QUICK writes nothing useful; the pool sends it to /dev/null).
MODE_SUFFIX: Mapping[Mode, str] = {Mode.QUICK: ".ptx", Mode.FULL: ".o", Mode.BUILD: ".so"}


def common_flags(options: CompileOptions) -> list[str]:
    """Flags shared by every mode, without the nvcc path, source or output."""
    if options.exact_flags:
        return list(options.extra_flags)
    flags = [f"-std={options.std}", "--expt-relaxed-constexpr", *gencode(options.arch),
             "-Xcompiler=-fPIC"]
    cl_defines = options.cutlass_defines
    if cl_defines is None:
        cl_defines = CUTLASS_DEFINES if options.cutlass else ()
    flags += [f"-D{d}" for d in dict.fromkeys([*cl_defines, *options.defines])]
    edg = [c.removesuffix("-D") for c in options.diag_suppress if _EDG_CODE_RE.match(c)]
    if edg:
        flags.append(f"--diag-suppress={','.join(dict.fromkeys(edg))}")
    includes = list(options.include_dirs)
    if options.cutlass_include_dirs is not None:
        includes = [*options.cutlass_include_dirs, *includes]
    elif options.cutlass:
        includes += cutlass_include_dirs()
    # System dirs are -I dirs too (gcc ignores a -I dir that is also -isystem), so that the
    # build cache, which fingerprints the headers of the -I dirs, sees their edits.
    includes += options.system_include_dirs
    for d in dict.fromkeys(options.template_include_dirs):
        # nvcc has no -iquote; its host preprocessor (both passes) takes it. A comma would
        # split the -Xcompiler list: such a folder is a last -I dir instead.
        if "," in d:
            includes.append(d)
        else:
            flags.append(f"-Xcompiler=-iquote,{d}")
    if options.template_headers_stamp:
        flags.append(f"-DCUTLENS_TEMPLATE_HEADERS={options.template_headers_stamp}")
    flags += [f"-I{d}" for d in dict.fromkeys(includes)]
    for d in dict.fromkeys(options.system_include_dirs):
        flags += ["-isystem", d]
    flags += list(options.extra_flags)
    return flags


def mode_flags(mode: Mode, options: CompileOptions) -> list[str]:
    """Everything but the nvcc path, source and output: what the cache key hashes."""
    extra = MODE_FLAGS[Mode(mode)]
    if options.exact_flags:  # the project's own optimisation level stays
        extra = tuple(f for f in extra if not f.startswith("-O"))
    return [*common_flags(options), *extra]


def command(mode: Mode, options: CompileOptions, source_path: str | os.PathLike[str],
            output_path: str | os.PathLike[str]) -> list[str]:
    """The nvcc command line for ``mode``."""
    nvcc = find_nvcc(options.nvcc)
    return [nvcc, *mode_flags(mode, options), os.fspath(source_path), "-o",
            os.fspath(output_path)]


def link_command(options: CompileOptions, object_path: str | os.PathLike[str],
                 output_path: str | os.PathLike[str]) -> list[str]:
    """Link a FULL object into BUILD's shared library (~1 s: nvlink, fatbinary, g++).
    ``extra_flags`` come along (``-rdc=true``, ``-lcublas``...)."""
    nvcc = find_nvcc(options.nvcc)
    arch = [] if options.exact_flags else [*gencode(options.arch), "-Xcompiler=-fPIC"]
    return [nvcc, "-shared", *arch, *options.extra_flags, os.fspath(object_path), "-o",
            os.fspath(output_path)]


# --------------------------------------------------------------------------- running


@dataclass
class RunOutcome:
    """How one nvcc process ended."""

    returncode: int | None
    output: str
    duration_s: float
    timed_out: bool = False
    signal: int | None = None  # the signal that killed nvcc, if one did


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to the process group led by ``pid`` (started with a new session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def compile_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment nvcc runs in: the caller's, with a fixed message language."""
    env = dict(os.environ if base is None else base)
    env["LC_ALL"] = "C.UTF-8"
    env["LANGUAGE"] = "C"
    return env


def run_sync(cmd: Sequence[str], cwd: str | os.PathLike[str] | None = None,
             timeout_s: float | None = None,
             env: Mapping[str, str] | None = None) -> RunOutcome:
    """Run ``cmd`` in its own process group, merged stdout+stderr, killing the group on
    timeout (``env``: the environment, else the caller's). For scripts and the profiler; the
    async pool in :mod:`cutlens.nvcc.pool` does the same."""
    import time

    t0 = time.monotonic()
    proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=compile_env(env))
    try:
        out, _ = proc.communicate(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        out, _ = proc.communicate()
        timed_out = True
    except BaseException:
        kill_group(proc.pid)
        proc.wait()
        raise
    kill_group(proc.pid)  # stragglers (a host compiler nvcc forgot), if any
    rc = proc.returncode
    return RunOutcome(returncode=None if timed_out else rc,
                      output=out.decode("utf-8", "replace"),
                      duration_s=time.monotonic() - t0, timed_out=timed_out,
                      signal=-rc if rc is not None and rc < 0 else None)
