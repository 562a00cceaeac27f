"""Fidelity on a real CUTLASS build: the runner's median vs a plain CUDA-event loop.

Renders one sample × variant of a template, builds it (the compile cache makes this free
after a ``cutlens bench`` of the same variant), writes its call signature and runs
``event_loop_fidelity.py --runner`` on it (GPU host only).

    python benchmarks/cutlass_fidelity.py templates/gemm_sm90.cu.jinja square VARIANT OUT.json
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from cutlens import config as config
from cutlens.bench.template_sweep import timing_from
from cutlens.check.nvcc_tier import compile_options, job_for
from cutlens.nvcc.pool import Mode
from cutlens.nvcc.project import compile_pool
from cutlens.render.renderer import Renderer
from cutlens.template.loader import load


def main() -> int:
    template, sample, variant, out = sys.argv[1:5]
    path = Path(template).resolve()
    cfg = config.load(config.find_root(path))
    t = load(path, cfg)
    s = t.sample(sample)
    v = t.variant(s, variant)
    unit = Renderer().render(t, s, v)
    res = compile_pool(cfg).compile_sync(job_for(unit, Mode.BUILD, compile_options(t)))
    if not res.ok or unit.signature is None:
        print(res.output, file=sys.stderr)
        return 1
    sig = unit.signature.to_json(s.hints, [n for n, node in s.nodes.items() if node is None],
                                 v.values)
    sig["library"] = res.artifact
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(sig, f)
    here = Path(__file__).parent
    # the loop times as many calls as the runner does (its rep_ms), so both do the same work
    proc = subprocess.run([sys.executable, str(here / "event_loop_fidelity.py"), f.name,
                           "--runner", "--rep-ms", str(timing_from(t).rep_ms)],
                          capture_output=True, text=True)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        return proc.returncode
    doc = json.loads(proc.stdout)
    doc.update({"template": path.name, "sample": s.name, "variant": v.name})
    Path(out).write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({k: doc.get(k) for k in ("diff_pct", "within_3pct")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
