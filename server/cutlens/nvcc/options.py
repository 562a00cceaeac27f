"""What to compile and how: a template's nvcc options (the project config, then its own
``[compile]``) and a rendered unit's compile job; why none of a template's units can compile
(missing CUTLASS headers), said once."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import attrs

from cutlens.nvcc import toolchain as nv
from cutlens.nvcc.output import CompilerMessage
from cutlens.nvcc.pool import CompileJob, CompileOptions, CompileResult, Mode
from cutlens.render.renderer import RenderedUnit
from cutlens.template.model import Template


def compile_options(template: Template, unit: RenderedUnit | None = None) -> CompileOptions:
    """The project config plus the template's ``[compile]`` table (its refused flags already
    dropped when it was loaded), plus the unit's own settings (a render driver's case:
    ``arch``, ``std``, ``defines``, ``include_dirs`` relative to the root, ``extra_flags``),
    and the template's own folder as the last include dir.

    ``cutlass`` (project, then ``[compile]``) only switches what cutlens adds by default: the
    nvidia-cutlass wheel's include dirs and Inductor's CUTLASS defines. The CUTLASS include
    dirs (``cutlass_include_dirs``) and defines (``cutlass_defines``, project then
    ``[compile]``) are set independently, and whatever the user sets stays."""
    cfg, table = template.config, template.compile
    own = unit.compile if unit is not None else {}
    if own.get("exact_flags"):  # the unit's own command line (e.g. Inductor's)
        return CompileOptions(nvcc=cfg.nvcc, extra_flags=tuple(own.get("extra_flags", [])),
                              cutlass=False, exact_flags=True,
                              timeout_s=cfg.compile_timeout_s)
    if own:
        table = attrs.evolve(
            table, arch=own.get("arch") or table.arch, std=own.get("std") or table.std,
            defines=[*table.defines, *own.get("defines", [])],
            extra_flags=[*table.extra_flags, *own.get("extra_flags", [])],
            include_dirs=[*table.include_dirs, *[str((cfg.root / d).resolve())
                                                 for d in own.get("include_dirs", [])]])
    cutlass = cfg.cutlass if table.cutlass is None else table.cutlass
    cutlass_defines = table.cutlass_defines if table.cutlass_defines is not None \
        else cfg.cutlass_defines
    return CompileOptions(
        nvcc=cfg.nvcc,
        arch=table.arch or cfg.arch,
        std=table.std or cfg.std,
        include_dirs=tuple([*cfg.include_dirs, *table.include_dirs]),
        defines=tuple([*cfg.defines, *table.defines]),
        extra_flags=tuple([*cfg.extra_flags, *table.extra_flags]),
        cutlass=cutlass,
        timeout_s=table.timeout_s if table.timeout_s is not None else cfg.compile_timeout_s,
        cutlass_defines=tuple(cutlass_defines) if cutlass_defines is not None else None,
        cutlass_include_dirs=tuple(cfg.cutlass_include_dirs)
        if cfg.cutlass_include_dirs is not None else None,
        system_include_dirs=tuple([*cfg.system_include_dirs, *table.system_include_dirs]),
        template_include_dirs=(str(template.path.parent),),
        template_headers_stamp=headers_stamp(template.path.parent),
        diag_suppress=tuple(dict.fromkeys([*cfg.diag_suppress, *table.diag_suppress])),
    )


#: What a header beside a template can be called (templates themselves are not headers:
#: editing one must not invalidate its neighbours' compiles).
HEADER_SUFFIXES = (".h", ".hh", ".hpp", ".hxx", ".cuh", ".inc", ".inl", ".ipp", ".tcc")
_STAMP_MAX_FILES = 4000


def headers_stamp(folder: Path) -> str:
    """A short hash of the headers below ``folder`` (relative path, size, mtime), skipping
    hidden folders (``.cutlens``, ``.git``); "" when there are none."""
    h = hashlib.sha256()
    n = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for f in sorted(files):
            if not f.endswith(HEADER_SUFFIXES):
                continue
            p = os.path.join(root, f)
            try:
                st = os.stat(p)
            except OSError:
                continue
            h.update(f"{os.path.relpath(p, folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            n += 1
        if n > _STAMP_MAX_FILES:
            break
    return h.hexdigest()[:16] if n else ""


def _config_key_at(template: Template, key: str) -> str:
    """``cutlens.toml:3`` where the project config sets ``key``, else the editor settings."""
    cfg = template.config
    if cfg.file is not None and cfg.index is not None:
        line = cfg.index.line_of(cfg.index_prefix, key, default=0)
        if line:
            return f"{cfg.file.name}:{line}"
    return "the editor settings"


def preflight(template: Template) -> str | None:
    """Why none of the template's units can compile, said once instead of nvcc's wall of
    ``#include`` errors: the CUTLASS headers are missing. None when there is no such reason."""
    cfg = template.config
    cutlass = cfg.cutlass if template.compile.cutlass is None else template.compile.cutlass
    if not cutlass:
        return None
    if cfg.cutlass_include_dirs:
        dirs = cfg.cutlass_include_dirs
        if any((Path(d) / "cutlass" / "cutlass.h").is_file() for d in dirs):
            return None
        return (f"CUTLASS headers not found: `cutlass_include_dirs` "
                f"({_config_key_at(template, 'cutlass_include_dirs')}) is "
                f"{', '.join(dirs)}, and no cutlass/cutlass.h is there")
    if template.kind == "cutlass" and not nv.cutlass_include_dirs():
        return ("CUTLASS headers not found: the nvidia-cutlass wheel is not installed in this "
                "Python environment; install it, or set `cutlass_include_dirs` in cutlens.toml")
    return None


def failed(mode: Mode, message: str) -> CompileResult:
    """A result for a unit that was not compiled, carrying ``message`` as its error."""
    msg = CompilerMessage(tool="nvcc", severity="error", file=None, line=None, column=None,
                          message=message, code=None, chain=[], raw=message, level="error")
    return CompileResult(mode=mode, ok=False, returncode=None, messages=[msg], resources=[],
                         output="", source_path="", companion_paths={}, artifact=None,
                         duration_s=0.0, cached=False)


#: Longest TU file name stem (bytes): the unit's files add a suffix, and a file name is at
#: most 255 bytes.
MAX_TU_NAME = 160


def job_for(unit: RenderedUnit, mode: Mode, options: CompileOptions) -> CompileJob:
    """The compile job of a rendered unit: its TU named after template, sample (``shapes``
    for a shape-generic unit) and the variant's build (variants differing only in runtime
    parameters share the name, and so, rendered alike, one cache entry and one nvcc run).
    Long names keep their start and a hash of the whole."""
    stem = unit.template.name.split(".")[0]
    # A shape-generic unit is the same for every sample it serves: no sample in its name.
    sample = "shapes" if unit.shapes == "generic" else unit.sample.name
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{stem}-{sample}-{unit.variant.build_slug}")
    if len(name) > MAX_TU_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        name = f"{name[:MAX_TU_NAME - 13]}-{digest}"
    return CompileJob(source=unit.text, mode=mode, options=options, name=name,
                      companions={k: v.text for k, v in unit.companions.items()},
                      cost=cost_label(unit))


def unit_id(job: CompileJob) -> str:
    """What identifies a build before nvcc is asked: a hash of the TU's name, text,
    companions and options (jobs with one id are one build; 16 hex digits)."""
    h = hashlib.sha256(job.name.encode() + b"\0" + job.source.encode() + b"\0" +
                       repr(job.options).encode())
    for name in sorted(job.companions):
        h.update(b"\0" + name.encode() + b"\0" + job.companions[name].encode())
    return h.hexdigest()[:16]


def cost_label(unit: RenderedUnit) -> str:
    """What the compile pool learns compile times and peak memory under: the template file
    (its units cost about the same)."""
    return str(unit.template)
