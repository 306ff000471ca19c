"""The emulator register's fiscal memory: a SQLite file of its own (`FISCAL_EMULATOR_PATH`), the way a
real register keeps its documents on its fiscal drive and not in the shop's database.

It used to be a table of the shop's database. On SQLite every receipt the worker registered was
then one more transaction at the database's one writer, and the shop's own writes queued behind
it: in a served lifecycle (an order's three receipts) the worker's transactions there fell from
3.5 to 0.8, and the time it holds the writer from about 3 ms to 2. A real register never took
that lock.

A document is keyed by the fiscal drive's number and numbered on from that drive's last; a uuid met
again is answered with the document it already has."""

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from django.conf import settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS document (
    fn_number TEXT NOT NULL,
    fd_number INTEGER NOT NULL,
    uuid TEXT NOT NULL,
    fiscal_sign TEXT NOT NULL,
    shift_number INTEGER NOT NULL,
    settlement INTEGER NOT NULL,
    total TEXT NOT NULL,
    registered_at TEXT NOT NULL,
    PRIMARY KEY (fn_number, fd_number),
    UNIQUE (fn_number, uuid)
);
CREATE INDEX IF NOT EXISTS document_shift ON document (fn_number, shift_number);
"""
COLUMNS = "uuid, fd_number, fiscal_sign, shift_number, settlement, total, registered_at"
BUSY_TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class Document:
    uuid: str
    fd_number: int
    fiscal_sign: str
    shift_number: int
    settlement: int
    total: Decimal
    registered_at: datetime


_held = threading.local()  # (path, connection) of this thread
_parents = []  # what a forked child inherited: kept, never used nor closed there (SQLite's advice)


def _forget_parents_connections() -> None:
    global _held
    _parents.append(_held)
    _held = threading.local()


os.register_at_fork(after_in_child=_forget_parents_connections)


def _connection() -> sqlite3.Connection:
    """This thread's connection to the memory at the configured path (a test gives each its own)."""
    path = str(settings.FISCAL_EMULATOR_PATH)
    held = getattr(_held, "memory", None)
    if held is not None:
        if held[0] == path:
            return held[1]
        held[1].close()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        _set_up(connection)
    except BaseException:
        connection.close()
        raise
    _held.memory = (path, connection)
    return connection


def _set_up(connection: sqlite3.Connection) -> None:
    """WAL and the table, once per file. Switching a new file to WAL needs it to itself and does not
    wait for the busy timeout: two connections opening it at once find it locked, so they try
    again until the timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(SCHEMA)
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    connection.execute("PRAGMA synchronous=NORMAL")


def _document(row: tuple) -> Document:
    uuid, fd_number, fiscal_sign, shift_number, settlement, total, registered_at = row
    return Document(uuid, fd_number, fiscal_sign, shift_number, settlement, Decimal(total),
                    datetime.fromisoformat(registered_at))


def find(fn_number: str, uuid: str) -> Document | None:
    row = _connection().execute(f"SELECT {COLUMNS} FROM document WHERE fn_number = ? AND uuid = ?",
                                (fn_number, uuid)).fetchone()
    return None if row is None else _document(row)


@contextmanager
def _writing() -> Iterator[sqlite3.Connection]:
    """One writing transaction: committed, or rolled back on an exception."""
    connection = _connection()
    connection.execute("BEGIN IMMEDIATE")
    with connection:
        yield connection


def record(fn_number: str, uuid: str, *, shift_number: Callable[[], int], settlement: int, total: Decimal,
           registered_at: datetime, sign: Callable[[int], str]) -> Document:
    """The document the drive holds for `uuid` (a repeat, even once its shift has closed), or a new
    one: numbered next on the drive, in the shift `shift_number()` names (asked only then; it raises
    when there is none) and signed by `sign(fd_number)`."""
    with _writing() as connection:
        if (known := find(fn_number, uuid)) is not None:
            return known
        (last,) = connection.execute("SELECT coalesce(max(fd_number), 0) FROM document WHERE fn_number = ?",
                                     (fn_number,)).fetchone()
        made = Document(uuid, last + 1, sign(last + 1), shift_number(), settlement, total, registered_at)
        _insert(connection, fn_number, made)
    return made


class ConflictingDocument(Exception):
    """The memory already holds another document under a number or uuid being kept."""


def keep(documents: list[tuple[str, Document]]) -> None:
    """Keep documents made elsewhere (fiscal drive, document), numbers and all, in one transaction.
    A document the drive holds already, the same in every respect, is kept once; one that differs
    from what the drive holds under its number or uuid stops it all, and nothing is kept."""
    with _writing() as connection:
        for fn_number, document in documents:
            try:
                _insert(connection, fn_number, document)
            except sqlite3.IntegrityError:
                if find(fn_number, document.uuid) != document:
                    raise ConflictingDocument(
                        f"drive {fn_number} holds another document under № {document.fd_number} or uuid {document.uuid}"
                    ) from None


def _insert(connection: sqlite3.Connection, fn_number: str, document: Document) -> None:
    connection.execute(f"INSERT INTO document (fn_number, {COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (fn_number, document.uuid, document.fd_number, document.fiscal_sign, document.shift_number,
                        document.settlement, str(document.total), document.registered_at.isoformat()))


def shift_documents(fn_number: str, shift_number: int) -> list[Document]:
    return [_document(row) for row in _connection().execute(
        f"SELECT {COLUMNS} FROM document WHERE fn_number = ? AND shift_number = ? ORDER BY fd_number",
        (fn_number, shift_number))]


def journal(fn_number: str | None = None) -> list[Document]:
    """The documents of one drive, or of all, in the order they were made."""
    where, params = ("WHERE fn_number = ?", (fn_number,)) if fn_number is not None else ("", ())
    return [_document(row) for row in _connection().execute(f"SELECT {COLUMNS} FROM document {where} ORDER BY rowid",
                                                             params)]
