"""gunicorn settings for ``flashloan serve``: workers, timeouts, JSON access log, hooks."""

from __future__ import annotations

import os
from pathlib import Path

_var = Path(os.environ.get("FLASHLOAN_VAR_DIR", "var"))
# Metrics from every worker are summed through files in this folder; set before any worker
# imports prometheus_client (an empty value counts as none), its metric files cleared at
# each start.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_var / "prometheus")

bind = os.environ.get("FLASHLOAN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("FLASHLOAN_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("FLASHLOAN_THREADS", "8"))
# Requests wait at the database for at most 30 s; the worker must outlive that.
timeout = 60
graceful_timeout = 30
keepalive = 5
# gunicorn's own default, stated: the API document gives its 414 for a longer request line.
limit_request_line = 4094
max_requests = 0
# gunicorn's control socket lives in $HOME, shared by every server of the user; none is needed.
control_socket_disable = True
accesslog = "-"
errorlog = "-"
loglevel = "info"
# JSON access log. The path only (%(U)s), never the query string: audit searches may carry
# a national ID there.
access_log_format = (
    '{"time":"%(t)s","remote":"%(h)s","method":"%(m)s","path":"%(U)s","status":%(s)s,'
    '"bytes":"%(B)s","duration_us":%(D)s,"request_id":"%({x-request-id}o)s",'
    '"user_agent":"%(a)s"}'
)


def on_starting(server) -> None:
    """Prepare once, in the master: metrics folder, schema check, development keys."""
    from service.ops.metrics import clear_metric_files
    from service.web.bootstrap import prepare

    clear_metric_files(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]))

    prepare(log=server.log.info)


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker) -> None:
    """Close the exiting worker's wiring: its backtests go back in the queue, its writers
    finish, its connections close."""
    from service.web.wiring import KEY

    # Also called in the master for a worker already gone: only the worker's own app counts.
    if worker.pid != os.getpid():
        return
    extensions = getattr(getattr(worker, "wsgi", None), "extensions", None) or {}
    wired = extensions.get(KEY)
    if wired is not None:
        wired.close()
