"""What recourse answers: a status, up to three verified suggestions and a plain note."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scoring.online.policy import Rule
from scoring.recourse.levers import Change, yuan

STATUSES = ("offered", "none_possible", "not_found", "not_needed")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the engine decided on the changed application."""

    outcome: str
    credit_limit: float
    annual_rate: float | None
    grade: str
    score: int

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "credit_limit": self.credit_limit,
                "annual_rate": self.annual_rate, "grade": self.grade, "score": self.score}


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One set of changes and the outcome the full engine gave the changed application.

    ``features`` holds every model feature the changes moved, joint effects included (card
    repayments and closed loans lower ``debt_to_income``), as (from, to).
    """

    changes: tuple[Change, ...]
    features: Mapping[str, tuple[float, float]]
    result: Outcome
    effort: float

    @property
    def levers(self) -> frozenset[str]:
        return frozenset(c.lever for c in self.changes)

    @property
    def text_zh(self) -> str:
        return "；".join(c.text_zh for c in self.changes)

    @property
    def text_en(self) -> str:
        texts = [c.text_en for c in self.changes]
        rest = [t[:1].lower() + t[1:] for t in texts[1:]]
        if rest:
            rest[-1] = "and " + rest[-1]
        return "; ".join([texts[0], *rest])

    def to_dict(self) -> dict[str, Any]:
        return {"changes": [c.to_dict() for c in self.changes],
                "features": {n: {"from": a, "to": b} for n, (a, b) in self.features.items()},
                "text_zh": self.text_zh, "text_en": self.text_en,
                "result": self.result.to_dict()}


@dataclass(frozen=True, slots=True)
class RecourseResult:
    """The answer for one decision; ``target`` is what every suggestion reaches."""

    status: str
    target: str | None
    note_zh: str
    note_en: str
    suggestions: tuple[Suggestion, ...] = ()
    blocking_rules: tuple[Rule, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Return the whole answer as plain values, for the record and the risk officer."""
        return {"status": self.status, "target": self.target,
                "suggestions": [s.to_dict() for s in self.suggestions],
                "note_zh": self.note_zh, "note_en": self.note_en,
                "blocking_rules": [{"rule": r.name, "code": r.code} for r in self.blocking_rules]}

    def for_applicant(self) -> dict[str, Any]:
        """Return what the applicant is shown: the status and the texts, nothing else."""
        return {"status": self.status, "target": self.target,
                "note_zh": self.note_zh, "note_en": self.note_en,
                "suggestions": [{"text_zh": s.text_zh, "text_en": s.text_en,
                                 "steps": [{"text_zh": c.text_zh, "text_en": c.text_en}
                                           for c in s.changes]}
                                for s in self.suggestions]}


def not_needed(outcome: str) -> RecourseResult:
    if outcome == "deferred":
        return RecourseResult("not_needed", None, "申请尚未作出决定，暂无需做任何改变。",
                              "The application is not decided yet: there is nothing to change.")
    return RecourseResult("not_needed", None, "申请已按所申请金额获批，无需做任何改变。",
                          "The application was approved for the amount asked: there is "
                          "nothing to change.")


def none_possible(rules: Sequence[Rule]) -> RecourseResult:
    zh = "；".join(r.zh for r in rules)
    # The rules' texts stand alone as sentences; here they follow a colon.
    en = "; ".join(r.en[:1].lower() + r.en[1:] for r in rules)
    return RecourseResult("none_possible", "approval",
                          f"您目前可以做出的任何改变都无法使申请获得批准：{zh}。",
                          f"No change you could make now would lead to approval: {en}.",
                          blocking_rules=tuple(rules))


def found(target: str, amount: float, suggestions: Sequence[Suggestion]) -> RecourseResult:
    if not suggestions:
        if target == "approval":
            return RecourseResult("not_found", target,
                                  "我们没有找到您目前可以做出、并能使申请获得批准的改变。",
                                  "We found no change within your reach that would lead to "
                                  "approval.")
        zh, en = yuan(amount)
        return RecourseResult("not_found", target,
                              f"我们没有找到您目前可以做出、并能使额度达到所申请{zh}的改变。",
                              f"We found no change within your reach that would lead to a "
                              f"credit line of the {en} you asked for.")
    if target == "approval":
        zh_goal, en_goal = "获得批准", "lead to approval"
    else:
        zh, en = yuan(amount)
        zh_goal = f"获得不低于所申请{zh}的额度"
        en_goal = f"lead to a credit line of at least the {en} you asked for"
    return RecourseResult("offered", target,
                          f"按我们目前掌握的信息，完成以下任一方案即可{zh_goal}；"
                          "重新申请时将重新审批。",
                          f"On the information we hold now, any one of the options below "
                          f"would {en_goal}. A new application is decided afresh.",
                          tuple(suggestions))
