"""Canonical JSON, SHA-256 and the canonical time format, as the audit trail names them.

The one implementation is the root package :mod:`canonical`, which the consent digest, the
policy digest and the idempotency key's body hash use too; its rules are in docs/audit.md.
"""

from __future__ import annotations

from canonical import (
    canonical_form,
    canonical_json,
    canonical_text,
    format_time,
    normalise,
    parse_time,
    sha256_hex,
)

__all__ = [
    "canonical_form",
    "canonical_json",
    "canonical_text",
    "format_time",
    "normalise",
    "parse_time",
    "sha256_hex",
]
