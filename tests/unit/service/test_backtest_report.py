"""A backtest's report: one HTML page with every figure of its summary and its charts, which
runs nothing and fetches nothing."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from xml.etree import ElementTree

import pytest

from scoring.batch.backtest import summarise
from service.web.backtest_report import report_html
from service.web.charts.monitoring import NO_DATA, svg_data_uri
from service.web.charts.panels.matrix import matrix_svg
from service.web.formatting import number
from tests.unit.scoring.test_backtest_summary import frames

SECTIONS = ("overview", "approval", "expected-loss", "swap", "realised-default", "score-shift",
            "means", "changes")
WINDOW = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
GENERATED = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


class Page(HTMLParser):
    """The ids, image sources, links and texts of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.images: dict[str, str] = {}
        self.links: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        self.tags.add(tag)
        if "id" in found:
            self.ids.add(found["id"])
        if tag == "img":
            self.images[found["alt"]] = found["src"]
        self.links += [v for k, v in attrs if k in ("href", "src", "action") and tag != "img"]

    def handle_data(self, data):
        self.text.append(data)


def rendered(strategy: str = "v2/2026.12") -> tuple[str, Page, dict]:
    frame, replayed = frames()
    summary = summarise(frame, replayed, lgd=0.5, changed_limit=2)
    html = report_html(summary, strategy=strategy, window=WINDOW, generated_at=GENERATED)
    page = Page()
    page.feed(html)
    return html, page, summary


def svg_texts(uri: str) -> list[str]:
    """The texts an embedded SVG image draws."""
    assert uri.startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(uri.split(",", 1)[1]).decode("utf-8")
    assert "<script" not in svg and 'href="http' not in svg
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return [" ".join(e.itertext()).strip() for e in root.iter(f"{SVG}text")]


def test_the_report_has_every_section_and_figure():
    _, page, summary = rendered()
    assert set(SECTIONS) <= page.ids
    text = " ".join(" ".join(page.text).split())
    for figure in ("¥1,300", "¥1,060", "¥-240", "57.14%", "71.43%", "+14.29 pp",
                   "Swap-in (declined → approved): 1", "swap-out (approved → declined): 1",
                   "33.33%", "¥27,500", "¥18,600", "4 decisions differ", "the first 2 are listed",
                   "a2", "a3", "CR05 PF03", "2026-11-01 00:00:00 UTC",
                   "2026-12-01 08:30:00 UTC", "v1/2026.11 7",
                   f"recorded score: {number(summary['score_shift']['psi'], 4)} act"):
        assert figure in text, figure


def test_every_chart_is_an_embedded_svg_image_of_the_figures():
    _, page, _ = rendered()
    charts = {alt: svg_texts(uri) for alt, uri in page.images.items()}
    assert len(charts) == 5
    swap = charts["Recorded outcome against candidate outcome"]
    assert {"same outcome", "changed outcome", "approved", "declined", "deferred"} <= set(swap)
    assert sorted(t for t in swap if t.isdigit()) == sorted("310110100")
    assert {"57.1%", "71.4%"} <= set(charts["Approval rate, recorded and candidate"])
    assert {"1,300 CNY", "1,060 CNY"} <= set(charts["Expected loss, recorded and candidate"])
    assert {"Recorded", "Candidate"} <= set(charts["Score distribution, recorded and candidate"])
    realised = charts["Realised default rate by group"]
    assert {"33.3%", "50.0%", "0.0%"} <= set(realised)


def test_the_report_runs_nothing_and_fetches_nothing():
    html, page, _ = rendered(strategy="<b>v2</b>/2026.12")
    assert "<script" not in html.lower()
    assert not re.search(r"(https?:)?//[a-z0-9]", html, flags=re.IGNORECASE)
    assert page.links == [] and "link" not in page.tags and "b" not in page.tags
    assert "&lt;b&gt;v2&lt;/b&gt;/2026.12" in html


def test_a_matrix_without_counts_says_so_and_one_of_the_wrong_shape_is_refused():
    empty = svg_texts(svg_data_uri(matrix_svg([[0, 0], [0, None]], rows=["a", "b"],
                                              columns=["a", "b"], title="Nothing")))
    assert empty == ["Nothing", NO_DATA]
    with pytest.raises(ValueError, match="counts must have 2 rows of 2 counts"):
        matrix_svg([[1, 2]], rows=["a", "b"], columns=["a", "b"], title="Wrong")
