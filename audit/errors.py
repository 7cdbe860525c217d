"""Errors of the audit trail; each is also a ``ValueError`` where bad input is the cause."""

from __future__ import annotations


class AuditError(Exception):
    """Base class of every error the audit package raises on purpose."""


class InvalidCursor(AuditError, ValueError):
    """A pagination cursor that no previous page of the same query returned."""


class PurgeRefused(AuditError, ValueError):
    """A purge that would remove payloads still inside the retention period."""


class CheckpointError(AuditError, ValueError):
    """A checkpoint file or signing key that cannot be read or trusted."""


class UnsupportedDatabase(AuditError, ValueError):
    """A database URL of a kind the audit store does not run on."""
