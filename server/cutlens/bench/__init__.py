"""Benchmarking rendered kernels on GPUs.

- :mod:`.protocol` — request builders and the result fields (torch-free).
- :mod:`.runner` — :class:`Runner`: one worker process per GPU, time limits, restarts
  (torch-free; the server and the CLI use it).
- :mod:`.executor` — where a sweep runs: the local pool, or a Ray cluster through
  :mod:`.ray_executor` (compile tasks, one GPU actor per bench worker; the only module that
  imports ``ray``).
- :mod:`.worker` — ``python -m cutlens.bench.worker``: the only code that imports torch;
  with :mod:`.marshal` (signature -> tensors and ctypes arguments), :mod:`.verify`
  (reference and tolerances) and :mod:`.timing` (the do_bench-style loop).
- :mod:`.steady` (steady-state warm-up, stability, re-measuring), :mod:`.gpu_state` (NVML),
  :mod:`.ceilings` (measured ceilings, speed of light; :mod:`.ceiling_probe` measures them
  in the worker), :mod:`.finalists` (interleaved rounds after a sweep; the worker's side in
  :mod:`.rounds`), :mod:`.best` — the one rule for the best row.
- :mod:`.report` — table, JSON, CSV, ``--compare`` and ``--plot`` (:mod:`.plot`);
  :mod:`.progress` — the rich progress display; :mod:`.sweep` — ``store_guard``: store each
  result as it arrives (torch-free).
- :mod:`.project` — the one place a project config (plus command-line overrides) becomes
  its build directory, nvcc jobs, compile pool, executor config and runner (the CLI and the
  language server both call it); :mod:`.launch` opens an executor.
- :mod:`.template_sweep` — a template's sweep: render, build, run each (sample, variant).

The flow of ``cutlens bench``: render each (sample, variant) and record its call signature;
compile in the pool; for each finished build ``run_request(signature, bench, template=...,
template_hash=..., sample=..., variant=..., variant_name=...)`` plus one
``baseline_request`` per sample, run through ``Runner.sweep`` and stored as they arrive
(:func:`.template_sweep.sweep`); then ``report.make_report(results, nvcc=...)`` and the
formats. A :class:`Runner` belongs to one event loop.

Results are stored by :mod:`cutlens.results`.
"""

from cutlens.bench.protocol import TimingConfig, baseline_request, run_request
from cutlens.bench.runner import Runner, visible_gpus

__all__ = ["Runner", "TimingConfig", "baseline_request", "run_request", "visible_gpus"]
