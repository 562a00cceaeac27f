"""The editor's settings (LSP ``initializationOptions`` and
``workspace/didChangeConfiguration``), typed: what the server itself reads (``trusted``,
``jinjaDebounceMs``, ``python``, ``trace``) and what goes onto every project's config
(``checkOn``, ``nvcc``, ``includeDirs``...: :func:`cutlens.config.load.apply_settings`
checks those). Parsed here, beside the project config, so that a key means the same from
either side: a project's ``check_on`` applies unless the editor sends ``checkOn``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from cutlens.diagnostics import Diagnostic

#: Keys the server reads itself (never applied to a project config).
SERVER_SETTINGS = ("trusted", "jinjaDebounceMs", "python", "trace")
#: The Jinja tier's default debounce after a keystroke.
JINJA_DEBOUNCE_MS = 150.0


@attrs.frozen
class EditorSettings:
    """The settings an editor sent, merged over what it sent before."""

    #: Every key as sent (a later message adds to and overrides earlier ones).
    raw: Mapping[str, Any] = attrs.field(factory=dict)
    #: Workspace trust (a client that sends none is trusted, like the CLI).
    trusted: bool = True
    #: Delay of the Jinja tier after a keystroke.
    jinja_debounce_ms: float = JINJA_DEBOUNCE_MS
    #: The keys that apply to each project's config, as the config takes them.
    project: Mapping[str, Any] = attrs.field(factory=dict)
    #: Problems with the server's own keys (the project keys' come from apply_settings).
    problems: tuple[Diagnostic, ...] = ()

    @property
    def jinja_debounce_s(self) -> float:
        return self.jinja_debounce_ms / 1000

    def updated(self, more: Mapping[str, Any]) -> EditorSettings:
        """These settings with ``more`` (a didChangeConfiguration) applied."""
        return parse_editor_settings({**self.raw, **more})


def _problem(message: str) -> Diagnostic:
    return Diagnostic(file="settings", line=1, message=f"cutlens setting {message}",
                      severity="warning")


def parse_editor_settings(raw: Mapping[str, Any] | None) -> EditorSettings:
    """Typed settings from what a client sent (``{"cutlens": {...}}`` or the keys alone);
    a bad value of a server key is a problem and its default, never an exception."""
    data = dict(raw or {})
    if isinstance(data.get("cutlens"), Mapping):
        data = dict(data["cutlens"])
    problems: list[Diagnostic] = []
    said = data.get("trusted")
    trusted = not (said is False or str(said).lower() == "false")
    debounce = JINJA_DEBOUNCE_MS
    ms = data.get("jinjaDebounceMs")
    if ms is not None:
        try:
            if isinstance(ms, bool):
                raise TypeError
            debounce = max(float(ms), 0.0)
        except (TypeError, ValueError):
            problems.append(_problem(f"jinjaDebounceMs: expected a number of milliseconds, "
                                     f"got {ms!r}"))
    project = {k: v for k, v in data.items()
               if k not in SERVER_SETTINGS and v not in (None, "")}
    bench = project.get("benchmark")
    if isinstance(bench, Mapping) and "device" in bench:  # the extension's benchmark.device
        project["bench"] = {"device": bench["device"]}
        project.pop("benchmark", None)
    return EditorSettings(raw=data, trusted=trusted, jinja_debounce_ms=debounce,
                          project=project, problems=tuple(problems))
