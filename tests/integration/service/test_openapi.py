"""The OpenAPI document is valid, names roles, examples and every error each operation may
answer; /docs serves Swagger UI itself."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from service.domain.permissions import roles_holding
from service.usecases.api_keys import ROLES
from service.web.errors import may_answer
from service.web.schemas import ApplicationIn, ConsentIn, OutcomeIn, ResolutionIn, ReviewRequestIn
from service.web.views.docs import swagger_ui_dir
from tests.integration.service.conftest import openapi_path


def test_openapi_is_a_valid_document_with_the_error_envelope(client):
    spec = client.get("/openapi.json", who=None).get_json()
    validate(spec)
    envelope = spec["components"]["schemas"]["Error"]
    assert envelope["properties"]["error"]["$ref"].endswith("ErrorBody")
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "delete"):
                assert op.get("summary"), f"{method.upper()} {path} has no summary"


def _response(spec: dict, response: dict) -> dict:
    """A response object, its reference followed."""
    if "$ref" in response:
        return spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response


def test_every_error_is_documented_with_the_envelope_and_none_by_default(client):
    spec = client.get("/openapi.json", who=None).get_json()
    for method, path, op in _operations(spec):
        assert "default" not in op["responses"], f"{method.upper()} {path}"
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            documented = _response(spec, response)
            assert documented["description"], (method, path, status)
            if status == "414":  # the HTTP server's own page, before the service reads it
                assert documented["content"] == {"text/html": {"schema": {"type": "string"}}}
                continue
            assert documented["content"] == {"application/json": {"schema": {
                "$ref": "#/components/schemas/Error"}}}, (method, path, status)
    refused = spec["components"]["responses"]
    assert refused["UNAUTHORIZED"]["headers"]["WWW-Authenticate"]["required"] is True
    assert refused["TOO_MANY_REQUESTS"]["headers"]["Retry-After"]["required"] is True


# Statuses an operation answers for reasons of its own, beyond those its route, roles and
# arguments give every operation alike.
OWN_ERRORS = {
    ("post", "/v1/applications"): {409, 422, 503},
    ("post", "/v1/applications/{application_id}/retry"): {409, 422, 503},
    ("post", "/v1/applications/{application_id}/review-requests"): {409},
    ("post", "/v1/reviews/{review_id}/resolution"): {409},
    ("post", "/v1/outcomes"): {404, 409},
    ("get", "/readyz"): {503},
    ("get", "/v1/backtests/{backtest_id}/report"): {409},
    ("delete", "/v1/backtests/{backtest_id}"): {409},
    ("put", "/v1/strategies"): {409},
}


def expected_errors(view, rule, method: str, op: dict) -> set[int]:
    """The error statuses an operation may answer, from its view, its route and its
    arguments."""
    expected = set()
    if getattr(view, "required_roles", ()):
        # No key or a bad one; a role not allowed; over the rate limit; the database or the
        # rate limits' counters unreachable.
        expected |= {401, 403, 429, 503}
    if rule.arguments:
        expected |= {404, 414}  # a path parameter can make the request line too long
    if method in ("post", "put", "patch"):
        expected.add(415)  # any body but JSON
    if "requestBody" in op:
        expected |= {400, 413, 415, 422}
    if any(parameter["in"] == "query" for parameter in op.get("parameters", ())):
        expected |= {414, 422}
    return expected | OWN_ERRORS.get((method, openapi_path(rule.rule)), set())


def test_every_operation_documents_every_error_it_may_answer(client):
    spec = client.get("/openapi.json", who=None).get_json()
    app = client.app
    checked = set()
    for rule in app.url_map.iter_rules():
        path = openapi_path(rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            op = spec["paths"].get(path, {}).get(method.lower())
            if op is None:
                continue
            documented = {int(status) for status in op["responses"] if int(status) >= 400}
            expected = expected_errors(app.view_functions[rule.endpoint], rule,
                                       method.lower(), op)
            assert documented == expected, f"{method} {path}"
            checked.add((method.lower(), path))
    assert checked == set((method, path) for method, path, _ in _operations(spec))
    assert set(OWN_ERRORS) <= checked


def test_an_operations_own_reasons_are_in_its_error_descriptions(client):
    spec = client.get("/openapi.json", who=None).get_json()
    paths = spec["paths"]
    answers = paths["/v1/applications"]["post"]["responses"]
    assert "Idempotency-Key" in answers["409"]["description"]
    assert "`audit_unavailable`" in answers["503"]["description"]
    assert "`outcome_unknown`" in answers["503"]["description"]
    assert "`consent_invalid`" in answers["422"]["description"]
    assert "`not_ready`" in paths["/readyz"]["get"]["responses"]["503"]["description"]
    assert "`not_scored`" in paths["/v1/applications/{application_id}/explanation"]["get"][
        "responses"]["404"]["description"]
    # Those without reasons of their own share one response per status, by name.
    assert paths["/v1/consents"]["post"]["responses"]["401"] == {
        "$ref": "#/components/responses/UNAUTHORIZED"}


def _operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch"):
                yield method, path, op


def test_every_operation_names_the_roles_its_view_enforces(client):
    spec = client.get("/openapi.json", who=None).get_json()
    app = client.app
    enforced = {}
    for rule in app.url_map.iter_rules():
        path = openapi_path(rule.rule)
        view = app.view_functions[rule.endpoint]
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            enforced[(method.lower(), path)] = view
    operations = list(_operations(spec))
    assert len(operations) >= 20
    for method, path, op in operations:
        view = enforced[(method, path)]
        roles = getattr(view, "required_roles", ())
        assert op["x-roles"] == list(roles), f"{method.upper()} {path}"
        # The roles are those the one table gives the operation's capability.
        if roles:
            assert op["x-capability"] == view.capability, f"{method.upper()} {path}"
            assert roles == roles_holding(view.capability), f"{method.upper()} {path}"
        else:
            assert "x-capability" not in op, f"{method.upper()} {path}"
        assert set(roles) <= set(ROLES)
        described = op["description"]
        assert described.startswith("**Roles:** "), described
        for role in ROLES:
            assert (f"`{role}`" in described) == (role in roles), (path, described)
        if not roles:
            assert "no API key" in described and op["security"] == []


def test_the_main_request_bodies_carry_examples_the_service_accepts(client):
    spec = client.get("/openapi.json", who=None).get_json()
    bodies = {(method, path): op["requestBody"]["content"]["application/json"]
              for method, path, op in _operations(spec) if "requestBody" in op}
    schemas = {("post", "/v1/consents"): ConsentIn,
               ("post", "/v1/applications"): ApplicationIn,
               ("post", "/v1/applications/{application_id}/review-requests"): ReviewRequestIn,
               ("post", "/v1/reviews/{review_id}/resolution"): ResolutionIn,
               ("post", "/v1/outcomes"): OutcomeIn}
    for key, schema in schemas.items():
        content = bodies[key]
        examples = ([content["example"]] if "example" in content
                    else [e["value"] for e in content["examples"].values()])
        assert examples, key
        for example in examples:
            schema().load(example)  # raises on any field the service would refuse
    resolutions = bodies[("post", "/v1/reviews/{review_id}/resolution")]["examples"]
    assert {e["value"]["outcome"] for e in resolutions.values()} == {"upheld", "overturned",
                                                                    "amended"}
    outcomes = bodies[("post", "/v1/outcomes")]["examples"]
    assert {e["value"]["drawn"] for e in outcomes.values()} == {True, False}


def test_the_root_leads_to_the_docs(client):
    response = client.get("/", who=None)
    assert response.status_code == 302
    assert response.headers["Location"] == "/docs"


def test_the_docs_page_loads_only_files_of_this_server(client):
    response = client.get("/docs", who=None)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "default-src 'self'" in csp
    assert "connect-src 'self'" in csp and "unsafe" not in csp
    page = response.get_data(as_text=True)
    # Every script is a file (the policy refuses inline code), and every file is ours.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page) == []
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)
    assert not [u for u in urls if re.match(r"(https?:)?//", u)], urls
    scripts = re.findall(r"""<script src=["']([^"']+)["']""", page)
    assert any("swagger-ui-bundle.js" in s for s in scripts), scripts
    for url in urls:
        asset = client.get(url, who=None)
        assert asset.status_code == 200, url
        assert asset.get_data(), url
        asset.close()
    # Without script, the page still lists every operation with its roles.
    assert "/v1/applications/{application_id}/explanation" in page
    assert "risk_officer, auditor" in page


def test_swagger_ui_files_are_served_from_the_installed_package(client):
    dist = swagger_ui_dir()
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        response = client.get(f"/docs/swagger-ui/{name}", who=None)
        assert response.status_code == 200
        assert response.get_data() == (dist / name).read_bytes()
        assert response.headers["Cache-Control"] == "public, max-age=86400"
        response.close()
    # Only the files the page loads; nothing else of the package.
    for name in ("swagger-ui.js", "index.html", "oauth2-redirect.html",
                 "..%2Fflask_swagger_ui.py"):
        response = client.get(f"/docs/swagger-ui/{name}", who=None)
        assert response.status_code == 404, name
        assert set(response.get_json()) == {"error"}


def test_an_error_status_documented_by_hand_is_refused(make_client):
    from service.web.views.blueprint import Blueprint

    app = make_client().app
    api = app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    stray = Blueprint("stray", __name__, url_prefix="/v1/stray")

    @stray.route("", methods=["GET"])
    @stray.response(200, {"type": "string"})
    @stray.alt_response(409, response="CONFLICT")
    def conflicted():
        """Answer a conflict documented beside the one mechanism."""
        return ""

    with pytest.raises(ValueError, match=r"documents \['409'\] by hand"):
        api.register_blueprint(stray)


def test_only_statuses_with_a_meaning_can_be_declared():
    with pytest.raises(ValueError, match="status must be one of"):
        may_answer(418)
    with pytest.raises(ValueError, match="status must be one of"):
        may_answer(why={500: "never: an internal error is a defect, not an answer"})
