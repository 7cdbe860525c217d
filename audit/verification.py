"""Walking the chain: recompute every hash in a stream and name the first broken link."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select

from audit.queries import batches
from audit.records import GENESIS_HASH, AuditQuery, VerifyResult, compute_record_hash
from audit.schema import audit_records

if TYPE_CHECKING:
    from audit.checkpoints import Checkpoint

__all__ = ["verify_chain"]

_T = audit_records.c


@dataclass(frozen=True, slots=True)
class _Break:
    seq: int
    reason: str
    message: str


def verify_chain(
    engine: Engine,
    *,
    batch_size: int,
    start_seq: int | None = None,
    end_seq: int | None = None,
    checkpoints: Sequence[Checkpoint] = (),
    public_key: Any = None,
) -> VerifyResult:
    """Walk ``start_seq..end_seq`` and compare checkpoints; report the lowest broken seq."""
    from audit.checkpoints import verify_checkpoint_signature

    for checkpoint in checkpoints:
        if not verify_checkpoint_signature(checkpoint, public_key):
            return VerifyResult(
                ok=False,
                checked=0,
                reason="checkpoint_invalid",
                message=f"checkpoint of record {checkpoint.seq} made at {checkpoint.time} "
                "has a signature that does not verify with the expected public key",
            )
    head = _head_seq(engine)
    start = start_seq or 1
    end = head if end_seq is None else min(end_seq, head)
    checked, found = _walk(engine, batch_size, start, end)
    for checkpoint in checkpoints:
        problem = _against_checkpoint(engine, checkpoint, head)
        if problem is not None and (found is None or problem.seq < found.seq):
            found = problem
    if found is None:
        return VerifyResult(ok=True, checked=checked, message=_intact(checked, start, end))
    return VerifyResult(
        ok=False,
        checked=checked,
        first_bad_seq=found.seq,
        reason=found.reason,
        message=found.message,
    )


def _intact(checked: int, start: int, end: int) -> str:
    if checked == 0:
        return "no records to verify"
    return f"{checked} records intact ({start}..{end})"


def _walk(engine: Engine, batch_size: int, start: int, end: int) -> tuple[int, _Break | None]:
    if end < start:
        return 0, None
    expected_prev = GENESIS_HASH
    if start > 1:
        anchor = _hash_at(engine, start - 1)
        if anchor is None:
            return 0, _Break(start - 1, "gap", f"record {start - 1} is missing")
        expected_prev = anchor
    expected = start
    sha256 = hashlib.sha256
    for rows in batches(engine, AuditQuery(start_seq=start, end_seq=end), batch_size):
        for seq, recorded_at, kind, app, actor, payload, p_hash, prev, r_hash in rows:
            if seq != expected:
                return expected - start, _Break(
                    expected,
                    "gap",
                    f"record {expected} is missing: the chain goes from {expected - 1} to {seq}",
                )
            if payload is not None and sha256(payload.encode("utf-8")).hexdigest() != p_hash:
                return expected - start, _Break(
                    seq,
                    "payload_altered",
                    f"payload of record {seq} does not match its payload_hash",
                )
            if prev != expected_prev:
                return expected - start, _link_break(engine, seq, prev)
            if compute_record_hash(prev, seq, kind, recorded_at, app, actor, p_hash) != r_hash:
                return expected - start, _Break(
                    seq,
                    "record_altered",
                    f"record {seq} does not match its record_hash: its time, kind, "
                    "application, actor, payload_hash or record_hash was changed",
                )
            expected_prev = r_hash
            expected += 1
    if expected <= end:
        return expected - start, _Break(expected, "gap", f"record {expected} is missing")
    return expected - start, None


def _link_break(engine: Engine, seq: int, prev: str) -> _Break:
    """Say why record ``seq`` does not point at its predecessor."""
    if prev == GENESIS_HASH:
        return _Break(
            seq, "fork", f"record {seq} starts a second chain (its prev_hash is the genesis value)"
        )
    target = _seq_of_hash(engine, prev)
    if target is None or target == seq:
        return _Break(
            seq,
            "record_altered",
            f"prev_hash of record {seq} matches no other record: the link was edited",
        )
    if target > seq:
        return _Break(
            seq,
            "reordered",
            f"record {seq} claims to follow record {target}, which comes after it: "
            "records were moved",
        )
    return _Break(
        seq,
        "fork",
        f"record {seq} extends record {target}, which record {target + 1} already "
        "extends: the chain forks",
    )


def _against_checkpoint(engine: Engine, checkpoint: Checkpoint, head: int) -> _Break | None:
    stored = _hash_at(engine, checkpoint.seq)
    if stored is None:
        if head < checkpoint.seq:
            return _Break(
                head + 1,
                "truncated",
                f"the chain ends at record {head} but the checkpoint made at "
                f"{checkpoint.time} covers records up to {checkpoint.seq}: records "
                f"{head + 1}..{checkpoint.seq} were removed",
            )
        return _Break(checkpoint.seq, "gap", f"record {checkpoint.seq} is missing")
    if stored != checkpoint.record_hash:
        return _Break(
            checkpoint.seq,
            "checkpoint_mismatch",
            f"record {checkpoint.seq} is not the one signed in the checkpoint made at "
            f"{checkpoint.time}: the history up to it was rewritten",
        )
    return None


def _head_seq(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(_T.seq), 0))).scalar_one())


def _hash_at(engine: Engine, seq: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(_T.record_hash).where(_T.seq == seq)).scalar_one_or_none()


def _seq_of_hash(engine: Engine, record_hash: str) -> int | None:
    with engine.connect() as conn:
        return conn.execute(
            select(_T.seq).where(_T.record_hash == record_hash).limit(1)
        ).scalar_one_or_none()
