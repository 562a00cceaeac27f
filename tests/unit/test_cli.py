"""The ``cutlens`` command under real use, through the real command (``python -m cutlens``):
exit statuses, help, tracebacks that must not happen (a closed pipe, a missing matplotlib),
colour, paths, the ``--no-exec`` advice, the bench table off a terminal."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

CLEAN = """\
{#- cutlens
kind = "cuda"
[samples.small]
X = { dtype = "float32", size = [1024] }
Y = { dtype = "float32", size = [1024] }
[variants]
block = [128, 256]
-#}
{{ template.header() }}
{{ template.globals() }}
extern "C" {
{{ kernel.def_kernel(inputs=[X], outputs=[Y], names_str="X, Y") }} {
  if (workspace_size) { *workspace_size = 0; return 0; }
  return {{ block }} > 0 ? 0 : 1;
}
}
"""

#: Every variant fails to render, each with a long message.
ALL_FAIL = """\
{#- cutlens
kind = "cuda"
[samples.small]
X = { dtype = "float32", size = [1024] }
Y = { dtype = "float32", size = [1024] }
[variants]
block = [128, 256]
-#}
{{ template.header() }}
{{ this_is_an_undefined_name_with_a_rather_long_name_so_that_the_error_is_long.stages }}
"""

BAD_FRONT = """\
{#- cutlens
kind = "cuda"
[samples.small]
X = { dtype = "float32", size = [1024]
-#}
int x;
"""


def cutlens(*args: str, cwd: Path, env: dict | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cutlens", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def fake_nvcc(root: Path) -> Path:
    """An nvcc that only answers --version (for benches where nothing compiles)."""
    path = root / "fake-nvcc"
    path.write_text("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'Cuda compilation "
                    "tools, release 13.0, V13.0.0'; exit 0; fi\necho 'fake nvcc: no' >&2\n"
                    "exit 1\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "cutlens.toml").write_text(f'nvcc = "{fake_nvcc(tmp_path)}"\n'
                                           'cutlass = false\n[bench]\ndevice = "cpu"\n')
    (tmp_path / "t.cu.jinja").write_text(CLEAN)
    return tmp_path


def on_a_terminal(args: list[str], cwd: Path, env: dict | None = None,
                  timeout: float = 300) -> tuple[int, bytes, bytes]:
    """Run the command with stdout and stderr on two pseudo-terminals; (status, stdout,
    stderr) as the terminals received them."""
    out_m, out_s = pty.openpty()
    err_m, err_s = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "cutlens", *args], cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=out_s, stderr=err_s,
                            env={**os.environ, "COLUMNS": "100", **(env or {})})
    os.close(out_s)
    os.close(err_s)
    got = {out_m: b"", err_m: b""}
    open_fds = [out_m, err_m]
    while open_fds:
        ready, _, _ = select.select(open_fds, [], [], timeout)
        if not ready:
            proc.kill()
            raise AssertionError(f"no output for {timeout} s")
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the other end closed
                chunk = b""
            if chunk:
                got[fd] += chunk
            else:
                open_fds.remove(fd)
                os.close(fd)
    return proc.wait(timeout=timeout), got[out_m], got[err_m]


# -- help --------------------------------------------------------------------------------------
def test_cutlens_alone_prints_an_overview(tmp_path: Path):
    r = cutlens(cwd=tmp_path)
    assert r.returncode == 2
    assert "arguments are required" not in r.stdout + r.stderr
    for command in ("render", "variants", "check", "bench", "watch", "lsp"):
        assert f"\n  {command} " in r.stdout
    assert "examples:" in r.stdout and "cutlens check templates/" in r.stdout
    assert "cutlens COMMAND --help" in r.stdout


def test_every_option_has_help_and_every_command_examples(tmp_path: Path):
    from cutlens.cli.main import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    undocumented = [f"{name} {a.option_strings or a.dest}"
                    for name, p in sub.choices.items() for a in p._actions
                    if not a.help or a.help == argparse.SUPPRESS]
    assert undocumented == []
    for name in sub.choices:
        r = cutlens(name, "--help", cwd=tmp_path)
        assert r.returncode == 0
        assert "examples:\n  cutlens " + name in r.stdout, name
        assert "exit status" in r.stdout and "2    usage or config" in r.stdout, name
        assert "--color {auto,always,never}" in r.stdout and "NO_COLOR" in r.stdout, name
        if name not in ("lsp", "capture", "profile"):  # the selection syntax (profile: one variant)
            assert "all | first | first:K | N (index) | NAME | GLOB" in r.stdout, name
            assert "--variants 0 3 '*pingpong*'" in r.stdout, name


# -- tracebacks --------------------------------------------------------------------------------
def test_a_closed_pipe_is_no_traceback(tmp_path: Path):
    """`cutlens variants T | head -1` with more output than a pipe holds."""
    (tmp_path / "big.cu.jinja").write_text(CLEAN.replace(
        "block = [128, 256]", f"block = {list(range(1, 41))}\nwarps = {list(range(1, 41))}"))
    for cmd in ("variants big.cu.jinja", "variants big.cu.jinja --format json",
                "render big.cu.jinja --all"):
        r = subprocess.run(["bash", "-o", "pipefail", "-c",
                            f"{sys.executable} -m cutlens {cmd} | head -1"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert "Traceback" not in r.stderr and "BrokenPipeError" not in r.stderr, r.stderr
        assert r.stderr == "" and r.stdout.count("\n") == 1, (cmd, r.stderr)
        assert r.returncode == 141, cmd  # 128 + SIGPIPE, as other tools


def test_plot_without_matplotlib_fails_before_the_sweep(root: Path, tmp_path_factory):
    stub = tmp_path_factory.mktemp("no-matplotlib")
    (stub / "matplotlib").mkdir()
    (stub / "matplotlib" / "__init__.py").write_text(
        "raise ImportError(\"No module named 'matplotlib'\")\n")
    env = {"PYTHONPATH": os.pathsep.join([str(stub), os.environ.get("PYTHONPATH", "")])}
    r = cutlens("bench", "t.cu.jinja", "--plot", "x.png", cwd=root, env=env)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("cutlens bench: --plot x.png: matplotlib is not installed")
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert not (root / ".cutlens" / "results.sqlite").exists()  # no sweep ran
    assert not (root / "x.png").exists()


def test_compare_with_an_unreadable_baseline_is_a_usage_error_up_front(root: Path):
    (root / "base.json").write_text("{not json")
    r = cutlens("bench", "t.cu.jinja", "--compare", "base.json", cwd=root)
    assert r.returncode == 2 and r.stderr.startswith("cutlens bench: --compare base.json")
    assert "Traceback" not in r.stderr
    assert not (root / ".cutlens" / "results.sqlite").exists()


# -- exit statuses -----------------------------------------------------------------------------
def test_bench_exits_1_when_every_variant_fails_to_render(root: Path):
    (root / "t.cu.jinja").write_text(ALL_FAIL)
    r = cutlens("bench", "t.cu.jinja", "--format", "json", cwd=root)
    assert r.returncode == 1, r.stderr
    rows = json.loads(r.stdout)["results"]
    assert len(rows) == 2 and all(row["error"].startswith("render: ") for row in rows)
    assert "cutlens bench: 2 result(s) failed" in r.stderr


def test_bench_on_bad_front_matter_exits_like_check(root: Path):
    (root / "t.cu.jinja").write_text(BAD_FRONT)
    check = cutlens("check", "t.cu.jinja", "--no-nvcc", cwd=root)
    bench = cutlens("bench", "t.cu.jinja", cwd=root)
    assert check.returncode == bench.returncode == 1, bench.stderr
    line = next(ln for ln in check.stdout.splitlines() if ": error: " in ln)
    assert line.startswith("t.cu.jinja:4:") and line in bench.stderr
    assert "Traceback" not in bench.stderr
    # a bad project config is a usage error for both
    (root / "cutlens.toml").write_text("jobs = 'two'\n")
    (root / "t.cu.jinja").write_text(CLEAN)
    assert cutlens("check", "t.cu.jinja", cwd=root).returncode == 2
    r = cutlens("bench", "t.cu.jinja", cwd=root)
    assert r.returncode == 2 and "cutlens.toml:1:" in r.stderr


def test_usage_errors_exit_2_everywhere(root: Path):
    for args in (["render", "nope.cu.jinja"], ["variants", "nope.cu.jinja"],
                 ["check", "nope/"], ["bench", "nope.cu.jinja"], ["watch", "nope/"],
                 ["render", "t.cu.jinja", "--variant", "no-such-variant"],
                 ["check", "t.cu.jinja", "--variants", "no-such-variant"],
                 ["bench", "t.cu.jinja", "--variants", "no-such-variant"]):
        r = cutlens(*args, cwd=root)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith(f"cutlens {args[0]}: ") and "Traceback" not in r.stderr


@pytest.mark.parametrize("error", [RuntimeError("boom\nsecond line"), ValueError("bad value")])
def test_an_internal_error_exits_2_with_one_line_and_a_log(monkeypatch, tmp_path, capsys,
                                                          error):
    """A cutlens bug (any exception but a usage error, ValueError included) is no "problems
    found" (1): exit 2, one line naming the log file that holds the traceback."""
    main_mod = importlib.import_module("cutlens.cli.main")

    def crash(args: argparse.Namespace) -> int:
        raise error

    monkeypatch.setitem(main_mod.COMMANDS, "variants", crash)
    monkeypatch.setenv("CUTLENS_LOG_DIR", str(tmp_path / "logs"))
    assert main_mod.main(["variants", "t.cu.jinja"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"cutlens variants: internal error: {type(error).__name__}: ")
    log = Path(re.search(r"traceback in (\S+)\)", err).group(1))
    assert log.parent == tmp_path / "logs"
    text = log.read_text()
    assert "Traceback" in text and "in crash" in text and str(error) in text
    # --debug: the traceback on stderr
    assert main_mod.main(["variants", "t.cu.jinja", "--debug"]) == 2
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_a_usage_error_from_a_stage_is_one_line_without_a_log(monkeypatch, tmp_path, capsys):
    main_mod = importlib.import_module("cutlens.cli.main")
    from cutlens.errors import UsageError

    def refuse(args: argparse.Namespace) -> int:
        raise UsageError("--gpus is for the local executor")

    monkeypatch.setitem(main_mod.COMMANDS, "variants", refuse)
    monkeypatch.setenv("CUTLENS_LOG_DIR", str(tmp_path / "logs"))
    assert main_mod.main(["variants", "t.cu.jinja"]) == 2
    assert capsys.readouterr().err == "cutlens variants: --gpus is for the local executor\n"
    assert not (tmp_path / "logs").exists()


# -- output ------------------------------------------------------------------------------------
def test_render_prints_relative_paths_like_check(root: Path):
    r = cutlens("render", "t.cu.jinja", "--all", "-o", "out", cwd=root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["out/small__block-128/t.cu", "out/small__block-256/t.cu"]
    (root / "t.cu.jinja").write_text(CLEAN.replace("{{ block }} > 0", "{{ blok }} > 0"))
    r = cutlens("render", str(root / "t.cu.jinja"), cwd=root)
    assert r.returncode == 1
    assert r.stderr.startswith("t.cu.jinja:14:"), r.stderr


def test_no_exec_gives_the_trust_advice_once(root: Path):
    (root / "u.cu.jinja").write_text(CLEAN)
    for args in (["check", "--no-exec", "."], ["lsp", "--headless", ".", "--no-exec"]):
        r = cutlens(*args, cwd=root)
        assert r.returncode == 0, r.stderr
        assert "To trust it" not in r.stdout and "not trusted" not in r.stdout, r.stdout
        assert r.stderr.count("--no-exec: the Jinja tier only") == 1, r.stderr
    # machine formats keep one notice per template
    r = cutlens("check", "--no-exec", "--format", "json", ".", cwd=root)
    notes = [d for d in json.loads(r.stdout)["diagnostics"] if d["code"] == "untrusted"]
    assert len(notes) == 2


def test_colour_follows_the_flag_the_terminal_and_no_color(root: Path):
    (root / "t.cu.jinja").write_text(CLEAN.replace("{{ block }} > 0", "{{ blok }} > 0"))
    args = ["check", "t.cu.jinja", "--no-nvcc"]
    red = "\x1b[1;31merror:\x1b[0m"
    piped = cutlens(*args, cwd=root)
    assert piped.returncode == 1 and "\x1b[" not in piped.stdout
    assert red in cutlens(*args, "--color", "always", cwd=root).stdout
    assert red in cutlens(*args, "--color", "always", cwd=root, env={"NO_COLOR": "1"}).stdout
    status, out, _ = on_a_terminal(args, root, env={"NO_COLOR": ""})
    assert status == 1 and red.encode() in out
    status, out, _ = on_a_terminal(args, root, env={"NO_COLOR": "1"})
    assert status == 1 and b"\x1b[" not in out and b"error: 'blok' is undefined" in out
    status, out, _ = on_a_terminal([*args, "--color", "never"], root, env={"NO_COLOR": ""})
    assert b"\x1b[" not in out


@pytest.mark.nvcc
def test_progress_line_shows_sample_and_variant(tmp_path: Path):
    """On a terminal, check's nvcc progress names ``[sample/variant]`` (not eaten as rich
    markup)."""
    (tmp_path / "cutlens.toml").write_text("cutlass = false\njobs = 1\n")
    (tmp_path / "t.cu.jinja").write_text(CLEAN)
    status, _out, err = on_a_terminal(["check", "t.cu.jinja", "--mode", "quick"], tmp_path)
    assert status == 0, err
    assert b"t.cu.jinja [small/block=128]" in err or b"t.cu.jinja [small/block=256]" in err


def test_bench_table_off_a_terminal_is_not_squeezed(root: Path):
    (root / "t.cu.jinja").write_text(ALL_FAIL)
    r = cutlens("bench", "t.cu.jinja", cwd=root, env={"COLUMNS": "80"})
    assert r.returncode == 1
    rows = [ln for ln in r.stdout.splitlines() if "block=128" in ln]
    assert len(rows) == 1, r.stdout  # one line per result, the error not wrapped
    assert "'this_is_an_undefined_name_with_a_rather_long_name_so_that_the_error_is_long' " \
           "is undefined" in rows[0]
    assert len(rows[0]) > 80
    # on a terminal: the table fits it, and long errors are listed in full below
    status, out, _ = on_a_terminal(["bench", "t.cu.jinja"], root)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode())
    assert status == 1
    assert max(len(ln) for ln in text.splitlines() if "│" in ln) <= 100
    assert "failures:" in text and "this_is_an_undefined_name_with_a_rather_long_name_so" \
                                   "_that_the_error_is_long' is undefined" in text


def test_check_text_carries_the_code_and_warnings_can_fail(tmp_path: Path):
    """The text line ends in the diagnostic's code as compilers print theirs (what JSON,
    SARIF and the editor carry); ``--warnings-as-errors`` makes a warning fail the check."""
    (tmp_path / "t.cu.jinja").write_text(
        '{#- cutlens\nkind = "cuda"\nsampels = 1\n[samples.small]\n'
        'X = { dtype = "float32", size = [8] }\n-#}\nint x = {{ 1 }};\n')
    plain = cutlens("check", "t.cu.jinja", "--no-nvcc", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert ("t.cu.jinja:3:1: warning: unknown key 'sampels' (did you mean 'samples'?) "
            "[config]") in plain.stdout.splitlines()
    data = json.loads(cutlens("check", "t.cu.jinja", "--no-nvcc", "--format", "json",
                              cwd=tmp_path).stdout)
    assert "config" in {d["code"] for d in data["diagnostics"]}
    strict = cutlens("check", "t.cu.jinja", "--no-nvcc", "--warnings-as-errors", cwd=tmp_path)
    assert strict.returncode == 1 and "--warnings-as-errors" in strict.stderr
    (tmp_path / "t.cu.jinja").write_text(CLEAN)  # no warning: the option changes nothing
    clean = cutlens("check", "t.cu.jinja", "--no-nvcc", "--warnings-as-errors", cwd=tmp_path)
    assert clean.returncode == 0 and clean.stdout == "", clean.stdout + clean.stderr
