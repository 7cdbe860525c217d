"""How big the suite's generated and repeated work is: CI's size, or the full size.

``make test`` (and CI) runs every test at a size that fits CI's time budget; ``make
acceptance`` runs the same tests at full size (``FLASHLOAN_TEST_SIZE=full``): more generated
requests per operation, every shipped model rebuilt, longer simulated runs. A test names
both sizes where it draws or repeats work; its assertions are the same at either.
"""

from __future__ import annotations

import os

FULL = os.environ.get("FLASHLOAN_TEST_SIZE", "ci").lower() == "full"


def sized(ci: int, full: int) -> int:
    """``full`` under ``make acceptance``, else ``ci``."""
    return full if FULL else ci


def sized_cases(ci: list, full: list) -> list:
    """The cases a parametrised test runs: ``full`` under ``make acceptance``, else ``ci``
    (a subset of ``full``)."""
    missing = [case for case in ci if case not in full]
    if missing:
        raise ValueError(f"CI's cases must be among the full run's: {missing}")
    return full if FULL else ci
