"""The auditor's pages: search, one record with its hashes, verify, and export downloads.

Every look at the log from here is itself written to the log as ``audit.queried``, in the
shape the JSON API uses, with endpoint names starting ``console.``.
"""

from __future__ import annotations

import json
from typing import Any

from flask import abort, redirect, render_template, request, url_for

from audit import InvalidCursor, InvalidRange, compute_record_hash
from audit.canonical import canonical_json, canonical_text, format_time, sha256_hex
from service.usecases.verification import (
    answers_summary,
    service_checkpoints_of,
    verify_trail,
)
from service.web.console.access import requires_capability, signed_in_user
from service.web.console.audit_filters import (
    KINDS,
    OUTCOMES,
    PAGE_SIZE,
    AuditFilters,
    parse_filters,
)
from service.web.console.blueprint import bp
from service.web.exports import export_response
from service.web.wiring import wiring


def record_query(endpoint: str, details: dict[str, Any]) -> None:
    """Write ``audit.queried``: who looked at the log from the console, how, what came back."""
    user = signed_in_user()
    wiring().store.append("audit.queried", {"endpoint": f"console.{endpoint}",
                                            "key_id": user.key_id, **details},
                          actor=user.actor)


def _render_search(filters: AuditFilters, errors: dict[str, str], status: int = 200,
                   page: Any = None):
    without_subject = {k: v for k, v in filters.query_args().items() if k != "subject"}
    return render_template("console/audit.html", filters=filters, errors=errors,
                           page=page, kinds=KINDS, outcomes=OUTCOMES,
                           without_subject=without_subject,
                           paged=bool(request.args.get("cursor"))), status


@bp.route("/audit", methods=["GET", "POST"])
@requires_capability("audit.read")
def audit_search():
    """Search the audit log, newest first; the form posts so a national ID stays out of URLs."""
    if request.method == "POST":
        filters, errors = parse_filters(request.form, wiring().pseudonymiser)
        if errors:
            return _render_search(filters, errors, 400)
        # Filter names only: none of them is one of url_for's own underscored options.
        args: dict[str, Any] = filters.query_args()
        return redirect(url_for("console.audit_search", **args), 303)
    filters, errors = parse_filters(request.args)
    if request.args.get("national_id"):
        errors["national_id"] = ("cannot be given in a link; type it into the form, which "
                                 "keeps it out of addresses and logs")
    if errors:
        return _render_search(filters, errors, 400)
    query = filters.query()
    try:
        page = wiring().store.query(query, limit=PAGE_SIZE,
                                    cursor=request.args.get("cursor") or None,
                                    newest_first=True)
    except InvalidCursor:
        abort(400, description="That page link belongs to another search; start again from "
                               "the first page.")
    record_query("records", {"filters": query.to_dict(), "returned": len(page.items)})
    return _render_search(filters, errors, page=page)


@bp.route("/audit/records/<int:seq>")
@requires_capability("audit.read")
def audit_record(seq: int):
    """One record: its canonical payload, and its hashes recomputed beside the stored ones."""
    store = wiring().store
    record = store.get(seq)
    record_query("record", {"seq": seq, "found": record is not None})
    if record is None:
        abort(404, description=f"There is no audit record {seq}. Search the log to find one.")
    checks: dict[str, bool | None] = {"payload": None}
    canonical = pretty = None
    if record.payload is not None:
        canonical = canonical_text(record.payload)
        pretty = json.dumps(record.payload, ensure_ascii=False, sort_keys=True, indent=2)
        checks["payload"] = sha256_hex(canonical_json(record.payload)) == record.payload_hash
    checks["record"] = compute_record_hash(
        record.prev_hash, record.seq, record.kind, format_time(record.recorded_at),
        record.application_id, record.actor, record.payload_hash) == record.record_hash
    head = store.head()
    return render_template("console/record.html", record=record, canonical=canonical,
                           pretty=pretty, checks=checks,
                           recorded_at=format_time(record.recorded_at),
                           last_seq=head.seq if head else seq)


@bp.route("/audit/verify", methods=["GET", "POST"])
@requires_capability("audit.verify")
def audit_verify():
    """Verify the hash chain (all, or a range) against the service's checkpoints and key,
    and the applications' answers and the tables against their records when asked."""
    if request.method == "GET":
        return render_template("console/verify.html", result=None, errors={}, form={})
    errors: dict[str, str] = {}
    bounds: dict[str, int | None] = {}
    for name in ("start", "end"):
        raw = request.form.get(name, "").strip()
        bounds[name] = None
        if raw:
            if raw.isdigit() and int(raw) >= 1:
                bounds[name] = int(raw)
            else:
                errors[name] = "must be a record number of 1 or more"
    if bounds["start"] and bounds["end"] and bounds["start"] > bounds["end"]:
        errors["end"] = "must not be before the first record"
    if not errors:
        wired = wiring()
        answers = bool(request.form.get("applications"))
        tables = bool(request.form.get("tables"))
        found = service_checkpoints_of(wired.settings, wired.store,
                                       wired.checkpointer.public_key)
        try:
            result = verify_trail(
                wired.store, checkpoints=found, public_key=wired.checkpointer.public_key,
                start=bounds["start"], end=bounds["end"], check_applications=answers,
                tables=tables)
        except InvalidRange as exc:
            errors[exc.parameter] = str(exc).removeprefix(f"{exc.parameter} ")
    if errors:
        return render_template("console/verify.html", result=None, errors=errors,
                               form=request.form), 400
    record_query("verify", {"start": bounds["start"], "end": bounds["end"],
                            "applications": answers, **result.tables_checked(),
                            "ok": result.ok, "first_bad_seq": result.first_bad_seq})
    return render_template("console/verify.html", result=result, errors={}, form=request.form,
                           checkpoints=result.checkpoints,
                           answers=(answers_summary(result.applications)
                                    if result.applications is not None else None))


@bp.route("/audit/export.<fmt>")
@requires_capability("audit.export")
def audit_export(fmt: str):
    """Download the records matching the search, one per line, as JSON lines or CSV."""
    if fmt not in ("jsonl", "csv"):
        abort(404, description="Exports are JSON lines (.jsonl) or CSV (.csv).")
    filters, errors = parse_filters(request.args)
    if errors:
        abort(400, description="The export's filters are not valid: "
                               + "; ".join(f"{k} {v}" for k, v in errors.items()) + ".")
    query = filters.query()
    record_query("export", {"filters": query.to_dict(), "format": fmt})
    return export_response(wiring().store, query, fmt)
