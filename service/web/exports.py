"""Downloads of the audit log, as the API and the console both serve them."""

from __future__ import annotations

from flask import Response, stream_with_context

from audit import AuditQuery, AuditStore


def export_response(store: AuditStore, query: AuditQuery, fmt: str) -> Response:
    """Stream the records of ``store`` matching ``query`` as a download, one per line
    (constant memory): JSON lines (``jsonl``) or CSV (``csv``)."""
    lines = store.export(fmt, query)
    mimetype = "application/x-ndjson" if fmt == "jsonl" else "text/csv"
    response = Response(stream_with_context(line if line.endswith("\n") else line + "\n"
                                            for line in lines), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="audit.{fmt}"'
    return response
