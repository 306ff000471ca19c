"""SQLite with writers queued outside SQLite.

SQLite admits one writer at a time. A writer that finds the lock taken waits in SQLite's busy
handler, which sleeps in growing steps (1, 2, 5 … 100 ms) and does not wake when the lock frees:
with eight threads writing, most of the time went to those sleeps (intake p99 over a second).
Here every transaction, and every write made outside one, first takes this process's writer lock,
then an advisory lock on a file beside the database, so writers of all processes queue and go in
as soon as the previous one commits. Reads never queue (WAL). The file lock is polled in short
steps first (a transaction holds it about a millisecond) and waited for in a helper thread only
after that: handing the wait to a thread cost more CPU than the wait, 0.2 ms an order served.

SQLite copies the WAL back into the database (a checkpoint) inside the commit that takes the WAL
past its limit, so the gate stayed shut for it: half the time commits took. Here the limit is a
safety net a normal run never reaches, and each connection checkpoints every
CHECKPOINT_EVERY_COMMITS commits of its own, once it has let the gate go; a PASSIVE checkpoint
waits for no reader or writer and holds none up.
"""

import fcntl
import logging
import os
import threading
import time
from contextlib import contextmanager
from functools import lru_cache

from django.db import OperationalError
from django.db.backends.sqlite3 import base
from django.utils.functional import cached_property

log = logging.getLogger(__name__)

_gates: dict[str, "WriterGate"] = {}
_gates_lock = threading.Lock()


CHECKPOINT_EVERY_COMMITS = 100
AUTOCHECKPOINT_PAGES = 10_000  # 40 MB of WAL: SQLite's own checkpoint only if ours fall behind

# A writer polls for the file lock this long, then waits in a helper thread (WriterGate.acquire).
POLL_SECONDS = 0.02
POLL_FIRST_PAUSE = 0.00005
POLL_LONGEST_PAUSE = 0.0005


class WriterGate:
    """One writing transaction at a time for a database file, across threads and processes."""

    def __init__(self, lock_path: str):
        self.lock_path = lock_path
        self.thread_lock = threading.Lock()
        self.fd: int | None = None

    def _file(self) -> int:
        if self.fd is None:
            self.fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        return self.fd

    def forget_parent(self) -> None:
        """In a forked child: the parent's thread lock may have been held at the fork, and its file
        shares the parent's lock; start afresh (closing our copy leaves the parent's lock alone)."""
        self.thread_lock = threading.Lock()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def acquire(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if not self.thread_lock.acquire(timeout=timeout):
            raise OperationalError("database is locked")
        try:
            fd = self._file()
            if self._poll_file_lock(fd, min(deadline, time.monotonic() + POLL_SECONDS)):
                return
        except BaseException:
            self.thread_lock.release()
            raise
        self._wait_for_file_lock(fd, deadline)

    @staticmethod
    def _poll_file_lock(fd: int, until: float) -> bool:
        """Try for the file lock until `until`, sleeping a little longer each time. Another
        process's transaction holds it about a millisecond, so most waits end here, without
        the helper thread's handover, which costs more CPU than the whole wait."""
        pause = POLL_FIRST_PAUSE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() + pause > until:
                    return False
            time.sleep(pause)
            pause = min(pause * 2, POLL_LONGEST_PAUSE)

    def _wait_for_file_lock(self, fd: int, deadline: float) -> None:
        """Another process writes. A blocking flock wakes the moment it commits, but cannot time out,
        so a helper thread waits in it (without the GIL) while this thread waits for the helper
        until the deadline. A helper left behind by a timeout gives the locks back when its flock
        returns; until then this process's other writers queue at the thread lock as they should."""
        granted, handover = threading.Event(), threading.Lock()
        abandoned, failure = False, None

        def wait_in_flock() -> None:
            nonlocal failure
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                failure = exc
            with handover:
                if not abandoned:
                    granted.set()
                    return
            if failure is None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self.thread_lock.release()

        helper = threading.Thread(target=wait_in_flock, name="sqlite-writer-gate", daemon=True)
        try:
            helper.start()
            got_it = granted.wait(max(deadline - time.monotonic(), 0))
        except BaseException:  # interrupted while waiting (SystemExit from a signal handler, say)
            with handover:
                if granted.is_set():  # granted, but we leave with the exception: give it back
                    if failure is None:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                    self.thread_lock.release()
                elif helper.ident is None:  # no helper ever ran
                    self.thread_lock.release()
                else:
                    abandoned = True
            raise
        if got_it:
            return self._granted(failure)
        with handover:
            if granted.is_set():
                return self._granted(failure)
            abandoned = True
        raise OperationalError("database is locked")

    def _granted(self, failure: OSError | None) -> None:
        if failure is not None:
            self.thread_lock.release()
            raise OperationalError(f"the writer lock failed: {failure}") from failure

    def release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.thread_lock.release()


def _after_fork_in_child() -> None:
    global _gates_lock
    _gates_lock = threading.Lock()
    for gate in _gates.values():
        gate.forget_parent()


os.register_at_fork(after_in_child=_after_fork_in_child)


def gate_for(path: str) -> WriterGate:
    path = os.path.abspath(path)
    with _gates_lock:
        return _gates.setdefault(path, WriterGate(f"{path}.writer-lock"))


WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")


@lru_cache(maxsize=1024)
def _qmark_query(query: str) -> str:
    return base.FORMAT_QMARK_REGEX.sub("?", query).replace("%%", "%")


class GatedCursor(base.SQLiteCursorWrapper):
    """A write made outside a transaction (autocommit) takes the gate for its one statement, so it
    never holds SQLite's lock while a writer at the gate sleeps in the busy handler.

    Django rewrites every statement's %s to ? with a regular expression, 8 µs a statement here,
    the same few hundred statements over and over: the rewrite is remembered."""

    database: "DatabaseWrapper"

    def convert_query(self, query, *, param_names=None):
        if param_names is None:
            return _qmark_query(query)
        return super().convert_query(query, param_names=param_names)

    def execute(self, query, params=None):
        if not self.database.lone_write(query):
            return super().execute(query, params)
        with self.database.gate_held():
            return super().execute(query, params)

    def executemany(self, query, param_list):
        if not self.database.lone_write(query):
            return super().executemany(query, param_list)
        with self.database.gate_held():
            return super().executemany(query, param_list)


class DatabaseWrapper(base.DatabaseWrapper):
    holds_gate = False
    commits_since_checkpoint = 0

    @cached_property
    def gate(self) -> WriterGate | None:
        if self.is_in_memory_db():
            return None
        return gate_for(str(self.settings_dict["NAME"]))

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        connection.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")
        return connection

    def committed(self) -> None:
        """After a commit, with the gate open again: now and then, copy the WAL into the database."""
        self.commits_since_checkpoint += 1
        if self.commits_since_checkpoint < CHECKPOINT_EVERY_COMMITS or self.gate is None:
            return
        self.commits_since_checkpoint = 0
        try:
            self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except base.Database.Error as exc:  # the commit stands; the next checkpoint copies what this one did not
            log.warning("WAL checkpoint failed: %s", exc)

    def create_cursor(self, name=None):
        cursor = self.connection.cursor(factory=GatedCursor)
        cursor.database = self
        return cursor

    def lone_write(self, query: str) -> bool:
        return (self.autocommit and not self.holds_gate and self.gate is not None
                and query.lstrip()[:6].upper() in WRITES)

    def _acquire_gate(self):
        if self.gate is not None and not self.holds_gate:
            self.gate.acquire(float(self.settings_dict["OPTIONS"].get("timeout", 20)))
            self.holds_gate = True

    def _release_gate(self):
        if self.holds_gate:
            self.holds_gate = False
            self.gate.release()

    @contextmanager
    def gate_held(self):
        """The gate for one statement outside a transaction, which commits as it runs."""
        self._acquire_gate()
        try:
            yield
        finally:
            self._release_gate()
        self.committed()

    def _start_transaction_under_autocommit(self):
        self._acquire_gate()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_gate()
            raise

    def _commit(self):
        try:
            super()._commit()
        finally:
            self._release_gate()
        self.committed()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release_gate()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._release_gate()
