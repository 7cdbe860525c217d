"""Pseudonymisation of personal data before it reaches the audit trail.

National IDs become a keyed HMAC (``FLASHLOAN_PII_KEY``): equal IDs give equal values, so an
auditor can still find one applicant's records, but the ID cannot be recovered or guessed
without the key (a plain hash of an 18-character ID with a checksum is easy to brute-force).
Names and mobile numbers are masked. Raw answers from data sources are reduced to a digest.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from audit.canonical import canonical_json, sha256_hex

__all__ = ["Pseudonymiser", "digest_source_answer", "mask_mobile", "mask_name"]

_NATIONAL_ID = re.compile(r"[0-9]{17}[0-9X]")
_MOBILE = re.compile(r"1[0-9]{10}")
_MOBILE_NOISE = re.compile(r"[\s\-]")


class Pseudonymiser:
    """Turn national IDs into keyed HMAC-SHA256 values, stable for one key."""

    __slots__ = ("_key",)

    def __init__(self, key: str | bytes) -> None:
        if isinstance(key, str):
            key = key.encode("utf-8")
        if not isinstance(key, bytes) or not key:
            raise ValueError("key must be a non-empty string or bytes; got an empty key")
        self._key = key

    def __repr__(self) -> str:
        return "Pseudonymiser(key=<hidden>)"

    def national_id(self, national_id: str) -> str:
        """Return the HMAC-SHA256 (hex) of a national ID, normalised to upper-case X."""
        normal = normalise_national_id(national_id)
        return hmac.new(self._key, normal.encode("ascii"), hashlib.sha256).hexdigest()


def normalise_national_id(national_id: str) -> str:
    """Return the 18-character ID without surrounding spaces and with an upper-case X."""
    if not isinstance(national_id, str):
        raise ValueError(f"national_id must be a string; got {type(national_id).__name__}")
    normal = national_id.strip().upper()
    if not _NATIONAL_ID.fullmatch(normal):
        # The value itself is personal data: say what is wrong with it, never echo it.
        raise ValueError(
            "national_id must be 17 digits and a check character (0-9 or X); "
            f"got {len(normal)} characters"
        )
    return normal


def mask_name(name: str) -> str:
    """Keep the first character of a name: "张三" -> "张*", "John Smith" -> "J*"."""
    if not isinstance(name, str):
        raise ValueError(f"name must be a string; got {type(name).__name__}")
    name = name.strip()
    if not name:
        return ""
    if len(name) == 1:
        return "*"
    if name.isascii():
        # Latin names: the length of the rest would say too much about which name it is.
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 1)


def mask_mobile(mobile: str) -> str:
    """Keep the first three and last four digits: "13812348000" -> "138****8000"."""
    if not isinstance(mobile, str):
        raise ValueError(f"mobile must be a string; got {type(mobile).__name__}")
    digits = _MOBILE_NOISE.sub("", mobile)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if not _MOBILE.fullmatch(digits):
        raise ValueError(f"mobile must be 11 digits starting with 1; got {len(digits)} characters")
    return f"{digits[:3]}****{digits[7:]}"


def digest_source_answer(answer: Any) -> str:
    """Return the SHA-256 (hex) of a source's raw answer in canonical JSON."""
    return sha256_hex(canonical_json(answer))
