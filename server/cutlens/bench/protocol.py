"""The worker's JSON-line protocol: request builders, defaults and the result fields.

Torch-free: the runner, the server and the CLI import this. One request and one response per
line; the worker echoes the request's ``id``.

Requests
--------
``{"op": "run", "id", "signature", "bench", "timing", "seed", "device"?, "time_unverified"?}``
    Load ``signature["library"]``, ask the kernel for its workspace size, allocate inputs and
    outputs from the signature, run once, verify against ``bench["reference"]``, time.
``{"op": "baseline", "id", "signature", "bench", "timing", "seed"}``
    Time the reference expression itself (``X @ W`` -> cuBLAS) the same way.
``{"op": "rounds", "id", "candidates": [{"name", "signature", "bench"}], "reference"?:
{"signature", "bench"}, "timing", "rounds", "seed", "device"?}``
    Time every candidate (and the reference expression, named ``reference``) once per round,
    the order rotating each round; answers ``per_round`` (name -> ms per round) and
    ``gpu_state`` (per name, the last). The finalists step of a sweep.
``{"op": "ceilings", "id", "dtypes", "cache"?}``
    This GPU's measured compute ceiling per dtype (best ``torch.mm`` rate over large shapes)
    and copy bandwidth, from the cache file when it has them for this GPU and driver
    (:mod:`cutlens.bench.ceilings`).
``{"op": "info", "id"}``
    ``{"gpu", "device", "torch", "cuda", "capability", "sm_count", "l2_bytes"}``.

``signature`` is the render step's record of the call (see :mod:`cutlens.bench.marshal`);
``bench`` holds the template's ``reference``, ``flops``, ``bytes`` and optional ``atol`` /
``rtol``; ``timing`` is a :class:`TimingConfig` as JSON.

Responses to ``run`` / ``baseline`` (see :data:`RESULT_FIELDS`)
-----------------------------------------------------------------
``ms``          median of the timed calls, milliseconds (one event pair around each call).
``ms_min``      fastest timed call; ``ms_max`` the slowest.
``spread_pct``  interquartile range of the timed calls as a percentage of the median:
                ``100 * (p75 - p25) / median`` — robust to the odd preempted call.
``iters``       number of timed calls.
``tflops``      ``bench.flops / ms`` in 10^12/s (None without ``flops``); ``gbps`` likewise
                from ``bench.bytes`` in 10^9 bytes/s.
``workspace_bytes`` what the kernel asked for through the workspace query.
``verified``    True / False, or None when the template gives no reference.
``max_abs_err`` largest absolute difference to the reference over all outputs.
``error``       None, or why there is no figure: ``returned 7``, ``illegal memory access``,
                ``timed out after 60 s``, ``out of memory``, ``worker crashed (signal 11)``,
                ``mismatch: ...``.
``fatal``       True when the worker's CUDA context is unusable: the worker exits after
                answering and the runner starts a fresh one.
``stable``      False when the spread stayed above ``timing.stable_pct`` after
                ``timing.remeasure`` more timings; None where not judged (the CPU).
``attempts``    timings made (1 + re-measurements); ``settle_ms`` the steady-state warm-up.
``gpu_state``   NVML while the timed calls ran: ``sm_clock_mhz``, ``temp_c``, ``power_w``,
                ``throttle`` (reason names); None without a GPU or NVML.
``bytes_from``  ``nodes`` when ``gbps`` counts the buffers' own sizes (no ``bench.bytes``).
``warnings``    list of notes (a ``flops`` expression that failed to evaluate, ...).

Any other key of a request (``template``, ``sample``, ``variant``, ``variant_name``, and for
the store ``template_hash``, ``nvcc``, ``flags_hash``, ``regs``, ``smem``, ``spills``) is not
interpreted: the runner copies it into the result, so a result is directly a report row
(:mod:`cutlens.bench.report`) and a store record (:mod:`cutlens.results`).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, fields
from typing import Any

#: Keys the worker interprets; everything else in a request is context echoed by the runner.
PROTOCOL_KEYS = frozenset(
    {"op", "id", "signature", "bench", "timing", "seed", "device", "time_unverified",
     "timeout_s", "candidates", "reference", "rounds", "dtypes", "cache"}
)

#: Fields of a run/baseline result, in report order.
RESULT_FIELDS = (
    "ms", "ms_min", "ms_max", "spread_pct", "iters", "tflops", "gbps", "workspace_bytes",
    "verified", "max_abs_err", "error", "stable", "gpu_state",
)

_ids = itertools.count(1)


@dataclass
class TimingConfig:
    """How the worker times a call: Triton's ``do_bench`` (:mod:`cutlens.bench.timing`).

    It estimates the per-call time from a few flushed calls (flush included), warms up for
    ``warmup_ms``, then times enough calls to fill ``rep_ms`` (at least ``min_iters``, at
    most ``max_iters``), each preceded by an L2 flush (zeroing ``flush_bytes``; default
    256 MiB on CUDA, do_bench's, 8 MiB on CPU) when ``flush_l2``; the median.
    """

    warmup_ms: float = 25.0
    rep_ms: float = 100.0
    min_iters: int = 10
    max_iters: int = 1000
    flush_l2: bool = True
    flush_bytes: int | None = None
    #: Steady state (GPU only, :func:`cutlens.bench.steady.settle`): before timing, run the
    #: call in windows of ``settle_window_ms`` for at least ``settle_min_ms``, then until the
    #: second half shows no drift beyond ``settle_pct`` (at most ``settle_max_ms``): the
    #: clock and power state a sustained run reaches.
    settle_window_ms: float = 50.0
    settle_min_ms: float = 400.0
    settle_pct: float = 1.0
    settle_max_ms: float = 2000.0
    #: A timing whose spread (interquartile range, % of the median) is above ``stable_pct`` is
    #: unstable: measured again up to ``remeasure`` times, never the best row.
    stable_pct: float = 3.0
    remeasure: int = 2
    #: After a sweep: the ``finalists`` best rows of each sample and the reference, timed
    #: again in ``rounds`` interleaved rounds (:mod:`cutlens.bench.finalists`).
    finalists: int = 3
    rounds: int = 7

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> TimingConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def next_id() -> str:
    """A fresh request id, unique in this process."""
    return f"r{next(_ids)}"


def run_request(signature: dict[str, Any], bench: dict[str, Any], *,
                timing: TimingConfig | dict[str, Any] | None = None,
                seed: int = 0, **context: Any) -> dict[str, Any]:
    """A ``run`` request for a built variant; ``context`` (``template``, ``sample``,
    ``variant``, ``variant_name``, ...) comes back in the result unchanged."""
    return _request("run", signature, bench, timing, seed, context)


def baseline_request(signature: dict[str, Any], bench: dict[str, Any], *,
                     timing: TimingConfig | dict[str, Any] | None = None,
                     seed: int = 0, **context: Any) -> dict[str, Any]:
    """A ``baseline`` request: time ``bench["reference"]`` on the signature's tensors."""
    return _request("baseline", signature, bench, timing, seed, context)


def _request(op: str, signature: dict[str, Any], bench: dict[str, Any],
             timing: TimingConfig | dict[str, Any] | None,
             seed: int, context: dict[str, Any]) -> dict[str, Any]:
    if isinstance(timing, TimingConfig):
        timing = timing.to_json()
    req = {"op": op, "id": context.pop("id", None) or next_id(), "signature": signature,
           "bench": dict(bench), "timing": dict(timing or TimingConfig().to_json()),
           "seed": seed}
    req.update(context)
    return req


def error_result(req: dict[str, Any], error: str, **extra: Any) -> dict[str, Any]:
    """A result with no figures, for a request that failed outside the kernel."""
    out: dict[str, Any] = {f: None for f in RESULT_FIELDS}
    out.update({"id": req.get("id"), "op": req.get("op"), "error": error})
    out.update(extra)
    return out


def context_of(req: dict[str, Any]) -> dict[str, Any]:
    """The request's non-protocol keys, which the runner copies into the result."""
    return {k: v for k, v in req.items() if k not in PROTOCOL_KEYS}
