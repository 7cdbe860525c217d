"""Backtests: logged decisions read from the audit log, decided again by a candidate strategy
(:mod:`scoring.batch.backtest`), and the report of what would have changed.

``loader`` reads the decision log into a frame; ``report`` renders a summary as one
self-contained HTML page.
"""
