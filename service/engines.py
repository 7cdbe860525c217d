"""Every decision engine a worker uses, each model and policy loaded once.

Strategies, replay and backtests ask for an engine by model version and policy version; a
model (with its fallbacks) is loaded once per worker however many strategies share it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from datasources.base import INCOME_SCOPES
from scoring.drift import DriftReference
from scoring.engine import DecisionEngine
from scoring.model import ModelArtifact, load_fallbacks, load_model
from scoring.policy import Policy, PolicyError, load_policy
from scoring.recourse import CHANGEABLE, Recourse


class Engines:
    """Models, policies and the engines that pair them, loaded on first use and kept."""

    def __init__(self, model_search: tuple[Path, ...] = (),
                 policy_search: tuple[Path, ...] = ()) -> None:
        self.model_search = model_search
        self.policy_search = policy_search
        self._models: dict[str, ModelArtifact] = {}
        self._policies: dict[str, Policy] = {}
        self._engines: dict[tuple[str, str], DecisionEngine] = {}
        self._recourse: dict[tuple[str, str], Recourse | None] = {}
        self._references: dict[str, DriftReference | None] = {}
        self._lock = threading.RLock()

    def adopt(self, engine: DecisionEngine) -> None:
        """Keep an engine built elsewhere (the settings' at start), with its fallbacks."""
        with self._lock:
            policy = engine.policy
            self._policies.setdefault(policy.version, policy)
            self._engines.setdefault((engine.model.version, policy.version), engine)
            for model in (engine.model, *engine.fallbacks.values()):
                self._models.setdefault(model.version, model)

    def model(self, version: str) -> ModelArtifact:
        with self._lock:
            if version not in self._models:
                self._models[version] = load_model(version, search=self.model_search)
            return self._models[version]

    def policy(self, name: str) -> Policy:
        """A policy by version or file; kept under the version it states as well."""
        with self._lock:
            if name not in self._policies:
                policy = load_policy(name, self.policy_search)
                known = self._policies.setdefault(policy.version, policy)
                if known.digest != policy.digest:
                    raise PolicyError(f"policy {name} states version {policy.version}, which "
                                      "names another policy already in use")
                self._policies[name] = known
            return self._policies[name]

    def engine(self, model_version: str, policy: str) -> DecisionEngine:
        """The engine of a model (with the fallbacks shipped beside it) and a policy.

        Raises ModelError or PolicyError when either cannot be loaded.
        """
        with self._lock:
            loaded = self.policy(policy)
            key = (model_version, loaded.version)
            if key not in self._engines:
                model = self.model(model_version)
                fallbacks = {scope: self._models.setdefault(m.version, m) for scope, m in
                             load_fallbacks(model, INCOME_SCOPES, search=self.model_search,
                                            known=self._models).items()}
                self._engines[key] = DecisionEngine(model, loaded, fallbacks)
            return self._engines[key]

    def recourse(self, engine: DecisionEngine) -> Recourse | None:
        """The recourse search of an engine: within its model's reference quantiles, None
        for a model without a reference (it gives no suggestions)."""
        key = (engine.model.version, engine.policy.version)
        with self._lock:
            if key not in self._recourse:
                reference = engine.model.reference
                self._recourse[key] = (Recourse(engine, reference.bounds(sorted(CHANGEABLE)))
                                       if reference is not None else None)
            return self._recourse[key]

    def references(self, engine: DecisionEngine) -> dict[str, DriftReference | None]:
        """The drift reference of every model the engine decides with, by version."""
        with self._lock:
            for m in (engine.model, *engine.fallbacks.values()):
                if m.version not in self._references:
                    self._references[m.version] = DriftReference.from_card(m.card)
            return {m.version: self._references[m.version]
                    for m in (engine.model, *engine.fallbacks.values())}
