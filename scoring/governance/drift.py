"""Population drift: where a model's training split falls, and how far live decisions stray.

A model's card stores, under ``monitoring``, the bins of its score, its PD and every feature
it reads, with the share of the training split (the rows the model was fit on) in each
(``build_drift_reference``). Live decisions counted into the same bins are compared with it
by the population stability index. The thresholds are the industry's rule of thumb: below
``WATCH`` the population is stable, from ``ACT`` it has moved enough that the model's
ranking and calibration can no longer be taken on trust.

Edges are stored rounded and the training shares are counted with the rounded edges, so a
value falls into the same bin whether it is binned at training or against the card.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

WATCH, ACT = 0.1, 0.25
MISSING = "missing"
# An empty bin would make the PSI infinite (ln 0); both shares are raised to this floor.
SHARE_FLOOR = 1e-4
# Edges and discrete values keep six significant digits: exact for points and counts, short
# enough to read in the card. The shares are counted with the rounded edges, so rounding
# moves a cut point a little, never a value into another bin than the card's.
_DIGITS = 6
_SHARE_DECIMALS = 6


@dataclass(frozen=True, slots=True)
class Bins:
    """The bins of one variable and the share of the training rows in each.

    ``edges`` are the k-1 inner cut points, increasing: bin i is (edges[i-1], edges[i]],
    the first open to -inf and the last to +inf, so every number falls into exactly one bin
    and a value equal to a cut point into the one below it. Missing values (NaN) have a
    bin of their own. ``values`` is set when the variable is discrete and each bin holds
    one of its training values: it names the bins.
    """

    edges: tuple[float, ...]
    shares: tuple[float, ...]
    missing: float
    values: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.shares) != len(self.edges) + 1:
            raise ValueError(f"bins must have one share more than edges ({len(self.edges)}); "
                             f"got {len(self.shares)} shares")
        if any(b <= a for a, b in itertools.pairwise(self.edges)):
            raise ValueError(f"bin edges must be strictly increasing; got {list(self.edges)}")
        if self.values is not None and len(self.values) != len(self.shares):
            raise ValueError(f"bins must have one value per bin ({len(self.shares)}); got "
                             f"{len(self.values)}")

    def keys(self) -> list[str]:
        """Return the bins' keys in order, the missing values' last."""
        return [str(i) for i in range(len(self.shares))] + [MISSING]

    def labels(self) -> dict[str, str]:
        """Return each key's short label for a person: ``≤ 0.25``, ``0.25–0.5``, ``> 3``."""
        if self.values is not None:
            named = [_number(v) for v in self.values]
        elif not self.edges:
            named = ["any value"]
        else:
            e = [_number(v) for v in self.edges]
            named = [f"≤ {e[0]}", *(f"{a}–{b}" for a, b in itertools.pairwise(e)),
                     f"> {e[-1]}"]
        return {**dict(zip(self.keys(), named, strict=False)), MISSING: "missing"}

    def key_of(self, value: float | None) -> str:
        """Return the key of the bin ``value`` falls into (None or NaN: missing)."""
        if value is None or math.isnan(value):
            return MISSING
        return str(bisect.bisect_left(self.edges, value))

    def counts_of(self, values: np.ndarray) -> dict[str, int]:
        """Return how many of ``values`` fall into each bin, every key present."""
        v = np.asarray(values, dtype=np.float64).ravel()
        present = v[~np.isnan(v)]
        index = np.searchsorted(np.asarray(self.edges, dtype=np.float64), present, side="left")
        counts = np.bincount(index, minlength=len(self.shares))
        return {**{str(i): int(n) for i, n in enumerate(counts)},
                MISSING: int(v.size - present.size)}

    def expected(self) -> dict[str, float]:
        """Return each key's share of the training rows, missing included."""
        return {**{str(i): s for i, s in enumerate(self.shares)}, MISSING: self.missing}

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "shares": list(self.shares), "missing": self.missing,
                **({"values": list(self.values)} if self.values is not None else {})}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Bins:
        lacking = {"edges", "shares", "missing"} - set(data)
        if lacking:
            raise ValueError(f"bins must have edges, shares and missing; got no "
                             f"{', '.join(sorted(lacking))}")
        values = data.get("values")
        return cls(tuple(float(e) for e in data["edges"]),
                   tuple(float(s) for s in data["shares"]), float(data["missing"]),
                   None if values is None else tuple(float(v) for v in values))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _rounded(values: np.ndarray) -> np.ndarray:
    return np.array([float(f"{v:.{_DIGITS}g}") for v in values.tolist()], dtype=np.float64)


def bins_for(values: np.ndarray, *, max_bins: int = 10) -> Bins:
    """Return the bins of ``values`` and their shares; NaN is missing.

    A variable with at most ``max_bins`` distinct values gets one bin per value, cut midway
    between consecutive values; any other gets equal-frequency bins, cut at the quantiles
    of its values (cut points that coincide, as at a mass of zeros, are kept once). A
    constant variable, or one always missing, has one bin.
    """
    if max_bins < 1:
        raise ValueError(f"max_bins must be at least 1; got {max_bins}")
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("values must hold at least one row; got none")
    present = v[~np.isnan(v)]
    if present.size == 0:
        return Bins((), (0.0,), 1.0)
    distinct = np.unique(present)
    if distinct.size <= max_bins:
        cuts = (distinct[:-1] + distinct[1:]) / 2
    else:
        cuts = np.quantile(present, np.arange(1, max_bins) / max_bins, method="inverted_cdf")
    edges = np.unique(_rounded(cuts))
    # A cut outside the values would leave a training bin empty.
    edges = edges[(edges >= distinct[0]) & (edges < distinct[-1])]
    bins = Bins(tuple(edges.tolist()), (0.0,) * (edges.size + 1), 0.0)
    counts = bins.counts_of(v)
    one_each = distinct.size == edges.size + 1 and np.array_equal(
        np.searchsorted(edges, distinct, side="left"), np.arange(distinct.size))
    return Bins(bins.edges,
                tuple(round(counts[k] / v.size, _SHARE_DECIMALS) for k in bins.keys()[:-1]),
                round(counts[MISSING] / v.size, _SHARE_DECIMALS),
                tuple(_rounded(distinct).tolist()) if one_each else None)


def psi(expected: Mapping[str, float], observed: Mapping[str, int]) -> float | None:
    """Return the population stability index of ``observed`` counts against ``expected``.

    The sum over every key of either of (o - e) · ln(o / e), o and e the observed and
    expected shares, each raised to at least 1e-4 (``SHARE_FLOOR``): the floor keeps a bin
    empty on either side finite. None when nothing was observed.
    """
    negative = {k: n for k, n in observed.items() if n < 0}
    if negative:
        raise ValueError(f"observed counts must be non-negative; got {negative}")
    rows = sum(observed.values())
    if rows == 0:
        return None
    total = 0.0
    for key in dict.fromkeys([*expected, *observed]):
        e = max(float(expected.get(key, 0.0)), SHARE_FLOOR)
        o = max(observed.get(key, 0) / rows, SHARE_FLOOR)
        total += (o - e) * math.log(o / e)
    return total


@dataclass(frozen=True, slots=True)
class SampleShift:
    """One sample against another, counted in the bins of the first, and their PSI."""

    bins: Bins
    expected: dict[str, int]   # the first sample's count in each bin, every key present
    observed: dict[str, int]
    psi: float | None

    def shares(self) -> list[dict[str, Any]]:
        """Return each bin's label and both samples' shares (None for an empty sample), the
        missing values' bin only when either sample has some."""
        labels, keys = self.bins.labels(), self.bins.keys()
        n_expected, n_observed = sum(self.expected.values()), sum(self.observed.values())
        return [{"key": key, "label": labels[key],
                 "expected": self.expected[key] / n_expected if n_expected else None,
                 "observed": self.observed[key] / n_observed if n_observed else None}
                for key in keys
                if key != MISSING or self.expected[key] or self.observed[key]]


def sample_shift(expected: np.ndarray, observed: np.ndarray, *,
                 max_bins: int = 10) -> SampleShift:
    """Return ``observed`` against ``expected`` in the bins of ``expected`` (``bins_for``).

    Unlike a card's stored shares, the expected shares are the exact counts over their
    total, so that a sample compared with itself has a PSI of exactly 0.
    """
    bins = bins_for(expected, max_bins=max_bins)
    counts = bins.counts_of(expected)
    total = sum(counts.values())
    shares = {key: n / total for key, n in counts.items()}
    found = bins.counts_of(observed)
    return SampleShift(bins, counts, found, psi(shares, found))


def level(value: float | None) -> str:
    """Return how much a PSI calls for: ``stable``, ``watch``, ``act`` or ``unknown``."""
    if value is None or math.isnan(value):
        return "unknown"
    if value >= ACT:
        return "act"
    return "watch" if value >= WATCH else "stable"


@dataclass(frozen=True, slots=True)
class DriftReference:
    """A model's training split, binned: its score, its PD and each feature it reads."""

    rows: int
    score: Bins
    pd: Bins
    features: dict[str, Bins]   # in the card's feature order

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> DriftReference | None:
        """Read a card's ``monitoring``; None for a card written before it existed."""
        section = card.get("monitoring")
        if section is None:
            return None
        names = list(card["features"])
        stored = set(section["features"])
        if stored != set(names):
            raise ValueError(
                f"monitoring features must be the card's features; got "
                f"{len(stored - set(names))} more ({sorted(stored - set(names))}) and "
                f"{len(set(names) - stored)} fewer ({sorted(set(names) - stored)})")
        return cls(int(section["rows"]), Bins.from_dict(section["score"]),
                   Bins.from_dict(section["pd"]),
                   {name: Bins.from_dict(section["features"][name]) for name in names})

    def to_dict(self) -> dict[str, Any]:
        return {"split": "train", "rows": self.rows, "score": self.score.to_dict(),
                "pd": self.pd.to_dict(),
                "features": {name: b.to_dict() for name, b in self.features.items()}}


def build_drift_reference(x: np.ndarray, feature_names: list[str], scores: np.ndarray,
                          pds: np.ndarray) -> dict[str, Any]:
    """Return a card's ``monitoring`` section: the bins of the training split.

    Parameters
    ----------
    x
        The training split's features as the model reads them, in ``feature_names`` order
        (NaN for missing).
    scores, pds
        The model's own score and calibrated PD of each row of ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(feature_names):
        raise ValueError(f"x must be a matrix with one column per feature "
                         f"({len(feature_names)}); got shape {x.shape}")
    scores = np.asarray(scores, dtype=np.float64).ravel()
    pds = np.asarray(pds, dtype=np.float64).ravel()
    if scores.size != x.shape[0] or pds.size != x.shape[0]:
        raise ValueError(f"scores and pds must have one value per row of x ({x.shape[0]}); "
                         f"got {scores.size} and {pds.size}")
    reference = DriftReference(
        rows=int(x.shape[0]), score=bins_for(scores), pd=bins_for(pds),
        features={name: bins_for(x[:, j]) for j, name in enumerate(feature_names)})
    return reference.to_dict()
