"""Render + source map of a 300-line template: median and p95 over many runs.

Usage: python benchmarks/render_bench.py [--out docs/bench/render.json]
The template mixes literal CUDA, expressions, hooks, a macro, a loop and an include, like a
CUTLASS template. Three figures:
- ``keystroke``: the template's C++ text was just edited (the editor's common case): re-lex,
  reuse the compile with the new literal strings, render, build the source map;
- ``cold``: a fresh environment: lex, parse, generate and compile the template, render, map
  (what an edit inside ``{{ }}``/``{% %}`` costs);
- ``warm``: render another sample/variant of an unchanged template.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cutlens import config as config
from cutlens.render.renderer import Renderer
from cutlens.template.loader import load

HEAD = """{#- cutlens
[samples.square]
X = { dtype = "bfloat16", size = [4096, 4096] }
W = { dtype = "bfloat16", size = [4096, 4096], stride = [1, 4096] }
Bias = false
Y = { dtype = "bfloat16", size = [4096, 4096] }
[variants]
tile = [[128, 256, 64], [128, 128, 64]]
schedule = ["cooperative", "pingpong"]
-#}
{% import "bench_macros.cuh.jinja" as m %}
{{ template.header().getvalue() }}
{{ template.globals().getvalue() }}
extern "C" {
{{ kernel.def_kernel(inputs=[X, W, Bias], outputs=[Y], names_str="X, W, Bias, Y") }} {
"""
LITERAL = """  // block {i}: epilogue and mainloop setup, as a CUTLASS template spells it out
  using ElementA{i} = cutlass::bfloat16_t;
  using StrideA{i} = cutlass::gemm::TagToStrideA_t<cutlass::layout::RowMajor>;
  constexpr int AlignmentA{i} = 128 / cutlass::sizeof_bits<ElementA{i}>::value;
  using TileShape{i} = cute::Shape<cute::_{{{{ tile[0] }}}}, cute::_{{{{ tile[1] }}}},
                                   cute::_{{{{ tile[2] }}}}>;
  static_assert(AlignmentA{i} > 0, "alignment");
"""
BODY = """  // block {i}: tile {{{{ tile | join("x") }}}} {{{{ schedule }}}}
  int64_t m{i} = {{{{ kernel.size(X, 0) }}}}, k{i} = {{{{ kernel.size(X, 1) }}}};
  int64_t lda{i} = {{{{ kernel.row_or_column_stride(X) }}}};
  auto* x{i} = {{{{ template.cutlass_type_cast(X, kernel.ptr(X)) }}}};
{{{{ m.guard("x{i}") }}}}
{{% for j in range(2) %}}  int u{i}_{{{{ j }}}} = {{{{ j }}}} * {{{{ kernel.stride(W, 1) }}}};
{{% endfor %}}"""
TAIL = """{% include "bench_inc.cuh.jinja" %}
  return 0;
}
}
"""


def make_template(root: Path, lines: int = 300, dense: bool = True) -> Path:
    """A ``lines``-line template: ``dense`` puts hooks on nearly every line (a stress test);
    otherwise most lines are literal C++ with an expression on every few, like the shipped
    CUTLASS templates."""
    (root / "bench_macros.cuh.jinja").write_text(
        '{% macro guard(name) %}  if (!{{ name }}) { return 1; }{% endmacro %}\n')
    (root / "bench_inc.cuh.jinja").write_text("  // included tail\n  (void)workspace;\n")
    i = 0
    text = HEAD
    while text.count("\n") + TAIL.count("\n") < lines:
        text += (BODY if dense or i % 4 == 0 else LITERAL).format(i=i) + "\n"
        i += 1
    text += TAIL
    path = root / "bench.cu.jinja"
    path.write_text(text)
    return path


def measure(n: int = 200, dense: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        path = make_template(root, dense=dense)
        cfg = config.load(root)
        t = load(path, cfg)
        s = t.samples[0]
        v = t.variants(s)[0]
        cold, warm = [], []
        for _ in range(n // 4):
            r = Renderer()  # fresh environment: parse + compile + render + map
            t0 = time.perf_counter()
            unit = r.render(t, s, v)
            cold.append(time.perf_counter() - t0)
        r = Renderer()
        r.render(t, s, v)
        for _ in range(n):
            t0 = time.perf_counter()
            unit = r.render(t, s, v)
            warm.append(time.perf_counter() - t0)
        # A keystroke in C++ text: the literal-edit path (re-lex, swap strings, render, map).
        src = path.read_text().splitlines(keepends=True)
        line = next(i for i, ln in enumerate(src) if i > 20 and "{" not in ln and ln.strip())
        original = src[line]
        keystroke = []
        for k in range(n):  # type a comment at the end of a C++ line, one character a time
            src[line] = original.rstrip("\n") + " // " + "x" * (k % 40) + "\n"
            r.overlays[str(path)] = "".join(src)
            t0 = time.perf_counter()
            unit = r.render(t, s, v)
            keystroke.append(time.perf_counter() - t0)
        assert not hasattr(unit, "diagnostics"), unit
        lines = len(path.read_text().splitlines())
        exprs = path.read_text().count("{{")
        rendered = len(unit.text.splitlines())

    def stats(xs: list[float]) -> dict:
        xs = sorted(xs)
        return {"median_ms": round(statistics.median(xs) * 1e3, 3),
                "p95_ms": round(xs[int(0.95 * (len(xs) - 1))] * 1e3, 3),
                "runs": len(xs)}

    return {"benchmark": "render + source map", "template": "dense" if dense else "typical",
            "template_lines": lines, "expressions": exprs,
            "rendered_lines": rendered, "cold": stats(cold), "keystroke": stats(keystroke),
            "warm": stats(warm),
            "target_median_ms": 20.0, "machine": f"{platform.machine()}, "
            f"{platform.python_implementation()} {platform.python_version()}"}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path)
    ap.add_argument("-n", type=int, default=200)
    args = ap.parse_args()
    res = {"typical": measure(args.n, dense=False), "dense": measure(args.n, dense=True)}
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if res["typical"]["keystroke"]["median_ms"] <= 20.0 else 1


if __name__ == "__main__":
    sys.exit(main())
