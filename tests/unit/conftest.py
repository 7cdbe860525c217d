"""Fixtures shared by the unit tests: what is costly is built when a test first asks for it,
once per run (per xdist worker), never while the modules are collected."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from datasources.stub.world import generate, records_at
from scoring.online.engine import DecisionEngine
from scoring.online.features import features_for_application
from scoring.online.model import ModelArtifact, load_fallbacks, load_model
from scoring.online.policy import load_policy

INCOME = ("provident_fund", "social_security", "income_tax")


@pytest.fixture(scope="session")
def shipped_model() -> ModelArtifact:
    """The shipped default model. Tests only read it."""
    return load_model()


@pytest.fixture(scope="session")
def shipped_engine(shipped_model: ModelArtifact) -> DecisionEngine:
    """The shipped model's engine under the current policy, with the fallbacks trained
    without each income source, as the service composes it. Tests only read it."""
    return DecisionEngine(shipped_model, load_policy(), load_fallbacks(shipped_model, INCOME))


def decider(engine: DecisionEngine, ids: Sequence[str], ages: np.ndarray) -> Callable:
    """``decide(unknown)``: the applicants ``ids`` (each asking for 20,000 over 12 months),
    decided by ``engine`` with the sources of ``unknown`` not answering."""
    columns = generate(ids)
    features = np.vstack([features_for_application(records_at(columns, i), 20000, 12)
                          for i in range(len(ids))])

    def decide(unknown: tuple[str, ...] = ()):
        return engine.decide(features, age=ages, purpose="travel", term_months=12,
                             unknown_scopes=unknown)

    return decide
