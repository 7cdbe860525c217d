"""``flashloan sources serve`` runs the stub server with the stub settings from the environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

import datasources
from datasources.http import wire

from ...unit.datasources.fakes import NID
from ...unit.datasources.test_stub_world import EXAMPLE, NO_TAX

ROOT = Path(datasources.__file__).resolve().parent.parent
COMMAND = [sys.executable, "-c", "from service.cli.main import main; main()", "sources", "serve"]


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHLOAN_")}
    return {**env, "PYTHONPATH": str(ROOT), **values}


def test_serve_answers_queries_with_faults_and_fixtures():
    env = _env(FLASHLOAN_STUB_FAULTS="credit_report=status:500",
               FLASHLOAN_STUB_FIXTURES=str(EXAMPLE))
    with subprocess.Popen([*COMMAND, "--port", "0"], cwd=ROOT, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        try:
            line = process.stdout.readline()  # type: ignore[union-attr]
            assert line.startswith("stub sources listening on http://127.0.0.1:"), line
            url = line.split()[4]
            with requests.Session() as session:
                tax = session.post(url + wire.query_path("income_tax"),
                                   data=wire.encode_query(NO_TAX), timeout=10)
                assert tax.json()["record"]["has_record"] is False
                court = session.post(url + wire.query_path("court_records"),
                                     data=wire.encode_query(NID), timeout=10)
                assert court.status_code == 200
                credit = session.post(url + wire.query_path("credit_report"),
                                      data=wire.encode_query(NID), timeout=10)
                assert credit.status_code == 500
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                _, err = process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                raise
    assert process.returncode == 0, err
    assert "injected faults: credit_report=status:500" in err


def test_bad_settings_stop_the_command_with_a_clear_message():
    result = subprocess.run([*COMMAND, "--port", "0"], cwd=ROOT, capture_output=True, text=True,
                            env=_env(FLASHLOAN_STUB_FAULTS="court=hang"), timeout=60)
    assert result.returncode == 1
    assert "stub fault 'court=hang': source must be one of" in result.stderr
