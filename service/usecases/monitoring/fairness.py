"""Fairness monitoring: outcomes by sex, age band and province, and each group's ratio to
the most favoured group.

This is monitoring, not a feature of the model: the groups are read from the national ID
when a decision is made (:mod:`service.usecases.monitoring.groups`) and only counted. For each group
the approval rate, the mean PD and the mean line approved are set beside those of the group
with the highest approval rate; a ratio of approval rates below 0.8 (the four-fifths rule of
adverse impact) is flagged, for groups with enough applications to judge. A smaller group is
named with its figures withheld, and the groups are counted by day only: fairness is read
over 7 or 30 days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from service.usecases.monitoring.groups import DIMENSIONS, group_label, group_order

Sums = Mapping[tuple[str, str], tuple[int, float]]
RATIO_FLOOR = 0.8
# A group with fewer decided applications than this in the window is named but not judged,
# and its figures are withheld: a handful of applications could be told apart.
MIN_GROUP = 30
# The groups are counted by day only (:data:`service.usecases.monitoring.cells.METRIC_GRAINS`), so
# that no bucket of minutes or hours holds the group of the one applicant decided in it.
FAIRNESS_WINDOWS = ["7d", "30d"]


def fairness_of(sums: Sums) -> dict[str, Any]:
    """The fairness table of each dimension over the summed cells ``sums``."""
    counts: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (metric, key), (n, total) in sums.items():
        if metric == "fair":
            dimension, group, outcome = key.split("|")
            cell = counts[(dimension, group)]
            cell["applications"] += n
            cell[outcome] += n
            cell["line_total"] += total
        elif metric == "fair_pd":
            dimension, group = key.split("|")
            counts[(dimension, group)]["scored"] += n
            counts[(dimension, group)]["pd_total"] += total
    dimensions = []
    for dimension, label in DIMENSIONS.items():
        groups = [_group(dimension, group, cell) for (d, group), cell in counts.items()
                  if d == dimension]
        groups.sort(key=lambda g: group_order(dimension, g["group"]))
        judged = [g for g in groups if not g["too_few"] and g["approval_rate"] is not None]
        best = max(judged, key=lambda g: g["approval_rate"], default=None)
        best_line = max((g["mean_line"] for g in judged if g["mean_line"] is not None),
                        default=None)
        for g in groups:
            g["approval_ratio"] = _ratio(g["approval_rate"], best["approval_rate"]
                                         if best else None)
            g["line_ratio"] = _ratio(g["mean_line"], best_line)
            g["flagged"] = (not g["too_few"] and g["approval_ratio"] is not None
                            and g["approval_ratio"] < RATIO_FLOOR)
        dimensions.append({"dimension": dimension, "label": label, "groups": groups,
                           "most_favoured": best["group"] if best else None,
                           "flagged": [g["group"] for g in groups if g["flagged"]]})
    return {"ratio_floor": RATIO_FLOOR, "min_group": MIN_GROUP, "dimensions": dimensions,
            "note": "Monitoring only: sex, age band and province are read from the national ID "
                    "to count outcomes, and are never inputs of the model."}


def _group(dimension: str, group: str, cell: Mapping[str, float]) -> dict[str, Any]:
    applications = int(cell.get("applications", 0))
    approved = int(cell.get("approved", 0))
    decided = approved + int(cell.get("declined", 0))
    scored = int(cell.get("scored", 0))
    found = {"group": group, "label": group_label(dimension, group),
             "applications": applications, "approved": approved,
             "declined": int(cell.get("declined", 0)), "deferred": int(cell.get("deferred", 0)),
             # Of the applications decided: a deferral has no outcome yet.
             "approval_rate": approved / decided if decided else None,
             "mean_pd": cell.get("pd_total", 0.0) / scored if scored else None,
             "mean_line": cell.get("line_total", 0.0) / approved if approved else None,
             "too_few": decided < MIN_GROUP}
    if found["too_few"]:
        found.update(dict.fromkeys(_WITHHELD))
    return found


# What a group too small to judge does not show.
_WITHHELD = ("applications", "approved", "declined", "deferred", "approval_rate", "mean_pd",
             "mean_line")


def _ratio(value: float | None, best: float | None) -> float | None:
    if value is None or not best:
        return None
    return value / best
