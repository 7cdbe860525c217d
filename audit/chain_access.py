"""What the ledger, the purge and the development key need of a store: ``ChainAccess``.

:class:`audit.store.AuditStore` provides it; the modules that work on its behalf
(:mod:`audit.ledger`, :mod:`audit.retention`, :mod:`audit.signing_keys`) take it by this
description, so that the store imports them and none of them imports the store.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from audit.writer import ChainWriter

__all__ = ["ChainAccess"]


class ChainAccess(Protocol):
    """A store's database, its clock, and its write transactions holding the chain lock."""

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine of the store's database."""

    def now(self) -> datetime:
        """The store's current time (UTC)."""

    def writer(self) -> AbstractContextManager[ChainWriter]:
        """A write transaction holding the chain lock: committed on exit, rolled back on
        error."""
