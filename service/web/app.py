"""The composition root: ``create_app`` chooses the store, the sources, the model and the policy."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from flask import Flask, Response, current_app, json, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api

from scoring.online.model import ModelShelf
from scoring.online.policy import Policy
from service.ops.logs import configure_logging
from service.ops.settings import Settings
from service.web.auth import install_authentication
from service.web.bodies import CappedRequest
from service.web.errors import ApiError, register_error_handlers
from service.web.limits import install_limit_headers
from service.web.policy import install_policy
from service.web.request_logs import install_request_ids, request_context
from service.web.schemas import ErrorSchema, policy_document
from service.web.wiring import Wiring, install

log = logging.getLogger("flashloan.app")


class _JsonProvider(DefaultJSONProvider):
    """Flask's JSON in the order built and with Chinese text as written."""

    sort_keys = False
    ensure_ascii = False


class FlashloanApi(Api):
    """flask-smorest's Api, documenting our one error envelope.

    Each operation lists every error status it may answer (the views' Blueprint derives
    them), so there is no catch-all ``default`` response; each status's shared response says
    what it means and which headers come with it. The bounds the policy sets on requests
    are those of ``policy()``, the policy in force when the document is asked for.
    """

    ERROR_SCHEMA = ErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None

    def __init__(self, app: Flask, *, policy: Callable[[], Policy],
                 spec_kwargs: dict[str, Any] | None = None) -> None:
        self.policy = policy
        super().__init__(app, spec_kwargs=spec_kwargs)

    def _openapi_json(self) -> Response:
        """Serve the document, with the bounds of the policy in force now."""
        document = policy_document(self.spec.to_dict(), self.policy())
        return current_app.response_class(json.dumps(document, indent=2, sort_keys=False),
                                          mimetype="application/json")

    def init_app(self, app: Flask, *, spec_kwargs: dict[str, Any] | None = None) -> None:
        super().init_app(app, spec_kwargs=spec_kwargs)
        from service.web.errors import MEANINGS
        from service.web.views.blueprint import error_response, response_name

        # Registered lazily, as flask-smorest registers its own under the same names: only
        # those some operation refers to appear in the document.
        for status in MEANINGS:
            self.spec.components.response(response_name(status), error_response(status),
                                          lazy=True)


def build_wiring(settings: Settings, shelf: ModelShelf | None = None) -> Wiring:
    """Build everything a worker needs, once: store, keys, limits, sources, model, flow.

    The wiring owns what is built here: the policy, the rate limits, the engines and the
    books belong to this app alone; no module keeps them for the next one. The models are
    read-only once loaded: with a ``shelf`` they are loaded once for every app that shares it
    (the test suite's apps), else afresh.
    """
    from audit import AuditStore, Pseudonymiser
    from datasources import SCOPES
    from datasources.base import INCOME_SCOPES
    from datasources.consent import ConsentGate
    from datasources.factory import build_sources
    from datasources.gather import Gatherer
    from scoring.governance.catalogue import reasons_served
    from scoring.governance.strategy import Strategy, StrategyPlan
    from scoring.online.engine import DecisionEngine
    from scoring.online.model import load_fallbacks, load_model
    from scoring.online.policy import load_policy
    from service.ops.metrics import Metrics
    from service.ops.rate_limits import RateLimits
    from service.persistence.checkpointer import Checkpointer
    from service.persistence.committer import GroupCommitter
    from service.persistence.idempotency import IdempotencyKeys
    from service.persistence.migrations import require_head
    from service.persistence.sealing import ApplicantSeal
    from service.usecases.applications import ApplicationBook
    from service.usecases.backtests.jobs import BacktestDesk
    from service.usecases.backtests.runner import BacktestRunner, RunnerSetup
    from service.usecases.consents import ConsentBook
    from service.usecases.engines import Engines
    from service.usecases.flow import DecisionFlow
    from service.usecases.monitoring import Monitoring
    from service.usecases.monitoring.rollup import Rollup
    from service.usecases.outcomes import OutcomeBook
    from service.usecases.replay import Replayer
    from service.usecases.retries import RetryDesk
    from service.usecases.reviews import ReviewDesk
    from service.usecases.strategies import StrategyBook
    from service.usecases.verification import checkpoint_folder
    from service.web.auth import KeyRing
    from service.web.backtest_report import report_html
    from service.web.charts.scales import PointsScales

    store = AuditStore.from_url(settings.database_url)
    try:
        # Workers never change the schema: one not at head is refused, naming the command.
        require_head(store.engine)
    except BaseException:
        store.dispose()
        raise
    pseudonymiser = Pseudonymiser(settings.pii_key)
    limits = RateLimits.from_settings(settings)
    consents = ConsentBook(store, pseudonymiser)
    metrics = Metrics()
    # The HTTP sources share one connection pool: room for every thread the gatherer runs.
    http_options = ({"pool_maxsize": len(SCOPES) * settings.threads}
                    if settings.sources == "http" else {})
    sources = build_sources(settings.sources, sources_url=settings.sources_url,
                            latency=settings.stub_latency_ms, faults=settings.stub_faults,
                            fixtures_path=settings.stub_fixtures, **http_options)
    # One call of each source per request thread of the worker (gunicorn threads), each
    # source in a pool of its own.
    gatherer = Gatherer(sources, ConsentGate(consents.lookup), deadline_s=settings.deadline_s,
                        threads_per_source=settings.threads, on_outcome=metrics.source)
    model = load_model(settings.model_version, search=settings.model_search, shelf=shelf)
    engine = DecisionEngine(model, load_policy(settings.policy, settings.policy_search),
                            load_fallbacks(model, INCOME_SCOPES, search=settings.model_search,
                                           shelf=shelf))
    # Every engine a strategy, replay or backtest needs, each model loaded once; the
    # settings' engine decides as the champion until a plan is stored.
    engines = Engines(settings.model_search, settings.policy_search, shelf=shelf)
    engines.adopt(engine)
    # Signs checkpoints and changes of strategies (production: held outside the database).
    signing_key = store.signing_key(settings.signing_key, settings.var_dir,
                                    production=settings.is_production)
    strategies = StrategyBook(store, engines,
                              StrategyPlan(Strategy(model.version, engine.policy.version)),
                              refresh_s=settings.strategy_refresh_s,
                              min_auc=settings.promotion_min_auc, signing_key=signing_key,
                              on_verdict=metrics.strategy_plan)
    references = engines.references(engine)
    flow = DecisionFlow(store=store, consents=consents, pseudonymiser=pseudonymiser,
                        gatherer=gatherer, strategies=strategies,
                        idempotency=IdempotencyKeys(
                            store.engine, expiry_s=settings.idempotency_expiry_s,
                            retention_s=settings.idempotency_retention_h * 3600,
                            wait_s=settings.deadline_s + 20, holders=settings.threads),
                        metrics=metrics,
                        committer=GroupCommitter(store, timeout_s=settings.commit_timeout_s,
                                                  after_batch=Rollup().add_batch),
                        seal=ApplicantSeal(settings.pii_key))
    replayer = Replayer(store, engines)
    # Backtests run in processes of their own, claimed from the database by any worker.
    runner = (BacktestRunner(store, RunnerSetup(settings.database_url, settings.model_search,
                                                settings.policy_search, settings.dask_address,
                                                engine.policy.doc, report_html),
                             processes=settings.backtest_processes)
              if settings.backtest_processes else None)
    checkpointer = Checkpointer(
        store, signing_key, checkpoint_folder(settings),
        every_records=settings.checkpoint_every_records, every_s=settings.checkpoint_every_s)
    applications = ApplicationBook(store, engine.model.spec)
    reasons = reasons_served(engine)
    monitoring = Monitoring(store, references=references,
                            labels={f.name: f.label.en for f in model.spec.features},
                            reason_texts={r["code"]: r for r in reasons["items"]},
                            model_search=settings.model_search)
    metrics.add_collector(monitoring.collector())
    return Wiring(settings=settings, store=store, pseudonymiser=pseudonymiser,
                  scales=PointsScales((model, *engine.fallbacks.values()),
                                      settings.model_search),
                  keys=KeyRing(store.engine, limits, ttl_s=settings.key_cache_s),
                  limits=limits, consents=consents, sources=sources,
                  gatherer=gatherer, engine=engine, flow=flow, metrics=metrics,
                  engines=engines, strategies=strategies,
                  backtests=BacktestDesk(store, engines, runner,
                                         per_requester=settings.backtests_per_requester,
                                         queue_limit=settings.backtest_queue_limit),
                  replayer=replayer, reviews=ReviewDesk(store, replayer, applications),
                  applications=applications, checkpointer=checkpointer,
                  retries=RetryDesk(store=store, seal=flow.seal, idempotency=flow.idempotency,
                                    pseudonymiser=pseudonymiser, decide=flow.decide_again),
                  reasons=reasons,
                  outcomes=OutcomeBook(store), monitoring=monitoring)


def warm_up(wired: Wiring) -> None:
    """Run the model and each fallback once, and draw one chart, so that no first decision
    or dashboard pays a start-up cost.

    Records in ``wired.warmed_models`` the version of each model that decided.
    """
    engine = wired.engine
    spec_width = len(engine.model.spec.names)
    decided = []
    for unknown in ((), *((scope,) for scope in engine.fallbacks)):
        decisions = engine.decide(np.full((1, spec_width), np.nan), age=30, purpose="travel",
                                  term_months=12, unknown_scopes=unknown)
        decided.append(decisions.model.version)
    wired.warmed_models = tuple(decided)
    # The dashboard's charts load matplotlib (and build its font cache on a new machine).
    from service.web.charts import bars_svg

    wired.charts.uri(bars_svg, [], title="")


def create_app(config: Settings | Mapping[str, Any] | None = None, *,
               shelf: ModelShelf | None = None) -> Flask:
    """Create the Flask app; ``config`` is a Settings, overrides of the environment, or None;
    ``shelf`` lends models already loaded (:class:`~scoring.online.model.ModelShelf`)."""
    if isinstance(config, Settings):
        settings = config
        settings.validate()
    else:
        settings = Settings.from_env()
        if config:
            settings = settings.with_overrides(**dict(config))
    configure_logging(context=request_context)
    app = Flask(__name__)
    # Any body over MAX_CONTENT_LENGTH is a 413, chunked or not (service.web.bodies).
    app.request_class = CappedRequest
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        API_TITLE="flashloan",
        API_VERSION="1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        JSON_SORT_KEYS=False,
    )
    # The console's session cookie is signed with a key derived from the PII secret, so a
    # production deployment has no development default here either.
    app.secret_key = hmac.new(settings.pii_key.encode(), b"console-session",
                              hashlib.sha256).hexdigest()
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
                      SESSION_COOKIE_SECURE=settings.is_production,
                      SESSION_COOKIE_NAME="flashloan_console")
    app.json = _JsonProvider(app)
    wired = build_wiring(settings, shelf)
    install(app, wired)
    wired.checkpointer.start()
    wired.backtests.start()
    warm_up(wired)
    if settings.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # The client's address is the one the trusted proxies forwarded: the rate limits
        # count failed authentications per client, not per proxy.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=0, x_host=0, x_port=0,
            x_prefix=0)
    install_limit_headers(app)

    from service.web.views.docs import API_DESCRIPTION
    from service.web.views.keys import cache_lifetime_note

    description = f"{API_DESCRIPTION}\n\n{cache_lifetime_note(settings.key_cache_s)}"
    api = FlashloanApi(app, policy=wired.policy_in_force,
                       spec_kwargs={"info": {"description": description}})
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    api.spec.options["security"] = [{"bearer": []}]
    from service.web.views import (
        applications,
        audit,
        backtests,
        consents,
        health,
        keys,
        models,
        monitoring,
        outcomes,
        reasons,
        reviews,
        strategies,
    )

    for module in (consents, applications, reviews, outcomes, monitoring, reasons, models,
                   strategies, backtests, audit, keys, health):
        api.register_blueprint(module.blp)
    register_error_handlers(app)
    install_request_ids(app, wired.metrics)
    _require_json_bodies(app)
    # After the checks of the body's type: a body that is not JSON is a 415 before a 401.
    install_authentication(app, wired.keys, wired.limits)
    install_policy(app, wired.policy_in_force)
    from service.web.views.docs import install_docs

    install_docs(app)
    from service.web.console import init_console

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
