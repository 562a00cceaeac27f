"""Glue for a benchmark sweep: run requests as builds arrive, store and show each result.

    async with Runner() as runner:
        results = await collect(runner, requests, store=store,
                                record={"template_hash": h, "nvcc": "13.0", "flags_hash": f},
                                progress=progress)

Each result is added to the :class:`~cutlens.results.ResultStore` the moment it arrives
(one commit each, so an interrupted sweep keeps what finished), with ``record`` merged in
(keys the requests' context already carries win). A store that fails (disk full, locked)
costs a warning, not the sweep: every result is still returned and shown. Torch-free.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from typing import Any

from cutlens.bench.runner import Runner

log = logging.getLogger("cutlens.bench")


def store_guard(store: Any) -> Callable[[Mapping[str, Any]], None]:
    """``store.add`` that never fails a sweep: a store that cannot keep a result (disk full,
    locked past the timeout, ...) costs one warning; the result is still shown."""
    failed = 0

    def keep(record: Mapping[str, Any]) -> None:
        nonlocal failed
        if store is None:
            return
        try:
            store.add(record)
        except Exception as e:
            failed += 1
            if failed == 1:
                log.warning("results store: cannot store results (%s); they are shown but "
                            "not kept", e)
    return keep


async def collect(runner: Runner, requests: Iterable[dict] | AsyncIterable[dict], *,
                  store: Any = None, record: Mapping[str, Any] | None = None,
                  progress: Any = None,
                  on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Run every request through ``runner.sweep``; for each result, in completion order:
    ``store.add({**record, **result})`` when a store is given, ``progress.update(result)``,
    then ``on_result(result)``. Returns all results."""
    results = []
    keep = store_guard(store)
    async for result in runner.sweep(requests):
        keep({**(record or {}), **result})
        if progress is not None:
            progress.update(result)
        if on_result is not None:
            on_result(result)
        results.append(result)
    return results
