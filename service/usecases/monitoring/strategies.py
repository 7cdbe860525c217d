"""Strategies side by side: each strategy's outcomes, mean PD and mean line over a window, and
each shadow's swap set against the strategies that decided.

A row is a strategy in a role: the champion and the challenger decide (each with its share of
the decisions the panel counts), a shadow decides every application aside. The approval rate
is of the decisions with an outcome (deferrals included, as on the volume panel; a shadow
that failed has none), the mean PD of the scored ones, the mean line of the approvals. A
strategy that changed role in the window (a challenger made champion) has a row per role.

The swap set of a shadow pairs each decided outcome with the shadow's: a swap-in is an
application the shadow would approve that was declined, a swap-out one it would decline that
was approved. Decisions in the roll-up without strategy cells (counted before strategies
were) are left out, and the panel says how many.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from service.usecases.monitoring.cells import FAILED, SHADOW

Sums = Mapping[tuple[str, str], tuple[int, float]]
OUTCOMES = ("approved", "declined", "deferred")
ROLE_ORDER = {"champion": 0, "challenger": 1, SHADOW: 2}
# The swaps: (decided, the shadow's outcome).
SWAP_IN, SWAP_OUT = ("declined", "approved"), ("approved", "declined")


def _rate(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def strategies_of(sums: Sums) -> dict[str, Any]:
    """The strategies panel over the summed cells ``sums``."""
    counts: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    swaps: dict[str, dict[str, dict[tuple[str, str], int]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(int)))
    for (metric, key), (n, total) in sums.items():
        if metric == "strategy":
            name, role, outcome = key.rsplit("|", 2)
            cell = counts[(name, role)]
            cell[outcome] += n
            cell["line_total"] += total
        elif metric == "strategy_pd":
            name, role = key.rsplit("|", 1)
            counts[(name, role)]["scored"] += n
            counts[(name, role)]["pd_total"] += total
        elif metric == "swap":
            shadow, decider, pair = key.split("|", 2)
            decided, would = pair.split(">", 1)
            swaps[shadow][decider][(decided, would)] += n
    deciding = sum(_decisions(cell) for (_, role), cell in counts.items() if role != SHADOW)
    rows = [_row(name, role, cell, deciding) for (name, role), cell in counts.items()]
    rows.sort(key=lambda r: (ROLE_ORDER.get(r["role"], len(ROLE_ORDER)), -r["decisions"],
                             r["name"]))
    applications = sum(sums.get(("outcome", o), (0, 0.0))[0] for o in OUTCOMES)
    return {"strategies": rows,
            "others_running": any(r["role"] != "champion" for r in rows),
            "decisions": deciding,
            # Decided in the window but counted before the strategy cells were.
            "unattributed": max(applications - deciding, 0),
            "swaps": [_swap_set(shadow, by_decider)
                      for shadow, by_decider in sorted(swaps.items())]}


def _decisions(cell: Mapping[str, float]) -> int:
    return int(sum(cell.get(o, 0) for o in (*OUTCOMES, FAILED)))


def _row(name: str, role: str, cell: Mapping[str, float], deciding: int) -> dict[str, Any]:
    decisions = _decisions(cell)
    approved = int(cell.get("approved", 0))
    with_outcome = decisions - int(cell.get(FAILED, 0))
    scored = int(cell.get("scored", 0))
    return {"name": name, "role": role, "decisions": decisions,
            "share": None if role == SHADOW else _rate(decisions, deciding),
            **{o: int(cell.get(o, 0)) for o in OUTCOMES}, "failed": int(cell.get(FAILED, 0)),
            "approval_rate": _rate(approved, with_outcome),
            "scored": scored, "mean_pd": _rate(cell.get("pd_total", 0.0), scored),
            "amount_approved": cell.get("line_total", 0.0),
            "mean_line": _rate(cell.get("line_total", 0.0), approved)}


def _swap_set(shadow: str, by_decider: Mapping[str, Mapping[tuple[str, str], int]]
              ) -> dict[str, Any]:
    """A shadow's outcomes against the decided ones: over every strategy that decided, and
    against each."""
    whole: dict[tuple[str, str], int] = defaultdict(int)
    for pairs in by_decider.values():
        for pair, n in pairs.items():
            whole[pair] += n
    columns = [*OUTCOMES, *([FAILED] if any(w == FAILED for _, w in whole) else [])]
    return {"shadow": shadow, **_swaps(whole),
            "matrix": {"rows": list(OUTCOMES), "columns": columns,
                       "counts": [[whole.get((d, w), 0) for w in columns] for d in OUTCOMES]},
            "by_strategy": [{"strategy": decider, **_swaps(pairs)}
                            for decider, pairs in sorted(by_decider.items())]}


def _swaps(pairs: Mapping[tuple[str, str], int]) -> dict[str, int]:
    return {"compared": sum(pairs.values()), "swap_in": pairs.get(SWAP_IN, 0),
            "swap_out": pairs.get(SWAP_OUT, 0),
            "same": sum(n for (d, w), n in pairs.items() if d == w)}
