"""A backtest's report: one self-contained HTML page of its summary's figures and charts.

The page has no script and fetches nothing: its styles are inline and its charts are SVG
images drawn by matplotlib on the server, embedded as ``data:`` URIs, so that it can be
stored, mailed and opened anywhere as it is. Its figures and charts are the partial
``_backtest_report.html``, which the console's backtest page shows too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from audit.canonical import format_time
from service.web.charts.monitoring import bars_svg, compare_svg, svg_data_uri
from service.web.charts.panels.matrix import matrix_svg
from service.web.formatting import FILTERS

__all__ = ["GROUPS", "TEMPLATE", "report_charts", "report_html"]

TEMPLATE = "backtest_report.html"
_TEMPLATES = Path(__file__).resolve().parent / "templates"
# The realised default groups in the order the report gives them, with their names.
GROUPS = (("recorded_approvals", "All recorded approvals"),
          ("approved_by_both", "Approved by both"),
          ("swap_in", "Swap-in (declined → approved)"),
          ("swap_out", "Swap-out (approved → declined)"))


def report_html(summary: Mapping[str, Any], *, strategy: str,
                window: tuple[datetime | None, datetime | None],
                generated_at: datetime) -> str:
    """Return the report of a backtest of ``strategy`` over the decisions of ``window``.

    Parameters
    ----------
    summary
        :func:`scoring.batch.backtest.summarise` of the backtest.
    strategy
        The candidate, ``MODEL/POLICY``.
    window
        ``(since, until)`` of the decisions replayed: since inclusive, until exclusive;
        None where the window is open.
    """
    environment = Environment(loader=FileSystemLoader(_TEMPLATES),
                              autoescape=select_autoescape(["html"]),
                              trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(FILTERS)
    since, until = window
    return environment.get_template(TEMPLATE).render(
        summary=summary, strategy=strategy, groups=GROUPS,
        since=format_time(since) if since is not None else None,
        until=format_time(until) if until is not None else None,
        generated_at=format_time(generated_at), charts=report_charts(summary, strategy))


def _drawn(draw: Callable[..., str], *args: Any, **kwargs: Any) -> str:
    return svg_data_uri(draw(*args, **kwargs))


def report_charts(summary: Mapping[str, Any], strategy: str,
                  uri: Callable[..., str] = _drawn) -> dict[str, str]:
    """Return the report's charts as ``data:`` URIs, by name; ``uri(draw, *args, **kwargs)``
    draws one (a :class:`~service.web.charts.cache.ChartCache` keeps them)."""
    swap = summary["swap"]
    outcomes = list(swap["outcomes"])
    approval, loss = summary["approval"], summary["expected_loss"]
    sides = (("Recorded", "recorded", None), (f"Candidate {strategy}", "candidate", "stable"))
    scores = [{"label": b["label"], "observed": b["candidate"], "expected": b["recorded"]}
              for b in summary["score_shift"]["bins"]]
    realised = [{"label": f"{name} · {r['with_outcome']} with an outcome", "value": r["rate"],
                 "level": None} for key, name in GROUPS
                if (r := summary["realised_default"][key])["rate"] is not None]
    return {
        "swap": uri(matrix_svg, [[swap["matrix"][r][c] for c in outcomes] for r in outcomes],
                    rows=outcomes, columns=outcomes,
                    title="Recorded outcome against candidate outcome",
                    row_caption="recorded ↓", column_caption="candidate →",
                    diagonal=("same outcome", "changed outcome")),
        "scores": uri(compare_svg, scores,
                      title="Score distribution, in bins of the recorded score",
                      observed_label="Candidate", expected_label="Recorded"),
        "approval": uri(bars_svg, [{"label": label, "value": approval[key], "level": level}
                                   for label, key, level in sides],
                        title="Approval rate", percent=True),
        "expected_loss": uri(bars_svg, [{"label": label, "value": loss[key], "level": level}
                                        for label, key, level in sides],
                             title=f"Expected loss (PD × line × LGD {summary['lgd']:g})",
                             unit="CNY"),
        "realised": uri(bars_svg, realised,
                        title="Realised default rate of loans with a posted outcome",
                        percent=True),
    }
