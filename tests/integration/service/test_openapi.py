"""The OpenAPI document is valid, and /docs renders it with nothing from the internet."""

from __future__ import annotations

import re

from openapi_spec_validator import validate


def test_openapi_is_a_valid_document_with_the_error_envelope(client):
    spec = client.get("/openapi.json", who=None).get_json()
    validate(spec)
    envelope = spec["components"]["schemas"]["Error"]
    assert envelope["properties"]["error"]["$ref"].endswith("ErrorBody")
    assert spec["components"]["responses"]["DEFAULT_ERROR"]["content"]["application/json"][
        "schema"]["$ref"].endswith("/Error")
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "delete"):
                assert op.get("summary"), f"{method.upper()} {path} has no summary"


def test_docs_render_offline(client):
    page = client.get("/docs", who=None).get_data(as_text=True)
    assert "/v1/applications" in page and "/v1/audit/records" in page
    assert not re.search(r"""(src|href)=["']https?://""", page)
