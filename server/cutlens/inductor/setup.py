"""Getting Inductor's CUTLASS backend ready to render on any machine, a CPU-only one too:
a CUTLASS root laid out as Inductor expects (symlinks into the nvidia-cutlass wheel), the
arch and CUDA version Inductor would read from a GPU, ``CUDA_HOME`` for its nvcc command, and
cuRAND's headers where the CUDA install lacks them. Only the render-driver worker imports
this (it imports torch)."""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from cutlens.cuda_install import NvccNotFound, cuda_home, cuda_release, find_nvcc


class BridgeError(RuntimeError):
    """An Inductor internal the bridge needs is missing (another torch version)."""


def need(obj: Any, name: str, what: str) -> Any:
    """``obj.name``, or a :class:`BridgeError` naming what was not found."""
    try:
        return getattr(obj, name)
    except AttributeError:
        raise BridgeError(f"{what}: {getattr(obj, '__name__', obj)}.{name} not found") \
            from None


def cutlass_root(cache: Path) -> Path:
    """``cache/cutlass``: Inductor's expected layout, made of symlinks into the wheel."""
    try:
        import cutlass_library
    except ImportError:
        raise BridgeError("the nvidia-cutlass wheel is not installed (pip install "
                          "nvidia-cutlass)") from None
    pkg = Path(cutlass_library.__file__).resolve().parent
    site, src = pkg.parent, pkg / "source"
    links = {"include": src / "include", "tools/util/include": src / "tools" / "util" /
             "include", "tools/library": src / "tools" / "library",
             "python/cutlass_library": pkg}
    for extra in ("cutlass_cppgen", "pycute", "cutlass"):
        if (site / extra).is_dir():
            links[f"python/{extra}"] = site / extra
    root = cache / "cutlass"
    for rel, target in links.items():
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.is_symlink() and Path(os.readlink(dst)) == target:
            continue
        if dst.is_symlink() or dst.exists():
            dst.unlink()
        dst.symlink_to(target)
    return root


def drop_stale_links(folder: Path, root: Path) -> None:
    """Remove links in Inductor's ``torch_cutlass`` folder that lead somewhere other than
    ``root``'s ``python/`` packages (a moved project, an older wheel): Inductor asserts on them."""
    if not folder.is_dir():
        return
    for link in folder.iterdir():
        want = root / "python" / link.name
        if link.is_symlink() and want.exists() and link.resolve() != want.resolve():
            link.unlink()


def _release(nvcc: str | None) -> str | None:
    """The CUDA release of the nvcc cutlens compiles with (``13.0``), None without one."""
    try:
        return cuda_release(find_nvcc(nvcc))
    except NvccNotFound:
        return None


def curand_include(home: Path | None) -> str | None:
    """A folder with ``curand_kernel.h`` when the CUDA install has none (CUTLASS's
    ``tensor_fill.h``, which Inductor's header includes, needs it): the nvidia-curand wheel's."""
    if home is not None and (home / "include" / "curand_kernel.h").is_file():
        return None
    for base in map(Path, sys.path):
        for cand in (base / "nvidia" / "cu13" / "include", base / "nvidia" / "curand" /
                     "include"):
            if (cand / "curand_kernel.h").is_file():
                return str(cand)
    raise BridgeError("Inductor's CUTLASS header includes <curand_kernel.h>, and neither the "
                      f"CUDA install ({home}) nor an nvidia-curand wheel has it: pip install "
                      "nvidia-curand")


@dataclass
class Inductor:
    """The Inductor modules the bridge uses, ready to render."""

    torch: ModuleType
    config: Any
    ir: Any
    V: Any
    GraphLowering: Any
    template_mod: Any  # codegen/cutlass/template.py
    version: str
    arch: str
    cuda_version: str
    curand: str | None
    home: Path | None
    clear: list[Any] = field(default_factory=list)


def prepare(cache: Path, arch: str, nvcc: str | None) -> Inductor:
    """Import torch's Inductor with the CUTLASS backend configured for ``arch`` (``90``)."""
    cache = cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    root = cutlass_root(cache)
    os.environ["TORCHINDUCTOR_CUTLASS_DIR"] = str(root)  # read when the config is imported
    # Inductor links its cutlass_library into <cache dir>/torch_cutlass and asserts that an
    # existing link points to this root: one cache dir per project keeps projects apart.
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache / "torchinductor")
    drop_stale_links(cache / "torchinductor" / "torch_cutlass", root)
    home = cuda_home(nvcc)
    if home is not None:
        os.environ.setdefault("CUDA_HOME", str(home))
    try:
        import torch
    except ImportError:
        raise BridgeError("torch is not installed in this Python environment") from None
    config = importlib.import_module("torch._inductor.config")
    importlib.import_module("torch._inductor.graph")  # before gemm_template: a circular import
    ir = importlib.import_module("torch._inductor.ir")
    virtualized = importlib.import_module("torch._inductor.virtualized")
    graph = importlib.import_module("torch._inductor.graph")
    try:
        template_mod = importlib.import_module("torch._inductor.codegen.cutlass.template")
    except ImportError as e:
        raise BridgeError(f"torch {torch.__version__} has no Inductor CUTLASS backend at "
                          f"torch._inductor.codegen.cutlass ({e})") from None
    cutlass_cfg = need(config, "cutlass", "Inductor's config")
    cuda_cfg = need(config, "cuda", "Inductor's config")
    cutlass_cfg.cutlass_dir = str(root)
    cutlass_cfg.enable_caching_codegen = False  # render every op (no code cache)
    cuda_cfg.arch = arch
    version = _release(nvcc)
    cuda_cfg.version = torch.version.cuda or version or "13.0"
    try:  # the CPU build computes CUDA_HOME only when built with CUDA: the nvcc command needs it
        from torch.utils import cpp_extension
        if home is not None and not cpp_extension.CUDA_HOME:
            cpp_extension.CUDA_HOME = str(home)
    except ImportError:
        pass
    return Inductor(torch, config, ir, virtualized.V, graph.GraphLowering, template_mod,
                    torch.__version__, arch, cuda_cfg.version, curand_include(home), home)
