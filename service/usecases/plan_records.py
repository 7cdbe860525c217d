"""Whether a row of ``strategy_plans`` holds what its ``strategy.set`` record states.

A plan is trusted by its record, not by its row: the row is an ordinary table that anyone
able to write to the database can edit, while the record is a link of the hash chain. The
strategy book asks this before it adopts a plan, and the table check
(``service.usecases.table_checks.strategy_plans``) asks it of every row, so that both judge alike.

A record must be intact (its payload hashes to its ``payload_hash``), of kind
``strategy.set``, and state the row: its ``new`` plan (compared by canonical JSON), actor
(``set_by``), ``reason``, the plan before it (``previous_seq``, the row before in ``seq``
order) and, since records name their row, its ``seq`` and ``set_at``. A record without
``seq`` was written before records named their row: it is tied to its row by the row's
``audit_seq`` and by the plan before it, which no other row shares, and its ``set_at`` is
not checked (the record's time is its own, taken a moment after the row's).

A record also carries the service's Ed25519 ``signature`` over what it states (its ``seq``,
``new`` plan, actor, ``reason``, ``set_at`` and ``previous_seq``), made with the key that
signs checkpoints: a record appended by someone able to write the database but not holding
that key is refused (``bad_signature``). Once any ``strategy.set`` record is signed, a later
one without a signature is refused (``unsigned``); one before every signed record was written
before records were signed, and is judged without it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import Connection, func, select

from audit.schema import audit_records
from canonical import digest, sha256_hex

STRATEGY_KIND = "strategy.set"

# Why a stored plan is not adopted: the label of flashloan_strategy_plans_refused_total.
NO_RECORD = "no_record"              # no intact strategy.set record where the row points
RECORD_ALTERED = "record_altered"    # the record's payload does not hash to its payload_hash
NOT_ITS_RECORD = "not_its_record"    # the record states another row (reused, or moved)
DIFFERS = "differs"                  # the row's plan, set_by, reason, set_at or audit_seq
LATER_RECORD = "later_record"        # a later strategy.set record has no row
FAILS_CHECKS = "fails_checks"        # the promotion checks refuse the plan
CANNOT_BUILD = "cannot_build"        # a model or policy of the plan does not load here
UNSIGNED = "unsigned"                # no signature, after a signed strategy.set record
BAD_SIGNATURE = "bad_signature"      # the signature is not the service's over what it states
REFUSALS = (NO_RECORD, RECORD_ALTERED, NOT_ITS_RECORD, DIFFERS, LATER_RECORD, FAILS_CHECKS,
            CANNOT_BUILD, UNSIGNED, BAD_SIGNATURE)
# A problem quotes the row, which anyone able to write the database fills: at most this long.
PROBLEM_LIMIT = 500

_A = audit_records.c
_RECORD = select(_A.seq, _A.kind, _A.actor, _A.payload, _A.payload_hash)
_NEWEST_SET = select(func.max(_A.seq)).where(_A.kind == STRATEGY_KIND)


@dataclass(frozen=True, slots=True)
class PlanRefusal:
    """Why a stored plan is not trusted: a ``reason`` label and a sentence naming the row."""

    reason: str
    problem: str

    def __post_init__(self) -> None:
        if len(self.problem) > PROBLEM_LIMIT:
            object.__setattr__(self, "problem", self.problem[:PROBLEM_LIMIT - 1] + "…")


def plan_row_refusal(row: Any, record: Any | None, previous_seq: int, *,
                     first_signed: int | None = None,
                     public_key: Ed25519PublicKey | None = None) -> PlanRefusal | None:
    """Why ``row`` does not hold what ``record`` states; None when it does.

    ``record`` has the columns seq, kind, actor, payload (the stored text) and payload_hash
    (None: no record); ``previous_seq`` is the seq of the row before ``row`` (0 if none).
    ``first_signed`` is the seq of the first signed ``strategy.set`` record (None: none is),
    and the signature is verified under ``public_key`` when given (:func:`record_refusal`).
    """
    name = f"plan {row.seq}"
    if record is None:
        return PlanRefusal(NO_RECORD, f"{name} names audit record {row.audit_seq}, which does "
                                      "not exist")
    if record.kind != STRATEGY_KIND:
        return PlanRefusal(NO_RECORD, f"{name} names audit record {record.seq}, a "
                                      f"{record.kind} record, not a {STRATEGY_KIND}")
    if record.payload is None:
        return PlanRefusal(NO_RECORD, f"{name}: the payload of record {record.seq} was purged")
    if sha256_hex(record.payload.encode("utf-8")) != record.payload_hash:
        return PlanRefusal(RECORD_ALTERED, f"{name}: the payload of record {record.seq} does "
                                           "not hash to its payload_hash")
    stated = _loaded(record.payload)
    if not isinstance(stated, dict):
        return PlanRefusal(NO_RECORD, f"{name}: record {record.seq} states no plan")
    unsigned = _signature_refusal(name, record, stated, first_signed, public_key)
    if unsigned is not None:
        return unsigned
    if "seq" in stated and stated["seq"] != row.seq:
        return PlanRefusal(NOT_ITS_RECORD, f"{name} names record {record.seq}, which states "
                                           f"plan {stated['seq']}")
    if stated.get("previous_seq") != previous_seq:
        return PlanRefusal(NOT_ITS_RECORD, f"the plan before {name} is plan {previous_seq}; "
                                           f"record {record.seq} states plan "
                                           f"{stated.get('previous_seq')}")
    found = _differences(row, record, stated)
    if found:
        return PlanRefusal(DIFFERS, f"{name} differs from record {record.seq}: "
                                    + "; ".join(found))
    return None


def record_refusal(record: Any, *, first_signed: int | None,
                   public_key: Ed25519PublicKey | None) -> PlanRefusal | None:
    """Why the ``strategy.set`` ``record`` is not trusted on its own (no row to compare with):
    not intact, stating no plan, or not signed as it must be; None when it is trusted."""
    name = f"record {record.seq}"
    if record.payload is None or record.kind != STRATEGY_KIND:
        return PlanRefusal(NO_RECORD, f"{name} states no plan (purged, or not a "
                                      f"{STRATEGY_KIND})")
    if sha256_hex(record.payload.encode("utf-8")) != record.payload_hash:
        return PlanRefusal(RECORD_ALTERED, f"the payload of {name} does not hash to its "
                                           "payload_hash")
    stated = _loaded(record.payload)
    if not isinstance(stated, dict) or "new" not in stated:
        return PlanRefusal(NO_RECORD, f"{name} states no plan")
    return _signature_refusal(name, record, stated, first_signed, public_key)


def later_record(row: Any, records: Sequence[Any], first: int | None,
                 public_key: Ed25519PublicKey | None) -> Any | None:
    """The newest trusted record of ``records`` after ``row``'s stating a later plan; None.

    A record not trusted (:func:`record_refusal`), or a signed one replayed (stating a plan
    no later than ``row``), is none: it cannot hold back the newest row.
    """
    for record in reversed(records):
        if record.seq <= row.audit_seq:
            return None
        named = stated_seq(record)
        if (named is None or named > row.seq) and record_refusal(
                record, first_signed=first, public_key=public_key) is None:
            return record
    return None


def sign_statement(key: Ed25519PrivateKey, statement: dict[str, Any]) -> str:
    """The service's signature (hex) over what a ``strategy.set`` record states."""
    return key.sign(digest(_signed_part(statement)).encode("ascii")).hex()


def first_signed(records: Sequence[Any]) -> int | None:
    """The seq of the first signed record of ``records`` (:func:`plan_records`); None."""
    for record in records:
        stated = None if record.payload is None else _loaded(record.payload)
        if isinstance(stated, dict) and "signature" in stated:
            return int(record.seq)
    return None


def _signed_part(statement: dict[str, Any]) -> dict[str, Any]:
    return {name: statement.get(name) for name in
            ("seq", "new", "set_by", "reason", "set_at", "previous_seq")}


def _signature_refusal(name: str, record: Any, stated: dict[str, Any],
                       first: int | None, public_key: Ed25519PublicKey | None
                       ) -> PlanRefusal | None:
    signature = stated.get("signature")
    if signature is None:
        if first is not None and record.seq > first:
            return PlanRefusal(UNSIGNED, f"{name}: record {record.seq} is not signed, and "
                                         f"record {first} before it is")
        return None
    if public_key is None:
        return None
    try:
        public_key.verify(bytes.fromhex(signature), digest(_signed_part(
            {**stated, "set_by": record.actor})).encode("ascii"))
    except (InvalidSignature, TypeError, ValueError):
        return PlanRefusal(BAD_SIGNATURE, f"{name}: record {record.seq} is not signed by the "
                                          "service's key over what it states")
    return None


def _differences(row: Any, record: Any, stated: dict[str, Any]) -> list[str]:
    found = []
    if not _same_plan(_loaded(row.plan), stated.get("new")):
        found.append(f"plan is {row.plan}; the record states "
                     f"{json.dumps(stated.get('new'), sort_keys=True)}")
    if row.audit_seq != record.seq:
        found.append(f"audit_seq is {row.audit_seq}; the record is {record.seq}")
    pairs = [("set_by", row.set_by, record.actor), ("reason", row.reason, stated.get("reason"))]
    if "set_at" in stated:
        pairs.append(("set_at", row.set_at, stated["set_at"]))
    found += [f"{field} is {held!r}; the record states {said!r}"
              for field, held, said in pairs if held != said]
    return found


def _loaded(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def _same_plan(held: Any, stated: Any) -> bool:
    if held is None or stated is None:
        return False
    try:
        return digest(held) == digest(stated)
    except (TypeError, ValueError):
        return False


def read_record(conn: Connection, seq: int) -> Any | None:
    """The audit record ``seq`` as :func:`plan_row_refusal` reads it; None if none."""
    return conn.execute(_RECORD.where(_A.seq == seq)).first()


def plan_records(conn: Connection) -> list[Any]:
    """Every ``strategy.set`` record, in order (a plan changes rarely: they are few)."""
    return list(conn.execute(_RECORD.where(_A.kind == STRATEGY_KIND).order_by(_A.seq)))


def newest_plan_record(conn: Connection) -> int | None:
    """The seq of the latest ``strategy.set`` record; None if there is none."""
    return conn.execute(_NEWEST_SET).scalar()


def stated_seq(record: Any) -> int | None:
    """The plan a record names, when it names one (records written before do not)."""
    if record.payload is None:
        return None
    stated = _loaded(record.payload)
    seq = stated.get("seq") if isinstance(stated, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None
