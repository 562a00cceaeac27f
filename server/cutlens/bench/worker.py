"""Benchmark worker: ``python -m cutlens.bench.worker [--device cuda|cpu]``.

One process per GPU (the runner sets ``CUDA_VISIBLE_DEVICES``); the only place that imports
torch. Reads one JSON request per line on stdin and answers one JSON line on stdout (the
protocol is in :mod:`cutlens.bench.protocol`). File descriptor 1 is redirected to stderr at
start, so prints from Python, torch or a kernel library cannot corrupt the protocol stream.

At start it writes ``{"op": "hello", ...info}``. A request's ``device`` overrides the
worker's for that request (tests use ``cpu``: the fake library computes on host memory, the
stream argument is null and the clock is ``perf_counter_ns``; everything else is the same
code). After a CUDA error (illegal address, ...) or running out of memory it answers with
``"fatal": true`` and exits: the context is unusable, and the runner starts a fresh worker.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import platform
import sys
import threading
import time
from typing import IO, Any

import torch

from cutlens.bench.gpu_state import GpuMonitor
from cutlens.bench.marshal import Marshalled, SignatureError, load_kernel, marshal, unload
from cutlens.bench.protocol import TimingConfig, error_result
from cutlens.bench.rounds import ceilings_op, rounds_op
from cutlens.bench.steady import Measured, measure
from cutlens.bench.timing import Clock, CpuClock, CudaClock, Timing
from cutlens.bench.verify import (
    ReferenceFailed,
    compare,
    compile_reference,
    namespace,
    run_reference,
)

#: Bytes zeroed before each timed call to evict L2 (H100: 50 MB; H200: 60 MB).
CUDA_FLUSH_BYTES = 256 << 20
CPU_FLUSH_BYTES = 8 << 20

#: Substrings of CUDA error text -> the short reason reported.
_CUDA_ERRORS = (
    ("illegal memory access", "illegal memory access"),
    ("misaligned address", "misaligned address"),
    ("illegal instruction", "illegal instruction"),
    ("unspecified launch failure", "unspecified launch failure"),
    ("device-side assert", "device-side assert"),
    ("invalid program counter", "invalid program counter"),
    ("launch timed out", "launch timed out"),
    ("out of memory", "out of memory"),
)


class KernelReturned(RuntimeError):
    """The kernel returned non-zero."""

    def __init__(self, code: int, where: str = "") -> None:
        super().__init__(f"returned {code}{where}")
        self.code = code


def classify_error(exc: BaseException, device: str) -> tuple[str, bool]:
    """(reason, fatal) for an exception raised while serving a request."""
    if isinstance(exc, KernelReturned | SignatureError | ReferenceFailed):
        return str(exc), False
    msg = str(exc)
    low = msg.lower()
    if isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in low:
        return "out of memory", device != "cpu"
    if device != "cpu" and isinstance(exc, RuntimeError) and (
            "cuda" in low or "cublas" in low or "cudnn" in low or "accelerator" in low):
        for needle, reason in _CUDA_ERRORS:
            if needle in low:
                return reason, True
        first = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
        return first[:200], True
    return f"{type(exc).__name__}: {msg}"[:500], False


def _finite(x: Any) -> Any:
    return x if not isinstance(x, float) or math.isfinite(x) else None


class Worker:
    """Serves requests on one device."""

    def __init__(self, device: str = "cuda") -> None:
        self.device = device
        self._flush: dict[tuple[str, int], torch.Tensor] = {}
        self._monitor: GpuMonitor | bool | None = False  # False: not opened yet

    # ---- per-device plumbing -------------------------------------------------------------
    def _dev(self, req: dict[str, Any]) -> str:
        dev = str(req.get("device") or self.device)
        if dev.startswith("cuda") and not torch.cuda.is_available():
            raise SignatureError("CUDA is not available in the worker")
        return dev

    @staticmethod
    def _clock(dev: str) -> Clock:
        return CpuClock() if dev == "cpu" else CudaClock(torch)

    @staticmethod
    def _sync(dev: str) -> None:
        if dev != "cpu":
            torch.cuda.synchronize()

    @staticmethod
    def _stream(dev: str) -> int | None:
        return None if dev == "cpu" else torch.cuda.current_stream().cuda_stream

    def monitor(self) -> GpuMonitor | None:
        """NVML for this worker's GPU (None on the CPU, without NVML or a match)."""
        if self._monitor is False:
            self._monitor = None
            if self.device != "cpu" and torch.cuda.is_available():
                props = torch.cuda.get_device_properties(torch.cuda.current_device())
                uuid = getattr(props, "uuid", None)
                uuid = None if uuid is None else str(uuid).removeprefix("GPU-")
                bus = (f"{getattr(props, 'pci_domain_id', 0):08X}:"
                       f"{getattr(props, 'pci_bus_id', 0):02X}:"
                       f"{getattr(props, 'pci_device_id', 0):02X}.0")
                cvd = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
                self._monitor = GpuMonitor.open(
                    uuid=f"GPU-{uuid}" if uuid is not None else None, pci_bus_id=bus,
                    index=int(cvd) if cvd.isdigit() else None)
        return self._monitor if isinstance(self._monitor, GpuMonitor) else None

    def measure(self, call: Any, dev: str, cfg: TimingConfig) -> Measured:
        """The steady-state protocol (:func:`cutlens.bench.steady.measure`) on a GPU: settle,
        time as do_bench, re-measure an unstable timing, read NVML during the timed calls;
        on the CPU one do_bench-style timing."""
        gpu = dev != "cpu"
        mon = self.monitor() if gpu else None
        return measure(call, self._clock(dev), cfg, self._flusher(dev, cfg), steady=gpu,
                       probe=mon.read if mon is not None else None)

    def _time(self, call: Any, dev: str, cfg: TimingConfig) -> Measured:
        return self.measure(call, dev, cfg)

    def _flusher(self, dev: str, cfg: TimingConfig) -> Any:
        nbytes = cfg.flush_bytes or (CPU_FLUSH_BYTES if dev == "cpu" else CUDA_FLUSH_BYTES)
        key = (dev, nbytes)
        if key not in self._flush:
            self._flush.clear()
            self._flush[key] = torch.empty(nbytes // 4, dtype=torch.int32, device=dev)
        buf = self._flush[key]
        return buf.zero_

    # ---- ops -----------------------------------------------------------------------------
    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        try:
            if op == "run":
                return self.run(req)
            if op == "baseline":
                return self.baseline(req)
            if op == "rounds":
                return rounds_op(self, req)
            if op == "ceilings":
                return ceilings_op(self, req)
            if op == "info":
                return {"id": req.get("id"), "op": op, **self.info(req)}
            if op == "ping":
                return {"id": req.get("id"), "op": op, "ok": True}
            return error_result(req, f"unknown op {op!r}")
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt | SystemExit):
                raise
            dev = str(req.get("device") or self.device)
            reason, fatal = classify_error(e, dev)
            extra = {"fatal": True} if fatal else {}
            return error_result(req, reason, **extra)

    def info(self, req: dict[str, Any] | None = None) -> dict[str, Any]:
        dev = str((req or {}).get("device") or self.device)
        out: dict[str, Any] = {"device": dev, "pid": os.getpid(), "torch": torch.__version__,
                               "cuda": torch.version.cuda}
        if dev == "cpu" or not torch.cuda.is_available():
            out.update(gpu=f"cpu ({platform.machine()})", available=dev == "cpu")
            return out
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        out.update(gpu=torch.cuda.get_device_name(), available=True,
                   capability=f"{props.major}.{props.minor}",
                   sm_count=props.multi_processor_count,
                   l2_bytes=getattr(props, "L2_cache_size", None),
                   memory_bytes=props.total_memory,
                   visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
        mon = self.monitor()
        out["driver"] = (mon.driver if mon is not None else None) or f"cuda {torch.version.cuda}"
        return out

    def run(self, req: dict[str, Any]) -> dict[str, Any]:
        """Workspace query, allocate, run once, verify, time."""
        dev = self._dev(req)
        cfg = TimingConfig.from_json(req.get("timing"))
        spec = req.get("bench") or {}
        m = marshal(req["signature"], dev, int(req.get("seed", 0)))
        lib, fn = load_kernel(m.library, m.kernel, m.argtypes())
        healthy = False
        try:
            out = self._run_loaded(req, dev, cfg, spec, m, fn)
            healthy = True
            return out
        except Exception as e:
            healthy = not classify_error(e, dev)[1]
            raise
        finally:
            if healthy:  # never dlclose (or sync) under a faulted CUDA context
                self._sync(dev)
                unload(lib)

    def kernel_call(self, dev: str, m: Marshalled, fn: Any) -> tuple[Any, int, list[Any]]:
        """(call, workspace bytes, what must stay alive): the workspace queried and allocated;
        ``call()`` runs the kernel once and raises :class:`KernelReturned` on non-zero."""
        stream = ctypes.c_void_p(self._stream(dev))
        ws_size = ctypes.c_size_t(0)
        rc = fn(*m.data_args(null_buffers=True), ctypes.byref(ws_size), None, stream)
        self._sync(dev)
        if rc != 0:
            raise KernelReturned(rc, " (workspace query)")
        ws_bytes = int(ws_size.value)
        workspace = torch.zeros(ws_bytes, dtype=torch.uint8, device=dev) if ws_bytes else None
        ws_ptr = ctypes.c_void_p(workspace.data_ptr() if workspace is not None else None)
        args = [*m.data_args(), None, ws_ptr, stream]

        def call() -> None:
            code = fn(*args)
            if code != 0:
                raise KernelReturned(code)

        return call, ws_bytes, [args, workspace]

    def _run_loaded(self, req: dict[str, Any], dev: str, cfg: TimingConfig, spec: dict[str, Any],
                    m: Marshalled,
                    fn: Any) -> dict[str, Any]:
        call, ws_bytes, _keep = self.kernel_call(dev, m, fn)

        reference = (spec.get("reference") or "").strip()
        expected = run_reference(compile_reference(reference), m) if reference else None
        self._sync(dev)

        call()
        self._sync(dev)
        out: dict[str, Any] = {"id": req.get("id"), "op": "run", "workspace_bytes": ws_bytes,
                               "verified": None, "max_abs_err": None, "error": None}
        if expected is not None:
            check = compare(m, expected, spec.get("atol"), spec.get("rtol"))
            del expected
            out.update(verified=check.ok, max_abs_err=_finite(check.max_abs_err))
            if not check.ok:
                out["error"] = f"mismatch: {check.message}"
                if not req.get("time_unverified"):
                    return _with_timing(out, None)
        timing = self._time(call, dev, cfg)
        out = _with_timing(out, timing)
        out.update(_perf(spec, namespace(m), timing.timing.ms, out, m))
        return out

    def baseline(self, req: dict[str, Any]) -> dict[str, Any]:
        """Time the reference expression itself on the signature's tensors."""
        dev = self._dev(req)
        cfg = TimingConfig.from_json(req.get("timing"))
        spec = req.get("bench") or {}
        reference = (spec.get("reference") or "").strip()
        if not reference:
            return error_result(req, "no reference expression")
        m = marshal(req["signature"], dev, int(req.get("seed", 0)))
        code = compile_reference(reference)
        expected = run_reference(code, m)  # validates the expression once
        base = namespace(m)

        def call() -> None:
            exec(code, dict(base))

        timing = self._time(call, dev, cfg)
        out: dict[str, Any] = {"id": req.get("id"), "op": "baseline", "error": None,
                               "workspace_bytes": 0, "verified": None, "max_abs_err": None}
        out = _with_timing(out, timing)
        out.update(_perf(spec, namespace(m, expected), timing.timing.ms, out, m))
        return out

    def reference_call(self, req: dict[str, Any]) -> Any:
        """A no-argument call of the request's reference expression on its tensors."""
        dev = self._dev(req)
        spec = req.get("bench") or {}
        m = marshal(req["signature"], dev, int(req.get("seed", 0)))
        code = compile_reference((spec.get("reference") or "").strip())
        run_reference(code, m)  # validates the expression once
        base = namespace(m)
        return lambda: exec(code, dict(base))


def _with_timing(out: dict[str, Any], measured: Measured | None) -> dict[str, Any]:
    if measured is None:
        out.update(ms=None, ms_min=None, ms_max=None, spread_pct=None, iters=0, tflops=None,
                   gbps=None, stable=None, gpu_state=None)
    else:
        timing: Timing = measured.timing
        out.update({k: _finite(v) for k, v in timing.to_json().items()})
        out.update(stable=measured.stable, attempts=measured.attempts,
                   settle_ms=round(measured.settle_ms, 1), gpu_state=measured.state)
    return out


def node_bytes(m: Marshalled) -> int:
    """Bytes of the call's own buffers (inputs read, outputs written: the default
    ``bench.bytes``)."""
    return sum(a.view.numel() * a.view.element_size() for a in m.args
               if a.is_buffer and a.view is not None)


def _perf(spec: dict[str, Any], ns: dict[str, Any], ms: float, out: dict[str, Any],
          m: Marshalled | None = None) -> dict[str, Any]:
    """TFLOP/s and GB/s from the template's ``flops`` / ``bytes`` expressions; without
    ``bytes``, the buffers' own sizes (``bytes_from: nodes``)."""
    res: dict[str, Any] = {"tflops": None, "gbps": None}
    warnings = list(out.get("warnings", []))
    for key, field, scale in (("flops", "tflops", 1e9), ("bytes", "gbps", 1e6)):
        expr = spec.get(key)
        if key == "bytes" and expr in (None, "") and m is not None and ms:
            res[field] = _finite(node_bytes(m) / ms / scale)
            res["bytes_from"] = "nodes"
            continue
        if expr in (None, "") or not ms:
            continue
        try:
            value = float(eval(str(expr), dict(ns))) if isinstance(expr, str) else float(expr)
            res[field] = _finite(value / ms / scale)
        except Exception as e:
            warnings.append(f"bench.{key}: {type(e).__name__}: {e}")
    if warnings:
        res["warnings"] = warnings
    return res


def _claim_stdout() -> IO[str]:
    """Keep fd 1 for the protocol only: duplicate it, then point fd 1 and sys.stdout at
    stderr so stray prints (Python or C) land there."""
    sys.stdout.flush()
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(proto_fd, "w", buffering=1, encoding="utf-8")


def serve(worker: Worker, inp: IO[bytes], out: IO[str]) -> int:
    """Answer requests until EOF or ``{"op": "exit"}``; exit status 3 after a fatal error."""
    def send(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj, default=str) + "\n")
        out.flush()

    send({"op": "hello", **worker.info()})
    for line in inp:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
        except json.JSONDecodeError as e:
            send({"id": None, "error": f"bad request: {e}"})
            continue
        if req.get("op") == "exit":
            send({"id": req.get("id"), "op": "exit"})
            return 0
        resp = worker.handle(req)
        send(resp)
        if resp.get("fatal"):
            return 3
    return 0


def _watch_parent(interval_s: float = 1.0) -> None:
    """Exit when the parent (the runner) goes away, even mid-kernel: a worker whose runner was
    killed must not keep a GPU busy. Polls from a daemon thread (ctypes calls and CUDA
    synchronization release the GIL)."""
    ppid = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != ppid:
                os._exit(4)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cutlens.bench.worker")
    ap.add_argument("--device", default=os.environ.get("CUTLENS_BENCH_DEVICE", "cuda"),
                    help="cuda (default) or cpu")
    args = ap.parse_args(argv)
    out = _claim_stdout()
    _watch_parent()
    worker = Worker(args.device)
    code = serve(worker, sys.stdin.buffer, out)
    out.flush()
    # os._exit: after a CUDA fault, interpreter teardown can hang or crash in the driver.
    os._exit(code)


if __name__ == "__main__":
    main()
