"""The typed project config: every key type-checked, each problem one clear message naming
the key on its line, exit 2 for every command, no traceback; the same problems in the editor
(diagnostics on cutlens.toml, a message for bad editor settings); one base for paths."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient

from cutlens import config
from cutlens.template.loader import load

from conftest import start_lsp

TEMPLATE = '{#- cutlens\nkind = "cuda"\n-#}\nint x;\n'

# (config file, its text, the line of the problem, what the message must name, severity)
BAD_CONFIGS = [
    ("cutlens.toml", 'jobs = "two"\n', 1, "jobs: expected an integer, not the string 'two'",
     "error"),
    ("cutlens.toml", "arch = 'sm_90a'\nglobs = 5\n", 2, "globs: expected a list of strings",
     "error"),
    ("cutlens.toml", 'include_dirs = "include"\n', 1,
     "include_dirs: expected a list of strings, not the string 'include'", "error"),
    ("cutlens.toml", 'archh = "sm_80"\n', 1, "unknown key 'archh' (did you mean 'arch'?)",
     "warning"),
    ("cutlens.toml", 'check_on = "sometimes"\n', 1,
     "check_on must be one of 'save', 'change', 'off', not 'sometimes'", "error"),
    ("cutlens.toml", 'arch = "sm80x"\n', 1, "arch 'sm80x' is not an arch", "error"),
    ("cutlens.toml", 'jobs = true\n', 1, "jobs: expected an integer, not the boolean true",
     "error"),
    ("cutlens.toml", "jobs = 1\narch = \n", 2, "not valid TOML", "error"),
    ("cutlens.toml", 'allow_unsafe_flags = "yes"\n', 1,
     "allow_unsafe_flags: expected true or false or a list of strings", "error"),
    ("cutlens.toml", 'template_class = "nocolon"\n', 1, "template_class 'nocolon' is not",
     "error"),
    # bad paths
    ("cutlens.toml", 'include_dirs = ["missing"]\n', 1, "include_dirs: 'missing' does not "
     "exist", "error"),
    ("cutlens.toml", 'jobs = 1\nsearch_path = ["nope"]\n', 2, "search_path: 'nope' does not "
     "exist", "error"),
    # [bench]
    ("cutlens.toml", "[bench]\nwarmup_ms = -1\n", 2, "bench.warmup_ms must be at least 0",
     "error"),
    ("cutlens.toml", '[bench]\nexecutor = "slurm"\n', 2, "bench.executor must be one of",
     "error"),
    ("cutlens.toml", "[bench]\nwarmupms = 5\n", 2,
     "unknown key 'bench.warmupms' (did you mean 'warmup_ms'?)", "warning"),
    # per-template tables
    ("cutlens.toml", '[template."missing.cu.jinja"]\nkind = "cuda"\n', 1,
     "no file 'missing.cu.jinja'", "error"),
    ("cutlens.toml", '[template."t.cu.jinja"]\nkinds = "cuda"\n', 2,
     "unknown key 'template.t.cu.jinja.kinds' (did you mean 'kind'?)", "warning"),
    ("cutlens.toml", '[template."t.cu.jinja".compile]\ninclude_dirs = "inc"\n', 2,
     "compile.include_dirs: expected a list of strings, not the string 'inc'", "error"),
    ("cutlens.toml", '[template."t.cu.jinja".bench]\natol = "x"\n', 2,
     "bench.atol: expected a number, not the string 'x'", "error"),
    ("cutlens.toml", "template = 3\n", 1, "'template' must be a table", "error"),
    # [tool.cutlens] in pyproject.toml
    ("pyproject.toml", '[project]\nname = "x"\n[tool.cutlens]\njobs = "many"\n', 4,
     "jobs: expected an integer, not the string 'many'", "error"),
    ("pyproject.toml", '[tool.cutlens]\n[tool.cutlens.bench]\nrep_ms = "long"\n', 3,
     "bench.rep_ms: expected a number", "error"),
]


def _cutlens(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cutlens", *args], cwd=root,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name,text,line,message,severity", BAD_CONFIGS,
                         ids=[f"{c[0]}:{c[1].splitlines()[-1][:24]}" for c in BAD_CONFIGS])
def test_bad_config_is_one_clear_message_on_its_line(tmp_path: Path, name: str, text: str,
                                                     line: int, message: str, severity: str):
    (tmp_path / name).write_text(text)
    (tmp_path / "t.cu.jinja").write_text(TEMPLATE)
    out = _cutlens(tmp_path, "check", "--no-nvcc", ".")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    problems = [ln for ln in out.stderr.splitlines() if ln.startswith(f"{name}:")]
    assert len(problems) == 1, out.stderr
    assert problems[0].startswith(f"{name}:{line}:"), problems[0]
    assert f"{severity}: " in problems[0] and message in problems[0], problems[0]


@pytest.mark.parametrize("command", [["render", "t.cu.jinja"], ["variants", "t.cu.jinja"],
                                     ["bench", "t.cu.jinja", "--build-only"],
                                     ["lsp", "--headless", "."]])
def test_every_command_stops_on_a_bad_config(tmp_path: Path, command: list[str]):
    (tmp_path / "cutlens.toml").write_text('jobs = "two"\n')
    (tmp_path / "t.cu.jinja").write_text(TEMPLATE)
    out = _cutlens(tmp_path, *command)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert "cutlens.toml:1:" in out.stdout + out.stderr and "jobs" in out.stdout + out.stderr


def test_a_good_key_still_applies_beside_a_bad_one(tmp_path: Path):
    (tmp_path / "cutlens.toml").write_text('jobs = "two"\narch = "sm_80"\n')
    cfg = config.load(tmp_path)
    assert [d.line for d in cfg.problems] == [1]
    assert cfg.jobs == 0 and cfg.arch == "sm_80"


def test_paths_resolve_against_the_file_that_says_them(tmp_path: Path):
    """cutlens.toml (its per-template tables too) against the root; front matter against the
    template's own folder."""
    for d in ("inc", "sub/inc"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "sub" / "a.cu.jinja").write_text(TEMPLATE)
    (tmp_path / "sub" / "b.cu.jinja").write_text(
        '{#- cutlens\nkind = "cuda"\n[compile]\ninclude_dirs = ["inc"]\n-#}\nint y;\n')
    (tmp_path / "cutlens.toml").write_text(
        'include_dirs = ["inc"]\n[template."sub/a.cu.jinja".compile]\ninclude_dirs = ["inc"]\n')
    cfg = config.load(tmp_path)
    assert cfg.problems == [] and cfg.include_dirs == [str(tmp_path / "inc")]
    a = load(tmp_path / "sub" / "a.cu.jinja", cfg)
    assert a.compile.include_dirs == [str(tmp_path / "inc")]
    b = load(tmp_path / "sub" / "b.cu.jinja", cfg)
    assert b.compile.include_dirs == [str(tmp_path / "sub" / "inc")]


def test_editor_settings_are_checked_too(tmp_path: Path):
    cfg = config.load(tmp_path)
    problems = config.apply_settings(cfg, {"checkOn": "sometimes", "jobs": "4",
                                           "templateGlobs": ["**/*.jinja"], "arch": "sm_80"})
    msgs = sorted(d.message for d in problems)
    assert msgs == ["cutlens setting checkOn must be one of 'save', 'change', 'off', not "
                    "'sometimes'",
                    "cutlens setting jobs: expected an integer, not the string '4'"]
    assert cfg.arch == "sm_80" and "**/*.jinja" in cfg.globs and "**/*.cu.jinja" in cfg.globs


# -- the same problems in the editor ---------------------------------------------------------
@pytest.fixture
async def client(lsp_server: LanguageClient, tmp_path: Path) -> LanguageClient:
    (tmp_path / "cutlens.toml").write_text('arch = "sm_80"\njobs = "two"\n')
    (tmp_path / "t.cu.jinja").write_text(TEMPLATE)
    return await start_lsp(lsp_server, tmp_path, {"checkOn": "sometimes"})


async def test_config_problems_are_diagnostics_on_cutlens_toml(client: LanguageClient):
    root: Path = client.root  # type: ignore[attr-defined]
    t = root / "t.cu.jinja"
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(
        uri=t.as_uri(), language_id="cuda-jinja", version=1, text=TEMPLATE)))
    toml = (root / "cutlens.toml").as_uri()
    for _ in range(100):
        if client.diagnostics.get(toml):
            break
        await _sleep()
    [d] = client.diagnostics[toml]
    assert d.range.start.line == 1 and "jobs: expected an integer" in d.message
    assert d.severity == lsp.DiagnosticSeverity.Error
    for _ in range(100):
        if client.messages:
            break
        await _sleep()
    [m] = client.messages
    assert "checkOn must be one of" in m.message and m.type == lsp.MessageType.Error


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(0.05)


def test_editor_settings_are_typed_where_the_config_is():
    """The server's own keys are read once, typed; the rest goes onto each project's config;
    a bad value is a problem and its default, never an exception."""
    s = config.parse_editor_settings({"cutlens": {"jinjaDebounceMs": 40, "checkOn": "change",
                                                  "trusted": False, "python": "/x/python",
                                                  "benchmark": {"device": 1}, "nvcc": ""}})
    assert (s.trusted, s.jinja_debounce_s, s.problems) == (False, 0.04, ())
    assert dict(s.project) == {"checkOn": "change", "bench": {"device": 1}}
    bad = s.updated({"jinjaDebounceMs": "soon"})
    assert bad.jinja_debounce_ms == 150 and bad.trusted is False  # the earlier keys stay
    assert [p.message for p in bad.problems] == [
        "cutlens setting jinjaDebounceMs: expected a number of milliseconds, got 'soon'"]
    cfg = config.load(Path("/nonexistent-root"))
    assert config.apply_settings(cfg, dict(s.project)) == [] and cfg.check_on == "change"
