"""Hypothesis strategies for source records and applications, shared by the test layers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

from datasources.records import (
    EMPLOYER_TYPES,
    PF_STATUSES,
    RECORD_TYPES,
)

_EMPLOYERS = st.sampled_from(["华信科技有限公司", "市第一人民医院", "个体经营", "Acme Ltd"])


def _field(kind, optional: bool):
    if kind == "bool":
        base = st.booleans()
    elif kind == "int":
        base = st.integers(min_value=0, max_value=400)
    elif kind == "money":
        base = st.floats(min_value=0, max_value=5e6, allow_nan=False, allow_infinity=False)
    elif kind == "ratio":
        base = st.floats(min_value=0, max_value=10, allow_nan=False)
    elif kind == "str":
        base = _EMPLOYERS
    elif kind == "month":
        base = st.sampled_from(["2026-10", "2025-01", "2019-12"])
    elif kind == PF_STATUSES:
        base = st.sampled_from(PF_STATUSES)
    elif kind == EMPLOYER_TYPES:
        base = st.sampled_from(EMPLOYER_TYPES)
    else:  # pragma: no cover - a new kind must be added here
        raise AssertionError(kind)
    return st.one_of(st.none(), base) if optional else base


def record(scope: str):
    """A valid record of one source, or None for a source that did not answer."""
    cls = RECORD_TYPES[scope]
    fields = {name: _field(kind, optional) for name, (kind, optional) in cls.KINDS.items()}
    return st.one_of(st.none(), st.builds(cls, **fields))


def source_records():
    """A mapping scope -> record or None, over all five sources."""
    return st.fixed_dictionaries({scope: record(scope) for scope in RECORD_TYPES})


applications = st.fixed_dictionaries({
    "amount": st.floats(min_value=1000, max_value=300_000, allow_nan=False),
    "term_months": st.sampled_from([3, 6, 12, 24, 36, 9]),
})


# Times whose offset carries them before 0001-01-01 or after 9999-12-31 in UTC.
KNOWN_EXTREMES = ("0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59")


@st.composite
def extreme_time(draw) -> str:
    """An ISO 8601 time at the edges of the calendar, offset by up to a day either way."""
    if draw(st.booleans()):
        return draw(st.sampled_from(KNOWN_EXTREMES))
    year = draw(st.sampled_from([1, 2, 9998, 9999]))
    moment = draw(st.datetimes(min_value=datetime(year, 1, 1),
                               max_value=datetime(year, 12, 31, 23, 59, 59)))
    minutes = draw(st.integers(-(24 * 60 - 1), 24 * 60 - 1))
    return moment.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat()
