"""The service's own tables (API keys, consents, applications, idempotency, reviews, loan
outcomes, the monitoring roll-up), beside the audit log.

They live in the audit store's database so that a decision and its audit records commit in
one transaction. These objects build queries and declare the schema as the latest migration
leaves it; the schema itself is changed only by the Alembic revisions in
``service/persistence/migrations/versions/`` (``flashloan db upgrade``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from audit.engine import write_mode, writer_turn

metadata = MetaData()

api_keys = Table(
    "api_keys", metadata,
    Column("key_id", String(32), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("role", String(32), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", String(27), nullable=False),
    Column("revoked_at", String(27)),
)

consents = Table(
    "consents", metadata,
    Column("consent_id", String(40), primary_key=True),
    Column("subject", String(64), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("granted_at", String(27), nullable=False),
    Column("expires_at", String(27), nullable=False),
    Column("text_version", String(40), nullable=False),
    Column("created_at", String(27), nullable=False),
    Column("withdrawn_at", String(27)),
    Index("ix_consents_channel", "channel", "created_at"),
)

applications = Table(
    "applications", metadata,
    Column("application_id", String(40), primary_key=True),
    Column("channel", String(100), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("consent_id", String(40), nullable=False),
    Column("status", String(16), nullable=False),
    Column("outcome", String(16)),
    Column("grade", String(4)),
    Column("model_version", String(64)),
    Column("decided_by", String(16), nullable=False),
    Column("created_at", String(27), nullable=False),
    Column("updated_at", String(27), nullable=False),
    Column("answer", Text, nullable=False),       # the decision as returned to the channel
    # The seq of the application's latest decision record: its explanation, sources and
    # facts are read there, never stored twice.
    Column("decision_seq", BigInteger),
    # A deferred application's applicant, encrypted (service.persistence.sealing), for the
    # scheduler's
    # retry; NULL once decided, and once its consent is withdrawn or expired.
    Column("sealed_applicant", LargeBinary),
    Index("ix_applications_channel", "channel", "created_at"),
    Index("ix_applications_status", "status", "created_at"),
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("key_id", String(32), primary_key=True),
    Column("idempotency_key", String(128), primary_key=True),
    Column("body_hash", String(64), nullable=False),
    Column("state", String(16), nullable=False),   # in_progress | done
    Column("application_id", String(40)),
    Column("status_code", Integer),
    Column("response", Text),
    Column("created_at", String(27), nullable=False),
    Index("ix_idempotency_keys_created_at", "created_at"),
)

reviews = Table(
    "reviews", metadata,
    Column("review_id", String(40), primary_key=True),
    Column("application_id", String(40), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("state", String(16), nullable=False),          # open | resolved
    Column("outcome", String(16)),                         # upheld | overturned
    Column("note", Text),
    Column("resolved_by", String(128)),
    Column("created_at", String(27), nullable=False),
    Column("resolved_at", String(27)),
    Index("ix_reviews_state", "state", "created_at", "review_id"),
    Index("ix_reviews_application", "application_id"),
    # The dashboard counts the reviews resolved in a window.
    Index("ix_reviews_resolved", "resolved_at"),
)

# A loan the bank's servicing system reports on: one row per approved application it posted
# an outcome for. The decision's grade, PD and credit line are copied from the answer when
# the outcome is posted, so that the realised default is set beside the predicted one
# without reading any JSON.
loans = Table(
    "loans", metadata,
    Column("application_id", String(40), primary_key=True),
    Column("subject", String(64), nullable=False),
    Column("drawn", Boolean, nullable=False),
    Column("drawn_at", String(27)),
    Column("amount", Float),
    Column("credit_limit", Float, nullable=False),
    Column("grade", String(4), nullable=False),
    Column("pd", Float),
    Column("approved_at", String(27), nullable=False),
    Column("approved_month", String(7), nullable=False),
    Column("recorded_at", String(27), nullable=False),
    Column("updated_at", String(27), nullable=False),
    Index("ix_loans_cohort", "drawn", "grade", "approved_month"),
)

# A loan's performance, one row per month; a month posted again replaces its row.
loan_performance = Table(
    "loan_performance", metadata,
    Column("application_id", String(40), ForeignKey("loans.application_id"),
           primary_key=True),
    Column("month", String(7), primary_key=True),       # YYYY-MM
    Column("status", String(16), nullable=False),        # current | past_due | default | repaid
    Column("days_past_due", Integer, nullable=False),
    Column("recorded_at", String(27), nullable=False),
    # The default rule reads status and days only: the loans that defaulted come from here.
    Index("ix_loan_performance_status", "status", "days_past_due", "application_id"),
)

# The monitoring roll-up (service.usecases.monitoring): per bucket of time, how many decisions fell
# in
# each cell and the sum of one quantity over them. Written in each decision's transaction;
# the dashboard reads a window as a range of buckets of one grain.
monitoring_cells = Table(
    "monitoring_cells", metadata,
    Column("grain", String(4), primary_key=True),        # 5m | hour | day
    Column("bucket", String(16), primary_key=True),      # the bucket's start, as text
    Column("metric", String(16), primary_key=True),
    Column("key", String(160), primary_key=True),
    Column("n", BigInteger, nullable=False),
    Column("total", Float, nullable=False),
    # A series reads one metric over many buckets.
    Index("ix_monitoring_cells_series", "grain", "metric", "bucket"),
)

# The roll-up's marks: ``compacted`` is the first five-minute bucket whose cells are not yet
# added into the hourly and daily buckets.
monitoring_marks = Table(
    "monitoring_marks", metadata,
    Column("name", String(16), primary_key=True),
    Column("bucket", String(16), nullable=False),
)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction (SQLite: BEGIN IMMEDIATE, so it never fails on a lock upgrade)."""
    with writer_turn(engine), engine.connect() as conn:
        write_mode(conn)
        with conn.begin():
            yield conn

# The strategies in force (service.usecases.strategies): one row per change, the latest in force.
# ``plan`` is the JSON of scoring.governance.strategy.StrategyPlan; ``audit_seq`` is the change's
# audit
# record (who, when, why, the previous and the new plan).
strategy_plans = Table(
    "strategy_plans", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("plan", Text, nullable=False),
    Column("set_by", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("set_at", String(27), nullable=False),
    Column("audit_seq", BigInteger, nullable=False),
)

# Backtests requested through the API (service.usecases.backtests): the queue of jobs, which any
# worker's runner claims (``claimed_by``) and any worker reports on.
backtests = Table(
    "backtests", metadata,
    Column("backtest_id", String(40), primary_key=True),
    Column("strategy", String(200), nullable=False),
    Column("since", String(27)),
    Column("until", String(27)),
    # queued | running | done | failed | cancelled
    Column("status", String(16), nullable=False),
    Column("requested_by", String(128), nullable=False),
    Column("requested_at", String(27), nullable=False),
    Column("heartbeat_at", String(27)),
    Column("finished_at", String(27)),
    Column("rows", BigInteger),
    Column("summary", Text),
    Column("report", Text),
    Column("error", Text),
    Column("lgd", Float),                   # NULL in jobs from before revision 0012: 1
    Column("claimed_by", String(64)),       # the runner that runs or ran it
    Column("started_at", String(27)),
    Column("cancelled_by", String(128)),
    Index("ix_backtests_requested", "requested_at"),
    Index("ix_backtests_status", "status", "requested_at"),
)
