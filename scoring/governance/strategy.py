"""Strategies: which model and policy decide, and which only decide aside.

A strategy is a pair (model version, policy version), written ``MODEL/POLICY``. A plan names
one champion, at most one challenger that decides a share of the applications, and any number
of shadows that decide every application without their outcome being sent. Which strategy
meets an applicant is drawn from the pseudonymised subject alone, so that an applicant always
meets the same one while the plan stands, and raising the challenger's share only moves more
applicants to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scoring.online.versions import VERSION_RULE, is_version

CHAMPION, CHALLENGER, SHADOW = "champion", "challenger", "shadow"
ROLES = (CHAMPION, CHALLENGER, SHADOW)
# The draw's own label: the subject's other uses never predict it.
_DRAW_LABEL = b"flashloan strategy draw\x00"
_DRAW_SPAN = float(1 << 64)
# The longest strategy (two versions and the slash) a message quotes whole.
_SHOWN = 201


class StrategyError(ValueError):
    """A strategy or plan that is malformed; ``field`` names where."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Strategy:
    """A model version and a policy version that decide together."""

    model: str
    policy: str

    @property
    def name(self) -> str:
        return f"{self.model}/{self.policy}"

    @classmethod
    def parse(cls, text: Any, field: str = "strategy") -> Strategy:
        """Read ``MODEL/POLICY``: a model version, then a policy version; never a path.

        Every entry point that takes a strategy reads it here, so none names a file.
        """
        if not isinstance(text, str):
            raise StrategyError(f"{field} must be text of the form MODEL/POLICY", field)
        model, sep, policy = text.strip().partition("/")
        if not sep or not model or not policy:
            raise StrategyError(f"{field} must be of the form MODEL/POLICY, e.g. v1/2026.11; "
                                f"got {_shown(text)}", field)
        if not (is_version(model) and is_version(policy)):
            raise StrategyError(f"{field} must be of the form MODEL/POLICY, a model version "
                                f"and a policy version ({VERSION_RULE}), e.g. v1/2026.11; "
                                f"got {_shown(text)}", field)
        return cls(model, policy)

    def __str__(self) -> str:
        return self.name


def _shown(text: str) -> str:
    """The text as a message quotes it: whole up to a length a strategy can have."""
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "…")


def challenger_draw(subject: str) -> float:
    """The applicant's place in [0, 1): below the challenger's share, the challenger decides.

    A hash of the pseudonymised subject (itself keyed) under a label of its own: the same
    applicant always draws the same place, and places are uniform over applicants.
    """
    digest = hashlib.sha256(_DRAW_LABEL + subject.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / _DRAW_SPAN


@dataclass(frozen=True, slots=True)
class StrategyPlan:
    """The champion, the challenger with its share, and the shadows."""

    champion: Strategy
    challenger: Strategy | None = None
    challenger_share: float = 0.0
    shadows: tuple[Strategy, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        share = self.challenger_share
        if not isinstance(share, int | float) or not 0.0 <= float(share) <= 1.0:
            raise StrategyError(f"challenger.share must be a number from 0 to 1; got {share!r}",
                                "challenger.share")
        if self.challenger is None and share:
            raise StrategyError("challenger.share needs a challenger", "challenger.share")
        seen = {self.champion.name: "champion"}
        named = ([("challenger.strategy", self.challenger)] if self.challenger else []) + [
            (f"shadows.{i}", s) for i, s in enumerate(self.shadows)]
        for where, strategy in named:
            if strategy.name in seen:
                raise StrategyError(f"{strategy.name} is already the plan's {seen[strategy.name]}; "
                                    "a strategy has one role", where)
            seen[strategy.name] = where

    def deciding(self, subject: str) -> tuple[str, Strategy]:
        """The role and strategy that decide the applicant ``subject``."""
        if self.challenger is not None and challenger_draw(subject) < self.challenger_share:
            return CHALLENGER, self.challenger
        return CHAMPION, self.champion

    def members(self) -> list[tuple[str, Strategy]]:
        """Every strategy of the plan with its role: champion, challenger, then shadows."""
        found = [(CHAMPION, self.champion)]
        if self.challenger is not None:
            found.append((CHALLENGER, self.challenger))
        return found + [(SHADOW, s) for s in self.shadows]

    def to_dict(self) -> dict[str, Any]:
        return {"champion": self.champion.name,
                "challenger": (None if self.challenger is None else
                               {"strategy": self.challenger.name,
                                "share": self.challenger_share}),
                "shadows": [s.name for s in self.shadows]}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> StrategyPlan:
        """Read a plan as :meth:`to_dict` writes it (and as ``PUT /v1/strategies`` takes it)."""
        challenger = doc.get("challenger")
        if challenger is not None and not isinstance(challenger, Mapping):
            raise StrategyError("challenger must be an object {strategy, share} or null",
                                "challenger")
        shadows = doc.get("shadows") or []
        if not isinstance(shadows, list | tuple):
            raise StrategyError("shadows must be a list of MODEL/POLICY", "shadows")
        return cls(
            champion=Strategy.parse(doc.get("champion"), "champion"),
            challenger=(None if challenger is None
                        else Strategy.parse(challenger.get("strategy"), "challenger.strategy")),
            challenger_share=(0.0 if challenger is None else challenger.get("share", 0.0)),
            shadows=tuple(Strategy.parse(s, f"shadows.{i}") for i, s in enumerate(shadows)))
