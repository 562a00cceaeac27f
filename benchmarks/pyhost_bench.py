"""Render drivers: what cutlens adds to a driver's own time (issue #14).

For each project: the driver's cases made by the project's own code alone (a fresh process,
no cutlens: the baseline), and through cutlens (``run_drivers``: a worker process, jinja2
instrumented, every line mapped). Reported per project: the worker's wall time, the driver's
own time, the overhead in all and per case (instrumentation, markers, literal lookup,
anchoring, the JSON back), and how the lines map (template text, expressions, the driver).

    python benchmarks/pyhost_bench.py [--aitemplate PATH/TO/AITemplate] [-o docs/bench/pyhost.json]

Projects: the tests' AITemplate-like fixture; the same scaled to 60 cases; and, with
``--aitemplate``, AITemplate itself (a checkout with its cutlass submodule; the driver renders
gemm_rcr and softmax as AITemplate's codegen does, with no GPU) — its files are written into
the checkout for the run and removed after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "server"))

from cutlens import config  # noqa: E402
from cutlens.template import drivers  # noqa: E402

FIXTURE = REPO / "tests" / "fixtures" / "pyhost"

PLAIN = """
import json, sys, time
import jinja2  # the worker has it loaded before it times the driver, too
sys.path.insert(0, ".")
t0 = time.perf_counter()
mod, fn = {entry!r}.split(":")
cases = getattr(__import__(mod, fromlist=[fn]), fn)()
out = []
for c in cases:
    s = c["source"]
    out.append(s() if callable(s) else s)
print(json.dumps({{"seconds": time.perf_counter() - t0, "cases": len(out),
                  "lines": sum(x.count(chr(10)) for x in out)}}))
"""

SCALED_DRIVER = """
from aitlike.backend import gemm


def cases():
    for i in range(60):
        name = f"gemm_{i}"
        yield {"name": name, "source": gemm.gen_function(name, "float", "float", i % 2 == 0)}
"""

AIT_DRIVER = '''
"""cutlens render driver over two AITemplate kernels (written by the benchmark)."""
import logging
import sys

logging.basicConfig(level=logging.WARNING)
from aitemplate.backend import registry
from aitemplate.backend.cuda.target_def import CUDA
from aitemplate.compiler import ops, transform
from aitemplate.compiler.base import IntImm, Tensor
from aitemplate.compiler.ops.gemm_universal.gemm_common import DynamicProfileStrategy


def _graph(outputs):
    for i, y in enumerate(outputs):
        y._attrs["is_output"] = True
        y._attrs["name"] = f"output_{i}"
    graph = transform.toposort(outputs)
    transform.name_graph(graph)
    transform.mark_param_tensor(graph)


def gemm_rcr(target, M=256, N=512, K=128, dtype="float16"):
    X = Tensor([IntImm(M), IntImm(K)], dtype=dtype, name="X", is_input=True)
    W = Tensor([IntImm(N), IntImm(K)], dtype=dtype, name="W", is_input=True)
    op = ops.gemm_rcr()
    _graph([op(X, W)])
    registry.get("cuda.gemm_rcr.config")(op._attrs, dtype=dtype)
    op._extract_exec_path(DynamicProfileStrategy.MAX)
    algo = target.select_minimal_algo(list(op._attrs["op_instance"].keys()))
    for item in op._attrs["exec_path"].values():
        item.algo = algo
    return op._attrs["name"], op.gen_function()


def softmax(target, B=1024, K=1000, dtype="float16"):
    X = Tensor([IntImm(B), IntImm(K)], dtype=dtype, name="X", is_input=True)
    sys.modules["aitemplate.compiler.ops.softmax.softmax"].detect_target = lambda **kw: target
    op = ops.softmax()
    _graph([op(X, dim=-1)])
    return op._attrs["name"], op.gen_function()


def cases():
    target = CUDA(arch="80")
    with target:
        for fn in (gemm_rcr, softmax):
            name, src = fn(target)
            yield {"name": name, "source": src}
'''

AIT_CONFIG = """
arch = "sm_80"
cutlass = false
globs = []
[[driver]]
entry = "cutlens_bench_cases:cases"
timeout_s = 600
"""


def plain(root: Path, entry: str) -> tuple[float, dict]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PLAIN.format(entry=entry)], cwd=root,
                         capture_output=True, text=True, check=True, env=env)
    return time.perf_counter() - t0, json.loads(out.stdout.strip().splitlines()[-1])


def through_cutlens(root: Path) -> tuple[float, drivers.DriverRun]:
    drivers._CACHE.clear()
    cfg = config.load(root)
    t0 = time.perf_counter()
    [run] = drivers.run_drivers(cfg)
    return time.perf_counter() - t0, run


def mapping(run: drivers.DriverRun) -> dict:
    kinds: Counter = Counter()
    for c in run.cases:
        for fr in c.lines:
            f = fr[-1]
            kinds["driver" if f[0].endswith(run.driver.entry.split(":")[0].split(".")[-1] +
                                            ".py") and f[3] == "text" else
                  "template text" if f[3] == "text" and f[0].endswith(".py") else
                  "file text" if f[3] == "text" else "expression"] += 1
    return dict(kinds)


def measure(name: str, root: Path, entry: str, repeats: int) -> dict:
    plains, walls, inner = [], [], []
    info: dict = {}
    run = None
    for _ in range(repeats):
        _, res = plain(root, entry)
        plains.append(res["seconds"])
        info = res
        w, run = through_cutlens(root)
        assert not [e for e in run.errors if e.severity == "error"], run.errors
        walls.append(w)
        inner.append(run.seconds)
    assert run is not None
    n = len(run.cases)
    med = statistics.median
    return {
        "project": name, "cases": n, "lines": info["lines"], "repeats": repeats,
        "plain_driver_s": round(med(plains), 4),
        "cutlens_wall_s": round(med(walls), 4),
        "cutlens_driver_s": round(med(inner), 4),
        "overhead_s": round(med(walls) - med(plains), 4),
        "render_and_map_per_case_ms": round(1000 * (med(inner) - med(plains)) / n, 3),
        "process_per_run_s": round(med(walls) - med(inner), 4),
        "lines_by_origin": mapping(run),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--aitemplate", type=Path, help="an AITemplate checkout (with 3rdparty)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("-o", "--output", type=Path, default=REPO / "docs" / "bench" /
                    "pyhost.json")
    args = ap.parse_args()
    results = [measure("aitlike fixture (4 cases)", FIXTURE, "aitlike.driver:cases",
                       args.repeats)]
    with tempfile.TemporaryDirectory() as tmp:
        scaled = Path(tmp) / "scaled"
        shutil.copytree(FIXTURE, scaled, ignore=shutil.ignore_patterns(".cutlens"))
        (scaled / "aitlike" / "driver.py").write_text(SCALED_DRIVER)
        results.append(measure("aitlike scaled (60 cases)", scaled, "aitlike.driver:cases",
                               args.repeats))
    if args.aitemplate is not None:
        root = args.aitemplate.resolve() / "python"
        made = [root / "cutlens_bench_cases.py", root / "cutlens.toml"]
        made[0].write_text(AIT_DRIVER)
        made[1].write_text(AIT_CONFIG)
        try:
            results.append(measure("AITemplate (gemm_rcr + softmax)", root,
                                   "cutlens_bench_cases:cases", max(2, args.repeats // 2)))
        finally:
            for p in made:
                p.unlink()
    doc = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "python":
           platform.python_version(), "results": results}
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
