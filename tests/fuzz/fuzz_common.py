"""Budgets and counters shared by the fuzz targets (the tests and ``benchmarks/fuzz_long.py``).

``CUTLENS_FUZZ_EXAMPLES`` scales every target: unset, each runs its small CI budget; set to
``N``, each property test runs ``N`` examples (the LSP target ``N // 10`` edit sequences).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, settings

TESTS = Path(__file__).resolve().parent.parent
FIXTURES = TESTS / "fixtures" / "nvcc"

#: Inputs each target actually ran (the long-run script reports these).
INPUTS: Counter[str] = Counter()


def scale() -> int | None:
    """The long-run budget from ``CUTLENS_FUZZ_EXAMPLES``, or None for the CI budget."""
    v = os.environ.get("CUTLENS_FUZZ_EXAMPLES", "").strip()
    return int(v) if v else None


def budget(ci: int, divisor: int = 1) -> settings:
    """Hypothesis settings: ``ci`` examples in CI, ``CUTLENS_FUZZ_EXAMPLES // divisor`` in a
    long run. No deadline (render and thread timings vary); no example database in long runs
    (they explore, they do not replay)."""
    n = scale()
    long_run = n is not None
    return settings(
        max_examples=max(1, n // divisor) if long_run else ci,
        deadline=None,
        database=None if long_run else settings.default.database,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much, HealthCheck.large_base_example],
        print_blob=True,
    )


def count(target: str) -> None:
    INPUTS[target] += 1
