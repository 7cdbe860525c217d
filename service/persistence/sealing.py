"""The applicant of a deferred application, kept sealed until the application is decided.

Deciding a deferred application again reads the sources by the applicant's national ID, which
the service otherwise keeps only as its keyed HMAC. So that the scheduler can retry without
the channel, the applicant (national ID, name, mobile) is kept beside the application,
encrypted with AES-GCM under a key derived from ``FLASHLOAN_PII_KEY`` by HKDF with its own
label, the application's id as associated data (a sealed applicant copied to another row does
not open). It is erased once the application is decided, or its consent withdrawn or expired.
"""

from __future__ import annotations

import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"flashloan/deferred-applicant/v1"
_FORMAT = b"\x01"            # the sealed form's version: 1 byte, then nonce and ciphertext
_NONCE_BYTES = 12
_FIELDS = ("national_id", "name", "mobile")


class SealBroken(Exception):
    """A sealed applicant could not be opened: another key, another row, or altered."""


class ApplicantSeal:
    """Seal and open the applicant kept for a deferred application's retry."""

    __slots__ = ("_aead",)

    def __init__(self, pii_key: str | bytes) -> None:
        secret = pii_key.encode("utf-8") if isinstance(pii_key, str) else pii_key
        if not secret:
            raise ValueError("pii_key must be a non-empty string or bytes; got an empty key")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "ApplicantSeal(key=<hidden>)"

    def seal(self, application_id: str, applicant: dict) -> bytes:
        """Return the applicant's national ID, name and mobile, encrypted for this application."""
        plain = json.dumps({f: applicant[f] for f in _FIELDS}, ensure_ascii=False,
                           separators=(",", ":")).encode("utf-8")
        nonce = os.urandom(_NONCE_BYTES)
        return _FORMAT + nonce + self._aead.encrypt(nonce, plain, application_id.encode())

    def open(self, application_id: str, sealed: bytes) -> dict[str, str]:
        """Return the applicant sealed for this application; :class:`SealBroken` otherwise."""
        sealed = bytes(sealed)
        if sealed[:1] != _FORMAT or len(sealed) <= 1 + _NONCE_BYTES:
            raise SealBroken(application_id)
        nonce, body = sealed[1:1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES:]
        try:
            plain = self._aead.decrypt(nonce, body, application_id.encode())
        except InvalidTag:
            raise SealBroken(application_id) from None
        applicant = json.loads(plain)
        return {f: applicant[f] for f in _FIELDS}
