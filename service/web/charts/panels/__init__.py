"""The monitoring dashboard's charts, drawn by matplotlib as SVG images on the server.

``canvas`` holds what every chart shares: the console's palette, matplotlib's settings, the
figure's frame and the SVG it becomes. The other modules each draw one kind of chart; the
public names are gathered in ``service.web.charts.monitoring``.
"""
