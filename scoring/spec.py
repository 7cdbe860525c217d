"""The feature spec: every feature declared once, in ``features.json``, read by all stages."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from scoring.canonical import digest

SPEC_PATH = Path(__file__).with_name("features.json")
_TYPES = ("numeric", "binary")


@dataclass(frozen=True, slots=True)
class Text:
    """A text in Chinese and English."""

    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class Feature:
    """One model feature: where it comes from, how risk moves with it, how to explain it."""

    name: str
    group: str
    type: str
    monotone: int
    reason_code: str
    adverse: Text
    favourable: Text
    actionable: bool
    description: str


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


def parse_spec(doc: dict) -> FeatureSpec:
    """Validate a spec document and build the FeatureSpec."""
    groups = {k: Text(**v) for k, v in doc["groups"].items()}
    features = []
    seen_names: set[str] = set()
    seen_codes: set[str] = set()
    for raw in doc["features"]:
        f = Feature(**{**raw, "adverse": Text(**raw["adverse"]),
                       "favourable": Text(**raw["favourable"])})
        if f.name in seen_names or f.reason_code in seen_codes:
            raise ValueError(f"feature name and reason code must be unique; got {f.name}")
        if f.group not in groups:
            raise ValueError(f"feature {f.name} group must be one of {sorted(groups)}; "
                             f"got {f.group!r}")
        if f.type not in _TYPES or f.monotone not in (-1, 0, 1):
            raise ValueError(f"feature {f.name} has a bad type or monotone direction")
        seen_names.add(f.name)
        seen_codes.add(f.reason_code)
        features.append(f)
    return FeatureSpec(doc["version"], tuple(features), groups, digest(doc))


@cache
def load_spec(path: Path = SPEC_PATH) -> FeatureSpec:
    """Load and validate the feature spec (once per process)."""
    return parse_spec(json.loads(Path(path).read_text(encoding="utf-8")))
