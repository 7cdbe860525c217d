"""Walking the chain: recompute every hash in a stream and name the first broken link.

Besides the links, the walk checks that every NULL payload is accounted for by a purge, and
compares the chain with signed checkpoints: a failing checkpoint is reported from the first
record that no checkpoint still vouches for, with the last checkpoint that holds and the first
that fails named, since nothing narrows the damage further.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select

from audit.errors import InvalidRange
from audit.queries import batches
from audit.records import GENESIS_HASH, AuditQuery, VerifyResult, compute_record_hash
from audit.retention import PurgeCoverage
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
    held: int | None = None
    failed: int | None = None


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

    head = _head_seq(engine)
    start, end = _bounds(start_seq, end_seq, head)
    for checkpoint in checkpoints:
        if not verify_checkpoint_signature(checkpoint, public_key):
            return VerifyResult(
                ok=False,
                checked=0,
                reason="checkpoint_invalid",
                message=f"checkpoint of record {checkpoint.seq} made at {checkpoint.time} "
                "has a signature that does not verify with the expected public key",
            )
    checked, found = _walk(engine, batch_size, start, end, PurgeCoverage.load(engine))
    problem = _against_checkpoints(engine, checkpoints, head)
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
        checkpoint_held=found.held,
        checkpoint_failed=found.failed,
    )


def _bounds(start_seq: int | None, end_seq: int | None, head: int) -> tuple[int, int]:
    """Return the range to walk; a range given that holds no record is refused."""
    if start_seq is not None and end_seq is not None and end_seq < start_seq:
        raise InvalidRange(
            f"end must not be before start; got start {start_seq}, end {end_seq}", "end"
        )
    start = start_seq or 1
    if (start_seq is not None or end_seq is not None) and start > head:
        parameter = "start" if start_seq is not None else "end"
        if head == 0:
            raise InvalidRange("the chain holds no records, so no range of it can be "
                               "verified", parameter)
        raise InvalidRange(
            f"start {start} is beyond the last record, {head}: there are no records to verify",
            parameter,
        )
    return start, head if end_seq is None else min(end_seq, head)


def _intact(checked: int, start: int, end: int) -> str:
    if checked == 0:
        return "no records to verify"
    return f"{checked} records intact ({start}..{end})"


def _walk(
    engine: Engine, batch_size: int, start: int, end: int, purges: PurgeCoverage
) -> tuple[int, _Break | None]:
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
            if payload is None:
                if not purges.covers(seq, kind, recorded_at):
                    return expected - start, _Break(
                        seq,
                        "payload_erased",
                        f"the payload of record {seq} ({kind}, recorded {recorded_at}) was "
                        "removed, but no purge record covers it: payloads are removed only by "
                        "a purge past the retention period, recorded as records.purged naming "
                        "the record",
                    )
            elif sha256(payload.encode("utf-8")).hexdigest() != p_hash:
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


def _against_checkpoints(
    engine: Engine, checkpoints: Sequence[Checkpoint], head: int
) -> _Break | None:
    """Compare the checkpoints in seq order; describe the first that fails, if one does."""
    held: Checkpoint | None = None
    for checkpoint in sorted(checkpoints, key=lambda cp: cp.seq):
        stored = _hash_at(engine, checkpoint.seq)
        if stored == checkpoint.record_hash:
            held = checkpoint
            continue
        if stored is None and head >= checkpoint.seq:
            return _Break(checkpoint.seq, "gap", f"record {checkpoint.seq} is missing",
                          held.seq if held else None, checkpoint.seq)
        return _checkpoint_break(checkpoint, held, head, missing=stored is None)
    return None


def _checkpoint_break(
    checkpoint: Checkpoint, held: Checkpoint | None, head: int, *, missing: bool
) -> _Break:
    """Say what a failing checkpoint proves, and how far the last one that holds narrows it."""
    seq, held_seq = checkpoint.seq, held.seq if held else None
    doubt = (held_seq or 0) + 1
    signed = f"the checkpoint made at {checkpoint.time}"
    if held is None:
        vouched = "No earlier checkpoint still holds, so no record can be vouched for."
    else:
        vouched = (
            f"The checkpoint of record {held.seq} made at {held.time} is the last that still "
            f"holds: records 1..{held.seq} are as signed; from record {doubt} on, none can be "
            "vouched for."
        )
    if not missing:
        return _Break(
            doubt,
            "checkpoint_mismatch",
            f"the chain was rewritten: record {seq} is not the one signed in {signed} (the "
            f"first checkpoint that fails), so records {doubt}..{seq} were rewritten in part "
            f"or in whole. {vouched}",
            held_seq,
            seq,
        )
    if held is not None and held.seq == head:
        return _Break(
            head + 1,
            "truncated",
            f"records {head + 1}..{seq} were removed from the end: the chain ends at record "
            f"{head}, which the checkpoint made at {held.time} still vouches for, but "
            f"{signed} shows that it had reached record {seq}",
            held_seq,
            seq,
        )
    lost = seq - head
    return _Break(
        doubt,
        "records_missing",
        f"the chain ends at record {head}, but {signed} shows that it had reached record "
        f"{seq}: at least {lost} record{'' if lost == 1 else 's'} were removed, from the end "
        f"or from before it with the later records renumbered and re-chained. {vouched}",
        held_seq,
        seq,
    )


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
