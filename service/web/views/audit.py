"""The auditor's API: query, read, verify, export and replay; every query is itself recorded."""

from __future__ import annotations

from marshmallow import RAISE

from audit import AuditQuery, InvalidCursor, InvalidRange
from service.usecases.replay import InvalidStrategy, ReplayError
from service.usecases.verification import (
    Verification,
    service_checkpoints_of,
    verify_trail,
)
from service.web.auth import current, requires
from service.web.errors import ApiError, may_answer
from service.web.exports import export_response
from service.web.schemas import (
    AuditExportArgs,
    AuditListArgs,
    AuditPageOut,
    AuditRecordOut,
    ReplayArgs,
    ReplayOut,
    VerifyArgs,
    VerifyOut,
)
from service.web.views.blueprint import Blueprint
from service.web.wiring import wiring

blp = Blueprint("audit", __name__, url_prefix="/v1/audit",
                description="The tamper-evident audit log, for auditors")


def _query(args: dict) -> AuditQuery:
    query = AuditQuery(since=args.get("since"), until=args.get("until"),
                       kinds=tuple(args.get("kind") or ()),
                       application_id=args.get("application_id"), actor=args.get("actor"),
                       outcome=args.get("outcome"), model_version=args.get("model_version"),
                       reason_code=args.get("reason_code"))
    if args.get("national_id"):
        query = query.with_national_id(args["national_id"], wiring().pseudonymiser)
    return query


def _record_query(endpoint: str, details: dict) -> None:
    """Write ``audit.queried``: who looked at the log, how, and what came back."""
    principal = current()
    wiring().store.append("audit.queried", {"endpoint": endpoint, "key_id": principal.key_id,
                                            **details}, actor=principal.actor)


@blp.route("/records", methods=["GET"])
@requires("audit.read")
@blp.arguments(AuditListArgs(), location="query", unknown=RAISE)
@blp.response(200, AuditPageOut)
def list_records(args: dict):
    """Search the audit log with filters and keyset pagination."""
    query = _query(args)
    try:
        page = wiring().store.query(query, limit=args["limit"], cursor=args.get("cursor"))
    except InvalidCursor:
        raise ApiError(422, "cursor does not belong to this search",
                       fields={"cursor": ["not a cursor of this search"]}) from None
    _record_query("records", {"filters": query.to_dict(), "returned": len(page.items)})
    return {"items": [r.to_dict() for r in page.items], "next_cursor": page.next_cursor}


@blp.route("/records/<int:seq>", methods=["GET"])
@requires("audit.read")
@blp.response(200, AuditRecordOut)
def read_record(seq: int):
    """Read one audit record with its canonical payload and hashes."""
    record = wiring().store.get(seq)
    _record_query("record", {"seq": seq, "found": record is not None})
    if record is None:
        raise ApiError(404, "no such audit record")
    return record.to_dict()


def run_verification(start: int | None, end: int | None, applications: bool,
                     tables: bool = False) -> Verification:
    """Verify with the service's checkpoints, under its own public key; a range that holds no
    record is a 422 naming the bound."""
    wired = wiring()
    found = service_checkpoints_of(wired.settings, wired.store, wired.checkpointer.public_key)
    try:
        return verify_trail(wired.store, checkpoints=found,
                            public_key=wired.checkpointer.public_key, start=start, end=end,
                            check_applications=applications, tables=tables)
    except InvalidRange as exc:
        raise ApiError(422, str(exc), fields={exc.parameter: [str(exc)]}) from None


@blp.route("/verify", methods=["GET"])
@requires("audit.verify")
@blp.arguments(VerifyArgs(), location="query", unknown=RAISE)
@blp.response(200, VerifyOut)
def verify(args: dict):
    """Verify the hash chain against the service's checkpoints and key (and answers, tables)."""
    result = run_verification(args.get("start"), args.get("end"), args["applications"],
                              args["tables"])
    _record_query("verify", {"start": args.get("start"), "end": args.get("end"),
                             "applications": args["applications"], **result.tables_checked(),
                             "ok": result.ok, "first_bad_seq": result.first_bad_seq})
    return result.to_dict()



@blp.route("/export", methods=["GET"])
@requires("audit.export")
@blp.arguments(AuditExportArgs(), location="query", unknown=RAISE)
@blp.response(200, {"type": "string"}, content_type="application/x-ndjson")
@blp.alt_response(200, schema={"type": "string"}, content_type="text/csv", success=True,
                  description="CSV, with format=csv")
def export(args: dict):
    """Stream the matching records, one per line, as JSON lines or CSV."""
    query = _query(args)
    fmt = args["format"]
    _record_query("export", {"filters": query.to_dict(), "format": fmt})
    return export_response(wiring().store, query, fmt)


@blp.route("/replay/<application_id>", methods=["POST"])
@requires("audit.replay")
@blp.arguments(ReplayArgs(), location="query", unknown=RAISE)
@blp.response(200, ReplayOut)
@may_answer(why={404: "Here: no decision is recorded for the application, its record was "
                      "purged, or the model or policy version named is gone.",
                 422: "Here: `strategy` is not MODEL/POLICY (a model version and a policy "
                      "version, never a path), or names a fallback model, which cannot decide "
                      "alone."})
def replay(args: dict, application_id: str):
    """Re-run a recorded decision through its recorded model and policy versions, or through
    another strategy (``?strategy=MODEL/POLICY``) to show what it would have decided."""
    strategy = args.get("strategy")
    asked = {"application_id": application_id, "strategy": strategy}
    try:
        result = wiring().replayer.replay(application_id, strategy)
    except InvalidStrategy as exc:
        raise ApiError(422, str(exc), fields={"strategy": [str(exc)]}) from None
    except ReplayError as exc:
        _record_query("replay", {**asked, "error": str(exc)})
        raise ApiError(404, str(exc)) from None
    _record_query("replay", {**asked, "match": result["match"],
                             "differences": [d["field"] for d in result["differences"]]})
    return result
