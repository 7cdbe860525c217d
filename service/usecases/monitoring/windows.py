"""The windows the dashboard is read over, and the buckets the roll-up keeps.

The roll-up counts decisions in buckets of three grains: five minutes, an hour and a day
(UTC). A window is whole buckets of one grain: from the start of the bucket that held the
moment its length before its end, to its end. The last hour therefore reaches back to the
start of the five minutes that held the time an hour ago, the last 24 hours to the start of
that hour yesterday, the last 7 and 30 days to midnight (UTC) that many days ago: never less
than the length it names, and at most one bucket more, and its start and end are given with
every figure read over it. The series of a window are drawn by a grain at least as coarse as
the window's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from canonical import format_time

GRAINS: dict[str, timedelta] = {"5m": timedelta(minutes=5), "hour": timedelta(hours=1),
                                "day": timedelta(days=1)}
# How long each grain's buckets are kept: the longest window read at that grain, and a margin.
RETENTION: dict[str, timedelta | None] = {"5m": timedelta(hours=3),
                                          "hour": timedelta(days=32), "day": None}


@dataclass(frozen=True, slots=True)
class WindowKind:
    name: str
    label: str
    grain: str
    length: timedelta
    series_by: tuple[str, ...]   # the grains its series may be drawn by, the default first


WINDOWS: dict[str, WindowKind] = {w.name: w for w in (
    WindowKind("hour", "Last hour", "5m", timedelta(hours=1), ("5m",)),
    WindowKind("day", "Last 24 hours", "hour", timedelta(days=1), ("hour",)),
    WindowKind("7d", "Last 7 days", "day", timedelta(days=7), ("day", "hour")),
    WindowKind("30d", "Last 30 days", "day", timedelta(days=30), ("day", "hour")),
)}
DEFAULT_WINDOW = "day"
SERIES_LABELS = {"5m": "by 5 minutes", "hour": "by hour", "day": "by day"}


def floor(moment: datetime, grain: str) -> datetime:
    """The start of the bucket of ``grain`` that holds ``moment`` (UTC)."""
    moment = moment.astimezone(UTC)
    if grain == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(minute=moment.minute - moment.minute % 5, second=0, microsecond=0)


def bucket_key(moment: datetime, grain: str) -> str:
    """The bucket's key: its start as text that sorts as time does."""
    start = floor(moment, grain)
    if grain == "day":
        return start.strftime("%Y-%m-%d")
    if grain == "hour":
        return start.strftime("%Y-%m-%dT%H")
    return start.strftime("%Y-%m-%dT%H:%M")


def bucket_start(key: str) -> datetime:
    """The start of the bucket named by ``key``."""
    for form in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H", "%Y-%m-%d"):
        try:
            return datetime.strptime(key, form).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"bucket key must be a day, hour or 5-minute key; got {key!r}")


def bucket_label(key: str, grain: str) -> str:
    """How a bucket is named on a chart's axis."""
    start = bucket_start(key)
    if grain == "day":
        return start.strftime("%m-%d")
    return start.strftime("%H:%M") if grain == "5m" else start.strftime("%m-%d %H:00")


@dataclass(frozen=True, slots=True)
class Window:
    """A window as read: its kind, the grain of its series, its span and its buckets."""

    kind: WindowKind
    by: str
    start: datetime
    end: datetime

    @classmethod
    def of(cls, name: str, *, end: datetime, by: str | None = None) -> Window:
        """The window ``name`` ending at ``end``, its series drawn ``by`` a grain.

        Raises ValueError naming what is wrong (the API turns it into a 422).
        """
        kind = WINDOWS.get(name)
        if kind is None:
            raise ValueError(f"window must be one of {', '.join(WINDOWS)}; got {name!r}")
        by = by or kind.series_by[0]
        if by not in kind.series_by:
            raise ValueError(f"by must be one of {', '.join(kind.series_by)} for the window "
                             f"{name}; got {by!r}")
        start = floor(end - kind.length, kind.grain)
        return cls(kind, by, start, end.astimezone(UTC))

    @property
    def grain(self) -> str:
        return self.kind.grain

    def kept(self, now: datetime) -> bool:
        """Whether the roll-up still holds every bucket this window reads at ``now``, of its
        own grain and of its series': buckets older than their grain's retention are
        deleted."""
        for grain in {self.grain, self.by}:
            keep = RETENTION[grain]
            if keep is not None and self.start < floor(now - keep, grain):
                return False
        return True

    def first_bucket(self, grain: str | None = None) -> str:
        return bucket_key(self.start, grain or self.grain)

    def last_bucket(self, grain: str | None = None) -> str:
        return bucket_key(self.end, grain or self.grain)

    def series_buckets(self) -> list[str]:
        """Every bucket of the series, in order, those without decisions included."""
        step = GRAINS[self.by]
        keys, at = [], floor(self.start, self.by)
        while at <= self.end:
            keys.append(bucket_key(at, self.by))
            at += step
        return keys

    def describe(self) -> dict[str, str]:
        return {"name": self.kind.name, "label": self.kind.label, "grain": self.grain,
                "by": self.by, "by_label": SERIES_LABELS[self.by],
                "start": format_time(self.start), "end": format_time(self.end)}
