"""Model artifacts: load ``model.json`` + ``card.json``, check the SHA-256, predict, explain.

Contributions are exact TreeSHAP values from XGBoost's own ``pred_contribs``; their sum with
the bias column is the margin, so one pass gives both the prediction and its explanation.
A model shipped with a reference population (``reference.json``, see ``scoring.online.reference``)
also gives interventional contributions against it, which add up to the margin minus the
reference's mean margin: what the principal reasons are ranked by.

Nothing here is cached: whoever composes the application (``service.web.app.build_wiring``, a
CLI command, a benchmark) loads each model once and keeps the artifact it loaded.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from scoring.online.canonical import file_sha256
from scoring.online.interventional import InterventionalTreeShap, TreeShapError
from scoring.online.reference import InvalidReference, Reference, load_reference
from scoring.online.scaling import PlattCalibration, ScoreScaling
from scoring.online.spec import FeatureSpec, load_spec
from scoring.online.versions import is_version

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
DEFAULT_MODEL_VERSION = "v1"
# A fallback model's version: the main model's, this, and the income source it lacks.
FALLBACK_INFIX = "-without-"
# The boosters whose prediction XGBoost documents as thread-safe (see ModelArtifact).
TREE_BOOSTERS = ("gbtree", "dart")


class ModelError(ValueError):
    """A model artifact that is missing, altered or incompatible."""


@dataclass(frozen=True, slots=True)
class Scored:
    """Model output for n rows."""

    margin: np.ndarray          # (n,)
    pd: np.ndarray              # (n,)
    score: np.ndarray           # (n,)
    contributions: np.ndarray   # (n, F) in the card's feature order
    base_value: float


class ModelArtifact:
    """A loaded model version: booster, card, calibration and scaling.

    One artifact serves every request thread of a worker at once, without a lock: XGBoost
    documents every prediction function (``predict``, SHAP contributions included, and
    ``inplace_predict``) as thread-safe since 1.4 when the booster is ``gbtree`` or ``dart``
    (XGBoost documentation, "Prediction", section "Thread Safety":
    https://xgboost.readthedocs.io/en/stable/prediction.html#thread-safety; made so by
    dmlc/xgboost pull request 6648). The guarantee covers prediction only, not changing the
    booster, so its parameters are set here, at load, and never again; a booster that is not
    a tree model is refused.

    The reference (when the card names one) is read and checked, and its explainer built,
    here too: ``with_reference=False`` leaves it out, for a command that writes it afresh.
    """

    def __init__(self, directory: Path, *, nthread: int = 1, spec: FeatureSpec | None = None,
                 with_reference: bool = True):
        directory = Path(directory)
        card_path, model_path = directory / "card.json", directory / "model.json"
        if not card_path.is_file() or not model_path.is_file():
            raise ModelError(f"model directory must hold model.json and card.json; got {directory}")
        self.directory = directory
        self.card: dict[str, Any] = json.loads(card_path.read_text(encoding="utf-8"))
        self.version: str = self.card["version"]
        # The income sources this model was trained without (a fallback model); empty for
        # a model that reads every source.
        self.without: frozenset[str] = frozenset(self.card.get("without", ()))
        self.sha256 = file_sha256(model_path)
        if self.sha256 != self.card["model_sha256"]:
            raise ModelError(f"model {self.version}: model.json SHA-256 {self.sha256} does not "
                             f"match its card ({self.card['model_sha256']})")
        self.spec = spec or load_spec()
        self.feature_names: list[str] = list(self.card["features"])
        unknown = [n for n in self.feature_names if n not in self.spec.names]
        if unknown:
            raise ModelError(f"model {self.version} uses features the spec lacks: {unknown}")
        # Columns of a spec-ordered feature matrix that feed this model, in the model's order.
        self.columns = np.array([self.spec.names.index(n) for n in self.feature_names])
        self._identity_columns = bool(np.array_equal(self.columns, np.arange(len(self.spec.names))))
        self.calibration = PlattCalibration.from_dict(self.card["calibration"])
        self.scaling = ScoreScaling.from_dict(self.card["score_scaling"])
        self.booster = xgb.Booster()
        self.booster.load_model(str(model_path))
        booster_kind = json.loads(self.booster.save_config())["learner"]["gradient_booster"][
            "name"]
        if booster_kind not in TREE_BOOSTERS:
            raise ModelError(f"model {self.version} must be a tree model "
                             f"({' or '.join(TREE_BOOSTERS)}); got {booster_kind}")
        self.booster.set_param({"nthread": nthread})
        # DMatrix construction otherwise starts a thread team per call: for one row that
        # costs ten times the prediction (see bench/REPORT.md).
        self.nthread = nthread if nthread > 0 else -1
        self.base_value = float(self._contribs(np.zeros((1, len(self.feature_names))))[0, -1])
        self.reference: Reference | None = None
        self._explainer: InterventionalTreeShap | None = None
        if with_reference:
            try:
                self.reference = load_reference(directory, self.card, self.feature_names,
                                                self.margin)
                if self.reference is not None:
                    self._explainer = InterventionalTreeShap(self.booster,
                                                             self.reference.background)
            except (InvalidReference, TreeShapError) as exc:
                raise ModelError(f"model {self.version}: {exc}") from None

    @property
    def trained_with_xgboost(self) -> str | None:
        """Return the XGBoost version that trained this model, as its card records it."""
        return self.card.get("libraries", {}).get("xgboost")

    def runtime_note(self) -> str | None:
        """Say when the running XGBoost is not the one that trained the model, else None."""
        trained = self.trained_with_xgboost
        if trained is None:
            return (f"model {self.version}: its card does not record the XGBoost version that "
                    f"trained it; running XGBoost {xgb.__version__}")
        if trained != xgb.__version__:
            return (f"model {self.version} was trained with XGBoost {trained}; running XGBoost "
                    f"{xgb.__version__}, whose predictions may differ in the last digits")
        return None

    def select(self, spec_matrix: np.ndarray) -> np.ndarray:
        """Take this model's columns, in its order, from a spec-ordered feature matrix."""
        m = np.asarray(spec_matrix, dtype=np.float64)
        if m.ndim == 1:
            m = m[None, :]
        return m if self._identity_columns else m[:, self.columns]

    def _matrix(self, x: np.ndarray) -> xgb.DMatrix:
        # Columns are already in the model's order (``select``), so the DMatrix is built
        # without names, which costs more than the row itself; prediction skips the check.
        return xgb.DMatrix(x, missing=np.nan, nthread=self.nthread)

    def _contribs(self, x: np.ndarray) -> np.ndarray:
        return self.booster.predict(self._matrix(x), pred_contribs=True,
                                    validate_features=False)

    def score(self, spec_matrix: np.ndarray) -> Scored:
        """Score rows of a spec-ordered feature matrix: margin, PD, score and contributions."""
        x = self.select(spec_matrix)
        contribs = self._contribs(x)
        margin = contribs.sum(axis=1)
        pd = self.calibration.pd(margin)
        return Scored(margin=margin, pd=pd, score=self.scaling.score(pd),
                      contributions=contribs[:, :-1], base_value=float(contribs[0, -1]))

    def predict_margin(self, spec_matrix: np.ndarray) -> np.ndarray:
        """Return the raw margin only (no explanation)."""
        return self.margin(self.select(spec_matrix))

    def margin(self, x: np.ndarray) -> np.ndarray:
        """Return the raw margin of rows already in the model's order."""
        return self.booster.predict(self._matrix(x), output_margin=True,
                                    validate_features=False)

    def reference_contributions(self, spec_matrix: np.ndarray) -> np.ndarray | None:
        """Return contributions (n, F) against the reference, or None without a reference.

        Interventional TreeSHAP against the reference's background: row i's add up to its
        margin minus ``reference.mean_margin``.
        """
        if self._explainer is None:
            return None
        # A model loaded for batches (nthread 0: every core) shares a batch among threads.
        threads = self.nthread if self.nthread > 0 else _cores()
        return self._explainer(self.select(spec_matrix), threads=threads)


def _cores() -> int:
    """Return the number of cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def version_dir(version: str, search: tuple[Path, ...] = ()) -> Path:
    """Return a model version's directory, found only in ``search`` folders or shipped.

    A name that is no version (a path) is refused as an unknown version is, whether or not
    some directory of that name exists.
    """
    if is_version(version):
        for folder in (*search, MODELS_DIR):
            candidate = Path(folder) / version
            if (candidate / "card.json").is_file():
                return candidate
    raise ModelError(f"model must be a known version ({', '.join(list_versions(search))}); "
                     f"got {version!r}")


def model_dir(version: str | None, search: tuple[Path, ...] = ()) -> Path:
    """Return a model version's directory (:func:`version_dir`) or, for the operator's own
    commands, a model directory by path."""
    name = version or DEFAULT_MODEL_VERSION
    try:
        return version_dir(name, search)
    except ModelError:
        pass
    path = Path(name)
    if (path / "card.json").is_file():
        return path
    raise ModelError(f"model must be a known version ({', '.join(list_versions(search))}) or "
                     f"a directory; got {name!r}")


class ModelShelf:
    """Models loaded once and lent to every caller that names the same files.

    A :class:`ModelArtifact` is read-only once loaded (its booster's parameters are set at
    load, and prediction is thread-safe), so the apps of one process may share it: the test
    suite builds hundreds of apps on one shelf. A model is known by its directory and the
    size and modification time of its two files, so a model written again is loaded again.
    """

    def __init__(self) -> None:
        self._models: dict[tuple[Any, ...], ModelArtifact] = {}
        self._lock = threading.Lock()

    def load(self, directory: Path, *, nthread: int = 1) -> ModelArtifact:
        """Return the model in ``directory``, loading it on first use."""
        directory = Path(directory).resolve()
        stats = []
        for name in ("card.json", "model.json"):
            try:
                stat = (directory / name).stat()
            except OSError:
                return ModelArtifact(directory, nthread=nthread)  # ModelArtifact says why
            stats.append((stat.st_size, stat.st_mtime_ns))
        key = (directory, nthread, *stats)
        with self._lock:
            if key not in self._models:
                self._models[key] = ModelArtifact(directory, nthread=nthread)
            return self._models[key]


def load_model(version: str | None = None, *, nthread: int = 1,
               search: tuple[Path, ...] = (), shelf: ModelShelf | None = None) -> ModelArtifact:
    """Load a model version: afresh (the caller keeps what it loaded), or from ``shelf``."""
    directory = model_dir(version, search)
    if shelf is not None:
        return shelf.load(directory, nthread=nthread)
    return ModelArtifact(directory, nthread=nthread)


def list_versions(search: tuple[Path, ...] = ()) -> list[str]:
    """Return the model versions in ``search`` folders and shipped with the package."""
    found: set[str] = set()
    for folder in (*search, MODELS_DIR):
        if Path(folder).is_dir():
            found.update(p.name for p in Path(folder).iterdir()
                         if is_version(p.name) and (p / "card.json").is_file())
    return sorted(found)


def fallback_version(version: str, scope: str) -> str:
    """Return the version of a model's fallback trained without one income source."""
    return f"{version}{FALLBACK_INFIX}{scope}"


def load_fallbacks(model: ModelArtifact, scopes: tuple[str, ...], *, nthread: int = 1,
                   search: tuple[Path, ...] = (),
                   known: Mapping[str, ModelArtifact] | None = None,
                   shelf: ModelShelf | None = None) -> dict[str, ModelArtifact]:
    """Load the fallbacks shipped beside ``model``, one per scope it was trained without.

    A scope without a fallback is left out: an application missing that source is deferred.
    Each fallback is loaded once, however often its scope is named; one in ``known`` (models
    already loaded, by version) is not loaded again.
    """
    versions = set(list_versions(search))
    found: dict[str, ModelArtifact] = {}
    for scope in dict.fromkeys(scopes):
        version = fallback_version(model.version, scope)
        if version in versions:
            fallback = (known or {}).get(version) or load_model(version, nthread=nthread,
                                                                search=search, shelf=shelf)
            if fallback.without != {scope}:
                raise ModelError(f"model {version} must be trained without {scope}; its card "
                                 f"says without {sorted(fallback.without)}")
            found[scope] = fallback
    return found


def read_card(version: str, search: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Return a model's card without loading the model."""
    return json.loads((model_dir(version, search) / "card.json").read_text(encoding="utf-8"))
