"""The composition root: ``create_app`` chooses the store, the sources, the model and the policy."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from flask import Flask, request
from flask_smorest import Api

from service.errors import ApiError, register_error_handlers
from service.limits import limiter
from service.logs import configure_logging, install_request_ids
from service.schemas import ErrorSchema
from service.settings import Settings
from service.wiring import Wiring, install

log = logging.getLogger("flashloan.app")


class FlashloanApi(Api):
    """flask-smorest's Api, documenting our one error envelope."""

    ERROR_SCHEMA = ErrorSchema


def build_wiring(settings: Settings) -> Wiring:
    """Build everything a worker needs, once: store, keys, sources, gatherer, model, flow."""
    from audit import AuditStore, Pseudonymiser
    from datasources.consent import ConsentGate
    from datasources.factory import build_sources
    from datasources.gather import Gatherer
    from scoring.engine import DecisionEngine
    from scoring.model import load_model
    from scoring.policy import load_policy
    from service.applications import ApplicationBook
    from service.auth import KeyRing
    from service.committer import GroupCommitter
    from service.consents import ConsentBook
    from service.db import migrate
    from service.flow import DecisionFlow
    from service.idempotency import IdempotencyKeys
    from service.metrics import Metrics
    from service.replay import Replayer
    from service.reviews import ReviewDesk

    store = AuditStore.from_url(settings.database_url)
    migrate(store.engine)
    pseudonymiser = Pseudonymiser(settings.pii_key)
    consents = ConsentBook(store, pseudonymiser)
    metrics = Metrics()
    sources = build_sources(settings.sources, sources_url=settings.sources_url,
                            latency=settings.stub_latency_ms, faults=settings.stub_faults,
                            fixtures_path=settings.stub_fixtures)
    # Five source calls per request thread of the worker (gunicorn threads).
    gatherer = Gatherer(sources, ConsentGate(consents.lookup), deadline_s=settings.deadline_s,
                        max_workers=5 * settings.threads, on_outcome=metrics.source)
    engine = DecisionEngine(load_model(settings.model_version, search=settings.model_search),
                            load_policy(settings.policy))
    flow = DecisionFlow(store=store, consents=consents, pseudonymiser=pseudonymiser,
                        gatherer=gatherer, engine=engine,
                        idempotency=IdempotencyKeys(store.engine,
                                                    wait_s=settings.deadline_s + 20),
                        metrics=metrics, committer=GroupCommitter(store))
    replayer = Replayer(store, settings.model_search)
    return Wiring(settings=settings, store=store, pseudonymiser=pseudonymiser,
                  keys=KeyRing(store.engine), consents=consents, sources=sources,
                  gatherer=gatherer, engine=engine, flow=flow, metrics=metrics,
                  replayer=replayer, reviews=ReviewDesk(store, replayer),
                  applications=ApplicationBook(store.engine))


def warm_up(wired: Wiring) -> None:
    """Run the model and explainer once so the first request pays no start-up cost."""
    spec_width = len(wired.engine.model.spec.names)
    wired.engine.decide(np.full((1, spec_width), np.nan), age=30, purpose="travel",
                        term_months=12)


def create_app(config: Settings | Mapping[str, Any] | None = None) -> Flask:
    """Create the Flask app; ``config`` is a Settings, overrides of the environment, or None."""
    if isinstance(config, Settings):
        settings = config
        settings.validate()
    else:
        settings = Settings.from_env()
        if config:
            settings = settings.with_overrides(**dict(config))
    configure_logging()
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_TITLE="flashloan",
        API_VERSION="1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        FLASHLOAN_RATE_LIMIT=settings.rate_limit,
        RATELIMIT_STORAGE_URI=settings.redis_url or "flashloan-memory://",
        RATELIMIT_HEADERS_ENABLED=True,
        JSON_SORT_KEYS=False,
    )
    # The console's session cookie is signed with a key derived from the PII secret, so a
    # production deployment has no development default here either.
    app.secret_key = hmac.new(settings.pii_key.encode(), b"console-session",
                              hashlib.sha256).hexdigest()
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_SECURE=settings.is_production,
                      SESSION_COOKIE_NAME="flashloan_console")
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    wired = build_wiring(settings)
    install(app, wired)
    warm_up(wired)
    limiter.init_app(app)

    api = FlashloanApi(app, spec_kwargs={
        "info": {"description": "Instant-credit decisioning: consents, applications, "
                                "explanations, notices and model cards."},
    })
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    api.spec.options["security"] = [{"bearer": []}]
    from service.views import applications, audit, consents, health, models, reviews

    for module in (consents, applications, reviews, models, audit, health):
        api.register_blueprint(module.blp)
    register_error_handlers(app)
    install_request_ids(app)
    _require_json_bodies(app)
    from service.views.docs import install_docs

    install_docs(app)
    from service.console import init_console

    init_console(app)
    return app


def _require_json_bodies(app: Flask) -> None:
    @app.before_request
    def _json_only() -> None:
        if request.method in ("POST", "PUT", "PATCH") and request.path.startswith("/v1/"):
            if not request.content_length and not request.mimetype:
                return
            if request.mimetype != "application/json":
                raise ApiError(415, "the body must be JSON (Content-Type: application/json)")
