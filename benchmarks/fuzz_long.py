"""Long fuzzing runs (issue #9): every target of ``tests/fuzz`` with a big budget, plus atheris
(coverage-guided) harnesses for the two text parsers, seeded with real inputs. Counts the
inputs each target tried and the crashes it found, and writes ``docs/fuzzing.json``.

    .venv/bin/python benchmarks/fuzz_long.py                     # the committed figures
    .venv/bin/python benchmarks/fuzz_long.py --scale 0.01        # a quick look (1%)
    .venv/bin/python benchmarks/fuzz_long.py --only nvcc_output.grammar --jobs 1

Each target runs in its own process (``--jobs`` at a time). A "crash" is any failing property:
an exception out of a parser or handler, or a property violation (an insane field, a
diagnostic off the text, a rendered line mapped wrongly, an ERROR logged by the server).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FUZZ = REPO / "tests" / "fuzz"


@dataclass
class Target:
    """A hypothesis property test run with ``examples`` inputs (``divisor``: the test's own
    divisor of ``CUTLENS_FUZZ_EXAMPLES``)."""

    name: str
    module: str
    function: str
    examples: int
    parser: bool = True  # counts towards the parser-input total (else: edit sequences)
    divisor: int = 1


TARGETS = [
    Target("nvcc_output.arbitrary_text", "test_fuzz_nvcc_output", "test_arbitrary_text",
           100_000),
    Target("nvcc_output.grammar", "test_fuzz_nvcc_output", "test_grammar_of_nvcc_lines",
           100_000),
    Target("nvcc_output.mutated_fixtures", "test_fuzz_nvcc_output",
           "test_mutated_real_outputs", 100_000),
    Target("nvcc_output.crlf_ansi_invariance", "test_fuzz_nvcc_output",
           "test_crlf_and_colour_codes_change_nothing", 20_000),
    Target("nvcc_output.demangle", "test_fuzz_nvcc_output",
           "test_demangling_hostile_kernel_names", 2_000, divisor=100),
    Target("frontmatter.arbitrary_text", "test_fuzz_frontmatter", "test_arbitrary_text",
           100_000),
    Target("frontmatter.generated_toml", "test_fuzz_frontmatter",
           "test_generated_toml_round_trips_with_its_line_index", 50_000),
    Target("frontmatter.mutated_toml", "test_fuzz_frontmatter", "test_mutated_toml", 50_000),
    Target("template.settings_load", "test_fuzz_frontmatter",
           "test_template_settings_load_without_raising", 20_000),
    Target("sourcemap.templates", "test_fuzz_sourcemap",
           "test_every_rendered_line_maps_to_its_template_line", 20_000),
    Target("lsp.in_process_sequences", "test_fuzz_lsp", "test_random_edit_sequences_in_process",
           10_000, parser=False, divisor=10),
    Target("lsp.stdio_sequences", "test_fuzz_lsp", "test_random_edit_sequences_over_stdio",
           300, parser=False, divisor=100),
]
ATHERIS = {"atheris.nvcc_output": 500_000, "atheris.frontmatter": 1_000_000}


@dataclass
class Result:
    name: str
    kind: str
    inputs: int = 0
    seconds: float = 0.0
    crashes: int = 0
    failures: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- hypothesis


def _describe(exc: BaseException) -> list[str]:
    out = []
    for e in exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]:
        notes = "\n".join(getattr(e, "__notes__", []))
        out.append(f"{type(e).__name__}: {str(e)[:2000]}\n{notes[:4000]}")
    return out


def run_target(name: str) -> Result:
    """Run one hypothesis target in this process (the child side of :func:`main`)."""
    t = next(t for t in TARGETS if t.name == name)
    sys.path[:0] = [str(FUZZ), str(REPO / "tests")]
    n = int(float(os.environ.get("FUZZ_SCALE", "1")) * t.examples) or 1
    os.environ["CUTLENS_FUZZ_EXAMPLES"] = str(n * t.divisor)
    import fuzz_common

    mod = importlib.import_module(t.module)
    fn = getattr(mod, t.function)
    res = Result(name, "hypothesis", extra={"examples_asked": n})
    kwargs: dict[str, Any] = {}
    tmp = None
    if "stdio" in t.function:
        from fuzz_lsp import StdioServer

        tmp = tempfile.TemporaryDirectory(prefix="cutlens-fuzz-stdio-")
        kwargs["stdio_server"] = StdioServer(Path(tmp.name).resolve())
    t0 = time.perf_counter()
    try:
        fn(**kwargs)
    except BaseException as e:  # a failing property: report it, do not die
        res.failures = _describe(e)
        res.crashes = len(res.failures)
    finally:
        if kwargs:
            srv = kwargs["stdio_server"]
            errors = srv.errors()
            srv.close()
            if errors and not res.crashes:
                res.failures, res.crashes = ["server log:\n" + "\n".join(errors)], 1
        if tmp is not None:
            tmp.cleanup()
    res.seconds = round(time.perf_counter() - t0, 1)
    res.inputs = sum(fuzz_common.INPUTS.values())
    res.extra["counted"] = dict(fuzz_common.INPUTS)
    return res


# --------------------------------------------------------------------------- atheris

_SEEDS_FM = [
    '{#- cutlens\nkind = "cuda"\n[samples.s]\nX = { dtype = "float32", size = [8] }\n'
    '[variants]\nblock = [64, 128]\nskip_if = "block > 64"\n-#}\n{{ block }}\n',
    "{# cutlens\n[[variant]]\nname = \"a\"\n[template.\"x.cu.jinja\".variants]\nn = [1]\n#}\n",
    "{#- cutlens\nkey = 'unterminated\n-#}\n",
]


def _corpus(kind: str, into: Path) -> None:
    """Seed inputs: the captured nvcc outputs, or the front matter of real templates."""
    into.mkdir(parents=True, exist_ok=True)
    if kind == "nvcc_output":
        for p in sorted((REPO / "tests" / "fixtures" / "nvcc").glob("*.txt")):
            shutil.copy(p, into / p.name)
        return
    seeds = list(_SEEDS_FM)
    for p in sorted((REPO / "templates").rglob("*.jinja")):
        text = p.read_text()
        end = text.find("#}")
        if text.lstrip().startswith("{#") and end > 0:
            seeds.append(text[:end + 2])
    for i, s in enumerate(seeds):
        (into / f"seed{i}").write_text(s)


def atheris_child(kind: str) -> None:
    """The atheris harness (child process): one input = UTF-8 text (invalid bytes
    replaced), checked with the same properties as the hypothesis tests."""
    import atheris

    sys.path[:0] = [str(FUZZ), str(REPO / "tests")]
    with atheris.instrument_imports(include=["cutlens"]):
        pass
    import fuzz_frontmatter
    import fuzz_nvcc

    check = fuzz_nvcc.check_output if kind == "nvcc_output" else fuzz_frontmatter.check_parse

    def one_input(data: bytes) -> None:
        check(data.decode("utf-8", "replace"))

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


def run_atheris(name: str, runs: int, work: Path) -> Result:
    kind = name.split(".", 1)[1]
    corpus = work / f"corpus-{kind}"
    _corpus(kind, corpus)
    seeds = work / f"seeds-{kind}"
    shutil.copytree(corpus, seeds, dirs_exist_ok=True)
    crash_dir = work / f"crashes-{kind}"
    crash_dir.mkdir(exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "atheris-child", kind,
           f"-runs={runs}", "-max_len=8192" if kind == "nvcc_output" else "-max_len=4096",
           "-rss_limit_mb=4096", "-timeout=60", "-print_final_stats=1",
           f"-artifact_prefix={crash_dir}/", str(corpus), str(seeds)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    res = Result(name, "atheris", seconds=round(time.perf_counter() - t0, 1))
    log = proc.stdout + proc.stderr
    done = re.search(r"Done (\d+) runs", log)
    stat = re.search(r"stat::number_of_executed_units:\s*(\d+)", log)
    res.inputs = int(done.group(1)) if done else int(stat.group(1)) if stat else 0
    cov = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)/", log)
    if cov:
        res.extra.update(cov_edges=int(cov[-1][0]), features=int(cov[-1][1]),
                         corpus=int(cov[-1][2]))
    res.extra["seeds"] = len(list(seeds.iterdir()))
    crashes = sorted(crash_dir.iterdir())
    if proc.returncode != 0 or crashes:
        res.crashes = max(len(crashes), 1)
        tb = log[log.find("=== Uncaught Python exception"):][:4000] if "Uncaught" in log else \
            log[-4000:]
        res.failures = [tb] + [f"{c.name}: {c.read_bytes()[:4096]!r}" for c in crashes[:5]]
    return res


# --------------------------------------------------------------------------- driver


def _child(name: str, scale: float, work: Path, atheris_runs: int) -> Result:
    if name.startswith("atheris."):
        return run_atheris(name, max(1, int(atheris_runs * scale)), work)
    env = {**os.environ, "FUZZ_SCALE": str(scale), "PYTHONHASHSEED": "0"}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "target", name],
                          capture_output=True, text=True, env=env, check=False)
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("{")), None)
    if line is None:
        return Result(name, "hypothesis", crashes=1,
                      failures=[f"exit {proc.returncode}: {proc.stderr[-4000:]}"])
    return Result(**json.loads(line))


def _command(argv: list[str] | None) -> str:
    args = argv if argv is not None else sys.argv[1:]
    return "benchmarks/fuzz_long.py " + " ".join(args)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("hypothesis", "atheris", "jinja2", "pygls"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "absent"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of each budget")
    ap.add_argument("--jobs", type=int, default=2, help="targets run at once")
    ap.add_argument("--only", nargs="*", help="target names (default: all)")
    ap.add_argument("--atheris-runs", type=int, default=0,
                    help="runs per atheris harness (default: the table's)")
    ap.add_argument("--no-atheris", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "fuzzing.json")
    ap.add_argument("--update", action="store_true",
                    help="replace only the targets run in --out's existing report")
    args = ap.parse_args(argv)

    names = [t.name for t in TARGETS]
    if not args.no_atheris:
        try:
            import atheris  # noqa: F401
            names += list(ATHERIS)
        except ImportError:
            print("atheris is not installed: hypothesis targets only", file=sys.stderr)
    if args.only:
        names = [n for n in names if n in args.only]
    t0 = time.perf_counter()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="cutlens-fuzz-") as d, \
            ThreadPoolExecutor(max_workers=args.jobs) as pool:
        # the slow ones first, so that the others fill in around them
        order = sorted(names, key=lambda n: ("lsp" not in n and "sourcemap" not in n, n))
        futs = {n: pool.submit(_child, n, args.scale, Path(d),
                               args.atheris_runs or ATHERIS.get(n, 0)) for n in order}
        for n in order:
            r = futs[n].result()
            results.append(r)
            print(f"{r.name:40} {r.inputs:>9} inputs {r.seconds:>8.1f} s  "
                  f"{r.crashes} crash(es)", flush=True)
            for f in r.failures:
                print("   " + f[:1500].replace("\n", "\n   "), flush=True)
    runs = [{"command": _command(argv), "targets": [r.name for r in results],
             "wall_seconds": round(time.perf_counter() - t0, 1)}]
    if args.update and args.out.exists():
        old = json.loads(args.out.read_text())
        ran = {r.name for r in results}
        results += [Result(**t) for t in old["targets"] if t["name"] not in ran]
        runs = old.get("runs", []) + runs
    parser_targets = {t.name for t in TARGETS if t.parser} | set(ATHERIS)
    totals = {
        "parser_inputs": sum(r.inputs for r in results if r.name in parser_targets),
        "lsp_edit_sequences": sum(r.inputs for r in results if r.name.startswith("lsp.")),
        "crashes": sum(r.crashes for r in results),
        "seconds": round(sum(r.seconds for r in results), 1),
    }
    report = {
        "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), **_versions()},
        "scale": args.scale,
        "totals": totals,
        "runs": runs,
        "targets": [asdict(r) for r in sorted(results, key=lambda r: r.name)],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(totals))
    return 1 if totals["crashes"] else 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "target":
        print(json.dumps(asdict(run_target(sys.argv[2]))))
    elif len(sys.argv) > 2 and sys.argv[1] == "atheris-child":
        kind = sys.argv.pop(2)
        sys.argv.pop(1)
        atheris_child(kind)
    else:
        sys.exit(main())
