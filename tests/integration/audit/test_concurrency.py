"""Many processes appending at once make one gap-free chain with no forks."""

from __future__ import annotations

import multiprocessing

import pytest

from audit.store import AuditStore
from tests.integration.audit.workers import append_records

PROCESSES = 8
APPENDS_EACH = 500  # two records per decision: 250 decisions per process


@pytest.mark.slow
def test_processes_appending_at_once_make_one_gap_free_chain(database_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    workers = [
        context.Process(
            target=append_records, args=(database_url, worker, APPENDS_EACH // 2, barrier)
        )
        for worker in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=240)
    assert [process.exitcode for process in workers] == [0] * PROCESSES

    store = AuditStore.from_url(database_url, create=False)
    try:
        records = list(store.iter_records())
        result = store.verify()
    finally:
        store.dispose()
    total = PROCESSES * APPENDS_EACH
    assert [record.seq for record in records] == list(range(1, total + 1))
    assert (result.ok, result.checked) == (True, total), result
    # The two records of one decision were appended in one transaction: adjacent, in order.
    for first, second in zip(records[::2], records[1::2], strict=True):
        assert (first.kind, second.kind) == ("application.received", "decision.made")
        assert first.application_id == second.application_id
    # Each process's decisions keep their order within the chain.
    for worker in range(PROCESSES):
        mine = [r.payload["i"] for r in records if r.payload["worker"] == worker]
        assert mine == sorted(mine) and len(mine) == APPENDS_EACH
