"""The command line's help texts: the overview ``cutlens`` alone prints, each command's
examples, the selection syntax, exit statuses and colour."""

from __future__ import annotations

from cutlens.template.selection import SYNTAX

EXIT_STATUS = """\
exit status (every command):
  0    all good
  1    problems found: a render, compile or verification error, a failed benchmark,
       a regression (--compare)
  2    usage or config: bad arguments, a missing file, problems in cutlens.toml; or an
       internal error (a cutlens bug: one line naming the log with the traceback; --debug
       prints it)
  130  interrupted (Ctrl-C);  141  the reader of the output went away (| head)"""

COLOR = """\
colour: --color auto (default: on a terminal, unless NO_COLOR is set; FORCE_COLOR forces
it) | always | never"""

SELECTION = f"""\
selection (--samples/--variants, the same on every command):
  {SYNTAX}
  --samples square --variants first           the first variant of sample 'square'
  --variants 0 3 '*pingpong*'                 variants [0], [3] and every *pingpong* one
  --sample square --variant '128x256x64 cooperative'   one pair, by name (or its slug)"""

EXAMPLES = {
    "capture": """\
examples:
  cutlens capture -- python train.py --steps 3      .cutlens/captured.toml of the project
  cutlens capture -o gpt2.toml --timeout 600 -- python train.py
  cutlens bench gemm.cu.jinja --samples captured    then bench a template on them""",
    "render": """\
examples:
  cutlens render gemm.cu.jinja                        first sample × first variant, to stdout
  cutlens render gemm.cu.jinja --sample square --variant 3 --line-directives
  cutlens render gemm.cu.jinja --all -o build/        every pair, one folder each""",
    "variants": """\
examples:
  cutlens variants gemm.cu.jinja                      samples (nodes, hints) and variants
  cutlens variants gemm.cu.jinja --variants '*pingpong*' --format json""",
    "check": """\
examples:
  cutlens check                                       the project around the current folder
  cutlens check templates/ --samples first --variants first   a CI-sized check
  cutlens check gemm.cu.jinja --no-nvcc               the Jinja tier only (fast)
  cutlens check templates/ --format sarif > cutlens.sarif      for code scanning
  cutlens check templates/ --warnings-as-errors       a gate that keeps warnings out too""",
    "bench": """\
examples:
  cutlens bench gemm.cu.jinja --sample square         every variant of one sample
  cutlens bench gemm.cu.jinja --format json -o base.json
  cutlens bench gemm.cu.jinja --compare base.json --threshold 5   exit 1 on a regression
  cutlens bench gemm.cu.jinja --plot latency.png --gpus 0,1
  cutlens bench gemm.cu.jinja --build-only            fill the build cache (no GPU needed)
  cutlens bench gemm.cu.jinja --executor ray --address ray://head:10001""",
    "profile": """\
examples:
  cutlens profile gemm.cu.jinja --sample square --variant 3   one variant under ncu
  cutlens profile gemm.cu.jinja --variant 3 --baseline 0 --format json   against variant 0
  (needs Nsight Compute's ncu beside nvcc, or $CUTLENS_NCU; the report stays in
  .cutlens/profiles, open it with the printed ncu-ui command)""",
    "watch": """\
examples:
  cutlens watch                                       the project around the current folder
  cutlens watch templates/ --no-nvcc --variants first""",
    "lsp": """\
examples:
  cutlens lsp                                         the language server on stdio
  cutlens lsp --tcp --port 2087                       on 127.0.0.1:2087
  cutlens lsp --headless templates/                   what an editor would show, like check""",
}

OVERVIEW = """\
cutlens: render, check and benchmark Jinja-templated CUDA/CUTLASS kernels.

commands:
  render    write the rendered CUDA of a template (a sample × variant)
  variants  list a template's samples and variants
  check     render and compile templates; report problems on template lines
  bench     benchmark a template's variants on the GPU (table, JSON, CSV, plot, --compare)
  capture   run a PyTorch program and record its GEMMs as samples (--samples captured)
  profile   one variant under Nsight Compute: why it is slow (--baseline: against another)
  watch     re-check on every change, printing what changed
  lsp       start the language server (or --headless: what an editor would show)

examples:
  cutlens variants templates/gemm_sm90.cu.jinja
  cutlens render templates/gemm_sm90.cu.jinja --sample square --variant 0
  cutlens check templates/ --samples first --variants first
  cutlens bench templates/gemm_sm90.cu.jinja --sample square --plot latency.png

`cutlens COMMAND --help` says more about a command.
"""


def epilog(command: str, selection: bool = True) -> str:
    """A command's help epilog: its examples, the selection syntax, exit statuses, colour."""
    parts = [EXAMPLES[command]]
    if selection:
        parts.append(SELECTION)
    parts += [EXIT_STATUS, COLOR]
    return "\n\n".join(parts)
