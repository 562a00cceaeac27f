"""The project config: one typed object (:class:`ProjectConfig`) read once from
``cutlens.toml`` or ``[tool.cutlens]``, with the editor's settings applied on top; the
schemas of a template's ``[compile]`` and ``[bench]`` tables. Every key is type-checked and
every problem is a diagnostic on the line that holds it."""

from cutlens.config.editor import EditorSettings, parse_editor_settings
from cutlens.config.load import (
    ConfigError,
    apply_settings,
    driver_module_file,
    find_root,
    has_config,
    load,
    root_for,
)
from cutlens.config.schema import (
    CAPTURED_OPS,
    CHECK_ON,
    DEFAULT_EXCLUDE,
    DEFAULT_GLOBS,
    IGNORED_DIRS,
    KINDS,
    TEMPLATE_KEYS,
    AcceptsTable,
    BenchConfig,
    CompileTable,
    DriverConfig,
    InductorConfig,
    ProjectConfig,
    TemplateBench,
    TemplateSettings,
)

__all__ = [
    "CAPTURED_OPS",
    "CHECK_ON",
    "DEFAULT_EXCLUDE",
    "DEFAULT_GLOBS",
    "IGNORED_DIRS",
    "KINDS",
    "TEMPLATE_KEYS",
    "AcceptsTable",
    "BenchConfig",
    "CompileTable",
    "ConfigError",
    "DriverConfig",
    "EditorSettings",
    "InductorConfig",
    "ProjectConfig",
    "TemplateBench",
    "TemplateSettings",
    "apply_settings",
    "driver_module_file",
    "find_root",
    "has_config",
    "load",
    "parse_editor_settings",
    "root_for",
]
