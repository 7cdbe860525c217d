"""The application page of a decision made while a source did not answer."""

from __future__ import annotations

import html

from scoring.online.model import DEFAULT_MODEL_VERSION, fallback_version


def test_the_page_names_the_unknown_source_its_features_and_the_model(make_console, people):
    console = make_console(stub_faults="social_security=error:1.0")
    answer = next(a for a in (console.apply(nid) for nid in people[:6])
                  if a["decision"] is not None)
    explanation = console.call("GET", f"/v1/applications/{answer['application_id']}/explanation",
                               role="risk_officer").get_json()
    page = html.unescape(console.user("risk_officer").text(
        f"/console/applications/{answer['application_id']}"))
    assert "Unknown (did not answer):" in page
    line = page.split("Unknown (did not answer):", 1)[1].split("</p>", 1)[0]
    assert "Social security" in line and "Income tax" not in line
    version = fallback_version(DEFAULT_MODEL_VERSION, "social_security")
    assert f">{version}</a>, trained without social_security" in page
    assert explanation["unknown_features"] and explanation["partial_features"]
    for name in explanation["unknown_features"]:
        assert f'{name} <span class="known-unknown">unknown</span>' in page
    for name in explanation["partial_features"]:
        assert f'{name} <span class="known-partial">partial</span>' in page


def test_a_page_with_every_source_answering_names_nothing_unknown(decided):
    console, answers = decided
    page = console.user("risk_officer").text(
        f"/console/applications/{answers[0]['application_id']}")
    assert "did not answer" not in page and "known-unknown" not in page
    assert f">{DEFAULT_MODEL_VERSION}</a></dd>" in page
