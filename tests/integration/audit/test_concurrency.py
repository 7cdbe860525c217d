"""Many processes appending at once make one gap-free chain with no forks."""

from __future__ import annotations

import multiprocessing

import pytest

from audit.store import AuditStore
from service.persistence.migrations import upgrade
from tests.databases import migrate
from tests.integration.audit.workers import append_records

PROCESSES = 8
APPENDS_EACH = 500  # two records per decision: 250 decisions per process


@pytest.mark.slow
def test_processes_appending_at_once_make_one_gap_free_chain(database_url: str) -> None:
    migrate(database_url)
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

    store = AuditStore.from_url(database_url)
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


def test_sqlite_writers_take_turns_and_a_waiting_writer_gives_up_in_time(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    import audit.engine
    from audit.engine import writer_turn

    migrate(sqlite_url)
    store = AuditStore.from_url(sqlite_url)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with writer_turn(store.engine):
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        # While another writer holds the turn, an append waits for it and then succeeds.
        appended: list[int] = []
        waiter = threading.Thread(
            target=lambda: appended.append(store.append("test.waited", {"n": 1}).seq)
        )
        waiter.start()
        time.sleep(0.2)
        assert appended == [] and waiter.is_alive()
        release.set()
        waiter.join(10)
        assert appended == [1]
        # A writer that cannot get its turn in time fails like a locked database, and
        # writes nothing.
        release.clear()
        holding.clear()
        holder.join(10)
        holder = threading.Thread(target=hold)
        holder.start()
        assert holding.wait(10)
        monkeypatch.setattr(audit.engine, "BUSY_TIMEOUT_S", 0.3)
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="database is locked"):
            store.append("test.refused", {"n": 2})
        assert 0.3 <= time.monotonic() - started < 5
    finally:
        release.set()
        holder.join(10)
    assert [r.kind for r in store.iter_records()] == ["test.waited"]
    assert store.verify().ok
    store.dispose()


def test_writer_turn_is_a_no_op_without_a_database_file(postgres_url: str) -> None:
    from audit.engine import create_audit_engine, writer_turn

    # PostgreSQL queues writers on its advisory lock; an in-memory SQLite database has one
    # connection's writers only. Neither takes a file lock, so turns may even nest.
    for url in (postgres_url, "sqlite:///:memory:"):
        engine = create_audit_engine(url)
        try:
            with writer_turn(engine), writer_turn(engine):
                pass
        finally:
            engine.dispose()


def test_writers_fall_back_to_sqlites_lock_when_the_turn_file_cannot_be_opened(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    # Something else (here a directory) sits where the lock file would be.
    (tmp_path / "chain.db-writer-turn").mkdir()
    url = f"sqlite:///{tmp_path / 'chain.db'}"
    store = AuditStore.from_url(url)
    try:
        with caplog.at_level("WARNING", logger="audit.engine"):
            upgrade(url)
            for n in range(3):
                store.append("test.appended", {"n": n})
        assert [r.seq for r in store.iter_records()] == [1, 2, 3] and store.verify().ok
        warnings = [r for r in caplog.records if "writer-turn lock" in r.getMessage()]
        assert len(warnings) == 1  # said once, not at every write
    finally:
        store.dispose()
