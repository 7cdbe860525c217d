"""``flashloan serve``: gunicorn with the app and ``service/web/gunicorn_conf.py``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True,
              help="threads per worker")
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the API under gunicorn (the model is loaded before a worker takes traffic)."""
    from service.ops.settings import Settings, SettingsError

    try:
        Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    conf = Path(__file__).resolve().parents[2] / "web" / "gunicorn_conf.py"
    os.environ["FLASHLOAN_WORKERS"] = str(workers)
    os.environ["FLASHLOAN_THREADS"] = str(threads)
    argv = [sys.executable, "-m", "gunicorn", "--config", str(conf), "--bind", f"{host}:{port}",
            "--workers", str(workers), "--threads", str(threads), "service.web.wsgi:app"]
    click.echo(f"serving on http://{host}:{port} with {workers} workers", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)
