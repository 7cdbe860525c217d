"""Scoring many at once: frames, backtests and their summaries, and decisions spread over
a Dask cluster."""
