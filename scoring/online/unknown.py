"""Unknown is not absent: which features a source that did not answer leaves unknown.

"The source answered: no record" is a fact about the applicant. "The source did not answer"
(timeout, error, malformed answer, open breaker, deadline) is unknown: every feature of that
source's group is unknown, and so is every cross-source feature that needs it. Cross-source
features that can be computed from the sources that did answer are *partial*: built from
the evidence received, never from a guess about the rest.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from datasources.base import INCOME_SCOPES
from scoring.online.spec import FeatureSpec

# The sources each cross-source feature reads, and whether it needs all of them ("all") or
# is computed from whichever answered ("any").
CROSS_SOURCE_INPUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "income_verified_monthly": ("any", INCOME_SCOPES),
    "income_sources": ("any", INCOME_SCOPES),
    "income_dispersion": ("any", INCOME_SCOPES),
    "employer_agreement": ("all", ("provident_fund", "social_security")),
    "debt_to_income": ("any", INCOME_SCOPES),
    "requested_to_income": ("any", INCOME_SCOPES),
}
# Besides income, these need a source without which they are unknown.
_ALSO_NEEDS = {"debt_to_income": ("credit_report",)}


@dataclass(frozen=True, slots=True)
class UnknownFeatures:
    """The features that unknown sources leave unknown or partial, in spec order."""

    scopes: tuple[str, ...]
    unknown: tuple[str, ...]
    partial: tuple[str, ...]


def unknown_features(spec: FeatureSpec, unknown_scopes: Collection[str]) -> UnknownFeatures:
    """Return the features unknown (or computed from fewer sources) when these did not answer.

    A feature of a source's own group is unknown when that source did not answer. A
    cross-source feature is unknown when a source it needs did not answer (every income
    source, or one it needs in particular), and partial when some but not all of its inputs
    are unknown.
    """
    scopes = tuple(s for s in spec.groups if s in set(unknown_scopes))
    missing = set(scopes)
    unknown: list[str] = []
    partial: list[str] = []
    for feature in spec.features:
        if feature.group in missing:
            unknown.append(feature.name)
            continue
        inputs = CROSS_SOURCE_INPUTS.get(feature.name)
        if inputs is None:
            continue
        mode, needed = inputs
        lost = missing & set(needed)
        needs_lost = bool(missing & set(_ALSO_NEEDS.get(feature.name, ())))
        if needs_lost or (lost and (mode == "all" or lost == set(needed))):
            unknown.append(feature.name)
        elif lost:
            partial.append(feature.name)
    return UnknownFeatures(scopes, tuple(unknown), tuple(partial))


def unknown_income_scopes(unknown_scopes: Collection[str]) -> frozenset[str]:
    """Return the income sources among the unknown ones."""
    return frozenset(unknown_scopes) & frozenset(INCOME_SCOPES)
