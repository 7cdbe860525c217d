"""The API reference at /docs: Swagger UI on /openapi.json, every file served from here.

Swagger UI's files come from the flask-swagger-ui package; its own page starts Swagger UI with
an inline script, so /docs is our page, whose scripts are all files from this server, under a
content security policy that allows nothing else. ``GET /`` leads here.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    redirect,
    render_template,
    send_from_directory,
    url_for,
)

SERVICE_DIR = Path(__file__).resolve().parents[1]

# The OpenAPI document's info.description (Markdown), shown at the top of /docs.
API_DESCRIPTION = """\
Instant-credit decisioning: consents, applications and their decisions, explanations,
notices, human review, loan outcomes and realised default, model cards and the audit log.

Every call but `/healthz` and `/readyz` needs an API key, sent as
`Authorization: Bearer <key>`: press **Authorize** and paste one (in development,
`make serve` writes one per role to `var/dev-keys.txt`), then **Try it out**. Each operation
names the roles that may call it (also as `x-roles`, and as `x-capability` the row of the
one permission table that grants them): `channel` (consents, applications, notices and
review requests, its own only), `risk_officer`, `auditor`, `admin` and `servicing` (the
bank's loan-servicing system: it posts loan outcomes, and reads nothing).

Errors share one envelope, `{"error": {"code", "message", "fields"}}`; a 422 names each bad
field. Each operation lists every error status it may answer, and why. Risk officers,
auditors and administrators also have the [console](/console/), which shows each role what
the API lets it read, and nothing more."""

# The files of Swagger UI's distribution that the page loads; nothing else of it is served.
SWAGGER_UI_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})

SECURITY_HEADERS = {
    # Swagger UI sets element styles from script (allowed: they are not inline markup) and
    # draws its icons as data: images; it talks only to this server.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
ASSET_MAX_AGE_S = 86_400
METHODS = ("get", "put", "post", "delete", "patch")


def swagger_ui_dir() -> Path:
    """The folder of Swagger UI's distribution inside the installed flask-swagger-ui."""
    import flask_swagger_ui

    return Path(flask_swagger_ui.__file__).resolve().parent / "dist"


def operations(spec: dict) -> list[dict]:
    """Every operation of ``spec``: method, path, summary and the roles that may call it."""
    return [{"method": method.upper(), "path": path, "summary": op.get("summary", ""),
             "roles": op.get("x-roles")}
            for path, item in spec.get("paths", {}).items()
            for method, op in item.items() if method in METHODS]


def install_docs(app: Flask) -> None:
    """Serve /docs (Swagger UI, and a plain list of operations without script) and ``GET /``."""
    dist = swagger_ui_dir()
    ui_version = version("flask-swagger-ui")
    bp = Blueprint("docs", __name__, url_prefix="/docs",
                   static_folder=str(SERVICE_DIR / "static" / "docs"), static_url_path="/static")

    @bp.get("")
    def page():
        spec = app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
        return render_template("docs/index.html", info=spec["info"],
                               operations=operations(spec), ui_version=ui_version)

    @bp.get("/swagger-ui/<name>")
    def swagger_ui(name: str) -> Response:
        if name not in SWAGGER_UI_FILES:
            abort(404)
        response = send_from_directory(dist, name, max_age=ASSET_MAX_AGE_S)
        response.cache_control.public = True
        return response

    @bp.after_request
    def _headers(response: Response) -> Response:
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        return response

    app.register_blueprint(bp)

    @app.get("/")
    def index():
        return redirect(url_for("docs.page"))

