"""Domain errors inside, HTTP at the edge: one table maps every domain error to its status."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from flask import Flask

import service
from service.domain import errors as domain_errors
from service.domain.errors import DomainError
from service.web.errors import DOMAIN_STATUSES, MEANINGS, register_error_handlers, status_for

SERVICE = Path(service.__file__).parent
# The modules that decide, and the errors they raise: none of them speaks HTTP.
DOMAIN_MODULES = ("usecases/flow", "usecases/consents", "persistence/idempotency",
                  "usecases/reviews", "usecases/retries", "usecases/applications",
                  "usecases/outcomes", "domain/errors")
HTTP_MODULES = ("service.web.errors", "flask", "flask_smorest", "werkzeug")

# What clients see, by error: the status and the code (the API description names each code).
CONTRACT = {
    "NotFound": (404, "not_found"),
    "RecordPurged": (404, "purged"),
    "NotScored": (404, "not_scored"),
    "InvalidInput": (422, "invalid"),
    "ConsentInvalid": (422, "consent_invalid"),
    "ConsentInsufficient": (422, "consent_insufficient"),
    "ApplicantMismatch": (422, "applicant_mismatch"),
    "IdempotencyConflict": (409, "conflict"),
    "InProgress": (409, "in_progress"),
    "ReviewConflict": (409, "conflict"),
    "NotReviewable": (409, "deferred"),
    "NotRetryable": (409, "not_retryable"),
    "OutcomeConflict": (409, "conflict"),
    "DecisionWithheld": (503, "audit_unavailable"),
    "DecisionOutcomeUnknown": (503, "outcome_unknown"),
}


def subclasses(cls: type) -> list[type]:
    """Every subclass of ``cls``, at any depth, but those a test defines for itself."""
    found = []
    for sub in cls.__subclasses__():
        if not sub.__module__.startswith("tests."):
            found.append(sub)
        found.extend(subclasses(sub))
    return found


def test_every_domain_error_has_a_status_in_the_one_table():
    unmapped = [cls.__name__ for cls in subclasses(DomainError) if cls not in DOMAIN_STATUSES]
    assert not unmapped, f"add these to service.web.errors.DOMAIN_STATUSES: {unmapped}"
    assert DomainError not in DOMAIN_STATUSES  # the base says nothing of what went wrong


def test_every_status_in_the_table_is_one_the_api_description_explains():
    assert set(DOMAIN_STATUSES.values()) <= set(MEANINGS)


def test_statuses_and_codes_are_what_clients_saw_before():
    seen = {cls.__name__: (DOMAIN_STATUSES[cls], cls.code) for cls in subclasses(DomainError)}
    assert seen == CONTRACT


def answer(error: Exception):
    """Raise ``error`` in a view of a bare app with the envelope's handlers; return the answer."""
    app = Flask(__name__)
    register_error_handlers(app)

    @app.route("/")
    def fail():
        raise error

    return app.test_client().get("/")


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_the_edge_answers_each_domain_error_with_the_envelope(name):
    cls = getattr(domain_errors, name)
    response = answer(cls("what went wrong", fields={"field": ["is wrong"]}))
    status, code = CONTRACT[name]
    assert response.status_code == status
    assert response.get_json() == {"error": {"code": code, "message": "what went wrong",
                                             "fields": {"field": ["is wrong"]}}}
    assert "Retry-After" not in response.headers


def test_a_domain_error_without_fields_answers_empty_fields():
    response = answer(domain_errors.NotFound("no such review"))
    assert response.get_json()["error"] == {"code": "not_found", "message": "no such review",
                                            "fields": {}}


def test_an_unmapped_domain_error_is_an_internal_error_and_tells_nothing():
    class Unmapped(DomainError):
        code = "secret_code"

    assert status_for(Unmapped("internal detail")) is None
    response = answer(Unmapped("internal detail"))
    assert response.status_code == 500
    body = json.dumps(response.get_json())
    assert "internal detail" not in body and "secret_code" not in body


def test_fields_are_copied_so_the_raiser_keeps_its_own():
    fields = {"consent_id": ["no such consent"]}
    error = domain_errors.ConsentInvalid("x", fields=fields)
    error.fields["consent_id"].append("changed")
    assert fields == {"consent_id": ["no such consent"]}


@pytest.mark.parametrize("module", DOMAIN_MODULES)
def test_the_domain_modules_do_not_speak_http(module):
    tree = ast.parse((SERVICE / f"{module}.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    spoken = {name for name in imported
              if any(name == http or name.startswith(f"{http}.") for http in HTTP_MODULES)}
    assert not spoken, f"service/{module}.py imports {sorted(spoken)}"
