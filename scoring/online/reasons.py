"""Principal reasons: at most four, one per feature group, rules first, texts in zh and en.

The model's reasons are ranked by contributions measured against a reference. With a model
that has a reference population (approved applicants, ``scoring.online.reference``) they are its
interventional contributions: a decline names what kept the applicant below approved
applicants, an approval what sets the applicant above them. A model without one ranks by
the exact path-dependent contributions, measured against the average applicant of the
training data. Each decision records which (``reasons_method``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scoring.online.policy import Policy
from scoring.online.spec import FeatureSpec

MAX_REASONS = 4
# How a decision's model reasons were ranked: against the reference's approved applicants,
# or against the average applicant (every decision recorded before there were references).
REASONS_REFERENCE = "reference:interventional"
REASONS_AVERAGE = "average:path_dependent"


@dataclass(frozen=True, slots=True)
class Reason:
    """One principal reason for a decision.

    ``contribution`` is the feature's exact contribution to the margin (as recorded);
    ``reference_contribution``, when reasons are ranked against a reference, the
    contribution against it that ranked the reason.
    """

    code: str
    text_zh: str
    text_en: str
    group: str
    source: str                    # "rule" | "model"
    feature: str | None = None
    contribution: float | None = None
    reference_contribution: float | None = None

    def to_dict(self) -> dict:
        return {"code": self.code, "text_zh": self.text_zh, "text_en": self.text_en,
                "group": self.group, "source": self.source, "feature": self.feature,
                "contribution": self.contribution,
                "reference_contribution": self.reference_contribution}


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
        # Features an approval may cite: those with a favourable text. The others (no
        # lawsuit, nothing overdue) count for nothing in an approval's ranking.
        self._citable_favourable = np.array([f.favourable is not None for f in self.features])
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
        # For approvals, a feature with no favourable text is left out (0): a group it alone
        # pushed down sums to nothing, and a group that sums above 0 leads with a citable one.
        signed = contribs if adverse else np.where(self._citable_favourable, -contribs, 0.0)
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
                limit: int = MAX_REASONS, *,
                ranked_by: np.ndarray | None = None) -> list[list[Reason]]:
        """Return the principal reasons of n decisions.

        Declines: the rules that fired (in policy order; the PD cut-off is explained by the
        model, not by a rule), then the groups that raised the risk most. Approvals: the
        groups that lowered the risk most, with their favourable texts and codes.

        Parameters
        ----------
        contribs
            Exact contributions (n, F), in the coder's feature order; each model reason
            carries its feature's.
        ranked_by
            Contributions against the reference (n, F), which rank the groups and pick each
            one's feature instead of ``contribs``: a decline cites only features on which
            the applicant is worse than the reference, an approval only features on which
            the applicant is better.
        """
        contribs = np.atleast_2d(contribs)
        ranking = contribs if ranked_by is None else np.atleast_2d(ranked_by)
        approved = np.asarray(approved, dtype=bool)
        out: list[list[Reason]] = []
        # Each ranking only if some decision reads it: declines the adverse one, approvals the
        # favourable one.
        adv = self._ranked(ranking, adverse=True) if not approved.all() else None
        fav = self._ranked(ranking, adverse=False) if approved.any() else None
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
                k = row_lead[j]
                f = self.features[k]
                text = f.favourable if is_approved else f.adverse
                assert text is not None  # an approval's leading feature has a favourable text
                chosen.append(Reason(
                    text.code, text.zh, text.en, group, "model", f.name,
                    round(float(contribs[i, k]), 6),
                    None if ranked_by is None else round(float(ranking[i, k]), 6)))
                used_groups.add(group)
            out.append(chosen)
        return out
