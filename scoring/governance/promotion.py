"""What a model or a policy must pass before it takes a live role (champion, challenger, shadow).

Each check returns every problem it finds, as a sentence an admin can act on; an empty list
passes. A model is checked on its card (AUC floor, the spec it was trained on, its monotone
constraints) and on its booster: the artifact must load as serving loads it (SHA-256,
reference), and its trees must hold every constrained feature to its direction. A policy must
load (which enforces the regulatory caps) and must be able to decide live applications.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from datasources import SCOPES
from datasources.base import INCOME_SCOPES, REQUIRED_SCOPES
from datasources.outcome import MIN_INCOME_ANSWERS
from scoring.governance.drift import Bins
from scoring.online.model import ModelArtifact, ModelError, version_dir
from scoring.online.policy import Policy, PolicyError, load_policy
from scoring.online.spec import FeatureSpec

# Purposes consumer credit may never fund, whatever a policy allows.
FORBIDDEN_PURPOSES = ("securities", "property", "business")
# Rows drawn from the card's training bins when a model has no reference to vary features in.
SAMPLE_ROWS = 200
_SAMPLE_SEED = 0


def check_model(version: str, *, spec: FeatureSpec, search: tuple[Path, ...] = (),
                min_auc: float) -> list[str]:
    """Return every reason the model ``version`` may not take a live role; empty if none.

    Parameters
    ----------
    version
        A model version, found in ``search`` folders or shipped (never a path).
    spec
        The running feature spec: the model must have been trained on its features.
    search
        Folders searched for the version before the shipped models.
    min_auc
        The lowest held-out AUC (the card's ``metrics.auc``) a live model may have.
    """
    try:
        directory = version_dir(version, search)
        card = json.loads((directory / "card.json").read_text(encoding="utf-8"))
    except ModelError as exc:
        return [str(exc)]
    except (OSError, ValueError) as exc:
        return [f"model {version}: its card.json cannot be read ({exc})"]
    if not isinstance(card, dict):
        return [f"model {version}: card.json must hold a JSON object; got {type(card).__name__}"]
    problems = [*_auc_problems(version, card, min_auc), *_spec_problems(version, card, spec),
                *_declared_constraint_problems(version, card, spec)]
    try:
        # As serving loads it: the SHA-256 of model.json and of the reference are checked here.
        model = ModelArtifact(directory, nthread=0, spec=spec)
    except ModelError as exc:
        return [*problems, str(exc)]
    except KeyError as exc:
        return [*problems, f"model {version} does not load: its card lacks {exc}"]
    except (TypeError, ValueError) as exc:
        return [*problems, f"model {version} does not load: {exc}"]
    return [*problems, *_honoured_problems(model, spec)]


def _auc_problems(version: str, card: Mapping[str, Any], min_auc: float) -> list[str]:
    metrics = card.get("metrics")
    auc = metrics.get("auc") if isinstance(metrics, Mapping) else None
    if isinstance(auc, bool) or not isinstance(auc, int | float):
        return [f"model {version}: its card must record its held-out AUC (metrics.auc); "
                f"got {auc!r}"]
    if not auc >= min_auc:
        return [f"model {version}: held-out AUC {auc:.4f} is below the floor of {min_auc:.4f}"]
    return []


def _spec_problems(version: str, card: Mapping[str, Any], spec: FeatureSpec) -> list[str]:
    # A card names the model part of the spec it was trained on (``spec_model_digest``); a
    # card without one must name the running spec document itself.
    trained_on = card.get("spec_model_digest")
    if trained_on is None:
        if card.get("spec_digest") == spec.digest:
            return []
        return [f"model {version} was trained on spec document {card.get('spec_digest')!r}, "
                f"not the running spec {spec.version} ({spec.digest}), and its card does not "
                f"name the model part of its spec (spec_model_digest); retrain it on the "
                f"running spec"]
    if trained_on != spec.model_digest:
        return [f"model {version} was trained on features whose names, order, sources, types "
                f"or monotone directions differ from the running spec {spec.version} "
                f"(model digest {trained_on}, running {spec.model_digest}); retrain it on the "
                f"running spec"]
    return []


def _declared_constraint_problems(version: str, card: Mapping[str, Any],
                                  spec: FeatureSpec) -> list[str]:
    names = card.get("features")
    if not isinstance(names, list) or not names:
        return [f"model {version}: its card must list its features; got {names!r}"]
    unknown = [n for n in names if n not in spec.names]
    if unknown:
        return [f"model {version} reads features the running spec lacks: {', '.join(unknown)}"]
    expected = spec.monotone_constraints(names)
    params = card.get("params")
    problems = []
    for field, stated in (("monotone_constraints", card.get("monotone_constraints")),
                          ("params.monotone_constraints", params.get("monotone_constraints")
                           if isinstance(params, Mapping) else None)):
        if stated is None:
            problems.append(f"model {version}: its card must record {field}, one direction "
                            f"per feature; it has none")
        elif not isinstance(stated, list) or len(stated) != len(names):
            problems.append(f"model {version}: its card's {field} must hold one direction for "
                            f"each of its {len(names)} features; got {stated!r}")
        elif stated != expected:
            wrong = ", ".join(f"{n} {s} (spec {e})" for n, s, e in zip(names, stated, expected,
                                                                        strict=True) if s != e)
            problems.append(f"model {version}: its card's {field} must be the spec's monotone "
                            f"directions; it differs at {wrong}")
    return problems


def _honoured_problems(model: ModelArtifact, spec: FeatureSpec) -> list[str]:
    """Return the constrained features whose direction the booster breaks, with the evidence.

    A saved model keeps its trees, not its training parameters (XGBoost, "Introduction to
    Model IO"), so its configuration after loading names no constraints. The trees are
    checked instead: a split on a feature with direction +1 must leave every leaf below it at
    or under every leaf above it (-1: at or over), as XGBoost's constraint builds them; and the
    margin is computed with each feature set to every threshold the trees split it at, the
    others held at sample rows, and must move only in the feature's direction.
    """
    directions = spec.monotone_constraints(model.feature_names)
    broken_splits, thresholds = _tree_splits(model.booster, directions)
    rows = _base_rows(model)
    problems = []
    for j, (name, sign) in enumerate(zip(model.feature_names, directions, strict=True)):
        if sign == 0 or not thresholds[j]:
            continue
        evidence = []
        if broken_splits[j]:
            evidence.append(f"{broken_splits[j]} of the booster's splits on it have leaves "
                            f"that move the risk against it")
        drop = _margin_drop(model, rows, j, sign, sorted(thresholds[j]))
        if drop is not None:
            size, low, high, count = drop
            evidence.append(f"the margin moves against it by up to {size:.4g} as {name} rises "
                            f"from {low:.6g} to {high:.6g} (in {count} of {len(rows)} rows)")
        if evidence:
            rule = "must not fall" if sign > 0 else "must not rise"
            problems.append(f"model {model.version} breaks the monotone direction {sign:+d} of "
                            f"{name} (risk {rule} as it rises): {'; '.join(evidence)}; retrain "
                            f"it with the spec's monotone constraints")
    return problems


def _tree_splits(booster: Any, directions: list[int]) -> tuple[list[int], list[set[float]]]:
    """Return, per feature, how many splits break its direction and the thresholds used."""
    broken = [0] * len(directions)
    thresholds: list[set[float]] = [set() for _ in directions]
    trees = json.loads(booster.save_raw(raw_format="json"))["learner"]["gradient_booster"][
        "model"]["trees"]
    for tree in trees:
        left, right = tree["left_children"], tree["right_children"]
        feature, value = tree["split_indices"], tree["split_conditions"]
        low, high = list(value), list(value)
        # A child's index is above its parent's: one backward pass gives each subtree's
        # lowest and highest leaf (a leaf's split_condition is its value).
        for node in range(len(left) - 1, -1, -1):
            if left[node] == -1:
                continue
            a, b = left[node], right[node]
            low[node], high[node] = min(low[a], low[b]), max(high[a], high[b])
            j = feature[node]
            thresholds[j].add(value[node])
            sign = directions[j]
            if (sign > 0 and high[a] > low[b]) or (sign < 0 and low[a] < high[b]):
                broken[j] += 1
    return broken, thresholds


def _margin_drop(model: ModelArtifact, rows: np.ndarray, j: int, sign: int,
                 thresholds: list[float]) -> tuple[float, float, float, int] | None:
    """Return the largest move against ``sign`` of the margin as feature ``j`` rises.

    The values are every threshold and one just below the lowest: between them the trees
    give the same margin, so no move is missed. Returns (size, from, to, rows affected).
    """
    cuts = np.asarray(thresholds, dtype=np.float32)
    grid = np.concatenate([[np.nextafter(cuts[0], np.float32(-np.inf))], cuts]).astype(float)
    varied = np.repeat(rows.astype(np.float32), len(grid), axis=0)
    varied[:, j] = np.tile(grid, len(rows))
    margin = model.margin(varied).reshape(len(rows), len(grid)).astype(float)
    against = -sign * np.diff(margin, axis=1)
    if not np.any(against > 0):
        return None
    row, step = np.unravel_index(int(np.argmax(against)), against.shape)
    return (float(against[row, step]), float(grid[step]), float(grid[step + 1]),
            int(np.count_nonzero(np.any(against > 0, axis=1))))


def _base_rows(model: ModelArtifact) -> np.ndarray:
    """Return the rows each feature is varied in: the reference, else the training bins.

    Without a reference, ``SAMPLE_ROWS`` rows are drawn (seeded) from the card's
    ``monitoring`` bins of each feature, one value inside each bin, missing at its training
    share; a feature without bins is left missing.
    """
    if model.reference is not None:
        return np.asarray(model.reference.background, dtype=float)
    rng = np.random.default_rng(_SAMPLE_SEED)
    bins = model.card.get("monitoring", {}).get("features", {})
    rows = np.full((SAMPLE_ROWS, len(model.feature_names)), np.nan)
    for j, name in enumerate(model.feature_names):
        b = Bins.from_dict(bins[name]) if name in bins else None
        if b is None or sum(b.shares) <= 0:
            continue
        e = np.asarray(b.edges, dtype=float)
        if b.values is not None:
            points = np.asarray(b.values, dtype=float)
        elif len(e):
            # Bin i is (edges[i-1], edges[i]]: the first cut, the middles, a step past the last.
            step = e[-1] - e[-2] if len(e) > 1 else 1.0
            points = np.concatenate([e[:1], (e[:-1] + e[1:]) / 2, e[-1:] + step])
        else:
            points = np.zeros(1)
        shares = np.asarray(b.shares, dtype=float)
        drawn = points[rng.choice(len(points), size=SAMPLE_ROWS, p=shares / shares.sum())]
        rows[:, j] = np.where(rng.random(SAMPLE_ROWS) < b.missing, np.nan, drawn)
    return rows


def check_policy(name_or_path: str) -> list[str]:
    """Return every reason the policy may not take a live role; empty if none.

    It must load, within the regulatory caps (``Policy`` refuses the rest), and be able to
    decide: ask for the sources a decision needs, fund no forbidden purpose, approve some
    grade, and give lines that can be worked out.
    """
    try:
        policy = load_policy(name_or_path)
    except PolicyError as exc:
        return [f"policy {name_or_path} is refused: {exc}"]
    except KeyError as exc:
        return [f"policy {name_or_path} does not load: it lacks {exc}"]
    except (OSError, TypeError, ValueError) as exc:
        return [f"policy {name_or_path} does not load: {exc}"]
    return [f"policy {policy.version}: {p}" for p in _policy_problems(policy)]


def _policy_problems(policy: Policy) -> list[str]:
    problems = []
    scopes = policy.required_scopes
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        problems.append(f"required_scopes must be among {', '.join(SCOPES)}; got "
                        f"{', '.join(unknown)}")
    if len(set(scopes)) != len(scopes):
        problems.append(f"required_scopes must name each scope once; got {list(scopes)}")
    lacking = [s for s in REQUIRED_SCOPES if s not in scopes]
    if lacking:
        problems.append(f"required_scopes must include {', '.join(lacking)}: no decision is "
                        f"made without them")
    income = [s for s in INCOME_SCOPES if s in scopes]
    needed = max(MIN_INCOME_ANSWERS, policy.min_income_sources)
    if len(income) < needed:
        problems.append(f"required_scopes must include at least {needed} income sources "
                        f"({', '.join(INCOME_SCOPES)}); got {len(income)}")
    forbidden = sorted(policy.allowed_purposes & set(FORBIDDEN_PURPOSES))
    if forbidden:
        problems.append(f"allowed_purposes must not include {', '.join(forbidden)}: consumer "
                        f"credit may not fund securities, property or business use")
    if not policy.approving_grades():
        problems.append(f"pd_cutoff {policy.pd_cutoff} must be at least the first grade's "
                        f"max_pd ({policy.grade_max_pd[0]}): otherwise no grade approves")
    if np.any(policy.grade_rate < 0) or np.any(policy.grade_multiplier < 0):
        problems.append("grade annual_rate and multiplier must not be negative")
    if not 0 < policy.min_line <= policy.max_line:
        problems.append(f"limit.min_line must be above 0 and at most max_line "
                        f"({policy.max_line:,.0f}); got {policy.min_line:,.0f}")
    if not policy.round_to > 0:
        problems.append(f"limit.round_down_to must be above 0; got {policy.round_to}")
    if not policy.terms_months or min(policy.terms_months) <= 0:
        problems.append(f"terms_months must offer at least one term of a month or more; got "
                        f"{list(policy.terms_months)}")
    if policy.age_min > policy.age_max:
        problems.append(f"eligibility.age_min ({policy.age_min}) must be at most age_max "
                        f"({policy.age_max})")
    codes = [rule.code for rule in policy.rules.values()]
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    if repeated:
        problems.append(f"rule codes must be unique; got {', '.join(repeated)} more than once")
    return problems
