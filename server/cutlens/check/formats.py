"""Diagnostics as text (like a compiler), JSON, SARIF 2.1.0 and GitHub workflow annotations."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from cutlens import __version__
from cutlens.diagnostics import Diagnostic

FORMATS = ("text", "json", "sarif", "github")


def _rel(path: str, base: Path | None) -> str:
    if base is None:
        return path
    try:
        rel = os.path.relpath(path, base)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def summary(diags: list[Diagnostic], templates: int = 0) -> dict[str, Any]:
    c = Counter(d.severity for d in diags)
    return {"templates": templates, "errors": c.get("error", 0),
            "warnings": c.get("warning", 0), "infos": c.get("info", 0)}


#: ANSI styles of the text format (as gcc and clang colour theirs).
_SGR = {"loc": "1", "error": "1;31", "warning": "1;35", "info": "1;36", "note": "1;36",
        "where": "2"}


def _paint(text: str, style: str, color: bool) -> str:
    return f"\x1b[{_SGR[style]}m{text}\x1b[0m" if color else text


def text(diags: Iterable[Diagnostic], base: Path | None = None, color: bool = False) -> str:
    """``file:line:col: severity: message [code] [sample/variant]``, one per line, the code
    as compilers print theirs (``[3357-D]``, ``[-Wdeprecated-declarations]``: what
    ``diag_suppress`` takes; ``color``: ANSI colours as compilers use on a terminal)."""
    out = []
    for d in diags:
        where = f" {_paint(d.where(), 'where', color)}" if d.partial and d.where() else ""
        code = f" [{d.code}]" if d.code else ""
        loc = _paint(f"{_rel(d.file, base)}:{d.line}:{max(d.column, 1)}:", "loc", color)
        out.append(f"{loc} {_paint(d.severity + ':', d.severity, color)} {d.message}{code}"
                   f"{where}")
        for r in d.related:
            rloc = _paint(f"{_rel(r.file, base)}:{r.line}:", "loc", color)
            out.append(f"  {rloc} {_paint('note:', 'note', color)} {r.message}")
    return "\n".join(out) + ("\n" if out else "")


UNTRUSTED = "untrusted"


def untrusted_once(diags: list[Diagnostic]) -> tuple[list[Diagnostic], bool]:
    """For a human reader: the per-template "workspace not trusted" notices without the
    advice they all repeat. Templates whose workspace Python was skipped keep their notice
    (it says what), without the advice; the others lose theirs. The bool says whether there
    were any (print :data:`UNTRUSTED_ADVICE` once then)."""
    out, seen = [], False
    for d in diags:
        if d.code != UNTRUSTED:
            out.append(d)
            continue
        seen = True
        if "workspace Python" in d.message:
            out.append(replace(d, message=d.message.split(". To trust it")[0]))
    return out, seen


#: Said once by ``check``/``watch``/``lsp --headless`` when templates were not trusted.
UNTRUSTED_ADVICE = ("--no-exec: the Jinja tier only; nvcc, benchmarks and workspace Python "
                    "did not run (run without --no-exec to run them)")


def to_json(diags: list[Diagnostic], templates: int = 0, base: Path | None = None,
            extra: dict[str, Any] | None = None) -> str:
    items = []
    for d in diags:
        j = d.to_json()
        j["file"] = _rel(d.file, base)
        for r in j["related"]:
            r["file"] = _rel(r["file"], base)
        items.append(j)
    doc = {"diagnostics": items, "summary": {**summary(diags, templates), **(extra or {})}}
    return json.dumps(doc, indent=2) + "\n"


def _sarif_level(sev: str) -> str:
    return {"error": "error", "warning": "warning"}.get(sev, "note")


def sarif(diags: list[Diagnostic], base: Path | None = None) -> str:
    """SARIF 2.1.0, one run, for code scanning."""
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for d in diags:
        rule_id = f"{d.source}/{d.code}" if d.code else d.source
        rules.setdefault(rule_id, {"id": rule_id, "shortDescription": {"text": rule_id}})
        region = {"startLine": d.line}
        if d.column:
            region["startColumn"] = d.column
        if d.end_line and d.end_line >= d.line:
            region["endLine"] = d.end_line
        res = {
            "ruleId": rule_id,
            "level": _sarif_level(d.severity),
            "message": {"text": d.message + (f" {d.where()}" if d.partial else "")},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": Path(_rel(d.file, base)).as_posix()},
                "region": region}}],
        }
        if d.related:
            res["relatedLocations"] = [{
                "id": i, "message": {"text": r.message},
                "physicalLocation": {"artifactLocation": {"uri": Path(_rel(r.file, base))
                                                          .as_posix()},
                                     "region": {"startLine": max(r.line, 1)}}}
                for i, r in enumerate(d.related)]
        if d.samples or d.variants:
            res["properties"] = {"samples": d.samples, "variants": d.variants}
        results.append(res)
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "cutlens", "version": __version__,
                                "informationUri": "https://github.com/cutlens/cutlens",
                                "rules": list(rules.values())}},
            "results": results,
        }],
    }
    return json.dumps(doc, indent=2) + "\n"


def _gh_escape(s: str, prop: bool = False) -> str:
    s = s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        s = s.replace(":", "%3A").replace(",", "%2C")
    return s


def github(diags: Iterable[Diagnostic], base: Path | None = None) -> str:
    """``::error file=...,line=...::message`` workflow commands."""
    out = []
    for d in diags:
        kind = {"error": "error", "warning": "warning"}.get(d.severity, "notice")
        props = f"file={_gh_escape(_rel(d.file, base), True)},line={d.line}"
        if d.column:
            props += f",col={d.column}"
        props += f",title={_gh_escape('cutlens ' + d.source, True)}"
        msg = d.message + (f" {d.where()}" if d.partial else "")
        out.append(f"::{kind} {props}::{_gh_escape(msg)}")
    return "\n".join(out) + ("\n" if out else "")


def render(fmt: str, diags: list[Diagnostic], templates: int = 0,
           base: Path | None = None, color: bool = False) -> str:
    if fmt == "json":
        return to_json(diags, templates, base)
    if fmt == "sarif":
        return sarif(diags, base)
    if fmt == "github":
        return github(diags, base)
    return text(diags, base, color)
