"""Glue for a benchmark sweep: run requests as builds arrive, store and show each result.

    async with Runner() as runner:
        results = await collect(runner, requests, store=store,
                                record={"template_hash": h, "nvcc": "13.0", "flags_hash": f},
                                progress=progress)

Each result is added to the :class:`~cutlens.results.ResultStore` the moment it arrives
(one commit each, so an interrupted sweep keeps what finished), with ``record`` merged in
(keys the requests' context already carries win). Torch-free.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Mapping
from typing import Any

from .runner import Runner


async def collect(runner: Runner, requests: Iterable[dict] | AsyncIterable[dict], *,
                  store: Any = None, record: Mapping[str, Any] | None = None,
                  progress: Any = None,
                  on_result: Callable[[dict], None] | None = None) -> list[dict]:
    """Run every request through ``runner.sweep``; for each result, in completion order:
    ``store.add({**record, **result})`` when a store is given, ``progress.update(result)``,
    then ``on_result(result)``. Returns all results."""
    results = []
    async for result in runner.sweep(requests):
        if store is not None:
            store.add({**(record or {}), **result})
        if progress is not None:
            progress.update(result)
        if on_result is not None:
            on_result(result)
        results.append(result)
    return results
