"""Variants of ``gemm_sm90.cu.jinja`` from CUTLASS's own sm90 GEMM op list.

PyTorch Inductor's CUTLASS backend asks ``cutlass_library`` for every sm90 GEMM it knows
(``cutlass_library.generator.GenerateSM90`` into a ``Manifest``: ``gen_ops`` /
``_gen_ops_cached`` in ``torch/_inductor/codegen/cutlass/utils.py``), then keeps the ops the
nodes of the GEMM allow (``CUTLASSGemmTemplate.filter_op`` in ``gemm_template.py``): element
types of A, B and D, an fp32 accumulator, layouts, alignment; stream-K only for static
shapes. :func:`variants` does the same for a cutlens sample and maps each op onto the
variant keys of ``gemm_sm90.cu.jinja`` (tile, cluster, schedule, scheduler, swizzle).

Generating the op list takes ~2.5 s, too slow for a language server that lists variants on
every edit, so the ops the template can express are cached in ``gemm_sm90_ops.cache.json``
beside this file, keyed by the ``nvidia-cutlass`` version and the CUDA version given to the
generator; a stale or missing cache is rebuilt (and written when the folder is writable).
Loading it takes a few milliseconds.

Use: ``generator = "gemm_sm90_ops:variants"`` in a template's ``[variants]`` table (see
``gemm_sm90_generated.cu.jinja``), or ``python templates/gemm_sm90_ops.py [--refresh]`` to
print the op list and the cache's state.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CACHE_FILE = Path(__file__).with_name("gemm_sm90_ops.cache.json")
#: Bump when the record format or the global filter below changes.
CACHE_SCHEMA = 1
#: The CUDA version handed to ``GenerateSM90`` (it gates ops on toolkit features; every sm90
#: GEMM the template can express needs 12.0 or later, so the exact value rarely matters).
CUDA_VERSION = "12.8"

#: cutlass_library enum names -> this template's variant values.
KERNEL_SCHEDULES = {"TmaWarpSpecializedCooperative": "cooperative",
                    "TmaWarpSpecializedPingpong": "pingpong"}
EPILOGUE_SCHEDULES = {"TmaWarpSpecializedCooperative": "cooperative",
                      "TmaWarpSpecialized": "pingpong"}
TILE_SCHEDULERS = {"Default": "persistent", "Persistent": "persistent", "StreamK": "streamk"}
#: torch dtype name -> cutlass_library DataType name (Inductor's dtype_match).
DTYPES = {"float16": "f16", "bfloat16": "bf16"}


# --------------------------------------------------------------------------- the op list
class _ManifestArgs:
    """The command-line arguments ``cutlass_library.manifest.Manifest`` reads (Inductor's
    ``CUTLASSArgs``): sm90 GEMMs, every kernel, default instantiation level."""

    def __init__(self, cuda_version: str) -> None:
        self.architectures = "90"
        self.toolkit_version = cuda_version
        self.instantiation_level = "0"
        self.operations = "gemm"
        self.build_dir = ""
        self.curr_build_dir = ""
        self.generator_target = ""
        self.kernels = "all"
        self.ignore_kernels = ""
        self.exclude_kernels = ""
        self.kernel_filter_file = None
        self.selected_kernel_list = None
        self.interface_dir = None
        self.filter_by_cc = True
        self.disable_full_archs_compilation = False
        self.device_type = "cuda"


def cutlass_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("nvidia-cutlass")
    except metadata.PackageNotFoundError:
        return "unknown"


def _flatten(ops: Any) -> list[Any]:
    if isinstance(ops, dict):
        return [o for v in ops.values() for o in _flatten(v)]
    if isinstance(ops, list | tuple):
        return [o for v in ops for o in _flatten(v)]
    return [ops]


def _record(op: Any) -> dict | None:
    """What the template needs of one op, or None when the template cannot express it
    (Inductor's ``global_filter_ops``, narrowed to this template: fp16/bf16 tensor-op
    Universal3x GEMMs with a TMA warp-specialized kernel and a TMA epilogue)."""
    from cutlass_library import library

    if op.gemm_kind != library.GemmKind.Universal3x:
        return None
    td = op.tile_description
    if td.math_instruction.opcode_class != library.OpcodeClass.TensorOp:
        return None
    kernel = KERNEL_SCHEDULES.get(op.kernel_schedule.name)
    epilogue = EPILOGUE_SCHEDULES.get(op.epilogue_schedule.name)
    scheduler = TILE_SCHEDULERS.get(op.tile_scheduler.name)
    if kernel is None or epilogue != kernel or scheduler is None:
        return None
    if op.A.element.name not in DTYPES.values() or op.B.element.name not in DTYPES.values():
        return None  # the template implements fp16 and bf16 operands
    return {
        "name": op.configuration_name(),
        "A": op.A.element.name, "B": op.B.element.name, "D": op.D.element.name,
        "acc": op.accumulator_type().name,
        "layout_A": op.A.layout.name, "layout_B": op.B.layout.name,
        "align_A": op.A.alignment, "align_B": op.B.alignment, "align_D": op.D.alignment,
        "tile": list(td.tile_shape[:3]), "cluster": list(td.cluster_shape[:2]),
        "schedule": kernel, "scheduler": scheduler,
    }


def generate_ops(cuda_version: str = CUDA_VERSION) -> list[dict]:
    """Run CUTLASS's sm90 generator (slow: seconds) and return the records, sorted by name."""
    from cutlass_library import generator, manifest

    m = manifest.Manifest(_ManifestArgs(cuda_version))
    generator.GenerateSM90(m, cuda_version)
    seen: dict[str, dict] = {}
    for op in _flatten(m.operations):
        rec = _record(op)
        if rec is not None:
            seen.setdefault(json.dumps(rec, sort_keys=True), rec)
    return sorted(seen.values(), key=lambda r: (r["name"], json.dumps(r, sort_keys=True)))


def _cache_key(cuda_version: str) -> dict:
    return {"schema": CACHE_SCHEMA, "nvidia-cutlass": cutlass_version(),
            "cuda_version": cuda_version}


def _write_cache(path: Path, doc: dict) -> None:
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=0, separators=(",", ":"))
            f.write("\n")
        os.replace(tmp, path)
    except OSError:  # a read-only checkout: keep the ops in memory only
        pass


@functools.cache
def load_ops(cuda_version: str = CUDA_VERSION, cache_file: str = str(CACHE_FILE)) -> list[dict]:
    """The op records, from the cache when it matches this cutlass_library, else generated."""
    path = Path(cache_file)
    key = _cache_key(cuda_version)
    try:
        doc = json.loads(path.read_text())
        if doc.get("key") == key:
            return doc["ops"]
    except (OSError, ValueError, KeyError):
        pass
    t0 = time.monotonic()
    ops = generate_ops(cuda_version)
    _write_cache(path, {"key": key, "generated_in_s": round(time.monotonic() - t0, 2),
                        "ops": ops})
    return ops


# --------------------------------------------------------------------------- filtering
def _layout(node: Any) -> str | None:
    """RowMajor / ColumnMajor from the node's last two strides (Inductor's cutlass_layout)."""
    stride = node.get_stride()
    if len(stride) < 2:
        return None
    if stride[-1] == 1:
        return "RowMajor"
    if stride[-2] == 1:
        return "ColumnMajor"
    return None


def _max_alignment(node: Any) -> int:
    """The largest of 8/4/2/1 elements (at most 16 bytes) dividing the node's offset, its
    leading stride and its contiguous extent; symbolic values count as divisible (checked
    at run time by can_implement). Inductor's ``get_max_alignment``."""
    itemsize = node.get_dtype().itemsize
    size, stride = node.get_size(), node.get_stride()
    contiguous = -1 if stride[-1] == 1 else -2
    leading = stride[-2] if contiguous == -1 else stride[-1]
    values = [node.get_offset(), leading, size[contiguous]]
    for align in (16 // itemsize, 8 // itemsize, 4 // itemsize, 2 // itemsize, 1):
        if align >= 1 and all(not _is_int(v) or int(v) % align == 0 for v in values):
            return align
    return 1


def _is_int(v: Any) -> bool:
    return getattr(v, "is_number", isinstance(v, int))


def _is_static(*nodes: Any) -> bool:
    return all(not getattr(n, "free_symbols", []) for n in nodes if n is not None)


def acc_registers(op: dict) -> int:
    """fp32 accumulators per consumer thread: a pingpong warpgroup (128 threads) holds a
    whole tile, cooperative's two warpgroups (256 threads) split it."""
    threads = 256 if op["schedule"] == "cooperative" else 128
    return op["tile"][0] * op["tile"][1] // threads


def filter_ops(ops: list[dict], X: Any, W: Any, Y: Any,
               max_acc_registers: int | None = 128) -> list[dict]:
    """The ops the nodes allow (Inductor's ``filter_op``): element types of X, W and Y, fp32
    accumulation, the layouts of X and W, alignment, and stream-K only for static shapes.
    The template's TMA loads and stores want 16-byte alignment (8 fp16/bf16 elements):
    nodes allowing less get no ops (the template's #error says why), and only the ops of
    that alignment are kept (CUTLASS also lists 2- and 4-element ones, for cp.async).

    Beyond Inductor: ops needing more than ``max_acc_registers`` accumulator registers per
    thread (CUTLASS's list has pingpong 256x128 and 256x256 tiles: 256 and 512) compile,
    but spill; they are dropped unless ``max_acc_registers`` is None."""
    want = {k: DTYPES.get(n.get_dtype().name) for k, n in (("A", X), ("B", W), ("D", Y))}
    if None in want.values():
        return []
    layout_a, layout_b = _layout(X), _layout(W)
    if layout_a is None or layout_b is None or _layout(Y) is None:
        return []
    align = {"A": _max_alignment(X), "B": _max_alignment(W), "D": _max_alignment(Y)}
    if any(a * n.get_dtype().itemsize != 16 for a, n in zip(align.values(), (X, W, Y),
                                                            strict=True)):
        return []
    static = _is_static(X, W, Y)
    out = []
    for op in ops:
        if any(op[k] != want[k] for k in want) or op["acc"] != "f32":
            continue
        if (op["layout_A"], op["layout_B"]) != (layout_a, layout_b):
            continue
        if any(op[f"align_{k}"] != align[k] for k in align):
            continue
        if op["scheduler"] == "streamk" and not static:
            continue
        if max_acc_registers is not None and acc_registers(op) > max_acc_registers:
            continue
        out.append(op)
    return out


def variants(sample: Any = None, X: Any = None, W: Any = None, Y: Any = None,
             limit: int | None = None, swizzles: list[int] | None = None,
             schedules: list[str] | None = None,
             max_acc_registers: int | None = 128) -> list[dict]:
    """Variants of gemm_sm90.cu.jinja for a sample: one per distinct (tile, cluster, schedule,
    scheduler) among the ops that pass :func:`filter_ops`, in the op list's (name) order,
    times each ``swizzles`` value; the first ``limit`` of them (Inductor's
    ``cutlass_max_profiling_configs``). ``schedules`` keeps only those kernel schedules.

    Each variant carries ``op``: the CUTLASS configuration name it came from, with the
    layouts of this sample."""
    if sample is None or X is None or W is None or Y is None:
        return []
    ops = filter_ops(load_ops(), X, W, Y, max_acc_registers)
    # Name order (Inductor's), persistent schedulers first: the first variant is the one CI
    # compiles, and a plain persistent kernel is the safest first.
    ops = sorted(ops, key=lambda op: op["scheduler"] != "persistent")
    out: list[dict] = []
    seen: set[tuple] = set()
    for op in ops:
        if schedules and op["schedule"] not in schedules:
            continue
        key = (tuple(op["tile"]), tuple(op["cluster"]), op["schedule"], op["scheduler"])
        if key in seen:
            continue
        seen.add(key)
        for swizzle in swizzles or [1]:
            if op["scheduler"] == "streamk" and swizzle != (swizzles or [1])[0]:
                continue  # as in gemm_sm90.cu.jinja: stream-K is swept without swizzle
            tile = "x".join(map(str, op["tile"]))
            cluster = "x".join(map(str, op["cluster"]))
            out.append({
                "name": f"{tile} {cluster} {op['schedule']} {op['scheduler']} "
                        f"swizzle={swizzle}",
                "tile": op["tile"], "cluster": op["cluster"], "schedule": op["schedule"],
                "scheduler": op["scheduler"], "swizzle": swizzle, "op": op["name"],
            })
    return out[:limit] if limit else out


def main(argv: list[str]) -> int:
    if "--refresh" in argv:
        load_ops.cache_clear()
        CACHE_FILE.unlink(missing_ok=True)
    t0 = time.monotonic()
    ops = load_ops()
    dt = time.monotonic() - t0
    print(f"{len(ops)} sm90 ops the template can express ({dt * 1000:.0f} ms; cache "
          f"{CACHE_FILE.name}, key {_cache_key(CUDA_VERSION)})")
    for op in ops:
        print(" ", op["name"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
