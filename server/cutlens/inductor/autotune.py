"""What Inductor's own max-autotune picks for a GEMM (needs a GPU): ``torch.compile`` of
``X @ W`` with the CUTLASS backend, every choice's time captured through Inductor's feedback
hook (its AUTOTUNE table), beside the ops cutlens benchmarks.

    python -m cutlens.inductor.autotune --cache DIR --sample JSON [--configs N] -o OUT.json

``--sample``: the nodes X, W, Y as the project config gives them (dtype, size, stride).
Writes ``{"torch", "gpu", "rows": [{"name", "description", "op", "swizzle", "ms"}],
"best": ..., "wall_s"}``; a CUTLASS row's ``op`` and ``swizzle`` name the cutlens case
``"<op> swizzle=<s>"``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from cutlens.inductor.setup import prepare

_DESC = re.compile(r"^(?P<op>\S+)\s+swizzle=(?P<swizzle>\d+)")


def tensor(torch: Any, spec: dict[str, Any]) -> Any:
    """A random tensor with the node's sizes and strides, on the GPU."""
    dtype = getattr(torch, spec["dtype"])
    size = [int(s) for s in spec["size"]]
    stride = spec.get("stride")
    if stride is None:
        return torch.randn(size, device="cuda", dtype=dtype)
    if list(stride) == [1, size[0]]:  # column-major: a transposed contiguous tensor
        return torch.randn(size[1], size[0], device="cuda", dtype=dtype).t()
    base = torch.randn(sum((s - 1) * st for s, st in zip(size, stride, strict=True)) + 1,
                       device="cuda", dtype=dtype)
    return base.as_strided(size, stride)


def run(cache: Path, nodes: dict[str, Any], configs: int | None, swizzles: list[int]
        ) -> dict[str, Any]:
    ind = prepare(cache, "90", None)
    torch, config = ind.torch, ind.config
    import torch._inductor.select_algorithm as sa

    config.max_autotune = True
    config.max_autotune_gemm_backends = "ATEN,CUTLASS"
    config.force_disable_caches = True
    config.autotune_num_choices_displayed = None
    config.cutlass.cutlass_max_profiling_configs = configs
    config.cutlass.cutlass_max_profiling_swizzle_options = swizzles
    if hasattr(config.cutlass, "cutlass_prescreening"):
        config.cutlass.cutlass_prescreening = False  # time every choice, not a sample
    config.cuda.arch = None  # the GPU's own
    rows: list[dict[str, Any]] = []

    def saver(timings: dict[str, Any], name: str, *args: Any, **kwargs: Any) -> None:
        for choice, ms in timings.items():
            desc = str(getattr(choice, "description", "") or "")
            m = _DESC.match(desc)
            rows.append({"name": str(getattr(choice, "name", "")), "description": desc,
                         "op": m.group("op") if m else None,
                         "swizzle": int(m.group("swizzle")) if m else None,
                         "ms": float(ms)})

    sa.add_feedback_saver(saver)
    x, w = tensor(torch, nodes["X"]), tensor(torch, nodes["W"])
    fn = torch.compile(lambda a, b: a @ b)
    log = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(log):  # the AUTOTUNE table goes to stderr
        y = fn(x, w)
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    err = (y.float() - (x.float() @ w.float())).abs().max().item()
    finite = [r for r in rows if r["ms"] == r["ms"] and r["ms"] != float("inf")]
    best = min(finite, key=lambda r: r["ms"], default=None)
    return {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(),
            "rows": rows, "best": best, "wall_s": round(wall, 2),
            "max_abs_err_vs_fp32": err, "autotune_log": log.getvalue()[-20000:]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--sample", required=True, help="the nodes X, W, Y as JSON")
    ap.add_argument("--configs", type=int, default=None,
                    help="cutlass_max_profiling_configs (default: every op)")
    ap.add_argument("--swizzles", default="1,2,4,8")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args(argv)
    doc = run(args.cache, json.loads(args.sample), args.configs,
              [int(s) for s in args.swizzles.split(",")])
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    sys.stdout.write(f"{len(doc['rows'])} choices timed; best {doc['best']}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
