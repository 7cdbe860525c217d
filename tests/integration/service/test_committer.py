"""Group commit: many requests, few transactions; one failure withholds only its own write."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from audit import AuditQuery, AuditStore
from service.persistence.committer import GroupCommitter
from tests.databases import migrate


@pytest.fixture
def store(database_url):
    migrate(database_url)
    s = AuditStore.from_url(database_url)
    yield s
    s.dispose()


def test_concurrent_writes_are_all_committed_in_order_of_the_chain(store):
    committer = GroupCommitter(store)
    gate = threading.Barrier(16)

    def write(i: int) -> None:
        gate.wait()
        committer.submit(lambda w: w.append("decision.made", {"i": i}, application_id=f"a{i}"))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(write, range(16)))
    committer.close()
    records = list(store.iter_records(AuditQuery()))
    assert sorted(r.payload["i"] for r in records) == list(range(16))
    assert [r.seq for r in records] == list(range(1, 17))
    assert store.verify().ok
    assert committer.items == 16 and 1 <= committer.batches <= 16


def test_a_failing_write_does_not_withhold_the_others(store):
    committer = GroupCommitter(store)
    hold = threading.Event()
    results: dict[int, str] = {}

    def blocker(w) -> None:
        hold.wait(5)
        w.append("decision.made", {"i": "first"})

    def write(i: int) -> None:
        def work(w) -> None:
            if i == 3:
                raise RuntimeError("this one cannot be audited")
            w.append("decision.made", {"i": i})

        try:
            committer.submit(work)
            results[i] = "ok"
        except RuntimeError:
            results[i] = "failed"

    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(committer.submit, blocker)
        futures = [pool.submit(write, i) for i in range(6)]
        hold.set()
        first.result()
        for f in futures:
            f.result()
    committer.close()
    assert results == {0: "ok", 1: "ok", 2: "ok", 3: "failed", 4: "ok", 5: "ok"}
    payloads = [r.payload["i"] for r in store.iter_records(AuditQuery())]
    assert sorted(map(str, payloads)) == sorted(["first", "0", "1", "2", "4", "5"])
    assert store.verify().ok
