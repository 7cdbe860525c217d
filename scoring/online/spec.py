"""The feature spec: every feature declared once, in ``features.json``, read by all stages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from scoring.online.canonical import digest

SPEC_PATH = Path(__file__).resolve().parents[1] / "features.json"
_TYPES = ("numeric", "binary")
# What a trained model depends on in each feature: where it comes from, its kind and its
# monotone direction, in spec order. Texts, reason codes, labels and whether an applicant can
# act on a feature only explain or present it: changing them leaves every model valid.
MODEL_FIELDS = ("name", "group", "type", "monotone")


@dataclass(frozen=True, slots=True)
class Text:
    """A text in Chinese and English."""

    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class ReasonText:
    """A reason's code and its text in Chinese and English: one code, one meaning."""

    code: str
    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class Feature:
    """One model feature: where it comes from, how risk moves with it, how to explain it.

    ``adverse`` is cited when the feature raised the risk (a decline), ``favourable`` when it
    lowered it (an approval); ``favourable`` is None for a feature whose good side is only
    the absence of something adverse (no lawsuit, nothing overdue), never cited as a reason.
    ``actionable``: the applicant can change it at request time (pay down cards, ask less).
    ``label`` names it for a person, in Chinese and English (charts, tables).
    """

    name: str
    group: str
    type: str
    monotone: int
    label: Text
    adverse: ReasonText
    favourable: ReasonText | None
    actionable: bool
    description: str

    @property
    def reason_code(self) -> str:
        """Return the adverse code: the code that names this feature."""
        return self.adverse.code


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """The ordered features, their groups, and the digest of the spec document."""

    version: str
    features: tuple[Feature, ...]
    groups: dict[str, Text]
    digest: str
    _index: dict[str, Feature] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {f.name: f for f in self.features})

    @property
    def names(self) -> list[str]:
        return list(self._index)

    def by_name(self, name: str) -> Feature:
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"feature {name!r} is not in spec {self.version}") from None

    def monotone_constraints(self, names: list[str] | None = None) -> list[int]:
        """Return the monotone directions aligned with ``names`` (default: spec order)."""
        return [self.by_name(n).monotone for n in (names or self.names)]

    @property
    def model_digest(self) -> str:
        """Return the digest of the part of the spec a trained model depends on.

        Each feature's ``MODEL_FIELDS``, in order; unlike ``digest``, it ignores texts.
        """
        return digest({"features": [{k: getattr(f, k) for k in MODEL_FIELDS}
                                    for f in self.features]})



def parse_spec(doc: dict) -> FeatureSpec:
    """Validate a spec document and build the FeatureSpec.

    Every code, adverse or favourable, must be unique across the spec: a code has one
    meaning wherever it is cited or searched for.
    """
    groups = {k: Text(**v) for k, v in doc["groups"].items()}
    features = []
    seen_names: set[str] = set()
    seen_codes: dict[str, str] = {}
    for raw in doc["features"]:
        favourable = raw["favourable"]
        f = Feature(**{**raw, "label": Text(**raw["label"]),
                       "adverse": ReasonText(**raw["adverse"]),
                       "favourable": None if favourable is None else ReasonText(**favourable)})
        if f.name in seen_names:
            raise ValueError(f"feature names must be unique; got {f.name} twice")
        for text in (f.adverse, f.favourable):
            if text is None:
                continue
            if not text.code:
                raise ValueError(f"feature {f.name} reason codes must be non-empty")
            if text.code in seen_codes:
                raise ValueError(f"reason codes must be unique; got {text.code} for "
                                 f"{seen_codes[text.code]} and {f.name}")
            seen_codes[text.code] = f.name
        if f.group not in groups:
            raise ValueError(f"feature {f.name} group must be one of {sorted(groups)}; "
                             f"got {f.group!r}")
        if f.type not in _TYPES or f.monotone not in (-1, 0, 1):
            raise ValueError(f"feature {f.name} has a bad type or monotone direction")
        seen_names.add(f.name)
        features.append(f)
    return FeatureSpec(doc["version"], tuple(features), groups, digest(doc))


@cache
def load_spec(path: Path = SPEC_PATH) -> FeatureSpec:
    """Load and validate the feature spec (once per process)."""
    return parse_spec(json.loads(Path(path).read_text(encoding="utf-8")))
