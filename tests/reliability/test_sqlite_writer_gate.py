"""B6 on SQLite: writers queue at the gate beside the database file (orderdesk/core/sqlite), across
threads and processes; a rolled-back, failed or killed holder never leaves the gate shut."""

import signal
import subprocess
import sys
import threading
import time

import pytest
from django.db import OperationalError

from orderdesk.core.sqlite import base as gate_module
from orderdesk.core.sqlite.base import WriterGate
from tests.conftest import committed_db

HOLD_IN_CHILD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("holding", flush=True)
time.sleep(60)
"""


@pytest.fixture
def gate(tmp_path):
    return WriterGate(str(tmp_path / "db.sqlite3.writer-lock"))


def _holder(lock_path) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLD_IN_CHILD, lock_path], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "holding"
    return child


def test_b06_writers_of_one_process_go_through_the_gate_one_at_a_time_in_turn(gate):
    inside, most_inside, order = [0], [0], []
    lock = threading.Lock()

    def write(n):
        gate.acquire(timeout=10)
        try:
            with lock:
                inside[0] += 1
                most_inside[0] = max(most_inside[0], inside[0])
            time.sleep(0.01)
            order.append(n)
            with lock:
                inside[0] -= 1
        finally:
            gate.release()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert most_inside[0] == 1
    assert sorted(order) == list(range(8))


def test_b06_a_writer_waits_while_another_process_holds_the_gate_and_enters_when_it_dies(gate):
    child = _holder(gate.lock_path)
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            gate.acquire(timeout=0.3)
        child.send_signal(signal.SIGKILL)  # killed mid-transaction: the kernel frees its lock
        child.wait(10)
        started = time.monotonic()
        gate.acquire(timeout=5)
        gate.release()
        assert time.monotonic() - started < 1
    finally:
        child.kill()
        child.wait()


HOLD_UNTIL_TOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("holding", flush=True)
sys.stdin.readline()
time.sleep(0.05)
fcntl.flock(fd, fcntl.LOCK_UN)
time.sleep(60)
"""


def test_b06_a_short_wait_for_another_process_is_polled_without_a_helper_thread(gate, monkeypatch):
    monkeypatch.setattr(gate_module, "POLL_SECONDS", 5)  # however slow this machine, the wait ends polling
    monkeypatch.setattr(gate_module.threading, "Thread", lambda *a, **k: pytest.fail("a helper thread was started"))
    child = subprocess.Popen([sys.executable, "-c", HOLD_UNTIL_TOLD, gate.lock_path], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "holding"
        child.stdin.write("release\n")
        child.stdin.flush()
        started = time.monotonic()
        gate.acquire(timeout=10)
        waited = time.monotonic() - started
        gate.release()
    finally:
        child.kill()
        child.wait()

    assert 0.04 < waited < 2  # it did wait for the holder, and went in once the holder let go


def test_b06_a_writer_that_timed_out_leaves_the_gate_usable_by_the_next_thread(gate):
    child = _holder(gate.lock_path)
    try:
        with pytest.raises(OperationalError):
            gate.acquire(timeout=0.2)
    finally:
        child.kill()
        child.wait()
    entered = []
    thread = threading.Thread(target=lambda: (gate.acquire(timeout=5), entered.append(True), gate.release()))
    thread.start()
    thread.join(10)
    assert entered == [True]


def test_b06_writers_that_timed_out_while_another_process_held_the_gate_leave_it_exclusive(gate):
    child = _holder(gate.lock_path)
    try:
        for _ in range(2):  # the second queues behind the first one's waiter and times out too
            with pytest.raises(OperationalError, match="database is locked"):
                gate.acquire(timeout=0.2)
    finally:
        child.kill()
        child.wait()

    test_b06_writers_of_one_process_go_through_the_gate_one_at_a_time_in_turn(gate)


def test_b06_a_writer_interrupted_while_waiting_for_another_process_leaves_the_gate_usable(gate):
    class Interrupted(Exception):
        pass

    def interrupt(signum, frame):
        raise Interrupted  # as db_worker's SIGTERM handler raises SystemExit mid-wait

    child = _holder(gate.lock_path)
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Interrupted):
            gate.acquire(timeout=5)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        child.kill()
        child.wait()

    gate.acquire(timeout=5)  # the waiter left behind gave both locks back once the holder was gone
    gate.release()


@committed_db
def test_b06_a_rolled_back_transaction_opens_the_gate_for_the_next_writer():
    from django.db import connection, transaction

    from orderdesk.core.models import Counter

    if connection.vendor != "sqlite":
        pytest.skip("the writer gate is SQLite's; PostgreSQL queues writers itself (this test runs in the SQLite pass)")

    class Undo(Exception):
        pass

    with pytest.raises(Undo):
        with transaction.atomic():
            Counter.objects.create(name="gate-test", value=1)
            raise Undo
    assert connection.holds_gate is False

    done = []

    def other_thread_writes():
        from django.db import connection as own

        with transaction.atomic():
            Counter.objects.create(name="gate-test", value=2)
        done.append(own.holds_gate)
        own.close()

    thread = threading.Thread(target=other_thread_writes)
    thread.start()
    thread.join(10)
    assert done == [False]
    assert list(Counter.objects.filter(name="gate-test").values_list("value", flat=True)) == [2]


@committed_db
def test_b06_a_write_outside_a_transaction_also_queues_at_the_gate():
    from django.db import connection

    from orderdesk.core.models import Counter

    if connection.vendor != "sqlite":
        pytest.skip("the writer gate is SQLite's; PostgreSQL queues writers itself (this test runs in the SQLite pass)")
    Counter.objects.create(name="gate-test", value=1)
    options = connection.settings_dict["OPTIONS"]
    child = _holder(connection.gate.lock_path)
    try:
        original, options["timeout"] = options["timeout"], 0.3
        try:
            with pytest.raises(OperationalError, match="database is locked"):
                Counter.objects.filter(name="gate-test").update(value=2)
        finally:
            options["timeout"] = original
    finally:
        child.kill()
        child.wait()

    assert Counter.objects.filter(name="gate-test").update(value=3) == 1
    assert connection.holds_gate is False
    assert Counter.objects.get(name="gate-test").value == 3


def test_b06_a_child_forked_while_the_gate_was_held_waits_for_it_and_then_gets_it(gate, monkeypatch):
    import os

    from orderdesk.core.sqlite import base as sqlite_base

    monkeypatch.setitem(sqlite_base._gates, gate.lock_path, gate)
    gate.acquire(timeout=5)  # held by this process at the fork
    tried_r, tried_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            try:
                gate.acquire(timeout=0.3)
                code = 2  # it shared the parent's lock instead of waiting for it
            except OperationalError:
                pass
            os.write(tried_w, b"x")
            if code == 0:
                try:
                    gate.acquire(timeout=5)  # once the parent lets go
                except OperationalError:
                    code = 3  # the lock copied at the fork was never free
        finally:
            os._exit(code)
    try:
        os.read(tried_r, 1)
    finally:
        gate.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@committed_db
def test_b06_the_wal_is_checkpointed_after_commits_with_the_gate_open(monkeypatch):
    from django.db import connection, transaction

    from orderdesk.core.models import Counter

    if connection.vendor != "sqlite":
        pytest.skip("the writer gate is SQLite's; PostgreSQL queues writers itself (this test runs in the SQLite pass)")
    monkeypatch.setattr(gate_module, "CHECKPOINT_EVERY_COMMITS", 3)
    Counter.objects.create(name="checkpoint-test", value=0)  # a lone write: a commit of its own
    [(autocheckpoint,)] = connection.connection.execute("PRAGMA wal_autocheckpoint").fetchall()
    assert autocheckpoint == gate_module.AUTOCHECKPOINT_PAGES
    seen = []
    connection.connection.set_trace_callback(lambda sql: seen.append((sql, connection.holds_gate)))
    try:
        connection.commits_since_checkpoint = 0
        for value in (1, 2):
            with transaction.atomic():
                Counter.objects.filter(name="checkpoint-test").update(value=value)
        assert not any("wal_checkpoint" in sql for sql, _held in seen)
        Counter.objects.filter(name="checkpoint-test").update(value=3)  # the third commit
    finally:
        connection.connection.set_trace_callback(None)
    assert [held for sql, held in seen if "wal_checkpoint" in sql] == [False]  # once, the gate open
