"""The audit log's queries, records, verification and replay."""

from __future__ import annotations

from marshmallow import fields, validate

from service.web.schemas.common import (
    KIND_SHAPE,
    NATIONAL_ID_SHAPE,
    TOKEN_SHAPE,
    Strict,
    UtcDateTime,
    valid_national_id,
)


class AuditFilterArgs(Strict):
    since = UtcDateTime(metadata={"description": "inclusive"})
    until = UtcDateTime(metadata={"description": "exclusive"})
    kind = fields.List(fields.String(validate=[validate.Length(min=1, max=64), KIND_SHAPE]),
                       validate=validate.Length(max=10))
    application_id = fields.String(validate=[validate.Length(min=1, max=64), TOKEN_SHAPE])
    actor = fields.String(validate=[validate.Length(min=1, max=128), TOKEN_SHAPE])
    national_id = fields.String(validate=[NATIONAL_ID_SHAPE, valid_national_id],
                                metadata={"description": "hashed by the service; never stored"})
    outcome = fields.String(validate=validate.OneOf(["approved", "declined", "deferred"]))
    model_version = fields.String(validate=[validate.Length(min=1, max=64), TOKEN_SHAPE])
    reason_code = fields.String(validate=[validate.Length(min=1, max=16), TOKEN_SHAPE])


class AuditListArgs(AuditFilterArgs):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(validate=[validate.Length(min=1, max=500),
                                     validate.Regexp(r"^[A-Za-z0-9_\-=.]+$",
                                                     error="not a cursor")])


class AuditExportArgs(AuditFilterArgs):
    format = fields.String(load_default="jsonl", validate=validate.OneOf(["jsonl", "csv"]))


class VerifyArgs(Strict):
    start = fields.Integer(validate=validate.Range(min=1), metadata={
        "description": "first record to walk (default 1); past the last record is a 422"})
    end = fields.Integer(validate=validate.Range(min=1), metadata={
        "description": "last record to walk (default: the last); before start is a 422"})
    applications = fields.Boolean(load_default=False, metadata={
        "description": "also check each application's stored answer against the SHA-256 "
                       "its audit records state (answer_sha256)"})
    tables = fields.Boolean(load_default=False, metadata={
        "description": "also check the tables that figures and decisions read "
                       "(applications, loans, loan_performance, ...) against the audit "
                       "records they derive from, naming each row that differs; the tables "
                       "are checked whole, whatever start and end"})


class AuditRecordOut(Strict):
    seq = fields.Integer(required=True)
    recorded_at = fields.String(required=True)
    kind = fields.String(required=True)
    application_id = fields.String(allow_none=True, required=True)
    actor = fields.String(allow_none=True, required=True)
    payload = fields.Dict(allow_none=True, required=True)
    payload_hash = fields.String(required=True)
    prev_hash = fields.String(required=True)
    record_hash = fields.String(required=True)


class AuditPageOut(Strict):
    items = fields.List(fields.Nested(AuditRecordOut), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class AnswersCheckOut(Strict):
    ok = fields.Boolean(required=True)
    checked = fields.Integer(required=True, metadata={
        "description": "answers compared with the hash their latest record states"})
    unhashed = fields.Integer(required=True, metadata={
        "description": "answers decided before answers were hashed: not checked"})
    purged = fields.Integer(required=True, metadata={
        "description": "answers whose records were purged: not checked"})
    failed = fields.Integer(required=True)
    application_id = fields.String(allow_none=True, required=True, metadata={
        "description": "the first application whose answer fails"})
    seq = fields.Integer(allow_none=True, required=True, metadata={
        "description": "the record whose hash it fails"})
    reason = fields.String(allow_none=True, required=True, metadata={
        "description": "altered, unrecorded or record_altered"})
    message = fields.String(required=True)


class RowDifferenceOut(Strict):
    table = fields.String(required=True)
    row = fields.String(required=True, metadata={
        "description": "the row's key: an application id, or application id/month"})
    problem = fields.String(required=True, metadata={
        "description": "what the row holds against what its record states, or that no "
                       "record accounts for the row, or no row for a record"})
    seq = fields.Integer(allow_none=True, required=True, metadata={
        "description": "the record the row was checked against, when there is one"})


class TableCheckOut(Strict):
    table = fields.String(required=True)
    ok = fields.Boolean(required=True)
    checked = fields.Integer(required=True, metadata={
        "description": "rows compared with what their records state"})
    differing = fields.Integer(required=True, metadata={
        "description": "differences found, listed or not"})
    unchecked = fields.Integer(required=True, metadata={
        "description": "rows that could not be checked: their records were purged"})
    note = fields.String(allow_none=True, required=True, metadata={
        "description": "why rows were not checked"})
    message = fields.String(required=True)
    differences = fields.List(fields.Nested(RowDifferenceOut), required=True, metadata={
        "description": "the first 20 differences"})


class VerifyOut(Strict):
    ok = fields.Boolean(required=True)
    checked = fields.Integer(required=True)
    first_bad_seq = fields.Integer(allow_none=True, required=True)
    reason = fields.String(allow_none=True, required=True, metadata={
        "description": "the chain's reason, checkpoint_other_chain (production: a file of "
                       "the service's folder signed by its key names another chain), "
                       "answer_altered or answer_unrecorded, or table_differs; null when ok"})
    message = fields.String(required=True)
    checkpoint_held = fields.Integer(allow_none=True, required=True, metadata={
        "description": "seq of the last checkpoint that still holds, when one fails"})
    checkpoint_failed = fields.Integer(allow_none=True, required=True, metadata={
        "description": "seq of the first checkpoint that fails"})
    checkpoints = fields.Integer(required=True, metadata={
        "description": "signed checkpoints compared: the service's (its folder and ledger), "
                       "each verified with the service's public key"})
    checkpoints_ignored = fields.Integer(required=True, metadata={
        "description": "checkpoint files in the service's folder that belong to another "
                       "chain (another database run from the same folder): left out"})
    warning = fields.String(allow_none=True, required=True, metadata={
        "description": "outside production, said when the chain holds no checkpoint though "
                       "it has more records than one checkpoint's interval, beside files of "
                       "another chain signed by the service's key; else null"})
    applications = fields.Nested(AnswersCheckOut, allow_none=True, required=True, metadata={
        "description": "the answers' check, with applications=true; else null"})
    tables = fields.List(fields.Nested(TableCheckOut), allow_none=True, required=True,
                         metadata={"description": "each table's verdict, with tables=true; "
                                                  "else null"})


class ReplayArgs(Strict):
    strategy = fields.String(validate=validate.Length(min=3, max=200), metadata={
        "description": "replay under this strategy (MODEL/POLICY) instead of the one that "
                       "decided, to show what it would have decided on the recorded facts"})


class ReplayOut(Strict):
    application_id = fields.String(required=True)
    attempt = fields.Integer(required=True, metadata={
        "description": "which attempt's decision was replayed: the application's latest"})
    strategy = fields.String(required=True, metadata={
        "description": "the strategy replayed under (MODEL/POLICY)"})
    recorded_strategy = fields.String(required=True, metadata={
        "description": "the strategy that decided, as the record names it"})
    match = fields.Boolean(required=True)
    recorded = fields.Dict(required=True)
    replayed = fields.Dict(required=True)
    differences = fields.List(fields.Dict(), required=True)
    note = fields.String(allow_none=True, required=True)
