"""What the channel is told of a decision: the answer, built from the decision's row.

The answer carries the decision a person may be shown (line, rate, terms, score, grade, PD,
the principal reasons, a partial approval's reason, what would lead to approval), the strategy
that decided, the sources that did not answer and the timeline. Never a feature, a
contribution, a shadow's outcome or anything else of the model's internals.
"""

from __future__ import annotations

from datasources.outcome import GatherResult
from scoring.online.partial import partial_approval
from scoring.recourse import RecourseResult
from service.domain.encoding import now_text
from service.domain.timeline import Timeline
from service.usecases.strategies import LiveStrategy


def decision_answer(application_id: str, gathered: GatherResult, row: dict | None,
                    tl: Timeline, amount: float, recourse: RecourseResult | None,
                    deciding: LiveStrategy) -> dict:
    """Return the answer of a decision (``row`` None: deferred before scoring)."""
    decision = None
    # A deferral decides nothing yet: its scoring stays in the record, not the answer.
    if row is not None and row["outcome"] != "deferred":
        decision = {
            "credit_limit": row["credit_limit"], "annual_rate": row["annual_rate"],
            "terms_months": row["terms_months"], "score": row["score"],
            "grade": row["grade"], "pd": row["pd"],
            "reasons": [{"code": r["code"], "text_zh": r["text_zh"],
                         "text_en": r["text_en"]} for r in row["reasons"]],
            "model_version": row["model_version"], "policy_version": row["policy_version"],
            "requested_amount": float(amount),
            "partial": partial_approval(deciding.engine.policy, outcome=row["outcome"],
                                        credit_limit=row["credit_limit"], amount=amount,
                                        bound=row["line_bound"], grade=row["grade"]),
            "recourse": (recourse.for_applicant()
                         if recourse is not None and recourse.status != "not_needed"
                         else None),
        }
    return {
        "application_id": application_id,
        "status": row["outcome"] if row is not None else "deferred",
        "decision": decision,
        "decided_by": "model",
        # The strategy that decided (model/policy); the shadows are never named here.
        "strategy": deciding.name,
        "missing_sources": sorted(s for s, o in gathered.outcomes.items() if not o.ok),
        "timeline": tl.steps,
        "elapsed_ms": 0.0,
        "created_at": now_text(tl.started_wall),
    }
