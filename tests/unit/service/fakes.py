"""Small in-memory fakes of the decision flow's ports, for unit tests without a database.

``MemoryDatabase`` holds the rows committed transactions left, by table name: the
applications, the audit records and the idempotency keys. ``MemoryCommitter`` runs the
flow's write in a transaction of that database through the real :class:`audit.ChainWriter`,
so the audit records are chained as in production; the transaction's rows are kept only if
the write returns. ``MemoryIdempotency`` claims keys and replays answers from the committed
rows; it does not model concurrent duplicates waiting for each other. ``build_flow`` wires a
:class:`~service.usecases.flow.DecisionFlow` with them, under the shipped model and policy
(``shipped_plan``, loaded once per test process).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from audit import GENESIS_HASH, ChainWriter, Pseudonymiser
from datasources.base import INCOME_SCOPES
from datasources.consent import Consent
from datasources.identity import as_national_id
from datasources.outcome import GatherResult, SourceOutcome
from datasources.records import SourceRecord
from datasources.stub.world import generate, records_at
from scoring.governance.strategy import Strategy, StrategyPlan
from scoring.online.engine import DecisionEngine
from scoring.online.model import load_fallbacks, load_model
from scoring.online.policy import load_policy
from service.domain.encoding import now_text
from service.domain.errors import IdempotencyConflict
from service.persistence.idempotency import Claim, Replay
from service.persistence.sealing import ApplicantSeal
from service.persistence.tables import idempotency_keys
from service.usecases.engines import Engines
from service.usecases.flow import DecisionFlow
from service.usecases.live_plans import LivePlan, build_plan

PII_KEY = "unit-test-pii-key"

LATENCY_MS = 5.0


class MemoryDatabase:
    """The committed rows, by table name; nothing is kept of a transaction that failed."""

    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {}
        # The monitoring cells each committed decision handed to the committer.
        self.cells: list[Any] = []

    def rows(self, table: str) -> list[dict[str, Any]]:
        """The committed rows of ``table``, in the order they were written."""
        return self.tables.get(table, [])

    @property
    def head(self) -> tuple[int, str]:
        """The seq and hash of the chain's last record (0 and the genesis hash if none)."""
        records = self.rows("audit_records")
        if not records:
            return 0, GENESIS_HASH
        return records[-1]["seq"], records[-1]["record_hash"]


class MemoryConnection:
    """A transaction's connection: inserts are staged until the transaction commits."""

    def __init__(self) -> None:
        self.staged: dict[str, list[dict[str, Any]]] = {}

    def execute(self, statement: Any, parameters: Mapping[str, Any] | Iterable[Any]):
        """Stage the rows of an INSERT; any other statement is not modelled."""
        if getattr(statement, "is_insert", False) is not True:
            raise NotImplementedError(f"the in-memory database only inserts: {statement}")
        rows = [dict(parameters)] if isinstance(parameters, Mapping) else [
            dict(row) for row in parameters]
        self.staged.setdefault(statement.table.name, []).extend(rows)
        return SimpleNamespace(rowcount=len(rows))


class MemoryCommitter:
    """The group committer, one write at a time; ``fail_with`` is raised by every write, as
    a database that refuses it (nothing is written)."""

    def __init__(self, database: MemoryDatabase, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.database = database
        self.clock = clock
        self.fail_with: Exception | None = None

    def submit(self, work: Callable[[ChainWriter], None], extra: Any = None) -> None:
        """Run ``work`` in a transaction; keep its rows only if it and the commit succeed."""
        if self.fail_with is not None:
            raise self.fail_with
        conn = MemoryConnection()
        work(ChainWriter(conn, *self.database.head, self.clock))
        for table, rows in conn.staged.items():
            self.database.tables.setdefault(table, []).extend(rows)
        if extra is not None:
            self.database.cells.append(extra)


class MemoryStore:
    """The audit store as the flow holds it: a decision whose commit raised is looked up
    by its application id in the database, which these tests never reach."""

    def __init__(self, database: MemoryDatabase) -> None:
        self.database = database

    @property
    def engine(self):
        raise AssertionError("the flow read the database: no test here makes it")


class MemoryIdempotency:
    """Idempotency keys held in memory; a key's answer is the row its decision committed."""

    def __init__(self, database: MemoryDatabase) -> None:
        self.database = database
        self.released: list[Claim] = []

    def _row(self, key_id: str, key: str) -> dict[str, Any] | None:
        return next((row for row in self.database.rows("idempotency_keys")
                     if (row["key_id"], row["idempotency_key"]) == (key_id, key)), None)

    def claim(self, key_id: str, key: str, digest: str) -> Replay | Claim:
        """Replay a key's committed answer; refuse it with another body; else claim it."""
        row = self._row(key_id, key)
        if row is not None and row["body_hash"] != digest:
            raise IdempotencyConflict("this Idempotency-Key was used with a different body",
                                      fields={"Idempotency-Key": ["already used with another "
                                                                  "body"]})
        if row is not None:
            return Replay(row["status_code"], row["response"])
        return Claim(key_id, key, digest, now_text())

    def complete(self, conn: MemoryConnection, claim: Claim, application_id: str, status: int,
                 response: str) -> None:
        """Write the key's answer in the decision's transaction."""
        conn.execute(idempotency_keys.insert(), {
            "key_id": claim.key_id, "idempotency_key": claim.key, "body_hash": claim.digest,
            "state": "done", "application_id": application_id, "status_code": status,
            "response": response, "created_at": claim.claimed_at})

    def release(self, claim: Claim) -> None:
        self.released.append(claim)


class MemoryConsents:
    """The consent book as the flow reads it: the consent an application cites."""

    def __init__(self, *consents: Consent) -> None:
        self.consents = {c.consent_id: c for c in consents}

    def cited(self, consent_id: str) -> Consent | None:
        return self.consents.get(consent_id)


@dataclass
class ScriptedGatherer:
    """Answers each source from ``records`` (by national ID, then scope); the scopes in
    ``down`` time out, and those in ``opened`` open their breaker as they do."""

    records: Mapping[str, Mapping[str, SourceRecord]]
    down: frozenset[str] = frozenset()
    opened: frozenset[str] = frozenset()
    calls: list[dict[str, Any]] = field(default_factory=list)

    def gather(self, national_id: Any, subject: str, consent_id: str, scopes: Iterable[str], *,
               channel: str | None = None, consent: Consent | None = None) -> GatherResult:
        """Return each scope's outcome: its record, or a timeout for a scope that is down."""
        number = as_national_id(national_id).number
        scopes = tuple(scopes)
        self.calls.append({"national_id": number, "subject": subject, "consent_id": consent_id,
                           "scopes": scopes, "channel": channel, "consent": consent})
        digest = consent.digest() if consent is not None else None
        outcomes = {}
        for scope in scopes:
            if scope in self.down:
                outcomes[scope] = SourceOutcome(scope, "timeout", None,
                                                "the source did not answer in time", 2,
                                                LATENCY_MS, consent_id, digest,
                                                opened_breaker=scope in self.opened)
            else:
                outcomes[scope] = SourceOutcome(scope, "ok", self.records[number][scope], None,
                                                1, LATENCY_MS, consent_id, digest)
        return GatherResult(outcomes, LATENCY_MS)


class FixedStrategies:
    """The strategy book with one plan in force, never refreshed."""

    def __init__(self, live: LivePlan) -> None:
        self.live = live

    def current(self) -> LivePlan:
        return self.live


@dataclass
class CountingMetrics:
    """The metrics the flow reports, kept as lists to assert on."""

    decisions: list[str] = field(default_factory=list)
    audit_failures: int = 0
    breakers_opened: list[str] = field(default_factory=list)

    def decision(self, outcome: str, durations_ms: dict[str, float], **_: Any) -> None:
        self.decisions.append(outcome)

    def audit_failure(self) -> None:
        self.audit_failures += 1

    def breaker_opened(self, scope: str) -> None:
        self.breakers_opened.append(scope)


# -- the flow wired with the fakes -------------------------------------------------------------


@functools.cache
def shipped_plan() -> LivePlan:
    """The plan a fresh service decides under: the shipped model (with its fallbacks) and
    policy, as champion alone. Loaded once per test process."""
    model = load_model()
    engine = DecisionEngine(model, load_policy(), load_fallbacks(model, INCOME_SCOPES))
    engines = Engines()
    engines.adopt(engine)
    return build_plan(engines, StrategyPlan(Strategy(model.version, engine.policy.version)))


def world_records(*national_ids: str) -> dict[str, dict[str, SourceRecord]]:
    """The five source records of each person of the stub world, by national ID."""
    cols = generate(national_ids)
    return {nid: records_at(cols, row) for row, nid in enumerate(national_ids)}


@dataclass
class FlowParts:
    """A decision flow and the fakes it was wired with, to set up and assert on."""

    flow: DecisionFlow
    database: MemoryDatabase
    gatherer: ScriptedGatherer
    committer: MemoryCommitter
    idempotency: MemoryIdempotency
    metrics: CountingMetrics
    pseudonymiser: Pseudonymiser
    seal: ApplicantSeal


def build_flow(live: LivePlan, consents: Iterable[Consent] = (),
               records: Mapping[str, Mapping[str, SourceRecord]] | None = None, *,
               down: Iterable[str] = (), opened: Iterable[str] = ()) -> FlowParts:
    """Wire a decision flow with in-memory fakes: ``consents`` are the consents on file,
    ``records`` what the sources answer, ``down`` the sources that time out."""
    database = MemoryDatabase()
    gatherer = ScriptedGatherer(records or {}, frozenset(down), frozenset(opened))
    committer = MemoryCommitter(database)
    idempotency = MemoryIdempotency(database)
    metrics = CountingMetrics()
    pseudonymiser = Pseudonymiser(PII_KEY)
    seal = ApplicantSeal(PII_KEY)
    flow = DecisionFlow(store=MemoryStore(database),
                        consents=MemoryConsents(*consents),
                        pseudonymiser=pseudonymiser,
                        gatherer=gatherer,
                        strategies=FixedStrategies(live),
                        idempotency=idempotency,
                        metrics=metrics,
                        committer=committer,
                        seal=seal)
    return FlowParts(flow, database, gatherer, committer, idempotency, metrics, pseudonymiser,
                     seal)
