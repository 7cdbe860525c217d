"""Resident identity numbers (GB 11643-1999): validation, parsing and construction."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_SHAPE = re.compile(r"^\d{17}[\dX]$")

# Province-level codes (the first two digits) in use under GB/T 2260.
PROVINCE_CODES = frozenset({
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82",
})


class InvalidNationalId(ValueError):
    """A national ID number that fails GB 11643."""


@dataclass(frozen=True, slots=True)
class NationalId:
    """A parsed, valid national ID number."""

    number: str
    region: str
    birth_date: date
    sequence: str

    def age_on(self, day: date) -> int:
        """Return the holder's age in whole years on ``day``."""
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years


def check_digit(first17: str) -> str:
    """Return the GB 11643 check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def parse_national_id(value: object, *, today: date | None = None) -> NationalId:
    """Parse and validate an 18-character national ID; raise InvalidNationalId if wrong."""
    if not isinstance(value, str):
        raise InvalidNationalId(f"national ID must be a string; got {type(value).__name__}")
    number = value.strip().upper()
    if not _SHAPE.match(number):
        raise InvalidNationalId("national ID must be 17 digits followed by a digit or X")
    if number[:2] not in PROVINCE_CODES:
        raise InvalidNationalId(f"national ID region code {number[:6]} is not a known region")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidNationalId(f"national ID birth date {number[6:14]} is not a date") from None
    today = today or date.today()
    if born > today or born.year < 1900:
        raise InvalidNationalId(f"national ID birth date {born.isoformat()} is not plausible")
    if number[17] != check_digit(number[:17]):
        raise InvalidNationalId("national ID check digit does not match (GB 11643)")
    return NationalId(number, number[:6], born, number[14:17])


class NationalIdText(str):
    """A national ID as the text it was given in, valid, that keeps what parsing it found.

    A request's national ID is parsed once, where it enters (the API's schema); whoever needs
    the parsed ID takes it with :func:`as_national_id`. It is text to everyone else (JSON,
    digests, sealing), exactly the text it was given in.
    """

    parsed: NationalId

    def __new__(cls, text: str, parsed: NationalId) -> NationalIdText:
        value = super().__new__(cls, text)
        value.parsed = parsed
        return value


def as_national_id(value: object) -> NationalId:
    """Return the parsed ID: kept by a :class:`NationalIdText` or a :class:`NationalId`, or
    parsed and validated now."""
    if isinstance(value, NationalId):
        return value
    if isinstance(value, NationalIdText):
        return value.parsed
    return parse_national_id(value)



def make_national_id(region: str, birth_date: date, sequence: int) -> str:
    """Build a valid national ID from a region code, a birth date and a sequence (0-999)."""
    if not (len(region) == 6 and region.isdigit() and region[:2] in PROVINCE_CODES):
        raise ValueError(f"region must be a 6-digit code of a known province; got {region!r}")
    if not 0 <= sequence <= 999:
        raise ValueError(f"sequence must be in 0..999; got {sequence}")
    first17 = f"{region}{birth_date:%Y%m%d}{sequence:03d}"
    return first17 + check_digit(first17)
