"""The README's walk-through applicant gets, from the stub world, the decision the README shows."""

from __future__ import annotations

import json

from service.web.views import examples
from tests.readme_tour import README, read_tour


def test_the_readme_applicant_is_decided_as_the_readme_says(client):
    tour = read_tour()
    consent = client.consent(tour.national_id)
    body = client.application(tour.national_id, consent["consent_id"], amount=tour.amount,
                              term_months=tour.term_months, purpose=tour.purpose)
    response = client.post("/v1/applications", body)
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    shown = {"status": answer["status"], **answer["decision"]}
    for field, text in tour.promised.items():
        assert json.dumps(shown[field]) == text, (field, shown[field], text)
    assert shown["status"] == "approved"
    prose = " ".join(README.read_text(encoding="utf-8").split())
    assert f"credit line of ¥{shown['credit_limit']:,.0f} at {shown['annual_rate']:.1%}" in prose
    assert f"grade {shown['grade']} (score {shown['score']})" in prose


def test_the_docs_examples_apply_for_the_readme_applicant():
    tour = read_tour()
    assert examples.CONSENT["national_id"] == tour.national_id
    assert examples.APPLICATION["applicant"]["national_id"] == tour.national_id
    assert examples.APPLICATION["request"] == {"amount": tour.amount,
                                               "term_months": tour.term_months,
                                               "purpose": tour.purpose}
