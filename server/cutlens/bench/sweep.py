"""Storing a sweep's results as they arrive: each result is added to the
:class:`~cutlens.results.store.ResultStore` the moment it arrives (one commit each, so an
interrupted sweep keeps what finished); a store that fails (disk full, locked) costs a
warning, not the sweep: every result is still returned and shown
(:func:`cutlens.bench.template_sweep.sweep` uses it). Torch-free.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)


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


