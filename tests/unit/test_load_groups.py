"""The tests of a load group (tests/conftest.py) run on one xdist worker under ``--dist
loadgroup``, so that a fixture they share is built once per run, not once per worker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_tests_of_a_load_group_run_on_one_worker():
    # Eight quick tests of the "models" group: spread over both workers if ungrouped.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--dist",
         "loadgroup", "-v", "tests/integration/scoring/test_dask.py", "-k", "bad_address"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    ran = re.findall(r"^\[(gw\d+)\] .* PASSED (\S+)", done.stdout, flags=re.M)
    assert len(ran) == 8, done.stdout
    assert all(nodeid.endswith("@models") for _, nodeid in ran), done.stdout
    assert len({worker for worker, _ in ran}) == 1, done.stdout
