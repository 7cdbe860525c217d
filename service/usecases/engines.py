"""Every decision engine a worker uses, each model and policy loaded once.

Strategies, replay and backtests ask for an engine by model version and policy version; a
model (with its fallbacks) is loaded once per worker however many strategies share it. A
version is found only in its folders (shipped, or those the settings add), never as a path:
only the composition root adopts an engine built from the operator's own files.
"""

from __future__ import annotations

import threading
from pathlib import Path

from datasources.base import INCOME_SCOPES
from scoring.governance.drift import DriftReference
from scoring.governance.strategy import Strategy, StrategyError
from scoring.online.engine import DecisionEngine
from scoring.online.model import ModelArtifact, ModelShelf, load_fallbacks, version_dir
from scoring.online.policy import Policy, PolicyError, load_policy_version, policy_path
from scoring.recourse import CHANGEABLE, Recourse


def fallback_problem(model: ModelArtifact) -> str | None:
    """Why ``model`` may not decide alone, a strategy's model: it is a fallback; else None."""
    if not model.without:
        return None
    return (f"model {model.version} is a fallback trained without "
            f"{', '.join(sorted(model.without))}: it decides only when that source did not "
            "answer; name the model it stands in for")


class Engines:
    """Models, policies and the engines that pair them, loaded on first use and kept."""

    def __init__(self, model_search: tuple[Path, ...] = (),
                 policy_search: tuple[Path, ...] = (), shelf: ModelShelf | None = None) -> None:
        self.model_search = model_search
        self.policy_search = policy_search
        # Where models are loaded from once for every app of the process, if anywhere.
        self.shelf = shelf
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
            self.adopt_policy(policy)
            self._engines.setdefault((engine.model.version, policy.version), engine)
            for model in (engine.model, *engine.fallbacks.values()):
                self._models.setdefault(model.version, model)

    def adopt_policy(self, policy: Policy) -> None:
        """Keep, under the version it states, a policy the settings name (by version, or by
        the path of the operator's file).

        Raises PolicyError when that version is another policy, in the policy folders (which
        plans are checked against) or kept already: one version is one set of rules.
        """
        with self._lock:
            version = policy.version
            held = self._policies.get(version)
            if held is None and policy_path(version, self.policy_search) is not None:
                held = self.policy(version)
            if held is not None and held.digest != policy.digest:
                raise PolicyError(f"the settings' policy states version {version}, which the "
                                  "policy folders hold with other rules; give the file a "
                                  "version of its own")
            self._policies.setdefault(version, policy)

    def model(self, version: str) -> ModelArtifact:
        """A model version, found in the model folders."""
        with self._lock:
            if version not in self._models:
                directory = version_dir(version, self.model_search)
                self._models[version] = (self.shelf.load(directory) if self.shelf is not None
                                         else ModelArtifact(directory))
            return self._models[version]

    def policy(self, version: str) -> Policy:
        """A policy version, found in the policy folders."""
        with self._lock:
            if version not in self._policies:
                self._policies[version] = load_policy_version(version, self.policy_search)
            return self._policies[version]

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
                                            known=self._models, shelf=self.shelf).items()}
                self._engines[key] = DecisionEngine(model, loaded, fallbacks)
            return self._engines[key]

    def candidate(self, strategy: Strategy, field: str = "strategy") -> DecisionEngine:
        """The engine of a strategy named to decide, as a backtest's candidate or a replay's
        other strategy: its model must decide alone.

        Raises ModelError or PolicyError when either cannot be loaded, StrategyError (naming
        ``field``) when the model is a fallback.
        """
        engine = self.engine(strategy.model, strategy.policy)
        problem = fallback_problem(engine.model)
        if problem is not None:
            raise StrategyError(problem, field)
        return engine

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
