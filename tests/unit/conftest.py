"""Fixtures shared by the unit tests: what is costly is built when a test first asks for it,
once per run (per xdist worker), never while the modules are collected."""

from __future__ import annotations

import pytest

from scoring.online.engine import DecisionEngine
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
