"""Writing a samples file: TOML in the front matter's node syntax, written whole or not at
all (a temporary file in the same folder, then a rename)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cutlens.template.captured import CapturedSample

HEADER = """\
# Written by `cutlens capture`: one sample per distinct matmul-family op of the run, in the
# node syntax of front matter. A template takes them with samples_from = "captured" and an
# [accepts] table; `cutlens bench TEMPLATE --samples captured` benchmarks them.
# weight: the op's share of the captured GEMM time (or of the calls, without a GPU).
"""


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string is a JSON string
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} to TOML")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def to_toml(samples: Sequence[CapturedSample], capture: dict[str, Any]) -> str:
    lines = [HEADER, "[capture]"]
    lines += [f"{_key(k)} = {_value(v)}" for k, v in capture.items()]
    for s in samples:
        lines += ["", f"[samples.{_key(s.name)}]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in s.to_table().items()]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
