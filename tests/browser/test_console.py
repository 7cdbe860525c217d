"""The console in a real browser: each role signs in and does its job at a laptop's screen."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.slow


def test_the_sign_in_page_says_where_the_development_keys_are(visit, site):
    visitor = visit()
    visitor.goto("/console/applications")
    page = visitor.page
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next=/console/applications$"))
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    expect(page.locator(".hint code").first).to_have_text(
        str(site.server.var_dir / "dev-keys.txt"))
    visitor.screenshot("sign-in")
    page.get_by_label("API key").fill("fl_0123456789ab_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")


def test_a_risk_officer_reads_a_declined_application_and_overturns_it(visit, site):
    visitor = visit()
    page = visitor.page
    declined = site.declined
    aid = declined["application_id"]
    visitor.sign_in("risk_officer")
    expect(page.get_by_role("heading", name="Welcome, dev-risk-officer")).to_be_visible()
    visitor.screenshot("home-risk-officer")

    page.get_by_role("link", name="Applications", exact=True).click()
    page.get_by_label("Outcome").select_option("declined")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"outcome=declined"))
    assert visitor.fits_the_screen()
    visitor.screenshot("applications-declined")
    page.locator(f'a[href="/console/applications/{aid}"]').click()

    expect(page.locator("#status")).to_contain_text("declined")
    chart = page.locator("figure.chart svg")
    expect(chart).to_be_visible()
    assert chart.locator("rect").count() > 10
    reasons = page.locator("table.reasons").first
    for reason in declined["decision"]["reasons"]:
        expect(reasons).to_contain_text(reason["text_zh"])
        expect(reasons).to_contain_text(reason["text_en"])
    expect(page.locator("#h-sources + table")).to_contain_text("征信 Credit report")
    expect(page.locator("#h-timeline + table")).to_contain_text("sources gathered")
    assert visitor.fits_the_screen()
    visitor.screenshot("application-declined")
    visitor.screenshot("application-declined-full", full_page=True)

    page.get_by_role("link", name="Reviews", exact=True).click()
    review = page.locator(f"article#{site.review['review_id']}")
    expect(review).to_contain_text("我的收入比记录的高")
    visitor.screenshot("reviews-open")
    review.get_by_label("Overturn").check()
    review.get_by_label("Note for the file").fill("收入已核实 Income verified with the employer")
    review.get_by_role("button", name="Resolve review").click()

    expect(page).to_have_url(visitor.url(f"/console/applications/{aid}"))
    expect(page.get_by_role("status").first).to_contain_text("the decline was overturned")
    expect(page.locator("#status")).to_contain_text("approved")
    expect(page.locator("#status")).to_contain_text("decided by a person")
    expect(page.locator("#h-notice + p")).to_contain_text("您的申请已获批准")
    visitor.screenshot("application-overturned")

    status = site.api("GET", f"/v1/applications/{aid}", "channel").json()
    assert status["status"] == "approved" and status["decided_by"] == "person"
    trail = site.api("GET", f"/v1/audit/records?application_id={aid}", "auditor").json()
    kinds = [r["kind"] for r in trail["items"]]
    assert kinds[-2:] == ["review.requested", "review.resolved"]
    assert trail["items"][-1]["actor"].startswith("risk_officer:")
    page.get_by_role("link", name="Reviews", exact=True).click()
    expect(page.locator(".empty")).to_contain_text("No review is waiting")


def test_a_risk_officer_reads_options_and_a_partial_approval_and_changes_a_line(visit, site):
    visitor = visit()
    page = visitor.page
    visitor.sign_in("risk_officer")

    lifted = site.lifted
    visitor.goto(f"/console/applications/{lifted['application_id']}")
    options = page.locator("section#recourse")
    expect(options.get_by_role("heading", name=re.compile("What would lead to approval"))
           ).to_be_visible()
    first = lifted["decision"]["recourse"]["suggestions"][0]
    expect(options.locator("h3").first).to_have_text(f"Option 1: {first['text_en']}")
    expect(options).to_contain_text(first["text_zh"])
    expect(options.locator(".suggestion").first).to_contain_text(
        "Checked by deciding the changed application again: approved")
    expect(page.locator("#h-notice ~ p.advice").first).to_contain_text(
        lifted["decision"]["recourse"]["note_en"])
    assert visitor.fits_the_screen()
    visitor.screenshot("application-options", full_page=True)

    partial = site.partial
    aid = partial["application_id"]
    visitor.goto(f"/console/applications/{aid}")
    expect(page.locator("#partial")).to_contain_text("Asked for ¥30,000")
    expect(page.locator("#partial")).to_contain_text(partial["decision"]["partial"]["text_en"])
    expect(page.locator("#h-notice + p")).to_contain_text("部分批准")
    visitor.screenshot("application-partial")

    response = site.api("POST", f"/v1/applications/{aid}/review-requests", "channel",
                        {"reason": "我需要三万元，请复核额度"})
    assert response.status_code == 201, response.text
    review_id = response.json()["review_id"]
    page.get_by_role("link", name="Reviews", exact=True).click()
    review = page.locator(f"article#{review_id}")
    review.get_by_label("Amend").check()
    review.get_by_label("Credit line (¥)").fill("30000")
    review.get_by_label("Annual rate").select_option("0.18")
    review.get_by_label("Note for the file").fill("收入核实后可给足额度 Income verified in branch")
    visitor.screenshot("review-amend")
    review.get_by_role("button", name="Resolve review").click()

    expect(page).to_have_url(visitor.url(f"/console/applications/{aid}"))
    expect(page.get_by_role("status").first).to_contain_text(
        "the terms changed. The application is now approved by a person, with a credit line "
        "of ¥30,000 at 18.00% a year")
    expect(page.locator("#status")).to_contain_text("decided by a person")
    expect(page.locator("#h-notice + p")).to_contain_text("¥30,000")
    visitor.screenshot("application-amended")
    status = site.api("GET", f"/v1/applications/{aid}", "channel").json()
    assert (status["decision"]["credit_limit"], status["decision"]["annual_rate"]) == (30000,
                                                                                     0.18)
    assert [r["code"] for r in status["decision"]["reasons"]] == ["H02"]
    trail = site.api("GET", f"/v1/audit/records?application_id={aid}", "auditor").json()
    resolved = trail["items"][-1]
    assert resolved["kind"] == "review.resolved"
    assert resolved["payload"]["resolution"] == "amended"
    assert resolved["payload"]["decision"]["credit_limit"] == 30000


def test_the_model_page_shows_the_card_and_the_calibration_chart(visit):
    visitor = visit()
    page = visitor.page
    visitor.sign_in("risk_officer")
    page.get_by_role("link", name="Models", exact=True).click()
    page.get_by_role("link", name="v1", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(r"^Model v1"))).to_be_visible()
    chart = page.get_by_role("img", name=re.compile(r"^Calibration of model v1"))
    expect(chart).to_be_visible()
    assert chart.locator("circle").count() == 10
    expect(page.locator("#h-metrics + table")).to_contain_text("0.8052")
    assert visitor.fits_the_screen()
    visitor.screenshot("model")


def test_an_auditor_searches_reads_a_record_verifies_and_exports(visit, site):
    visitor = visit()
    page = visitor.page
    visitor.sign_in("auditor")
    page.get_by_role("link", name="Audit log", exact=True).click()
    page.get_by_label("Kind").select_option("decision.made")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/console/audit\?kind=decision\.made$"))
    rows = page.locator("table.list tbody tr")
    expect(rows.first).to_contain_text("decision.made")
    assert rows.count() == site.decisions
    assert visitor.fits_the_screen()
    visitor.screenshot("audit-search")

    with page.expect_download() as waiting:
        page.get_by_role("link", name="JSON lines").click()
    download = waiting.value
    assert download.suggested_filename == "audit.jsonl"
    lines = [json.loads(line) for line in
             download.path().read_text(encoding="utf-8").splitlines()]
    assert len(lines) == site.decisions
    assert all(r["kind"] == "decision.made" and len(r["record_hash"]) == 64 for r in lines)
    aids = {r["application_id"] for r in lines}
    assert site.declined["application_id"] in aids

    rows.first.locator("td a").first.click()
    expect(page.get_by_role("heading", name=re.compile(r"^Audit record \d+"))).to_be_visible()
    expect(page.locator("#record-hash")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    expect(page.locator("#payload")).to_contain_text('"model_sha256"')
    expect(page.locator("ul.checks .ok")).to_have_count(2)
    visitor.screenshot("audit-record")
    page.get_by_role("button", name="Verify the chain").click()
    expect(page.locator("#verify-result")).to_contain_text("The chain is intact")
    visitor.screenshot("audit-verify")

    queried = site.api("GET", "/v1/audit/records?kind=audit.queried&limit=200",
                       "auditor").json()
    endpoints = {r["payload"]["endpoint"] for r in queried["items"]}
    assert {"console.records", "console.export", "console.record",
            "console.verify"} <= endpoints


def test_a_channel_key_cannot_open_the_risk_or_audit_pages(visit):
    channel = visit()
    page = channel.page
    channel.sign_in("channel")
    expect(page.get_by_role("alert")).to_contain_text("channel key")
    for path in ("/console/applications", "/console/reviews", "/console/audit",
                 "/console/audit/verify"):
        channel.goto(path)
        expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))
    channel.screenshot("sign-in-channel-refused")

    officer = visit()
    officer.sign_in("risk_officer")
    response = officer.goto("/console/audit")
    assert response.status == 403
    expect(officer.page.get_by_role("heading", name=re.compile("Not allowed"))).to_be_visible()
    auditor = visit()
    auditor.sign_in("auditor")
    assert auditor.goto("/console/reviews").status == 403
    assert auditor.page.get_by_role("link", name="Reviews", exact=True).count() == 0


def test_an_administrator_sees_what_the_api_lets_it_read_and_signs_out(visit):
    visitor = visit()
    page = visitor.page
    visitor.sign_in("admin")
    nav = page.get_by_role("navigation", name="Sections")
    for name in ("Monitoring", "Models", "Outcomes"):
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    for name in ("Applications", "Reviews", "Backtests", "Audit log", "Verify"):
        assert nav.get_by_role("link", name=name, exact=True).count() == 0, name
    visitor.screenshot("home-admin")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status").first).to_contain_text("You are signed out")
    visitor.goto("/console/audit")
    expect(page).to_have_url(re.compile(r"/console/sign-in"))


def test_a_risk_officer_starts_a_backtest_and_reads_its_report(visit, site):
    visitor = visit()
    page = visitor.page
    visitor.sign_in("risk_officer")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Backtests").click()
    expect(page.locator("#strategies-in-force tr[data-role=champion]")).to_contain_text(
        "v1/2026.11")
    page.get_by_label("Strategy (MODEL/POLICY)").fill("v1/2026.11")
    page.get_by_label("Loss given default").fill("0.6")
    page.get_by_role("button", name="Start backtest").click()
    expect(page).to_have_url(re.compile(r"/console/backtests/bt_[0-9a-f]{32}$"))
    backtest_id = page.url.rsplit("/", 1)[1]
    # Until the report is there the page reloads itself.
    expect(page.locator("#backtest-status")).to_have_text("done", timeout=90_000)
    job = site.api("GET", f"/v1/backtests/{backtest_id}", "auditor").json()
    expect(page.locator("#rows")).to_have_text(f"{job['rows']:,}")
    charts = page.locator("figure.chart img")
    expect(charts).to_have_count(5)
    for i in range(5):
        expect(charts.nth(i)).to_be_visible()
        assert charts.nth(i).evaluate("img => img.complete && img.naturalWidth > 0"), i
    assert visitor.fits_the_screen()
    visitor.screenshot("backtest-report", full_page=True)
    with page.expect_download() as waiting:
        page.get_by_role("link", name="Download the report").click()
    assert waiting.value.suggested_filename == f"backtest-{backtest_id}.html"
    assert "data:image/svg+xml" in waiting.value.path().read_text(encoding="utf-8")
    visitor.goto("/console/backtests")
    expect(page.locator(f'tr[data-backtest="{backtest_id}"]')).to_contain_text("done")
    visitor.screenshot("backtests")
