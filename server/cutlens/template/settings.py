"""Reading a template's settings (front matter, per-template table) into the model: samples,
``[bench]``, ``[compile]``, companions, kind, kernel name and helper classes. Every problem is
a diagnostic on the setting's line; a bad setting keeps its default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cutlens.config import TemplateSettings
from cutlens.config.flags import check_compile_table
from cutlens.config.validate import Problems, Where, values
from cutlens.diagnostics import Diagnostic
from cutlens.template import captured
from cutlens.template.ir import IRError, make_node
from cutlens.template.ir import dtype as ir_dtype
from cutlens.template.model import Sample, Template, template_roots, within


def default_kernel_name(path: Path) -> str:
    stem = path.name.split(".")[0]
    return "cutlens_" + re.sub(r"\W+", "_", stem)


def error(t: Template, message: str, table: str, key: str | None = None,
          source: str = "cutlens", **kw: Any) -> None:
    """Record a problem with the setting ``[table] key`` on its line."""
    file, line = t.setting_line(table, key)
    t.errors.append(Diagnostic(file=file, line=line, message=message,
                               source=source, **kw))  # type: ignore[arg-type]


def where(t: Template) -> Where:
    """The settings' location, for :mod:`cutlens.config.validate`."""
    if t.settings_file is not None and t.settings_file != t.path:
        return Where(str(t.settings_file), t.config.index, t.settings_prefix)
    return Where(str(t.path), t.front.index)


def settings_base(t: Template) -> Path:
    """The folder paths in the settings resolve against: the file that holds them."""
    if t.settings_file is not None and t.settings_file != t.path:
        return t.config.root
    return t.path.parent


def read(t: Template) -> None:
    """Fill ``t`` from ``t.settings``: every key type-checked (:class:`TemplateSettings`),
    a bad one keeps its default."""
    raw = dict(t.settings)
    if isinstance(raw.get("compile"), dict) and t.settings_file == t.path:  # its own
        raw["compile"] = refuse_flags(t, raw["compile"])
    problems = Problems()
    vals = values(TemplateSettings, raw, where(t), "", problems, base=settings_base(t))
    t.errors += problems.items
    t.kind = vals.get("kind", "cutlass")
    t.kernel_name = vals.get("kernel_name") or default_kernel_name(t.path)
    t.template_class = vals.get("template_class") or t.config.template_class
    t.kernel_class = vals.get("kernel_class") or t.config.kernel_class
    t.compile = vals.get("compile", t.compile)
    t.bench = vals.get("bench", t.bench)
    if "samples" in vals:
        read_samples(t, vals["samples"])
    elif "samples" in raw:
        t.broken = True
    if "companions" in vals:
        read_companions(t, vals["companions"])
    read_captured(t, vals, "samples" in raw)


def read_captured(t: Template, vals: dict[str, Any], own_samples: bool) -> None:
    """The samples a template takes from a samples file (``samples_from``, its own or the
    project's, with ``[accepts]``); a missing or unreadable file is a warning on the line
    that names it, a bad ``[accepts]`` entry an error on its line."""
    accepts_table = vals.get("accepts")
    own = vals.get("samples_from")
    value = own or t.config.samples_from
    if accepts_table is None or value is None:
        if own is not None:
            error(t, "samples_from: add an [accepts] table (ops, dtypes, nodes, layouts) "
                     "saying which captured samples this template runs", "", "samples_from",
                  severity="warning")
        return
    for i, name in enumerate(accepts_table.dtypes):
        try:
            ir_dtype(name)
        except IRError as e:
            error(t, f"accepts.dtypes[{i}]: {e}", "accepts", "dtypes")
            return
    if not accepts_table.nodes:
        error(t, "[accepts] needs nodes = { TEMPLATE_NODE = \"captured node\" } (mat1, "
                 "mat2, bias, out...)", "accepts")
        return
    base = settings_base(t) if own else t.config.root
    path = captured.resolve(value, base, t.config.root)
    acc = captured.Accepts.from_table(accepts_table)
    line_of = ("", "samples_from") if own else ("accepts", None)
    try:
        taken = captured.select(captured.read(path), acc)
    except captured.CapturedError as e:
        t.captured = captured.Taken(path, error=str(e))
        if own or path.exists():  # the project's default file not written yet: quiet
            hint = " (run cutlens capture -- python PROGRAM first)" if not path.exists() else ""
            error(t, f"samples_from: {e}{hint}", *line_of, severity="warning")
        return
    t.captured = taken
    t.samples += captured.samples_of(taken, acc, {s.name for s in t.samples})
    if not own_samples and t.samples:
        t.broken = False


def refuse_flags(t: Template, table: dict[str, Any]) -> dict[str, Any]:
    """The template's own ``[compile]`` without the nvcc arguments the flag policy refuses
    (:mod:`cutlens.config.flags`); an error on each one's line."""
    clean, refused = check_compile_table(table, t.config.allow_unsafe_flags)
    for r in refused:
        line, col = _flag_position(t, r.key, r.text)
        t.errors.append(Diagnostic(
            file=str(t.path), line=line, column=0 if col is None else col + 1,
            end_column=0 if col is None else col + len(r.text) + 3, message=r.message,
            source="cutlens", code="unsafe-flag"))
    return clean


def _flag_position(t: Template, key: str, text: str) -> tuple[int, int | None]:
    """(line, 0-based column) of the string ``text`` in front matter ``[compile] key``."""
    first = t.front.line_of("compile", key)
    lines = t.source.splitlines()
    for ln in range(first, max(t.front.end_line, first) + 1):
        line = lines[ln - 1] if 0 < ln <= len(lines) else ""
        for quoted in (f'"{text}"', f"'{text}'"):
            col = line.find(quoted)
            if col >= 0:
                return ln, col
    return first, None


def read_samples(t: Template, table: dict[str, Any]) -> None:
    for sname, spec in table.items():
        tname = f"samples.{sname}"
        if not isinstance(spec, dict):
            error(t, f"sample {sname!r} must be a table of nodes", tname)
            continue
        sample = Sample(sname, line=t.setting_line(tname)[1])
        ok = True
        hints = spec.get("hints", {})
        if not isinstance(hints, dict) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in hints.values()):
            error(t, "hints must be a table of integers, e.g. hints = { M = 1024 }", tname,
                  "hints")
            ok = False
        else:
            sample.hints = dict(hints)
        sample.vars = dict(spec.get("vars", {})) if isinstance(spec.get("vars"), dict) else {}
        for nname, nspec in spec.items():
            if nname in ("hints", "vars"):
                continue
            if nspec is False or nspec is None:
                sample.nodes[nname] = None
                continue
            if not isinstance(nspec, dict):
                error(t, f"{nname}: a node is a table {{ dtype, size, stride?, offset? }} or "
                         f"false for an absent optional input, not {nspec!r}", tname, nname)
                ok = False
                continue
            try:
                sample.nodes[nname] = make_node(nname, nspec)
            except IRError as e:
                error(t, str(e), tname, nname)
                ok = False
        if ok:
            missing = sorted({s.name for n in sample.nodes.values() if n
                              for s in n.free_symbols} - set(sample.hints))
            if missing:
                error(t, f"sample {sname!r}: no hint for size symbol(s) {', '.join(missing)}; "
                         f"add hints = {{ {missing[0]} = ... }}", tname, "hints",
                      severity="warning")
            t.samples.append(sample)
    if table and not t.samples:
        t.broken = True


def read_companions(t: Template, c: dict[str, str]) -> None:
    roots = template_roots(t)
    for out_name, rel in c.items():
        out = Path(out_name)
        if not out_name or out.is_absolute() or ".." in out.parts:
            error(t, f"companion output {out_name!r} must be a relative name without '..': "
                     "companions are written into the build directory only", "companions",
                  out_name)
            continue
        candidates = [t.path.parent / rel, t.config.root / rel]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            error(t, f"companion {out_name!r}: template {rel!r} not found", "companions",
                  out_name)
            continue
        if not within(found.resolve(), roots):
            error(t, f"companion {out_name!r}: template {rel!r} is outside the project's "
                     "template roots (the project root and search_path)", "companions",
                  out_name)
            continue
        t.companions[out_name] = found.resolve()
