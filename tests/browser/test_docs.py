"""The API reference at /docs in Debian's Chromium: Swagger UI, from this server alone.

The server is the run's (tests/browser/conftest.py): its database made by ``flashloan db
upgrade`` as ``make serve`` makes it; these tests only read from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.conftest import LAPTOP, SCREENSHOTS, Site, read_dev_keys
from tests.e2e.gunicorn_server import GunicornServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def docs_server(site: Site) -> GunicornServer:
    """The service under gunicorn: the run's server."""
    return site.server


class Reader:
    """A browser tab on /docs that notes every request it makes and every script problem."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.base_url = base_url
        self.context = browser.new_context(viewport=LAPTOP)
        self.context.set_default_timeout(20_000)
        self.page = self.context.new_page()
        self.requested: list[str] = []
        self.problems: list[str] = []
        self.page.on("request", lambda r: self.requested.append(r.url))
        self.page.on("pageerror", lambda exc: self.problems.append(str(exc)))
        # A refused script, style or connection is reported as a console error.
        self.page.on("console", lambda m: m.type in ("error", "warning")
                     and self.problems.append(m.text))

    def operation(self, method: str, path: str) -> Any:
        return self.page.locator(f".opblock-{method.lower()}",
                                 has=self.page.locator(f'[data-path="{path}"]'))


@pytest.fixture
def reader(browser: Any, docs_server: GunicornServer) -> Iterator[Reader]:
    opened = Reader(browser, docs_server.base_url)
    yield opened
    opened.context.close()
    assert opened.problems == [], opened.problems
    elsewhere = [url for url in opened.requested
                 if not url.startswith(docs_server.base_url + "/")]
    assert elsewhere == [], f"requests left 127.0.0.1: {elsewhere}"


def test_the_root_opens_swagger_ui_with_every_operation_and_its_roles(reader, docs_server):
    spec = requests.get(docs_server.url("/openapi.json"), timeout=30).json()
    documented = [(method, path) for path, item in spec["paths"].items() for method in item
                  if method in ("get", "put", "post", "delete", "patch")]
    page = reader.page
    page.goto(docs_server.url("/"))
    expect(page).to_have_url(docs_server.url("/docs"))
    expect(page.locator(".info .title")).to_contain_text("flashloan")
    expect(page.locator(".opblock")).to_have_count(len(documented))
    for method, path in documented:
        expect(reader.operation(method, path)).to_have_count(1)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "docs.png"))

    apply = reader.operation("post", "/v1/applications")
    apply.locator(".opblock-summary-control").click()
    expect(apply.locator(".opblock-description-wrapper").first).to_contain_text("Roles: channel.")
    expect(apply.locator(".parameters")).to_contain_text("Idempotency-Key")
    expect(apply.locator(".body-param__example, .highlight-code").first).to_contain_text(
        "420106199311082617")
    expect(apply.locator(".responses-table").first).to_contain_text("201")
    expect(apply.locator(".responses-table").first).to_contain_text("422")
    page.screenshot(path=str(SCREENSHOTS / "docs-apply.png"))

    resolve = reader.operation("post", "/v1/reviews/{review_id}/resolution")
    resolve.locator(".opblock-summary-control").click()
    expect(resolve.locator(".opblock-description-wrapper").first).to_contain_text(
        "Roles: risk_officer.")
    expect(resolve).to_contain_text("Overturn a decline into an approval")


def test_a_reader_authorizes_and_tries_an_operation_out(reader, docs_server):
    keys = read_dev_keys(docs_server.var_dir / "dev-keys.txt")
    page = reader.page
    page.goto(docs_server.url("/docs"))
    page.locator(".auth-wrapper").get_by_role("button", name="Authorize").click()
    dialog = page.locator(".modal-ux")
    dialog.locator("input").fill(keys["risk_officer"])
    dialog.get_by_role("button", name="Apply credentials").click()
    dialog.get_by_role("button", name="Close", exact=True).click()

    models = reader.operation("get", "/v1/models")
    models.locator(".opblock-summary-control").click()
    expect(models.locator(".opblock-description-wrapper").first).to_contain_text(
        "Roles: risk_officer, auditor, admin.")
    models.get_by_role("button", name="Try it out").click()
    models.get_by_role("button", name="Execute").click()
    answer = models.locator(".live-responses-table tbody .response-col_status")
    expect(answer).to_have_text("200")
    expect(models.locator(".live-responses-table .microlight").first).to_contain_text(
        '"active": true')
    page.screenshot(path=str(SCREENSHOTS / "docs-try-it-out.png"))
    assert docs_server.url("/v1/models") in reader.requested
