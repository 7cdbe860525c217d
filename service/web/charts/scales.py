"""The points scale of each model whose decisions are drawn, kept once per worker."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from scoring.online.model import ModelArtifact, read_card
from service.web.charts.units import PointsScale, decider_scale


class PointsScales:
    """Points scales by the SHA-256 of the model that decided: those of the models loaded at
    start from memory, any other's card read once (a challenger's, or one before a model
    switch)."""

    def __init__(self, loaded: Iterable[ModelArtifact], model_search: tuple[Path, ...]) -> None:
        self.model_search = model_search
        self._scales: dict[str, PointsScale | None] = {
            m.sha256: PointsScale.from_card(m.card) for m in loaded}

    def of(self, explanation: Mapping[str, Any]) -> PointsScale | None:
        """The points scale of the model that decided ``explanation``; None without one."""
        sha256 = str(explanation.get("model_sha256"))
        if sha256 not in self._scales:
            try:
                card = read_card(explanation["model_version"], self.model_search)
            except (OSError, ValueError):
                return None
            scale = decider_scale(explanation, [card])
            if scale is None:
                return None
            self._scales[sha256] = scale
        return self._scales[sha256]
