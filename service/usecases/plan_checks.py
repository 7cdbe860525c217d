"""The checks a plan must pass to be in force: when it is set (``PUT /v1/strategies``), and
again in every worker before it is adopted from the database.

Every model of the plan must pass its card's checks (``scoring.governance.promotion``: the AUC
floor,
monotone constraints present and honoured, the running spec's digest, the model's SHA-256)
and not be a fallback; every policy must be a version found in the policy folders (never a
file named by its path) and load within the regulatory caps.
"""

from __future__ import annotations

from scoring.governance.promotion import check_model, check_policy
from scoring.governance.strategy import StrategyPlan
from scoring.online.policy import policy_path, policy_versions
from scoring.online.spec import FeatureSpec
from service.usecases.engines import Engines, fallback_problem


def plan_problems(plan: StrategyPlan, engines: Engines, *, spec: FeatureSpec, min_auc: float,
                  passed: set[tuple[str, str, float]] | None = None) -> dict[str, list[str]]:
    """Every problem of every strategy of ``plan``, by the field that named it.

    ``passed`` holds the models (version, spec digest, AUC floor) that passed their card's
    checks before in this worker, which are not checked again, as a worker loads a model once;
    those that pass now are added. Policies are checked every time.
    """
    passed = set() if passed is None else passed
    fields = ["champion"] + (["challenger.strategy"] if plan.challenger else []) + [
        f"shadows.{i}" for i in range(len(plan.shadows))]
    problems: dict[str, list[str]] = {}
    models: dict[str, list[str]] = {}
    for where, (_, strategy) in zip(fields, plan.members(), strict=True):
        if strategy.model not in models:
            key = (strategy.model, spec.digest, min_auc)
            models[strategy.model] = [] if key in passed else check_model(
                strategy.model, spec=spec, search=engines.model_search, min_auc=min_auc)
            if not models[strategy.model]:
                passed.add(key)
        found = list(models[strategy.model])
        if not found and (fallback := fallback_problem(engines.model(strategy.model))):
            found.append(fallback)
        if "/" in strategy.policy or strategy.policy.endswith(".json"):
            found.append(f"policy must be a policy version (one of "
                         f"{', '.join(_versions(engines))}), not a file; got "
                         f"{strategy.policy!r}")
        elif (path := policy_path(strategy.policy, engines.policy_search)) is None:
            found.append(f"policy {strategy.policy} is not a known version (known: "
                         f"{', '.join(_versions(engines))})")
        else:
            found += check_policy(str(path))
        if found:
            problems[where] = found
    return problems


def _versions(engines: Engines) -> list[str]:
    return policy_versions(engines.policy_search)
