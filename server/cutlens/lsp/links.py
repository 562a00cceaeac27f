"""Document links: the names of ``{% include/import/from/extends %}`` (resolved like the
renderer resolves them: the template's folder, the project root, ``search_path``) and of
``#include`` lines (a companion the template renders beside the TU, else the template's
folder for ``"..."``, then the include directories nvcc gets: the project's and the
template's ``include_dirs``, the CUTLASS headers, the CUDA toolkit's)."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from lsprotocol import types as lsp

from cutlens.cuda_install import cuda_homes
from cutlens.lsp.convert import path_to_uri
from cutlens.lsp.navigation import resolve as resolve_template
from cutlens.nvcc import toolchain as nv
from cutlens.nvcc.options import compile_options
from cutlens.template.model import Template

_JINJA_REF_RE = re.compile(r"""\{%-?\s*(?:include|import|extends|from)\s+(["'])([^"']+)\1""")
_INCLUDE_RE = re.compile(r"""^\s*#\s*include\s*([<"])([^>"]+)[>"]""")


@functools.lru_cache(maxsize=8)
def _cuda_include_dirs(nvcc: str | None) -> tuple[str, ...]:
    """The CUDA toolkit's include directories: next to nvcc, else where ``$CUDA_HOME`` or
    the usual install says (nvcc may be a wrapper script elsewhere)."""
    out: dict[str, None] = {}
    for root in cuda_homes(nvcc):
        for c in [root / "include", *sorted((root / "targets").glob("*/include"))]:
            if (c / "cuda_runtime.h").is_file():
                out[str(c.resolve())] = None
    return tuple(out)


def include_dirs(template: Template) -> list[str]:
    """Where nvcc looks for ``#include <...>`` of this template, in its order."""
    opts = compile_options(template)
    dirs = list(opts.include_dirs)
    if opts.cutlass:
        dirs += nv.cutlass_include_dirs()
    return [*dirs, *_cuda_include_dirs(opts.nvcc)]


def resolve_include(name: str, quoted: bool, template: Template | None,
                    path: Path) -> Path | None:
    """The file an ``#include`` names, or None."""
    if template is not None and quoted and name in template.companions:
        return template.companions[name]
    search = [str(path.parent)] if quoted else []
    if template is not None:
        search += include_dirs(template)
    for d in search:
        cand = os.path.join(d, name)
        if os.path.isfile(cand):
            return Path(cand).resolve()
    return None


def _link(line0: int, start: int, end: int, target: Path, tooltip: str) -> lsp.DocumentLink:
    return lsp.DocumentLink(range=lsp.Range(lsp.Position(line0, start), lsp.Position(line0, end)),
                            target=path_to_uri(target), tooltip=tooltip)


def document_links(template: Template | None, path: Path, source: str) -> list[lsp.DocumentLink]:
    """Every include/import name and ``#include`` line that resolves to a file."""
    out = []
    for i, line in enumerate(source.splitlines()):
        for m in _JINJA_REF_RE.finditer(line):
            target = resolve_template(m.group(2), template, path)
            if target is not None:
                out.append(_link(i, m.start(2), m.end(2), target, f"Open {m.group(2)}"))
        inc = _INCLUDE_RE.match(line)
        if inc and "{" not in inc.group(2):  # a Jinja expression names it: unknown here
            target = resolve_include(inc.group(2), inc.group(1) == '"', template, path)
            if target is not None:
                out.append(_link(i, inc.start(2), inc.end(2), target, str(target)))
    return out
