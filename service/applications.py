"""Reading recorded applications: status, explanation and the applicant's notice."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from service.auth import Principal
from service.db import applications, loads
from service.errors import ApiError


class ApplicationBook:
    """The applications table, read as each role may see it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def visible(self, principal: Principal, application_id: str):
        """Return an application the caller may see; another channel's is not found."""
        with self.engine.connect() as conn:
            row = conn.execute(select(applications).where(
                applications.c.application_id == application_id)).first()
        if row is None or (principal.role == "channel" and row.channel != principal.name):
            raise ApiError(404, "no such application")
        return row

    @staticmethod
    def status(row) -> dict[str, Any]:
        return loads(row.answer)

    @staticmethod
    def explanation(row) -> dict[str, Any]:
        if row.explanation is None:
            raise ApiError(404, "this application was deferred before it was scored, so it has "
                           "no explanation", code="not_scored")
        return loads(row.explanation)
