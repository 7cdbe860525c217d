# syntax=docker/dockerfile:1
# flashloan: the decision service, and with another command the stub sources server.
#
#   docker build -t flashloan .
#   docker run --rm -p 8000:8000 --env-file flashloan.env flashloan
#
# Two stages: the builder installs the locked dependencies into /opt/venv, then the project's
# wheel; the runtime image gets that venv only (no build tools, no source tree, no pip
# cache) and runs as an unprivileged user. See docs/deployment.md.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
# Exactly the locked versions, checked against their hashes: the build backend for this
# stage's Python, the runtime set for the service's venv (see `make lock`).
COPY requirements/build.txt requirements/runtime.txt ./requirements/
RUN python -m pip install --require-hashes -r requirements/build.txt \
 && /opt/venv/bin/pip install --require-hashes -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY service ./service
COPY scoring ./scoring
COPY datasources ./datasources
COPY audit ./audit
COPY canonical ./canonical
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --no-deps /wheels/flashloan-*.whl
# XGBoost 3 depends on NVIDIA's NCCL (~470 MB) for multi-GPU work. It is loaded on demand only,
# never on the CPU inference path, so the image goes without it.
RUN /opt/venv/bin/pip uninstall --yes nvidia-nccl-cu12
# Fail the build, not the first request, if the shipped model or policy cannot be loaded.
RUN /opt/venv/bin/python -c "from scoring.online.model import load_model; from scoring.online.policy import load_policy; load_model(); load_policy()" \
 && /opt/venv/bin/flashloan --help > /dev/null

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 flashloan \
 && useradd --system --uid 10001 --gid flashloan --create-home --home-dir /home/flashloan \
        --shell /usr/sbin/nologin flashloan \
 && install -d -o flashloan -g flashloan -m 0750 /var/lib/flashloan
COPY --from=builder /opt/venv /opt/venv
USER flashloan
# The working directory holds var/: the metrics files of the workers, audit checkpoints,
# development keys, and the SQLite file when no FLASHLOAN_DATABASE_URL is given.
WORKDIR /var/lib/flashloan
VOLUME ["/var/lib/flashloan"]
EXPOSE 8000
# slim has no curl: ask /healthz with the venv's Python (a non-2xx answer raises).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["/opt/venv/bin/flashloan"]
# gunicorn with service/web/gunicorn_conf.py, bound to every interface of the container.
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
