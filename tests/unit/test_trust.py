"""Trust (#9): untrusted workspaces and --no-exec run no workspace code; the Jinja sandbox;
includes and companions confined to the project; the nvcc flag policy; no shell; loopback."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cutlens import config as config
from cutlens import trust
from cutlens.check.jinja_tier import jinja_check
from cutlens.check.nvcc_tier import compile_options
from cutlens.config import flags as flags_mod
from cutlens.nvcc.pool import CompileJob, CompileOptions, Compiler, Mode
from cutlens.render.renderer import Renderer, RenderFailure
from cutlens.template.symexpr import ExprError, parse

from conftest import REPO, Project, line_of

GENERATOR = """\
from pathlib import Path


def variants():
    Path(__file__).with_name("GENERATOR_RAN").write_text("ran")
    return [{"block": 128}, {"block": 256}]
"""
GEN_TEMPLATE = """\
{#- cutlens
kind = "cuda"
[variants]
generator = "gen:variants"
-#}
int x = {{ block }};
{% if %}
"""
PLAIN_TEMPLATE = """\
{#- cutlens
kind = "cuda"
[variants]
block = [64]
-#}
int x = {{ blok }};
"""


def fake_nvcc(root: Path) -> Path:
    """An nvcc that logs every invocation (argv as JSON) to ``root/NVCC_LOG``."""
    path = root / "fake-nvcc"
    path.write_text(f"""#!{sys.executable}
import json, sys
with open({str(root / "NVCC_LOG")!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:] == ["--version"]:
    print("fake nvcc, V0.0.1")
""")
    path.chmod(0o755)
    return path


def cutlens(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cutlens", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def workspace(project: Project) -> Project:
    nvcc = fake_nvcc(project.root)
    project.write("cutlens.toml", f'nvcc = "{nvcc}"\ncutlass = false\n')
    project.write("gen.py", GENERATOR)
    project.write("gen.cu.jinja", GEN_TEMPLATE)
    project.write("plain.cu.jinja", PLAIN_TEMPLATE)
    return project


# -- untrusted: no workspace code ------------------------------------------------------------
def test_check_no_exec_runs_no_generator_and_no_nvcc(workspace: Project):
    r = cutlens("check", "--no-exec", "--format", "json", ".", cwd=workspace.root)
    assert not (workspace.root / "GENERATOR_RAN").exists()
    assert not (workspace.root / "NVCC_LOG").exists()
    diags = json.loads(r.stdout)["diagnostics"]
    by_file: dict[str, list[dict]] = {}
    for d in diags:
        by_file.setdefault(Path(d["file"]).name, []).append(d)
    for name in ("gen.cu.jinja", "plain.cu.jinja"):
        notes = [d for d in by_file[name] if d["severity"] == "info"]
        assert len(notes) == 1 and "not trusted" in notes[0]["message"], by_file[name]
    assert "gen:variants" in next(d for d in by_file["gen.cu.jinja"]
                                  if d["severity"] == "info")["message"]
    # the Jinja tier still reports: a syntax error (generator template: syntax only) and an
    # undefined name (a template without workspace Python renders)
    errors = {(n, d["line"], d["message"]) for n, ds in by_file.items() for d in ds
              if d["severity"] == "error"}
    assert errors == {("gen.cu.jinja", 7, "syntax error: Expected an expression, got 'end "
                                          "of statement block'"),
                      ("plain.cu.jinja", 6, "'blok' is undefined")}
    assert r.returncode == 1


def test_check_trusted_runs_the_generator_and_nvcc(workspace: Project):
    workspace.write("gen.cu.jinja", GEN_TEMPLATE.replace("{% if %}", ""))
    r = cutlens("check", "--format", "json", "gen.cu.jinja", cwd=workspace.root)
    assert (workspace.root / "GENERATOR_RAN").exists(), r.stderr
    assert (workspace.root / "NVCC_LOG").exists()
    assert "not trusted" not in r.stdout


@pytest.mark.parametrize("cmd", [["render"], ["variants"], ["render", "--all"]])
def test_render_and_variants_no_exec_refuse_the_generator(workspace: Project, cmd):
    r = cutlens(*cmd, "--no-exec", "gen.cu.jinja", cwd=workspace.root)
    assert not (workspace.root / "GENERATOR_RAN").exists()
    assert "--no-exec: not run: generator 'gen:variants'" in r.stderr


def test_bench_and_watch_and_headless_take_no_exec(workspace: Project):
    r = cutlens("bench", "--no-exec", "gen.cu.jinja", cwd=workspace.root)
    assert r.returncode == 2 and "--no-exec refuses it" in r.stderr
    for cmd in (["watch", "--help"], ["lsp", "--help"]):
        assert "--no-exec" in cutlens(*cmd, cwd=workspace.root).stdout
    r = cutlens("lsp", "--headless", "gen.cu.jinja", "--no-exec", cwd=workspace.root)
    assert not (workspace.root / "GENERATOR_RAN").exists()
    assert not (workspace.root / "NVCC_LOG").exists()
    assert "info: Workspace not trusted" in r.stdout
    assert "syntax error" in r.stdout and r.returncode == 1


def test_template_class_is_not_imported_untrusted(workspace: Project):
    workspace.write("helpers.py", "from pathlib import Path\n"
                    "Path(__file__).with_name('HELPERS_RAN').write_text('ran')\n"
                    "from cutlens.render.hooks import TemplateContext\n"
                    "class T(TemplateContext):\n    pass\n")
    workspace.write("tc.cu.jinja", '{#- cutlens\nkind = "cuda"\ntemplate_class = '
                    '"helpers:T"\n-#}\nint x = {{ 1 + }};\n')
    t = workspace.load("tc.cu.jinja")
    with trust.exec_policy(False):
        jc = jinja_check(t, Renderer())
        r = Renderer().render(t, t.sample(None), t.variant(t.sample(None), None))
    assert not (workspace.root / "HELPERS_RAN").exists()
    assert [d.severity for d in jc.diagnostics] == ["info", "error"]
    assert "template_class 'helpers:T'" in jc.diagnostics[0].message
    assert jc.diagnostics[1].line == 5 and "syntax error" in jc.diagnostics[1].message
    assert isinstance(r, RenderFailure) and "not trusted" in r.diagnostics[0].message
    jinja_check(t, Renderer())  # trusted again: the helper module loads
    assert (workspace.root / "HELPERS_RAN").exists()


# -- the sandbox -----------------------------------------------------------------------------
SANDBOX_TEMPLATE = """\
{#- cutlens
kind = "cuda"
[samples.s]
X = { dtype = "float32", size = ["M"] }
hints = { M = 4 }
-#}
// before
{{ EXPR }}
// after
"""
PAYLOAD = "__import__('os').system('touch {marker}')"


@pytest.mark.parametrize("expr,token", [
    ("''.__class__.__mro__", "__class__"),
    ("kernel.__init__.__globals__", "__init__"),
    ("cycler.__init__.__globals__.os", "__init__"),
    ("joiner.__init__.__globals__", "__init__"),
    ("lipsum.__globals__", "__globals__"),
    ("range.__self__", "__self__"),
    ("template.__class__.__init__.__globals__", "__class__"),
    ("'{0.__class__}'.format(kernel)", None),
    ("'%s'|format(kernel.__class__)", "__class__"),
    ("X.get_size()[0].subs('M', \"PAYLOAD\")", None),
    ("X.get_size()[0].func(\"PAYLOAD\")", None),
    ("kernel.rename_indexing(\"PAYLOAD\")", "rename_indexing"),
    ("X.concrete({'M': \"PAYLOAD\"})", None),
])
def test_sandbox_escapes_are_diagnostics_and_never_run(project: Project, expr: str,
                                                       token: str | None):
    marker = project.root / "ESCAPED"
    expr = expr.replace("PAYLOAD", PAYLOAD.format(marker=marker))
    text = SANDBOX_TEMPLATE.replace("EXPR", expr)
    project.write("t.cu.jinja", text)
    r = project.render("t.cu.jinja")
    assert isinstance(r, RenderFailure), "the escape rendered"
    [d] = r.diagnostics
    assert d.line == line_of(text, expr[:12]) == 8
    assert d.severity == "error"
    if token is not None:
        line = text.splitlines()[7]
        assert line[d.column - 1:d.end_column - 1] == token, d
    assert not marker.exists()


def test_skip_if_cannot_hand_sympy_a_string(project: Project):
    marker = project.root / "ESCAPED"
    payload = PAYLOAD.format(marker=marker)
    text = SANDBOX_TEMPLATE.replace("{{ EXPR }}", "").replace(
        "hints = { M = 4 }", f"hints = {{ M = 4 }}\n[variants]\nb = [1]\n"
        f"skip_if = \'\'\'X.get_size()[0].subs(\"M\", \"{payload}\") == 1\'\'\'")
    project.write("t.cu.jinja", text)
    t = project.load("t.cu.jinja")
    assert t.variants(t.sample(None)) == []
    [d] = t.errors
    assert d.line == line_of(text, "skip_if") and "sympy" in d.message
    assert not marker.exists()


def test_front_matter_size_expressions_are_never_evaluated(project: Project):
    marker = project.root / "ESCAPED"
    payload = ("[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "
               "'_wrap_close'][0].__init__.__globals__['system']('touch " + str(marker) +
               "') * 0 + 4")
    text = SANDBOX_TEMPLATE.replace('"M"', json.dumps(payload)).replace("{{ EXPR }}", "")
    project.write("t.cu.jinja", text)
    t = project.load("t.cu.jinja")
    assert not marker.exists()
    [d] = [d for d in t.errors if d.severity == "error"]
    assert d.line == 4 and "cannot parse X size" in d.message


def test_size_expressions_parse_like_sympy():
    import sympy

    for text in ("M", "2*M + 1", "M // 128", "(M + 127) % 128", "M**2", "-M", "Max(M, 4)",
                 "floor(M / 2)", "ceiling(M/3)*N"):
        names = {n: sympy.Symbol(n, integer=True, positive=True) for n in "MN"}
        assert parse(text) == sympy.sympify(text, locals=names), text
    for bad in ("__import__('os')", "().__class__", "M.subs", "'a'", "1.5", "lambda: 1",
                "[M]", "M if M else 1", "9**9**9", "f(M)", "M(1)"):
        with pytest.raises(ExprError):
            parse(bad)


# -- includes and companions -----------------------------------------------------------------
INCLUDING = """\
{#- cutlens
kind = "cuda"
-#}
// a line
{% include NAME %}
"""


@pytest.fixture
def outside(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("outside")
    (d / "secret.jinja").write_text("SECRET CONTENT\n")
    return d


def _include(project: Project, name: str, where: str = "t.cu.jinja"):
    text = INCLUDING.replace("NAME", repr(name))
    project.write(where, text)
    return project.render(where), text


def test_include_outside_the_root_is_refused(project: Project, outside: Path):
    project.write("cutlens.toml", "")
    rel = os.path.relpath(outside / "secret.jinja", project.root)
    (project.root / "link.jinja").symlink_to(outside / "secret.jinja")
    (project.root / "linkdir").symlink_to(outside)
    for name in (rel, str(outside / "secret.jinja"), "link.jinja", "linkdir/secret.jinja",
                 "../" * 12 + "etc/passwd", "/etc/passwd"):
        r, text = _include(project, name)
        assert isinstance(r, RenderFailure), name
        [d] = r.diagnostics
        assert (d.line, d.code, d.severity) == (5, "outside-roots", "error"), (name, d)
        assert "outside the project's template roots" in d.message
        assert text.splitlines()[4][d.column - 1:d.end_column - 1] == name


def test_include_inside_the_root_and_search_path_still_work(project: Project, outside: Path):
    project.write("cutlens.toml", f'search_path = ["{outside}"]\n')
    project.write("parts/inner.jinja", "INNER\n")
    r, _ = _include(project, "../parts/inner.jinja", where="sub/t.cu.jinja")
    assert not isinstance(r, RenderFailure), r.diagnostics
    assert "INNER" in r.text
    r, _ = _include(project, "secret.jinja")  # through search_path: the project allows it
    assert not isinstance(r, RenderFailure), r.diagnostics
    assert "SECRET CONTENT" in r.text


@pytest.mark.parametrize("out_name", ["../escape.inc", "/tmp/escape.inc", "a/../../b.inc"])
def test_companion_output_outside_the_build_dir_is_refused(project: Project, out_name: str):
    project.write("comp.jinja", "int c;\n")
    text = ('{#- cutlens\nkind = "cuda"\n[companions]\n"ok.inc" = "comp.jinja"\n'
            f'{json.dumps(out_name)} = "comp.jinja"\n-#}}\nint x;\n')
    project.write("t.cu.jinja", text)
    t = project.load("t.cu.jinja")
    [d] = t.errors
    assert d.line == 5 and d.severity == "error" and "build directory" in d.message
    assert list(t.companions) == ["ok.inc"]


def test_companion_template_outside_the_roots_is_refused(project: Project, outside: Path):
    rel = os.path.relpath(outside / "secret.jinja", project.root)
    text = f'{{#- cutlens\nkind = "cuda"\n[companions]\n"c.inc" = "{rel}"\n-#}}\nint x;\n'
    project.write("cutlens.toml", "")
    project.write("t.cu.jinja", text)
    t = project.load("t.cu.jinja")
    [d] = t.errors
    assert d.line == 4 and "outside the project's template roots" in d.message
    assert t.companions == {}


# -- nvcc flags ------------------------------------------------------------------------------
FLAGS_TEMPLATE = """\
{#- cutlens
kind = "cuda"
[variants]
block = [64]
[compile]
extra_flags = [
  "-lineinfo", "-Xcompiler", "-Wall,-O2",
  "-ccbin", "/tmp/evil-cc",
  "--use_fast_math",
]
-#}
int x;
"""


def test_ccbin_in_front_matter_is_refused_on_its_line(project: Project):
    project.write("t.cu.jinja", FLAGS_TEMPLATE)
    t = project.load("t.cu.jinja")
    [d] = t.errors
    assert d.line == line_of(FLAGS_TEMPLATE, '"-ccbin"') == 8
    assert d.severity == "error" and d.code == "unsafe-flag"
    assert "'-ccbin'" in d.message and "allow_unsafe_flags" in d.message
    line = FLAGS_TEMPLATE.splitlines()[7]
    assert line[d.column - 1:d.end_column - 1] == '"-ccbin"'
    # the flag and its value never reach nvcc; the safe ones do
    flags = compile_options(t).extra_flags
    assert flags == ("-lineinfo", "-Xcompiler", "-Wall,-O2", "--use_fast_math")


@pytest.mark.parametrize("allow", ["true", '["-ccbin"]', '["--compiler-bindir"]'])
def test_project_config_allows_ccbin(project: Project, allow: str):
    project.write("cutlens.toml", f"allow_unsafe_flags = {allow}\n")
    project.write("t.cu.jinja", FLAGS_TEMPLATE)
    t = project.load("t.cu.jinja")
    assert t.errors == []
    assert "-ccbin" in compile_options(t).extra_flags


def test_editor_settings_cannot_allow_unsafe_flags(project: Project):
    cfg = config.load(project.root)
    config.apply_settings(cfg, {"allow_unsafe_flags": True, "arch": "sm_80"})
    assert cfg.allow_unsafe_flags is False and cfg.arch == "sm_80"


@pytest.mark.parametrize("flags,refused", [
    (["-ccbin=/x"], ["-ccbin=/x"]),
    (["--compiler-bindir", "/x", "-O3"], ["--compiler-bindir"]),
    (["-Xcompiler", "-wrapper,/bin/sh"], ["-Xcompiler"]),
    (["-Xcompiler=-fplugin=/tmp/p.so"], ["-Xcompiler=-fplugin=/tmp/p.so"]),
    (["--compiler-options", "-B/tmp"], ["--compiler-options"]),
    (["-Xcompiler", "-Wl,-plugin=/x"], ["-Xcompiler"]),
    (["-Xcompiler", "-specs=/tmp/s"], ["-Xcompiler"]),
    (["-Xlinker", "-plugin=/x.so"], ["-Xlinker"]),
    (["--linker-options=-o,/etc/x"], ["--linker-options=-o,/etc/x"]),
    (["--run"], ["--run"]), (["-run-args", "x"], ["-run-args"]),
    (["-o", "/etc/passwd"], ["-o"]), (["--keep-dir", "/tmp"], ["--keep-dir"]),
    (["-keep"], ["-keep"]), (["--dependency-output=/tmp/d"], ["--dependency-output=/tmp/d"]),
    (["-MF", "/tmp/d"], ["-MF"]), (["-optf", "opts"], ["-optf"]), (["@opts"], ["@opts"]),
    (["-Xptxas", "-o,/tmp/x"], ["-Xptxas"]), (["-Xcudafe", "--gen_c_file_name=/x"],
                                              ["-Xcudafe"]),
    (["-DX=$(id)"], ["-DX=$(id)"]), (["-DX=`id`"], ["-DX=`id`"]),
    # allowed: common flags, and the pass-through options' harmless pieces
    (["-Xcompiler", "-Wall,-Wno-unused,-O2,-fopenmp,-march=native,-DX=1"], []),
    (["-Xptxas=-v,-warn-spills", "-Xcudafe", "--diag_suppress=177", "-lineinfo"], []),
    (["--expt-extended-lambda", "-rdc=true", "-maxrregcount=128", "-DFOO=1;rm -rf ~"], []),
])
def test_flag_policy(flags: list[str], refused: list[str]):
    assert [p.text for p in flags_mod.unsafe_flags(flags)] == refused


def test_dollar_is_refused_even_when_unsafe_flags_are_allowed(project: Project):
    project.write("cutlens.toml", "allow_unsafe_flags = true\n")
    text = ('{#- cutlens\nkind = "cuda"\n[compile]\ndefines = ["OK=1", "X=$(touch pwned)"]\n'
            'std = "c++17`id`"\n-#}\nint x;\n')
    project.write("t.cu.jinja", text)
    t = project.load("t.cu.jinja")
    assert [(d.line, d.code) for d in t.errors] == [(4, "unsafe-flag"), (5, "unsafe-flag")]
    opts = compile_options(t)
    assert opts.defines == ("OK=1",) and opts.std == config.ProjectConfig().std


# -- no shell --------------------------------------------------------------------------------
def test_no_shell_anywhere_in_the_package():
    src = REPO / "server" / "cutlens"
    hits = [f"{p.relative_to(src)}:{i}" for p in src.rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if re.search(r"shell\s*=\s*True|os\.system\(|os\.popen\(|create_subprocess_shell",
                         line)]
    assert hits == []


def test_flag_values_reach_nvcc_as_literal_arguments(tmp_path: Path):
    nvcc = fake_nvcc(tmp_path)
    evil = f"-DX=1; touch {tmp_path / 'PWNED'}; rm -rf {tmp_path / 'victim'}"
    (tmp_path / "victim").mkdir()
    opts = CompileOptions(nvcc=str(nvcc), cutlass=False, defines=(evil[2:],),
                          extra_flags=("-Xcompiler", "-Wall"))
    comp = Compiler(tmp_path / "cache", 1)
    res = comp.compile_sync(CompileJob("int x;\n", Mode.QUICK, opts, "k"))
    argv = [json.loads(line) for line in (tmp_path / "NVCC_LOG").read_text().splitlines()]
    assert evil in argv[-1] and res.command[1:] == argv[-1]
    assert not (tmp_path / "PWNED").exists() and (tmp_path / "victim").is_dir()


def test_shell_expansions_never_reach_nvcc(tmp_path: Path):
    nvcc = fake_nvcc(tmp_path)
    opts = CompileOptions(nvcc=str(nvcc), cutlass=False,
                          defines=(f"X=$(touch {tmp_path / 'PWNED'})",))
    res = Compiler(tmp_path / "cache", 1).compile_sync(CompileJob("int x;\n", Mode.QUICK,
                                                                  opts, "k"))
    assert not res.ok and "nvcc not run" in res.errors[0].message
    runs = (tmp_path / "NVCC_LOG").read_text().splitlines()
    assert runs == ['["--version"]']  # identified for the cache key, never compiled with it


# -- network ---------------------------------------------------------------------------------
def _listening(port: int) -> list[str]:
    """Local addresses of LISTEN sockets on ``port`` (from /proc/net/tcp and tcp6)."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            addr, p = local.split(":")
            if int(p, 16) == port and state == "0A":
                out.append(addr)
    return out


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs /proc/net/tcp")
def test_tcp_listens_on_loopback_only(tmp_path: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "cutlens", "lsp", "--tcp", "--port",
                             str(port)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _listening(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _listening(port) == ["0100007F"]  # 127.0.0.1, and nothing else
    finally:
        proc.kill()
        proc.wait()
    r = cutlens("lsp", "--tcp", "--host", "0.0.0.0", cwd=tmp_path)
    assert r.returncode == 2 and "--host" in r.stderr


def test_session_trust_defaults_and_no_exec():
    from cutlens.lsp.session import Session

    s = Session()
    assert s.trusted  # a client that says nothing: trusted, like the CLI
    s.settings = s.settings.updated({"trusted": False})
    assert not s.trusted
    s.settings = s.settings.updated({"cutlens": {"trusted": "true"}})
    assert s.trusted
    assert not Session(no_exec=True).trusted
    forced = Session(no_exec=True)
    forced.settings = forced.settings.updated({"trusted": True})
    assert not forced.trusted
