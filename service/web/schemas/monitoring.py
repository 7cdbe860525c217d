"""The live book's reads: the window asked for, drift against training, and fairness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from service.usecases.monitoring.fairness import FAIRNESS_WINDOWS
from service.usecases.monitoring.windows import (
    DEFAULT_WINDOW,
    GRAINS,
    RETENTION,
    WINDOWS,
    Window,
    floor,
)
from service.web.schemas.common import Strict, UtcDateTime

# How far past the service's clock a window may end (the caller's clock may run a little
# ahead); a window ending later would name decisions that cannot exist yet.
END_SKEW = timedelta(minutes=5)
# No decision of the service is older; a window ending earlier would reach before the
# calendar's start.
EARLIEST_END = datetime(2000, 1, 1, tzinfo=UTC)


class WindowArgs(Strict):
    window = fields.String(load_default=DEFAULT_WINDOW, validate=validate.OneOf(list(WINDOWS)),
                           metadata={"description": "hour (by 5 minutes), day (by hour), 7d "
                                                    "or 30d (by day or by hour)"})
    by = fields.String(validate=validate.OneOf(list(GRAINS)),
                       metadata={"description": "the grain of the series; the window's own "
                                                "by default"})
    end = UtcDateTime(metadata={"description": "when the window ends; now by default"})

    @validates_schema
    def _check(self, data: dict[str, Any], **_: Any) -> None:
        kind = WINDOWS[data.get("window", DEFAULT_WINDOW)]
        if "by" in data and data["by"] not in kind.series_by:
            raise ValidationError(f"must be one of {', '.join(kind.series_by)} for the window "
                                  f"{kind.name}; got {data['by']}", "by")
        end = data.get("end")
        if end is not None and end > datetime.now(UTC) + END_SKEW:
            raise ValidationError("must not be in the future", "end")
        if end is not None and end < EARLIEST_END:
            raise ValidationError(f"must be on or after {EARLIEST_END.date()}; got {end.date()}",
                                  "end")
        if end is not None:
            now = datetime.now(UTC)
            window = Window.of(kind.name, end=min(end, now), by=data.get("by"))
            if not window.kept(now):
                raise ValidationError(
                    f"must leave the window within what the roll-up keeps: {kind.name} "
                    f"windows{' by ' + window.by if window.by != window.grain else ''} can end "
                    f"no earlier than {_earliest(window, now)}", "end")


def _earliest(window: Window, now: datetime) -> str:
    """The earliest end a window of this kind and series can have at ``now``."""
    starts = [floor(now - keep, grain) for grain in {window.grain, window.by}
              if (keep := RETENTION[grain]) is not None]
    earliest = max(starts) + window.kind.length
    return earliest.strftime("%Y-%m-%dT%H:%MZ")


class FairnessArgs(WindowArgs):
    window = fields.String(load_default=FAIRNESS_WINDOWS[0],
                           validate=validate.OneOf(FAIRNESS_WINDOWS),
                           metadata={"description": "7d or 30d: fairness is counted by day"})


class WindowOut(Strict):
    name = fields.String(required=True)
    label = fields.String(required=True)
    grain = fields.String(required=True)
    by = fields.String(required=True)
    by_label = fields.String(required=True)
    start = fields.String(required=True)
    end = fields.String(required=True)


class DriftBinOut(Strict):
    key = fields.String(required=True)
    label = fields.String(required=True)
    expected = fields.Float(required=True)
    observed = fields.Float(required=True, allow_none=True)
    count = fields.Integer(required=True)


class VariableDriftOut(Strict):
    psi = fields.Float(required=True, allow_none=True)
    level = fields.String(required=True)
    bins = fields.List(fields.Nested(DriftBinOut), required=True)


class FeatureDriftOut(Strict):
    feature = fields.String(required=True)
    label = fields.String(required=True)
    psi = fields.Float(required=True, allow_none=True)
    level = fields.String(required=True, metadata={"description": "stable, watch, act; "
                                                                  "too_few or unknown"})


class DriftReferenceOut(Strict):
    split = fields.String(required=True)
    rows = fields.Integer(required=True)


class ModelDriftOut(Strict):
    model_version = fields.String(required=True)
    decisions = fields.Integer(required=True)
    reference = fields.Nested(DriftReferenceOut, required=True, allow_none=True)
    score = fields.Nested(VariableDriftOut, required=True, allow_none=True)
    pd = fields.Nested(VariableDriftOut, required=True, allow_none=True)
    features = fields.List(fields.Nested(FeatureDriftOut), required=True)
    moved_most = fields.List(fields.String(), required=True)
    note = fields.String()


class DriftOut(Strict):
    window = fields.Nested(WindowOut, required=True)
    thresholds = fields.Dict(keys=fields.String(), values=fields.Float(), required=True,
                             metadata={"description": "watch and act levels of the PSI, and "
                                                      "the decisions of a model below which "
                                                      "its PSI is not judged (too_few)"})
    models = fields.List(fields.Nested(ModelDriftOut), required=True)


class GroupOut(Strict):
    group = fields.String(required=True)
    label = fields.String(required=True)
    applications = fields.Integer(required=True, allow_none=True,
                                  metadata={"description": "null (with every figure) for a "
                                                           "group too small to judge"})
    approved = fields.Integer(required=True, allow_none=True)
    declined = fields.Integer(required=True, allow_none=True)
    deferred = fields.Integer(required=True, allow_none=True)
    approval_rate = fields.Float(required=True, allow_none=True)
    mean_pd = fields.Float(required=True, allow_none=True)
    mean_line = fields.Float(required=True, allow_none=True)
    approval_ratio = fields.Float(required=True, allow_none=True)
    line_ratio = fields.Float(required=True, allow_none=True)
    too_few = fields.Boolean(required=True)
    flagged = fields.Boolean(required=True)


class DimensionOut(Strict):
    dimension = fields.String(required=True)
    label = fields.String(required=True)
    groups = fields.List(fields.Nested(GroupOut), required=True)
    most_favoured = fields.String(required=True, allow_none=True)
    flagged = fields.List(fields.String(), required=True)


class FairnessOut(Strict):
    window = fields.Nested(WindowOut, required=True)
    ratio_floor = fields.Float(required=True)
    min_group = fields.Integer(required=True)
    dimensions = fields.List(fields.Nested(DimensionOut), required=True)
    note = fields.String(required=True)
