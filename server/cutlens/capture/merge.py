"""The records of a captured run -> one :class:`CapturedSample` per distinct op.

A call record (from the profiler: op, input sizes, strides, dtypes, count, time) is matched
to a node of Inductor's post-grad graph with the same op, dtypes and sizes (a symbolic size
matches any value): the node gives the symbolic sizes, the module and the epilogue. Calls
that differ only in a symbolic size's value merge into one sample; the value seen most often
is its hint. Names come from the module path (``c_attn``; ``attn_c_proj`` / ``mlp_c_proj``
where the last part alone is shared), else from the op and sizes (``mm_512x768x3072``).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from cutlens.template.captured import OP_NODES, CapturedSample

Dim = int | list[Any]  # an int, or [expression, hint] for a symbolic size
Table = dict[str, Any]


def _tensors(call: Table) -> tuple[list[Table | None], Table | None]:
    """The op's input node tables and its ``out=`` tensor (None when it returned one)."""
    shapes, strides, dtypes = call["shapes"], call.get("strides") or [], call["dtypes"]
    tabs: list[Table | None] = []
    for i, shape in enumerate(shapes):
        dt = dtypes[i] if i < len(dtypes) else ""
        if dt in ("Scalar", "", "ScalarList", "None") or not isinstance(shape, list):
            tabs.append(None)
            continue
        st = strides[i] if i < len(strides) and isinstance(strides[i], list) \
            and len(strides[i]) == len(shape) else None
        tabs.append({"dtype": dt, "size": list(shape),
                     "stride": list(st) if st is not None else _contiguous(shape)})
    n = len(OP_NODES[call["op"]])
    ins = tabs[:n]
    rest = [t for t in tabs[n:] if t is not None]
    return ins, (rest[-1] if rest else None)


def _contiguous(size: list[int]) -> list[int]:
    out, acc = [], 1
    for s in reversed(size):
        out.append(acc)
        acc *= s
    return list(reversed(out))


def _result(op: str, ins: list[dict[str, Any] | None]) -> dict[str, Any]:
    """The result's node table for an op that returned a new tensor (row-major)."""
    names = OP_NODES[op]
    a = ins[names.index("batch1" if "batch1" in names else "mat1")] or {}
    b = ins[names.index("batch2" if "batch2" in names else "mat2")] or {}
    size = [*a.get("size", [])[:-1], b.get("size", [0])[-1]]
    dt = "int32" if op == "_int_mm" else a.get("dtype", "float32")
    if op == "_scaled_mm":
        dt = "bfloat16"  # out_dtype is not recorded: Inductor's usual choice
    return {"dtype": dt, "size": size, "stride": _contiguous(size)}


def strides_recorded(call: dict[str, Any]) -> bool:
    """Whether the profiler gave strides (``structured_input_strides``: torch 2.12+); without
    them a call's strides are taken from its graph node, else assumed row-major."""
    return any(isinstance(s, list) and s for s in call.get("strides") or [])


def _unify(graph_tab: dict[str, Any] | None, tab: dict[str, Any] | None,
           bound: dict[str, int], strides: bool = True) -> bool:
    if graph_tab is None or tab is None:
        return graph_tab is None and tab is None
    if graph_tab["dtype"] != tab["dtype"] or len(graph_tab["size"]) != len(tab["size"]):
        return False
    for key in ("size", "stride") if strides else ("size",):
        for g, v in zip(graph_tab[key], tab[key], strict=True):
            if isinstance(g, list):  # [expr, hint]: a plain symbol takes one value per call
                if str(g[0]).isidentifier() and bound.setdefault(str(g[0]), int(v)) != int(v):
                    return False
            elif int(g) != int(v):
                return False
    return True


def _match(call: dict[str, Any], ins: list[dict[str, Any] | None],
           graph_nodes: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The graph nodes this call may have run (every layer of one shape: a compiled call
    does not say which), and the values of the first one's size symbols."""
    hits: list[dict[str, Any]] = []
    first: dict[str, int] = {}
    for g in graph_nodes:
        if g["op"] != call["op"]:
            continue
        g_ins = (g["inputs"] + [None] * len(ins))[:len(ins)]
        bound: dict[str, int] = {}
        known = strides_recorded(call)
        if all(_unify(gi, ci, bound, known) for gi, ci in zip(g_ins, ins, strict=True)):
            first = first if hits else bound
            hits.append(g)
    return hits, first


def _symbolic(tab: dict[str, Any]) -> dict[str, Any]:
    """A graph node's table in the file's syntax: symbolic sizes as their expression."""
    def dim(d: Dim) -> int | str:
        return str(d[0]) if isinstance(d, list) else int(d)

    out = {"dtype": tab["dtype"], "size": [dim(d) for d in tab["size"]],
           "stride": [dim(d) for d in tab["stride"]]}
    if tab.get("offset"):
        out["offset"] = dim(tab["offset"])
    return out


def merge(raw: dict[str, Any]) -> list[CapturedSample]:
    """The distinct ops of a run (``raw``: what the hook wrote), named and weighted,
    heaviest first."""
    groups: dict[str, dict[str, Any]] = {}
    for call in raw.get("calls", []):
        op = call.get("op")
        if op not in OP_NODES:
            continue
        ins, out = _tensors(call)
        hits, bound = _match(call, ins, raw.get("graph_nodes", []))
        graph = hits[0] if hits else None
        names = OP_NODES[op]
        if graph is not None:
            g_ins = (graph["inputs"] + [None] * len(names))[:len(names)]
            nodes = {n: _symbolic(t) for n, t in zip(names, g_ins, strict=True)
                     if t is not None}
            g_out = graph.get("output")
            nodes["out"] = _symbolic(g_out) if g_out else (out or _result(op, ins))
        else:
            nodes = {n: t for n, t in zip(names, ins, strict=True) if t is not None}
            nodes["out"] = out or _result(op, ins)
        backward = bool(call.get("backward")) or (bool(hits) and all(
            g.get("backward") for g in hits))
        key = json.dumps([op, nodes, backward], sort_keys=True)
        grp = groups.setdefault(key, {"op": op, "nodes": nodes, "count": 0, "device_us": 0.0,
                                      "modules": Counter[str](), "epilogue": [],
                                      "seen": {}, "backward": backward})
        grp["count"] += int(call.get("count", 0))
        grp["device_us"] += float(call.get("device_us", 0.0))
        modules = [call["module"]] if call.get("module") else \
            [g["module"] for g in hits if g.get("module")]
        for module in dict.fromkeys(modules):
            grp["modules"][module] += int(call.get("count", 0))
        if graph is not None and graph.get("epilogue") and not grp["epilogue"]:
            grp["epilogue"] = list(graph["epilogue"])
        for sym, v in bound.items():
            grp["seen"].setdefault(sym, Counter[int]())[v] += int(call.get("count", 0))
    timed = bool(raw.get("gpu")) and sum(g["device_us"] for g in groups.values()) > 0
    total = sum(g["device_us"] if timed else g["count"] for g in groups.values()) or 1
    samples = []
    for g in groups.values():
        seen: dict[str, Counter[int]] = g["seen"]
        samples.append(CapturedSample(
            name="", op=g["op"], nodes=g["nodes"],
            hints={s: c.most_common(1)[0][0] for s, c in seen.items()},
            count=g["count"], weight=(g["device_us"] if timed else g["count"]) / total,
            time_ms=g["device_us"] / 1000 if timed else None,
            modules=sorted(g["modules"]), epilogue=g["epilogue"],
            seen={s: sorted(c) for s, c in seen.items() if len(c) > 1},
            backward=g["backward"]))
    samples.sort(key=lambda s: -s.weight)
    name_all(samples)
    return samples


def _dims(s: CapturedSample) -> str:
    names = OP_NODES[s.op]
    a = s.nodes.get("batch1" if "batch1" in names else "mat1", {})
    b = s.nodes.get("batch2" if "batch2" in names else "mat2", {})
    dims = [*a.get("size", []), b.get("size", [0])[-1]]
    return "x".join(str(d) for d in dims)


def name_all(samples: list[CapturedSample]) -> None:
    """Readable, unique names: the module's last part (``c_attn``), its last two
    (``mlp_c_proj``) where that is shared by another op, else the op and sizes; a gradient's
    GEMMs end in ``_grad`` (``c_fc_grad``, ``c_fc_grad_2``)."""
    def parts(s: CapturedSample) -> list[str]:
        return [p for p in (s.modules[0].split(".") if s.modules else []) if p]

    def cand(s: CapturedSample, depth: int) -> str:
        p = [x for x in parts(s) if not x.isdigit()]
        grad = "_grad" if s.backward else ""
        if not p:
            return f"{s.op}_{_dims(s)}{grad}"
        return "_".join(p[-depth:]) + grad

    depth = {id(s): 1 for s in samples}
    for _ in range(3):
        names = Counter(cand(s, depth[id(s)]) for s in samples)
        clash = [s for s in samples if names[cand(s, depth[id(s)])] > 1]
        paths: dict[str, set[tuple[str, ...]]] = {}
        for s in clash:
            paths.setdefault(cand(s, depth[id(s)]), set()).add(tuple(parts(s)))
        grow = [s for s in clash if len(paths[cand(s, depth[id(s)])]) > 1]
        for s in grow:  # a longer path helps only where the module paths differ
            depth[id(s)] += 1
        grown = bool(grow)
        if not grown:
            break
    names = Counter(cand(s, depth[id(s)]) for s in samples)
    ops = Counter((cand(s, depth[id(s)]), s.op) for s in samples)
    used: Counter[str] = Counter()
    for s in samples:
        c = cand(s, depth[id(s)])
        if names[c] > 1 and (ops[(c, s.op)] < names[c] or not s.backward):
            c = f"{c}_{s.op}"  # one module, several ops (attention's two bmm)
        base = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in c)
        used[base] += 1
        s.name = base if used[base] == 1 else f"{base}_{used[base]}"
