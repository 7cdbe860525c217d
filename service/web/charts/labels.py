"""A feature as a person reads it on a chart or in a table."""

from __future__ import annotations

from dataclasses import dataclass

from scoring.online.spec import FeatureSpec


@dataclass(frozen=True, slots=True)
class FeatureLabel:
    """A feature as a person reads it: its label and its group, in Chinese and English."""

    zh: str
    en: str
    group_zh: str = ""
    group_en: str = ""
    detail: str = ""
    binary: bool = False

    @property
    def second_line(self) -> str:
        """What a chart writes under the English label: the Chinese one and the group."""
        return " · ".join(t for t in (self.zh, self.group_en) if t)

    def reading(self, value: float | None) -> str:
        """The value as a person reads it: 32, 6,500, yes, missing."""
        if value is None:
            return "missing"
        if self.binary and value in (0, 1):
            return "yes" if value else "no"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"

    def value_text(self, value: float | None) -> str:
        """The value as it follows the label: " = 32", ": yes", ": missing"."""
        sep = ": " if value is None or (self.binary and value in (0, 1)) else " = "
        return sep + self.reading(value)


def feature_label(spec: FeatureSpec, name: str) -> FeatureLabel:
    """Return a feature's label from the spec, with its group and its description."""
    try:
        feature = spec.by_name(name)
    except KeyError:
        return FeatureLabel("", name)
    group = spec.groups.get(feature.group)
    return FeatureLabel(feature.label.zh, feature.label.en, group.zh if group else "",
                        group.en if group else feature.group, feature.description,
                        feature.type == "binary")
