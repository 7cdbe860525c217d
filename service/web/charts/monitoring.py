"""The monitoring dashboard's charts: SVG images drawn by matplotlib, for ``<img>`` tags.

Each function returns an SVG text; ``svg_data_uri`` turns it into the ``src`` of an image
(the console's CSP allows ``data:`` images, and an image's own styles are not the page's).
Text stays text in the SVG and is drawn by the browser with the console's fonts, Chinese
included. Empty input draws a small chart that says so; missing values are left out.
"""

from __future__ import annotations

from service.web.charts.panels.bars import bars_svg, latency_svg
from service.web.charts.panels.canvas import NO_DATA, svg_data_uri
from service.web.charts.panels.shares import compare_svg
from service.web.charts.panels.timeline import series_svg

__all__ = ["NO_DATA", "bars_svg", "compare_svg", "latency_svg", "series_svg", "svg_data_uri"]
