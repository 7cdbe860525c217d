"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from flask import Response
from sqlalchemy import text

from service.web.auth import document_roles, requires
from service.web.errors import ApiError, may_answer
from service.web.schemas import HealthOut
from service.web.views.blueprint import Blueprint
from service.web.wiring import wiring

blp = Blueprint("health", __name__, description="Health and metrics")


@blp.route("/healthz", methods=["GET"])
@blp.response(200, HealthOut)
@blp.doc(security=[])
@document_roles()
def healthz():
    """Say that the process is alive (no authentication, no dependencies)."""
    return {"status": "ok", "checks": {}}


@blp.route("/readyz", methods=["GET"])
@blp.response(200, HealthOut)
@blp.doc(security=[])
@document_roles()
@may_answer(why={503: "Here: the database cannot be reached, so this worker is not ready "
                      "(`not_ready`)."})
def readyz():
    """Say whether this worker can decide: model loaded, database reachable."""
    wired = wiring()
    # The champion's model: the one that decides most applications now.
    checks = {"model": wired.strategies.current().champion.engine.model.version}
    try:
        with wired.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unreachable"
        raise ApiError(503, "the database is unreachable", code="not_ready") from None
    return {"status": "ready", "checks": checks}


@blp.route("/metrics", methods=["GET"])
@requires("metrics.read")
@blp.response(200, {"type": "string"}, content_type="text/plain")
def metrics():
    """Expose Prometheus metrics, summed over every worker of this server."""
    wired = wiring()
    wired.metrics.breakers(wired.gatherer.breaker_states())
    body, content_type = wired.metrics.exposition()
    return Response(body, content_type=content_type)
