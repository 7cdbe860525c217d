"""Every reason code a decision can carry, listed once with its one meaning.

A feature has two codes: its adverse code (cited by a decline) and its favourable code, the
adverse code with ``F`` (cited by an approval), unless its good side is no reason at all.
A policy rule has its own code; so has each bound that can set a partial approval's line,
and each change a risk officer makes on review. Each entry says whether the applicant can act
on it now: a feature the spec marks actionable, a rule that recourse can lift (not a
listing, bad debt, age, contribution history or too few income sources), a line bound other
than the product's largest line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scoring.online.engine import DecisionEngine
from scoring.online.partial import LINE_BOUND_REASONS, bound_texts
from scoring.online.policy import Policy
from scoring.online.spec import Feature, FeatureSpec, ReasonText
from scoring.recourse import FIXED_RULES

OVERTURNED_REASON = {"code": "H01", "text_zh": "经风险管理人员人工复核，改判为批准",
                     "text_en": "Approved on review by a risk officer"}
AMENDED_REASON = {"code": "H02", "text_zh": "经风险管理人员人工复核，调整了授信额度或利率",
                  "text_en": "Credit line or rate changed on review by a risk officer"}
REVIEW_REASONS = (OVERTURNED_REASON, AMENDED_REASON)
KINDS = ("adverse", "favourable", "rule", "line", "review")
# The line bounds an applicant can move: the grade's multiple (a better grade) and the
# debt-service bound (fewer debts, another term); not the product's largest line.
_MOVABLE_BOUNDS = frozenset(("income_multiple", "debt_service"))


def reason_catalogue(spec: FeatureSpec, policy: Policy) -> list[dict[str, Any]]:
    """Return every reason code once: the spec's features, the policy's rules, the review's.

    Each entry holds ``code``, ``kind`` (one of ``KINDS``), ``text_zh``, ``text_en``,
    ``group`` (the feature's or rule's; None otherwise), ``feature`` (the feature's name,
    else None), ``rule`` (the rule's or the line bound's name, else None) and ``actionable``.
    Features come in the spec's order, each adverse then favourable; then the rules in the
    policy's order; then the line bounds; then the review's. A code given twice is a
    ValueError.
    """
    entries = [*_feature_entries(spec), *_rule_entries(policy), *_line_entries(policy),
               *_review_entries()]
    seen: set[str] = set()
    for entry in entries:
        if entry["code"] in seen:
            raise ValueError(f"reason codes must be unique across spec {spec.version} and "
                             f"policy {policy.version}; got {entry['code']} twice")
        seen.add(entry["code"])
    return entries


def reasons_served(engine: DecisionEngine) -> dict[str, Any]:
    """Return the catalogue of the spec and policy an engine decides with, with their versions."""
    spec = engine.model.spec
    return {"spec_version": spec.version, "policy_version": engine.policy.version,
            "items": reason_catalogue(spec, engine.policy)}


def _entry(code: str, kind: str, zh: str, en: str, group: str | None, *, actionable: bool,
           feature: str | None = None, rule: str | None = None) -> dict[str, Any]:
    return {"code": code, "kind": kind, "text_zh": zh, "text_en": en, "group": group,
            "feature": feature, "rule": rule, "actionable": actionable}


def _feature_entry(feature: Feature, kind: str, text: ReasonText) -> dict[str, Any]:
    return _entry(text.code, kind, text.zh, text.en, feature.group, feature=feature.name,
                  actionable=feature.actionable)


def _feature_entries(spec: FeatureSpec) -> Iterator[dict[str, Any]]:
    for feature in spec.features:
        yield _feature_entry(feature, "adverse", feature.adverse)
        if feature.favourable is not None:
            yield _feature_entry(feature, "favourable", feature.favourable)


def _rule_entries(policy: Policy) -> Iterator[dict[str, Any]]:
    for rule in policy.rules.values():
        yield _entry(rule.code, "rule", rule.zh, rule.en, rule.group, rule=rule.name,
                     actionable=rule.name not in FIXED_RULES)


def _line_entries(policy: Policy) -> Iterator[dict[str, Any]]:
    # The income multiple's text names a grade's multiple; the catalogue gives the best's.
    for bound in LINE_BOUND_REASONS:
        texts = bound_texts(policy, bound)
        yield _entry(texts["code"], "line", texts["text_zh"], texts["text_en"], None,
                     rule=bound, actionable=bound in _MOVABLE_BOUNDS)


def _review_entries() -> Iterator[dict[str, Any]]:
    for reason in REVIEW_REASONS:
        yield _entry(reason["code"], "review", reason["text_zh"], reason["text_en"], None,
                     actionable=False)
