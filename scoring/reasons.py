"""Principal reasons: at most four, one per feature group, rules first, texts in zh and en."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoring.policy import Policy
from scoring.spec import FeatureSpec

MAX_REASONS = 4


@dataclass(frozen=True, slots=True)
class Reason:
    """One principal reason for a decision."""

    code: str
    text_zh: str
    text_en: str
    group: str
    source: str                    # "rule" | "model"
    feature: str | None = None
    contribution: float | None = None

    def to_dict(self) -> dict:
        return {"code": self.code, "text_zh": self.text_zh, "text_en": self.text_en,
                "group": self.group, "source": self.source, "feature": self.feature,
                "contribution": self.contribution}


class ReasonCoder:
    """Turn contributions and fired rules into principal reasons (built once per model)."""

    def __init__(self, spec: FeatureSpec, feature_names: list[str]) -> None:
        self.spec = spec
        self.features = [spec.by_name(n) for n in feature_names]
        self.groups = [g for g in spec.groups if any(f.group == g for f in self.features)]
        self.members = [np.array([i for i, f in enumerate(self.features) if f.group == g])
                        for g in self.groups]
        membership = np.zeros((len(self.features), len(self.groups)))
        for j, idx in enumerate(self.members):
            membership[idx, j] = 1.0
        self.membership = membership
        # Each group's members as one row, padded to the largest group (``_is_member`` marks
        # the members), so that one argmax finds every group's leading feature.
        width = max(len(idx) for idx in self.members)
        self._padded = np.zeros((len(self.groups), width), dtype=np.int64)
        self._is_member = np.zeros((len(self.groups), width), dtype=bool)
        for j, idx in enumerate(self.members):
            self._padded[j, :len(idx)] = idx
            self._is_member[j, :len(idx)] = True
        self._group_ix = np.arange(len(self.groups))

    def _ranked(self, contribs: np.ndarray, adverse: bool) -> tuple[np.ndarray, np.ndarray,
                                                                     np.ndarray]:
        """Return group order, group sums and each group's leading feature, for n rows."""
        sign = 1.0 if adverse else -1.0
        signed = sign * contribs
        sums = signed @ self.membership                       # (n, groups)
        # Padding is -inf, which argmax (the first of equal values) never takes before a
        # member: the same leading feature as an argmax over each group's members alone.
        by_group = np.where(self._is_member, signed[:, self._padded], -np.inf)
        lead = self._padded[self._group_ix, np.argmax(by_group, axis=2)]
        # Stable sort on the negated sums: larger first, ties by the spec's group order.
        order = np.argsort(-sums, axis=1, kind="stable")
        return order, sums, lead

    def reasons(self, contribs: np.ndarray, approved: np.ndarray,
                rules_fired: list[list[str]], policy: Policy,
                limit: int = MAX_REASONS) -> list[list[Reason]]:
        """Return the principal reasons of n decisions.

        Declines: the rules that fired (in policy order; the PD cut-off is explained by the
        model, not by a rule), then the groups that raised the risk most. Approvals: the
        groups that lowered the risk most, with their favourable texts.
        """
        contribs = np.atleast_2d(contribs)
        approved = np.asarray(approved, dtype=bool)
        out: list[list[Reason]] = []
        # Each ranking only if some decision reads it: declines the adverse one, approvals the
        # favourable one.
        adv = self._ranked(contribs, adverse=True) if not approved.all() else None
        fav = self._ranked(contribs, adverse=False) if approved.any() else None
        for i in range(contribs.shape[0]):
            chosen: list[Reason] = []
            used_groups: set[str] = set()
            is_approved = bool(approved[i])
            if not is_approved:
                for name in rules_fired[i]:
                    if name == "score" or len(chosen) >= limit:
                        continue
                    rule = policy.rule(name)
                    chosen.append(Reason(rule.code, rule.zh, rule.en, rule.group, "rule"))
                    used_groups.add(rule.group)
            order, sums, lead = fav if is_approved else adv  # type: ignore[misc]
            # Plain values of this row, so that the loop reads no numpy scalar.
            row_sums, row_lead = sums[i].tolist(), lead[i].tolist()
            for j in order[i].tolist():
                if len(chosen) >= limit or row_sums[j] <= 0:
                    break
                group = self.groups[j]
                if group in used_groups:
                    continue
                f = self.features[row_lead[j]]
                text = f.favourable if is_approved else f.adverse
                chosen.append(Reason(f.reason_code, text.zh, text.en, group, "model", f.name,
                                     round(float(contribs[i, row_lead[j]]), 6)))
                used_groups.add(group)
            out.append(chosen)
        return out
