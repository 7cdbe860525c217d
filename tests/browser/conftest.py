"""The console in Debian's Chromium (headless, through Playwright) against the app under gunicorn.

One server for the run (the console's, the charts' and the API reference's tests), started as
in production with two workers on a SQLite file that ``flashloan db upgrade`` made; its
development keys come from the ``dev-keys.txt`` it writes on first start, as the sign-in page
says. It reads its models from a folder of copies of the shipped ones, where v1's card gains a
global view (the mean absolute contribution of each feature over a sample of the stub world,
computed here by the shipped model) and one fallback's card has none. A channel posts consents
and applications through the JSON API until one is declined, and asks for that decision to be
reviewed. Each test changes only what it made or what no other test reads.

Chromium is Debian's package (``.ci/run`` installs it with apt); nothing is downloaded. Without
it the tests are skipped, except under CI=true where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from scoring.online.model import MODELS_DIR, fallback_version
from tests.databases import migrate, unavailable
from tests.e2e.gunicorn_server import REPO, GunicornServer

CHROMIUM = os.environ.get("FLASHLOAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = REPO / "var" / "test-artifacts" / "screenshots"
LAPTOP = {"width": 1366, "height": 768}
SCOPES = ("provident_fund", "social_security", "income_tax", "credit_report", "court_records")
PII_KEY = "browser-pii-key-6c1e9a4f2b8d7035e1c9a4f6b2d8e037"
HTTP_TIMEOUT_S = 60.0
# The fallback whose card has no global view, and how many applicants v1's view averages.
PLAIN = fallback_version("v1", "income_tax")
SAMPLE = 300


@dataclass
class Site:
    """The running service, its keys, and what the channel put into it."""

    server: GunicornServer
    keys: dict[str, str]
    http: requests.Session
    declined: dict[str, Any] = field(default_factory=dict)
    approved: list[dict[str, Any]] = field(default_factory=list)
    # A decline that came with options, and an approval below the amount asked.
    lifted: dict[str, Any] = field(default_factory=dict)
    partial: dict[str, Any] = field(default_factory=dict)
    review: dict[str, Any] = field(default_factory=dict)
    decisions: int = 0

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def api(self, method: str, path: str, role: str, body: Any = None) -> requests.Response:
        return self.http.request(method, self.base_url + path, json=body,
                                 headers={"Authorization": f"Bearer {self.keys[role]}"},
                                 timeout=HTTP_TIMEOUT_S)


def read_dev_keys(path: Path) -> dict[str, str]:
    """The keys ``flashloan serve`` wrote on first start: ``role name key`` per line."""
    keys = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            role, _name, key = line.split()
            keys[role] = key
    return keys


def _apply(site: Site, national_id: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    consent = site.api("POST", "/v1/consents", "channel", {
        "national_id": national_id, "scopes": list(SCOPES), "purpose": "credit_application",
        "granted_at": (now - timedelta(seconds=5)).isoformat(),
        "expires_at": (now + timedelta(days=30)).isoformat(), "text_version": "2026-11-zh-1",
        "channel": "dev-channel"})
    assert consent.status_code == 201, consent.text
    decided = site.api("POST", "/v1/applications", "channel", {
        "applicant": {"national_id": national_id, "name": "欧阳明远", "mobile": "13812345678"},
        "request": {"amount": 30000, "term_months": 12, "purpose": "travel"},
        "consent_id": consent.json()["consent_id"]})
    assert decided.status_code == 201, decided.text
    return decided.json()


def stage(site: Site) -> None:
    """Apply for stub-world applicants until one is declined by the model; ask for a review."""
    from datasources.stub.world import population_ids

    for national_id in population_ids(120, 31):
        answer = _apply(site, national_id)
        site.decisions += 1
        decision = answer["decision"] or {}
        reasons = [r["code"] for r in decision.get("reasons", [])]
        offered = (decision.get("recourse") or {}).get("status") == "offered"
        if answer["status"] == "approved":
            site.approved.append(answer)
            if decision.get("partial") and not site.partial:
                site.partial = answer
        elif answer["status"] == "declined" and not site.declined and "K04" not in reasons:
            site.declined = answer
        elif answer["status"] == "declined" and offered and not site.lifted:
            site.lifted = answer
        if site.declined and len(site.approved) >= 3 and site.lifted and site.partial:
            break
    assert site.declined and site.approved, "the stub world gave no decline or no approval"
    assert site.lifted and site.partial, "no decline with options or no partial approval"
    response = site.api("POST", f"/v1/applications/{site.declined['application_id']}"
                                "/review-requests", "channel",
                        {"reason": "我的收入比记录的高，请人工复核"})
    assert response.status_code == 201, response.text
    site.review = response.json()


def write_models(folder: Path) -> dict:
    """Copy the shipped models, v1's card with a global view and one fallback's with none;
    return v1's card."""
    import numpy as np

    from datasources.stub.world import generate, population_ids, records_at
    from scoring.online.features import features_for_application
    from scoring.online.model import load_model

    model = load_model("v1")
    ids = population_ids(SAMPLE, 11)
    columns = generate(ids)
    x = np.vstack([features_for_application(records_at(columns, i), 20000, 12)
                   for i in range(SAMPLE)])
    mean_abs = np.abs(model.score(x).contributions).mean(axis=0)
    card = dict(model.card)
    card["global_importance"] = {
        "population": f"{SAMPLE} applicants of the stub world", "rows": SAMPLE,
        "features": sorted(({"name": n, "mean_abs_contribution": float(v)}
                            for n, v in zip(model.feature_names, mean_abs, strict=True)),
                           key=lambda f: -f["mean_abs_contribution"])}
    shutil.copytree(MODELS_DIR, folder, dirs_exist_ok=True)
    (folder / "v1" / "card.json").write_text(json.dumps(card, ensure_ascii=False),
                                              encoding="utf-8")
    plain = json.loads((folder / PLAIN / "card.json").read_text(encoding="utf-8"))
    plain.pop("global_importance", None)
    (folder / PLAIN / "card.json").write_text(json.dumps(plain), encoding="utf-8")
    return card


def upgrade_with_the_cli(url: str) -> None:
    """``flashloan db upgrade``, as ``make serve`` runs it before starting the server."""
    from click.testing import CliRunner

    from service.cli.main import main

    upgraded = CliRunner().invoke(main, ["db", "upgrade", "--database-url", url])
    assert upgraded.exit_code == 0, upgraded.output


@contextmanager
def served_site(tmp_path_factory: pytest.TempPathFactory, name: str,
                env: dict[str, str] | None = None, *,
                upgrade: Callable[[str], None] = migrate) -> Iterator[Site]:
    """The service under gunicorn on a SQLite file of its own (brought to head by
    ``upgrade``), staged by the channel; the server must stop cleanly, with no traceback in
    its log."""

    workdir = tmp_path_factory.mktemp(name)
    upgrade(f"sqlite:///{workdir / 'flashloan.db'}")
    server = GunicornServer(name, workdir, {
        "FLASHLOAN_ENV": "test",
        "FLASHLOAN_DATABASE_URL": f"sqlite:///{workdir / 'flashloan.db'}",
        "FLASHLOAN_PII_KEY": PII_KEY,
        "FLASHLOAN_RATE_LIMIT": "100000/minute",
        **(env or {}),
    })
    code = None
    try:
        server.spawn()
        server.wait_ready()
        keys = read_dev_keys(server.var_dir / "dev-keys.txt")
        assert set(keys) == {"channel", "risk_officer", "auditor", "admin", "servicing"}, keys
        with requests.Session() as http:
            built = Site(server, keys, http)
            stage(built)
            yield built
    finally:
        code = server.stop()
    log = server.log_text()
    assert code == 0, f"gunicorn exited with {code}:\n{log[-4000:]}"
    assert "Traceback" not in log, log[-6000:]


@pytest.fixture(scope="session")
def card(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The folder of models the run's server reads, and v1's card there."""
    folder = tmp_path_factory.mktemp("models")
    return folder, write_models(folder)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, card: tuple[Path, dict]) -> Iterator[Site]:
    """The run's server (see above), started once: the browser tests share it."""
    with served_site(tmp_path_factory, "console", {"FLASHLOAN_MODELS_DIR": str(card[0])},
                     upgrade=upgrade_with_the_cli) as built:
        yield built


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless."""
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable(f"the playwright package is not installed: {exc}")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Visitor:
    """One person at a laptop: a browser context of its own, and its page."""

    def __init__(self, browser: Any, site: Site) -> None:
        self.site = site
        self.context = browser.new_context(viewport=LAPTOP, accept_downloads=True,
                                           locale="zh-CN")
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.problems.append(str(exc)))

    def _console(self, message: Any) -> None:
        # A 403 or 404 page is expected where a test knocks on a closed door.
        if message.type in ("error", "warning") and not message.text.startswith(
                "Failed to load resource"):
            self.problems.append(message.text)

    def url(self, path: str) -> str:
        return self.site.base_url + path

    def goto(self, path: str) -> Any:
        return self.page.goto(self.url(path))

    def sign_in(self, role: str) -> None:
        self.goto("/console/")
        self.page.get_by_label("API key").fill(self.site.keys[role])
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state()

    def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    def fits_the_screen(self) -> bool:
        """Whether the page needs no sideways scrolling at 1366 px."""
        return bool(self.page.evaluate(
            "document.documentElement.scrollWidth <= window.innerWidth"))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Any, site: Site) -> Iterator[Any]:
    """Open a fresh browser context per visitor; each must see no CSP or script error."""
    opened: list[Visitor] = []

    def open_visitor() -> Visitor:
        visitor = Visitor(browser, site)
        opened.append(visitor)
        return visitor

    yield open_visitor
    problems = [p for v in opened for p in v.problems]
    for visitor in opened:
        visitor.close()
    assert problems == [], problems
