"""B6: the emulator register keeps its fiscal memory in a file of its own, as a real register keeps
it on its fiscal drive: the shop's database holds no journal, twin calls for one uuid make one
document, and an installation upgraded from the journal in the database keeps every document."""

import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from decimal import Decimal as D

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone as django_time

from orderdesk.fiscal import services as fiscal
from orderdesk.fiscal.drivers import emulator_memory
from orderdesk.fiscal.drivers.emulator import EmulatorDriver
from orderdesk.fiscal.models import Receipt
from orderdesk.fiscal.rules import PayMethod
from orderdesk.orders import services as orders
from orderdesk.orders.schemas import OrderIn
from orderdesk.payments import services as payments
from tests.conftest import committed_db, order_body, run_worker
from tests.processes import at_once

DRIVE = "9999078900000042"
AT = datetime(2026, 12, 5, 9, 30, tzinfo=timezone.utc)


def make(uuid: str, total: str = "100.00") -> emulator_memory.Document:
    return emulator_memory.record(DRIVE, uuid, shift_number=lambda: 1, settlement=1, total=D(total), registered_at=AT,
                                  sign=lambda fd_number: f"{fd_number:010d}")


def test_b06_the_emulator_writes_its_documents_to_its_own_file_and_nothing_to_the_shops_database(
        settings, site_actor, actor_of, registers):
    order = orders.place_order(site_actor, OrderIn(**order_body("memory-1"))).order
    orders.set_status(actor_of("manager"), order.pk, "agreed")
    [receipt] = payments.take_payment(actor_of("cashier"), order.pk, register_id=registers.desk.pk,
                                      amount=D("300.00"), method=PayMethod.CASH).receipts

    run_worker()

    assert not any("journal" in table for table in connection.introspection.table_names())
    with closing(sqlite3.connect(settings.FISCAL_EMULATOR_PATH)) as memory:
        rows = memory.execute("SELECT fn_number, uuid, fd_number, total FROM document").fetchall()
    receipt.refresh_from_db()
    assert rows == [(EmulatorDriver(registers.desk).fn_number, receipt.uuid, 1, "300.00")]
    assert (receipt.state, receipt.fd_number) == ("registered", 1)
    assert fiscal.registers_with_due_receipts() == []


def test_b06_connections_that_open_a_new_memory_at_once_all_set_it_up(settings, tmp_path):
    for attempt in range(20):  # a new file met at once by two connections: 3 of 40 without the retry
        settings.FISCAL_EMULATOR_PATH = tmp_path / f"new-{attempt}" / "fiscal-emulator.sqlite3"
        assert at_once(12, lambda n: emulator_memory.find(DRIVE, "nothing")) == [None] * 12
        with closing(sqlite3.connect(settings.FISCAL_EMULATOR_PATH)) as memory:
            assert memory.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_b06_twin_calls_for_one_uuid_make_one_document_and_other_uuids_number_on_without_a_gap():
    uuids = ["twin"] * 6 + [f"other-{n}" for n in range(6)]

    answers = at_once(len(uuids), lambda n: make(uuids[n]))

    assert all(isinstance(answer, emulator_memory.Document) for answer in answers), answers
    twins = {(a.fd_number, a.fiscal_sign) for a in answers if a.uuid == "twin"}
    assert len(twins) == 1
    journal = emulator_memory.journal(DRIVE)
    assert sorted(d.fd_number for d in journal) == list(range(1, 8))
    assert sorted(d.uuid for d in journal) == sorted(set(uuids))


def test_b06_a_drive_numbers_its_own_documents_and_reports_a_shift_from_them():
    make("a", "100.00")
    emulator_memory.record("another drive", "b", shift_number=lambda: 1, settlement=1, total=D("5.00"),
                           registered_at=AT, sign=str)
    make("c", "20.50")
    emulator_memory.record(DRIVE, "refund", shift_number=lambda: 1, settlement=2, total=D("0.50"), registered_at=AT,
                           sign=str)
    emulator_memory.record(DRIVE, "next shift", shift_number=lambda: 2, settlement=1, total=D("7.00"), registered_at=AT,
                           sign=str)

    assert [(d.uuid, d.fd_number) for d in emulator_memory.journal(DRIVE)] == [
        ("a", 1), ("c", 2), ("refund", 3), ("next shift", 4)]
    assert [(d.uuid, d.fd_number) for d in emulator_memory.journal("another drive")] == [("b", 1)]
    shift = emulator_memory.shift_documents(DRIVE, 1)
    assert [(d.settlement, d.total) for d in shift] == [(1, D("100.00")), (1, D("20.50")), (2, D("0.50"))]
    assert emulator_memory.find(DRIVE, "c") == emulator_memory.Document(
        "c", 2, "0000000002", 1, 1, D("20.50"), AT)


def test_b06_documents_kept_from_elsewhere_keep_their_numbers_and_a_conflicting_one_keeps_nothing():
    made = make("made here")
    moved = [(DRIVE, emulator_memory.Document("moved", 7, "sign-7", 2, 1, D("9.99"), AT)),
             (DRIVE, made)]  # the same document again: kept once

    emulator_memory.keep(moved)
    emulator_memory.keep(moved)
    assert [(d.uuid, d.fd_number) for d in emulator_memory.journal(DRIVE)] == [("made here", 1), ("moved", 7)]

    under_a_taken_number = emulator_memory.Document("stranger", 7, "sign-x", 2, 1, D("1.00"), AT)
    with pytest.raises(emulator_memory.ConflictingDocument):
        emulator_memory.keep([(DRIVE, emulator_memory.Document("new", 8, "sign-8", 2, 1, D("1.00"), AT)),
                              (DRIVE, under_a_taken_number)])
    assert [d.uuid for d in emulator_memory.journal(DRIVE)] == ["made here", "moved"]  # nothing of the two


def test_b06_a_fiscal_memory_that_fails_makes_the_receipt_wait_as_for_a_register_away_and_it_is_registered_once_back(
        settings, tmp_path, site_actor, actor_of, registers):
    order = orders.place_order(site_actor, OrderIn(**order_body("memory-2"))).order
    orders.set_status(actor_of("manager"), order.pk, "agreed")
    [receipt] = payments.take_payment(actor_of("cashier"), order.pk, register_id=registers.desk.pk,
                                      amount=D("300.00"), method=PayMethod.CASH).receipts
    working = settings.FISCAL_EMULATOR_PATH
    settings.FISCAL_EMULATOR_PATH = tmp_path  # a directory: SQLite cannot open it

    run_worker()

    receipt.refresh_from_db()
    assert (receipt.state, receipt.attempts) == ("pending", 1)
    assert "fiscal memory failed" in receipt.last_error
    settings.FISCAL_EMULATOR_PATH = working
    Receipt.objects.filter(pk=receipt.pk).update(next_attempt_at=django_time.now())
    run_worker()
    receipt.refresh_from_db()
    assert (receipt.state, receipt.fd_number) == ("registered", 1)
    assert [d.uuid for d in emulator_memory.journal()] == [receipt.uuid]


@committed_db  # migrating runs outside a test's transaction
def test_b06_an_upgrade_moves_the_journal_from_the_database_with_its_numbers_and_a_downgrade_moves_it_back():
    call_command("migrate", "fiscal", "0005", verbosity=0)
    try:
        old = MigrationExecutor(connection).loader.project_state(
            ("fiscal", "0005_receipt_entry_indexed_by_its_unique_only")).apps
        register = old.get_model("fiscal", "Register").objects.create(
            name="Касса", connection={"fn_number": DRIVE}, company_inn="7707083893", company_email="shop@example.com",
            payment_address="г. Москва")
        journal = old.get_model("fiscal", "EmulatorJournal").objects
        for fd_number, uuid in [(1, "first"), (2, "second")]:
            journal.create(register=register, uuid=uuid, fd_number=fd_number, fiscal_sign=f"sign-{fd_number}",
                           shift_number=3, settlement=1, total=D("150.00"), registered_at=AT)
    finally:
        call_command("migrate", verbosity=0)

    assert [(d.uuid, d.fd_number, d.fiscal_sign, d.shift_number, d.total, d.registered_at)
            for d in emulator_memory.journal(DRIVE)] == [
        ("first", 1, "sign-1", 3, D("150.00"), AT), ("second", 2, "sign-2", 3, D("150.00"), AT)]
    assert make("second").fd_number == 2  # a repeat: its document as it was
    assert make("third").fd_number == 3

    call_command("migrate", "fiscal", "0005", verbosity=0)  # undone: the documents go back into the table
    try:
        old = MigrationExecutor(connection).loader.project_state(
            ("fiscal", "0005_receipt_entry_indexed_by_its_unique_only")).apps
        assert list(old.get_model("fiscal", "EmulatorJournal").objects.order_by("fd_number").values_list(
            "register_id", "uuid", "fd_number", "fiscal_sign")) == [
            (register.pk, "first", 1, "sign-1"), (register.pk, "second", 2, "sign-2"),
            (register.pk, "third", 3, "0000000003")]
    finally:
        call_command("migrate", verbosity=0)
