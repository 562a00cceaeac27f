"""Captured samples: the samples file ``cutlens capture`` writes (``.cutlens/captured.toml``)
and how a template takes them (``samples_from``, ``[accepts]``).

The file holds one ``[samples.NAME]`` table per distinct matmul-family op of a run, in the
front matter's node syntax (each node ``{ dtype, size, stride, offset? }``, sizes ints or
size symbols with ``hints``), plus what was seen: ``op``, ``count``, ``weight``,
``time_ms``, ``modules``, ``epilogue``. A template declares which it can run::

    samples_from = "captured"          # or a path; also in cutlens.toml for every template
    [accepts]
    ops = ["mm", "addmm"]
    dtypes = ["bfloat16", "float16"]
    nodes = { X = "mat1", W = "mat2", Bias = "bias", Y = "out" }   # template <- captured
    layouts = { X = ["row"], W = ["row", "col"] }

A captured sample whose op, dtypes or layouts the template does not declare is skipped, with
the reason (the editor's hover lists both). Nothing here imports torch.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cutlens.config import CAPTURED_OPS
from cutlens.template.ir import IRError, Node, make_node
from cutlens.template.model import Sample

#: ``samples_from = "captured"``: the file ``cutlens capture`` writes by default.
DEFAULT_FILE = ".cutlens/captured.toml"
#: The origin of samples taken from a samples file: ``--samples captured`` selects them.
ORIGIN = "captured"
#: The node names of each op, in aten's argument order (``out`` is the result).
OP_NODES: dict[str, tuple[str, ...]] = {
    "mm": ("mat1", "mat2"), "addmm": ("bias", "mat1", "mat2"), "bmm": ("batch1", "batch2"),
    "baddbmm": ("bias", "batch1", "batch2"), "_int_mm": ("mat1", "mat2"),
    "_scaled_mm": ("mat1", "mat2", "scale_a", "scale_b", "bias", "scale_result")}
OPS = CAPTURED_OPS
assert set(OPS) == set(OP_NODES)
LAYOUTS = ("row", "col", "any")
#: Keys of a captured sample that are not nodes.
INFO_KEYS = ("op", "count", "weight", "time_ms", "modules", "epilogue", "backward", "hints",
             "seen")


class CapturedError(ValueError):
    """A samples file that cannot be read (missing, not TOML, not a samples file)."""


@dataclass
class CapturedSample:
    """One distinct op of a captured run."""

    name: str
    op: str
    nodes: dict[str, dict[str, Any]]
    hints: dict[str, int] = field(default_factory=dict)
    count: int = 0
    weight: float = 0.0
    time_ms: float | None = None
    modules: list[str] = field(default_factory=list)
    epilogue: list[str] = field(default_factory=list)
    #: Every value each size symbol took (the hint is the most frequent).
    seen: dict[str, list[int]] = field(default_factory=dict)
    #: A gradient's GEMM (autograd's backward pass) rather than the forward's.
    backward: bool = False

    def to_table(self) -> dict[str, Any]:
        """The ``[samples.NAME]`` table (the file's order: info, then nodes)."""
        out: dict[str, Any] = {"op": self.op, "count": self.count,
                               "weight": round(self.weight, 6)}
        if self.time_ms is not None:
            out["time_ms"] = round(self.time_ms, 6)
        out["modules"] = list(self.modules)
        out["epilogue"] = list(self.epilogue)
        if self.backward:
            out["backward"] = True
        out.update(self.nodes)
        if self.hints:
            out["hints"] = dict(self.hints)
        if self.seen:
            out["seen"] = {k: list(v) for k, v in self.seen.items()}
        return out


@dataclass
class CapturedFile:
    """A samples file: where it came from and its samples."""

    path: Path
    samples: list[CapturedSample]
    capture: dict[str, Any] = field(default_factory=dict)

    @property
    def weight_by(self) -> str:
        return str(self.capture.get("weight_by", "count"))


_cache: dict[Path, tuple[float, int, CapturedFile]] = {}


def read(path: Path) -> CapturedFile:
    """Read a samples file (cached by modification time and size)."""
    try:
        st = path.stat()
    except OSError as e:
        raise CapturedError(f"{path}: {e.strerror or e}") from None
    hit = _cache.get(path)
    if hit is not None and hit[:2] == (st.st_mtime, st.st_size):
        return hit[2]
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise CapturedError(f"{path}: not a samples file: {e}") from None
    table = data.get("samples")
    if not isinstance(table, dict):
        raise CapturedError(f"{path}: no [samples.NAME] tables (write it with cutlens capture)")
    out = CapturedFile(path, [], dict(data.get("capture") or {}))
    for name, spec in table.items():
        if not isinstance(spec, dict) or spec.get("op") not in OP_NODES:
            raise CapturedError(f"{path}: [samples.{name}]: not a captured op (op = one of "
                                f"{', '.join(OPS)})")
        out.samples.append(CapturedSample(
            name=str(name), op=str(spec["op"]),
            nodes={k: v for k, v in spec.items() if k not in INFO_KEYS and isinstance(v, dict)},
            hints={k: int(v) for k, v in dict(spec.get("hints") or {}).items()},
            count=int(spec.get("count", 0)), weight=float(spec.get("weight", 0.0)),
            time_ms=float(spec["time_ms"]) if "time_ms" in spec else None,
            modules=[str(m) for m in spec.get("modules", [])],
            epilogue=[str(m) for m in spec.get("epilogue", [])],
            seen={k: [int(x) for x in v] for k, v in dict(spec.get("seen") or {}).items()},
            backward=bool(spec.get("backward", False))))
    _cache[path] = (st.st_mtime, st.st_size, out)
    return out


def resolve(value: str, base: Path, root: Path) -> Path:
    """The file ``samples_from`` names: ``captured`` is the default file under the project
    root; another value is a path relative to ``base`` (the folder of the file saying it)."""
    if value == ORIGIN:
        return root / DEFAULT_FILE
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


@dataclass
class Accepts:
    """What a template declares it runs (``[accepts]``)."""

    ops: list[str]
    dtypes: list[str]
    #: Template node <- captured node.
    nodes: dict[str, str]
    layouts: dict[str, list[str]]

    @classmethod
    def from_table(cls, table: Any) -> Accepts:
        """From the validated ``[accepts]`` table (:class:`cutlens.config.AcceptsTable`)."""
        return cls(list(table.ops), list(table.dtypes), dict(table.nodes),
                   {k: list(v) for k, v in table.layouts.items()})


def layout_of(spec: dict[str, Any]) -> str:
    """``row`` (the last dim has stride 1), ``col`` (the one before it does) or ``other``,
    for a node table's last two dims."""
    size, stride = spec.get("size", []), spec.get("stride")
    if stride is None or len(size) < 2:
        return "row"
    if stride[-1] == 1:
        return "row"
    if stride[-2] == 1:
        return "col"
    return "other"


def why_not(sample: CapturedSample, accepts: Accepts) -> str | None:
    """Why the template cannot take ``sample`` (None: it can)."""
    if accepts.ops and sample.op not in accepts.ops:
        return f"op {sample.op} (the template accepts {', '.join(accepts.ops)})"
    for tnode, cnode in accepts.nodes.items():
        spec = sample.nodes.get(cnode)
        if spec is None:
            continue
        dt = str(spec.get("dtype", ""))
        if accepts.dtypes and dt not in accepts.dtypes:
            return f"{tnode} is {dt} (the template accepts {', '.join(accepts.dtypes)})"
        allowed = accepts.layouts.get(tnode)
        lay = layout_of(spec)
        if allowed and "any" not in allowed and lay not in allowed:
            return f"{tnode} is {lay}-major (the template accepts {', '.join(allowed)})"
    return None


def nodes_for(sample: CapturedSample, accepts: Accepts) -> dict[str, Node | None]:
    """The template's nodes for ``sample`` (an unmapped or absent captured node: ``None``,
    an absent optional input). Raises :class:`IRError` for a malformed node."""
    out: dict[str, Node | None] = {}
    for tnode, cnode in accepts.nodes.items():
        spec = sample.nodes.get(cnode)
        out[tnode] = None if spec is None else make_node(tnode, spec)
    return out


@dataclass
class Taken:
    """What a template took from a samples file, and what it skipped (name, reason)."""

    file: Path
    taken: list[CapturedSample] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None


def select(file: CapturedFile, accepts: Accepts) -> Taken:
    """Split the file's samples into those the template takes and those it cannot."""
    out = Taken(file.path)
    for s in file.samples:
        reason = why_not(s, accepts)
        if reason is None:
            try:
                nodes_for(s, accepts)
            except IRError as e:
                reason = str(e)
        if reason is None:
            out.taken.append(s)
        else:
            out.skipped.append((s.name, reason))
    return out


__all__ = ["DEFAULT_FILE", "OPS", "OP_NODES", "ORIGIN", "Accepts", "CapturedError",
           "CapturedFile", "CapturedSample", "Taken", "layout_of", "nodes_for", "read",
           "resolve", "samples_of", "select", "stamp", "why_not"]


def stamp(path: Path | None) -> tuple[object, ...] | None:
    """The samples file's stamp (a template loaded from it is stale when it changes)."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return (str(path), None)
    return (str(path), st.st_mtime_ns, st.st_size)


def samples_of(taken: Taken, accepts: Accepts, existing: set[str]) -> list[Sample]:
    """The template samples for what it took (``origin = "captured"``); a name the template
    already has is kept for its own sample (the captured one is skipped, said in ``taken``)."""
    out: list[Sample] = []
    for c in list(taken.taken):
        if c.name in existing:
            taken.taken.remove(c)
            taken.skipped.append((c.name, "the template has its own sample of that name"))
            continue
        out.append(Sample(c.name, nodes=nodes_for(c, accepts), hints=dict(c.hints),
                          origin=ORIGIN, weight=c.weight,
                          info={"op": c.op, "count": c.count, "time_ms": c.time_ms,
                                "modules": list(c.modules), "epilogue": list(c.epilogue),
                                "backward": c.backward, "file": str(taken.file)}))
    return out
