"""Errors of the audit trail; each is also a ``ValueError`` where bad input is the cause, and
a database error where the database is."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError


class AuditError(Exception):
    """Base class of every error the audit package raises on purpose."""


class InvalidCursor(AuditError, ValueError):
    """A pagination cursor that no previous page of the same query returned."""


class PurgeRefused(AuditError, ValueError):
    """A purge that would remove payloads still inside the retention period."""


class CheckpointError(AuditError, ValueError):
    """A checkpoint file or signing key that cannot be read or trusted."""


class InvalidRange(AuditError, ValueError):
    """A range of sequence numbers that holds no record: inverted, or past the head.

    ``parameter`` names the bound at fault, ``"start"`` or ``"end"``.
    """

    def __init__(self, message: str, parameter: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class UnsupportedDatabase(AuditError, ValueError):
    """A database URL of a kind the audit store does not run on."""


class CommitOutcomeUnknown(AuditError, OperationalError):
    """The COMMIT of a write transaction raised: the writes may or may not be durable.

    Raised instead of the database error from the commit itself (an error before it means
    nothing was written); find out by reading the database afresh before answering. It is
    also the ``OperationalError`` it replaces, so code that handles database errors still
    handles it.
    """

    @classmethod
    def from_commit_error(cls, error: BaseException) -> CommitOutcomeUnknown:
        """Wrap the error a COMMIT raised."""
        orig = error.orig if isinstance(error, DBAPIError) and error.orig else error
        unknown = cls("COMMIT", None, orig,
                      connection_invalidated=getattr(error, "connection_invalidated", False))
        unknown.__cause__ = error
        return unknown
