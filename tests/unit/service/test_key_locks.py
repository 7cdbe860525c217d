"""Idempotency-Key locks on SQLite: a byte-range lock per key for the host's other processes,
and a table of held keys for the threads of this one, which share its locks."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from itertools import count

import pytest
from sqlalchemy import create_engine

from service.persistence.idempotency_locks import FileKeyLocks, _slot, file_key_locks

# Exits 0 if this other process can lock bytes [start, start + length) of the file (length 0:
# to its end and beyond), 1 if a lock of another process is in the way.
_PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, int(sys.argv[3]), int(sys.argv[2]))
except OSError:
    sys.exit(1)
"""


def another_process_can_lock(path: str, start: int = 0, length: int = 0) -> bool:
    probe = subprocess.run([sys.executable, "-c", _PROBE, path, str(start), str(length)],
                           check=False, timeout=30)
    assert probe.returncode in (0, 1), probe
    return probe.returncode == 0


def held_in_another_thread(locks: FileKeyLocks, key_id: str, key: str) -> bool:
    """Whether another thread of this process finds the key held."""
    found: list[bool] = []

    def take() -> None:
        hold = locks.hold(key_id, key)
        found.append(hold is None)
        if hold is not None:
            hold.let_go()

    thread = threading.Thread(target=take)
    thread.start()
    thread.join(timeout=10)
    return found == [True]


@pytest.fixture
def lock_file(tmp_path) -> str:
    return str(tmp_path / "flashloan.db-idempotency-locks")


def test_a_held_key_is_refused_to_other_threads_and_processes_until_let_go(lock_file):
    locks = FileKeyLocks(lock_file)
    hold = locks.hold("k1", "order-1")
    assert hold is not None
    assert locks.hold("k1", "order-1") is None, "not even to the thread that holds it"
    assert held_in_another_thread(locks, "k1", "order-1")
    assert not another_process_can_lock(lock_file, _slot("k1", "order-1"), 1)
    assert another_process_can_lock(lock_file, _slot("k1", "order-1") + 1, 1), (
        "one byte per key: the others stay free")
    assert not held_in_another_thread(locks, "k2", "order-1"), "keys are per API key"

    hold.let_go()
    hold.let_go()  # once is enough; again does nothing
    assert not held_in_another_thread(locks, "k1", "order-1")
    assert another_process_can_lock(lock_file), "nothing of this process is left locked"


def test_a_key_another_process_holds_is_refused_here(lock_file):
    slot = _slot("k1", "order-2")
    locks = FileKeyLocks(lock_file)
    with subprocess.Popen(
            [sys.executable, "-c", _PROBE + "sys.stdout.write('held\\n'); sys.stdout.flush();"
             "sys.stdin.read()", lock_file, str(slot), "1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            assert locks.hold("k1", "order-2") is None
            beside = locks.hold("k1", "order-3")
            assert beside is not None
            beside.let_go()
        finally:
            holder.kill()  # the OS lets its lock go with it
    hold = locks.hold("k1", "order-2")
    assert hold is not None
    hold.let_go()


def test_two_keys_on_one_byte_keep_it_locked_until_both_are_let_go(lock_file):
    seen: dict[int, str] = {}
    for i in count():
        key = f"order-{i}"
        if _slot("k1", key) in seen:
            other = seen[_slot("k1", key)]
            break
        seen[_slot("k1", key)] = key
    slot = _slot("k1", key)
    locks = FileKeyLocks(lock_file)
    first, second = locks.hold("k1", other), locks.hold("k1", key)
    assert first is not None and second is not None, "two keys, each held once"
    first.let_go()
    assert not another_process_can_lock(lock_file, slot, 1), "the other key still holds it"
    assert held_in_another_thread(locks, "k1", key)
    second.let_go()
    assert another_process_can_lock(lock_file, slot, 1)


def test_without_a_lock_file_the_threads_of_the_process_are_still_kept_apart(tmp_path,
                                                                           caplog):
    unopenable = tmp_path / "a-folder"
    unopenable.mkdir()
    for locks in (FileKeyLocks(None), FileKeyLocks(str(unopenable))):
        hold = locks.hold("k1", "order-4")
        assert hold is not None
        assert held_in_another_thread(locks, "k1", "order-4")
        hold.let_go()
        assert not held_in_another_thread(locks, "k1", "order-4")
    warnings = [r for r in caplog.records
                if r.levelno == logging.WARNING and "lock file" in r.getMessage()]
    assert len(warnings) == 1, "a lock file that cannot be opened is said once"


def test_the_workers_of_a_process_share_one_table_per_database_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'flashloan.db'}"
    engines = [create_engine(url), create_engine(url),
               create_engine(f"sqlite:///{tmp_path / 'other.db'}")]
    try:
        first, second, other = (file_key_locks(engine) for engine in engines)
        assert first is second and first is not other
        assert first.path == str((tmp_path / "flashloan.db").resolve()) + "-idempotency-locks"
    finally:
        for engine in engines:
            engine.dispose()
