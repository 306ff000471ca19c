"""B6: a payment and the receipt it owes are one transaction; the worker registers receipts with
the register, in the order the money moved, retries while the register is offline, and never
registers one twice — with the emulator and with the ATOL protocol drivers against local servers."""

import time
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from orderdesk.fiscal import services as fiscal
from orderdesk.fiscal.drivers import emulator_memory
from orderdesk.fiscal.drivers.base import ReceiptRejected, RegisterUnavailable
from orderdesk.fiscal.drivers.emulator import EmulatorDriver
from orderdesk.fiscal.models import Receipt, Register, Shift
from orderdesk.fiscal.rules import PayMethod
from orderdesk.orders import services as orders
from orderdesk.orders.models import Order, OrderEvent
from orderdesk.orders.schemas import OrderIn
from orderdesk.payments import services as payments
from orderdesk.payments.models import Document, PaymentEntry
from tests.conftest import COMPANY, order_body, run_worker
from tests.fiscal.atol_online_server import AtolOnlineServer
from tests.fiscal.atol_web_server import AtolWebServer

D = Decimal
REGISTERED, PENDING, REGISTERING, FAILED = (Receipt.State.REGISTERED, Receipt.State.PENDING,
                                            Receipt.State.REGISTERING, Receipt.State.FAILED)


@pytest.fixture
def cashier(actor_of):
    return actor_of("cashier")


@pytest.fixture
def place(site_actor, actor_of):
    """place() → a new agreed site order of 900.00."""
    counter = iter(range(1, 100_000))
    admin = actor_of("administrator")

    def make() -> Order:
        order = orders.place_order(site_actor, OrderIn(**order_body(f"b06-{next(counter)}"))).order
        orders.set_status(admin, order.pk, "agreed")
        order.refresh_from_db()
        return order

    return make


def pay(cashier, order: Order, amount: str, register: Register, method=PayMethod.CASH):
    return payments.take_payment(cashier, order.pk, register_id=register.pk, amount=D(amount), method=method)


def set_offline(register: Register, offline: bool) -> None:
    register.connection = {"offline": True} if offline else {}
    register.save(update_fields=["connection"])


def make_due() -> None:
    """Time passes: every waiting receipt is due now."""
    Receipt.objects.filter(state=PENDING).update(next_attempt_at=timezone.now())


def left_claimed_by_a_dead_worker(receipt: Receipt) -> None:
    """The receipt as a worker killed mid-registration leaves it: claimed once, the claim run out."""
    Receipt.objects.filter(pk=receipt.pk).update(state=REGISTERING, attempts=1,
                                                 next_attempt_at=timezone.now() - timedelta(minutes=5),
                                                 claimed_until=timezone.now() - timedelta(seconds=1))


def journal_uuids(register: Register) -> list[str]:
    return [document.uuid for document in emulator_memory.journal(EmulatorDriver(register).fn_number)]


# ---- one transaction ----


def test_b06_a_payment_rolled_back_after_it_was_taken_leaves_neither_payment_nor_receipt(cashier, place, registers):
    order = place()

    with pytest.raises(RuntimeError):
        with transaction.atomic():
            result = pay(cashier, order, "300.00", registers.desk)
            assert [r.purpose for r in result.receipts] == ["advance"]  # both were written...
            raise RuntimeError("the caller's transaction fails after take_payment")

    # ...and both are gone with it
    assert Receipt.objects.count() == 0
    assert PaymentEntry.objects.count() == 0
    assert Document.objects.count() == 0
    order.refresh_from_db()
    assert (order.payment_status, order.paid_amount) == ("not_paid", D("0.00"))
    run_worker()
    assert len(emulator_memory.journal()) == 0


def test_b06_a_receipt_that_cannot_be_written_takes_the_payment_down_with_it(cashier, place, registers):
    order = place()

    with mock.patch("orderdesk.core.rows.insert_many", side_effect=IntegrityError("disk full")):  # the receipt's lines
        with pytest.raises(IntegrityError):
            pay(cashier, order, "300.00", registers.desk)

    assert PaymentEntry.objects.count() == 0
    assert Receipt.objects.count() == 0
    order.refresh_from_db()
    assert (order.payment_status, order.paid_amount) == ("not_paid", D("0.00"))


# ---- the worker ----


def test_b06_the_worker_registers_the_receipt_written_with_the_payment(cashier, place, registers):
    order = place()
    [receipt] = pay(cashier, order, "300.00", registers.desk).receipts
    receipt.refresh_from_db()
    assert (receipt.state, receipt.attempts, receipt.fd_number, receipt.qr_string) == (PENDING, 0, None, "")

    run_worker()

    receipt.refresh_from_db()
    assert (receipt.state, receipt.attempts, receipt.last_error) == (REGISTERED, 1, "")
    [row] = emulator_memory.journal(EmulatorDriver(registers.desk).fn_number)
    assert (row.uuid, row.fd_number, row.total, row.settlement) == (receipt.uuid, 1, D("300.00"), 1)
    assert (receipt.fd_number, receipt.fiscal_sign, receipt.shift_number) == (1, row.fiscal_sign, 1)
    assert receipt.fn_number == f"99990789{registers.desk.pk:08d}"
    assert receipt.registered_at is not None
    assert f"&s=300.00&fn={receipt.fn_number}&i=1&fp={row.fiscal_sign}&n=1" in receipt.qr_string
    event = OrderEvent.objects.filter(order=order, code="receipt.registered").get()
    assert (event.payload["receipt_id"], event.payload["fd_number"]) == (receipt.pk, 1)


def test_b06_a_deadlock_while_recording_a_registered_receipt_is_written_again_not_left_claimed(
        cashier, place, registers):
    order = place()
    [receipt] = pay(cashier, order, "300.00", registers.desk).receipts
    record, codes = fiscal.events.record, []

    def deadlock_the_first_time(order, code, *args, **kwargs):
        codes.append(code)
        if len(codes) == 1:
            raise OperationalError("deadlock detected")
        return record(order, code, *args, **kwargs)

    with mock.patch.object(fiscal.events, "record", side_effect=deadlock_the_first_time):
        run_worker()

    receipt.refresh_from_db()
    assert (receipt.state, receipt.attempts, receipt.claimed_until) == (REGISTERED, 1, None)
    assert codes == ["receipt.registered", "receipt.registered"]
    assert OrderEvent.objects.filter(order=order, code="receipt.registered").count() == 1
    assert journal_uuids(registers.desk) == [receipt.uuid]  # printed once


def test_b06_an_offline_register_makes_the_receipt_wait_and_it_is_registered_once_when_back(cashier, place, registers):
    order = place()
    set_offline(registers.desk, True)
    [receipt] = pay(cashier, order, "300.00", registers.desk).receipts

    run_worker()

    receipt.refresh_from_db()
    assert (receipt.state, receipt.attempts) == (PENDING, 1)
    assert receipt.next_attempt_at > timezone.now()
    assert "RegisterUnavailable" in receipt.last_error and "does not answer" in receipt.last_error
    assert receipt.claimed_until is None
    assert PaymentEntry.objects.filter(order=order).count() == 1  # the money is recorded all the same
    order.refresh_from_db()
    assert (order.payment_status, order.paid_amount) == ("partially_paid", D("300.00"))
    assert len(emulator_memory.journal()) == 0
    assert fiscal.registers_with_due_receipts() == []  # it waits for its retry time

    run_worker()  # nothing is due yet: nothing is tried
    receipt.refresh_from_db()
    assert (receipt.state, receipt.attempts) == (PENDING, 1)

    set_offline(registers.desk, False)
    make_due()
    run_worker()

    receipt.refresh_from_db()
    assert (receipt.state, receipt.attempts, receipt.last_error, receipt.fd_number) == (REGISTERED, 2, "", 1)
    assert journal_uuids(registers.desk) == [receipt.uuid]

    make_due()
    run_worker()
    assert fiscal.register_pending(registers.desk.pk) == 0
    assert journal_uuids(registers.desk) == [receipt.uuid]
    receipt.refresh_from_db()
    assert (receipt.state, receipt.attempts, receipt.fd_number) == (REGISTERED, 2, 1)


def test_b06_receipts_of_a_register_are_registered_in_the_order_the_money_moved(cashier, manager_actor, place,
                                                                              registers):
    first, second = place(), place()
    set_offline(registers.desk, True)
    pay(cashier, first, "100.00", registers.desk)
    pay(cashier, second, "200.00", registers.desk, PayMethod.CARD)
    pay(cashier, first, "300.00", registers.desk)
    payments.refund(manager_actor, second.pk, amount=D("50.00"), method=PayMethod.CARD, register_id=registers.desk.pk)
    run_worker()
    waiting = list(Receipt.objects.order_by("id"))
    assert [(r.state, r.attempts) for r in waiting] == [(PENDING, 1), (PENDING, 0), (PENDING, 0), (PENDING, 0)]

    # the later receipts are due, the oldest is not: they wait behind it
    set_offline(registers.desk, False)
    Receipt.objects.exclude(pk=waiting[0].pk).update(next_attempt_at=timezone.now())
    assert fiscal.register_pending(registers.desk.pk) == 0
    assert len(emulator_memory.journal()) == 0

    make_due()
    run_worker()

    registered = list(Receipt.objects.order_by("id"))
    assert [r.state for r in registered] == [REGISTERED] * 4
    assert [r.fd_number for r in registered] == [1, 2, 3, 4]
    assert [(r.settlement, r.total) for r in registered] == [
        (1, D("100.00")), (1, D("200.00")), (1, D("300.00")), (2, D("50.00"))]
    assert journal_uuids(registers.desk) == [r.uuid for r in registered]


@pytest.fixture
def manager_actor(actor_of):
    return actor_of("manager")


def test_b06_a_receipt_left_registering_by_a_killed_worker_is_taken_again_when_its_claim_runs_out_and_registered_once(cashier, place, registers):
    order = place()
    [receipt] = pay(cashier, order, "300.00", registers.desk).receipts
    # A worker claimed the receipt, the register fiscalised it, and the worker died before it wrote the answer.
    EmulatorDriver(registers.desk).register(fiscal.receipt_doc(receipt), {})
    five_minutes_ago = timezone.now() - timedelta(minutes=5)
    Receipt.objects.filter(pk=receipt.pk).update(state=REGISTERING, attempts=1, next_attempt_at=five_minutes_ago,
                                                 claimed_until=timezone.now() + timedelta(seconds=60))

    assert fiscal.registers_with_due_receipts() == []  # the claim has not expired yet
    run_worker()
    receipt.refresh_from_db()
    assert (receipt.state, receipt.attempts) == (REGISTERING, 1)

    Receipt.objects.filter(pk=receipt.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert fiscal.registers_with_due_receipts() == [registers.desk.pk]
    run_worker()

    receipt.refresh_from_db()
    [row] = emulator_memory.journal()
    assert (receipt.state, receipt.attempts, receipt.claimed_until) == (REGISTERED, 2, None)
    assert (receipt.uuid, receipt.fd_number, receipt.fiscal_sign) == (row.uuid, 1, row.fiscal_sign)
    assert fiscal.registers_with_due_receipts() == []
    run_worker()
    assert len(emulator_memory.journal()) == 1


def test_b06_a_stuck_receipt_whose_claim_expired_is_taken_by_the_next_worker_pass(cashier, place, registers):
    order = place()
    [receipt] = pay(cashier, order, "300.00", registers.desk).receipts
    left_claimed_by_a_dead_worker(receipt)

    assert fiscal.register_pending(registers.desk.pk) == 1

    receipt.refresh_from_db()
    assert (receipt.state, receipt.attempts, receipt.fd_number) == (REGISTERED, 2, 1)
    assert journal_uuids(registers.desk) == [receipt.uuid]


# ---- what the database refuses ----


def test_b06_the_database_refuses_a_second_hand_over_receipt_for_an_order(cashier, place, registers):
    order = place()
    pay(cashier, order, "900.00", registers.desk)
    [final] = payments.change_status(cashier, order.pk, "issued", register_id=registers.desk.pk).receipts
    assert final.purpose == "final"

    for purpose in ("final", "credit", "sale"):
        with pytest.raises(IntegrityError), transaction.atomic():
            Receipt.objects.create(uuid=f"second-{purpose}", order=order, register=registers.desk, purpose=purpose,
                                   settlement=1, total=D("900.00"), prepayment=D("900.00"), taxation="osn")

    assert list(Receipt.objects.filter(order=order, purpose="final").values_list("pk", flat=True)) == [final.pk]
    # another order may have its own
    other = place()
    Receipt.objects.create(uuid="other-final", order=other, register=registers.desk, purpose="final",
                           settlement=1, total=D("900.00"), cash=D("900.00"), taxation="osn")


def test_b06_the_database_refuses_a_second_receipt_for_the_same_ledger_entry(cashier, place, registers):
    order = place()
    [receipt] = pay(cashier, order, "300.00", registers.desk).receipts
    entry = PaymentEntry.objects.get(order=order)
    assert receipt.entry_id == entry.pk

    with pytest.raises(IntegrityError), transaction.atomic():
        Receipt.objects.create(uuid="twin", order=order, entry=entry, register=registers.desk, purpose="advance",
                               settlement=1, total=D("300.00"), cash=D("300.00"), taxation="osn")

    assert Receipt.objects.filter(entry=entry).count() == 1


# ---- a receipt the register refuses ----


def test_b06_a_rejected_receipt_fails_with_an_event_and_the_next_receipt_of_the_register_goes_on(
        cashier, place, registers, monkeypatch):
    order = place()
    [bad] = pay(cashier, order, "100.00", registers.desk).receipts
    [good] = pay(cashier, order, "200.00", registers.desk).receipts
    real_driver_for = fiscal.driver_for

    class Refusing:
        def __init__(self, register):
            self.inner = real_driver_for(register)

        def register(self, doc, state):
            if doc.uuid == bad.uuid:
                raise ReceiptRejected("ККТ: ошибка 16, неверная цена (сумма)")
            return self.inner.register(doc, state)

    monkeypatch.setattr(fiscal, "driver_for", Refusing)

    run_worker()

    bad.refresh_from_db()
    good.refresh_from_db()
    assert (bad.state, bad.attempts, bad.fd_number, bad.claimed_until) == (FAILED, 1, None, None)
    assert "неверная цена" in bad.last_error
    assert (good.state, good.fd_number) == (REGISTERED, 1)
    assert journal_uuids(registers.desk) == [good.uuid]
    [failed] = OrderEvent.objects.filter(order=order, code="receipt.failed")
    assert (failed.payload["receipt_id"], failed.payload["purpose"]) == (bad.pk, "advance")
    assert "неверная цена" in failed.payload["error"]
    # a failed receipt is a person's business: the worker leaves it alone
    make_due()
    run_worker()
    assert fiscal.registers_with_due_receipts() == []
    bad.refresh_from_db()
    assert (bad.state, bad.attempts) == (FAILED, 1)


# ---- the protocol drivers end to end ----


@pytest.fixture
def atol_web():
    with AtolWebServer() as server:
        yield server
        assert all(count <= 1 for count in server.registered.values()), server.registered


@pytest.fixture
def atol_web_desk(db, atol_web):
    register = Register.objects.create(
        name="Касса АТОЛ", driver=Register.Driver.ATOL_WEB,
        connection={"base_url": atol_web.url, "poll_interval": 0.01, "poll_deadline": 2}, **COMPANY)
    Shift.objects.create(register=register, number=1, opened_by="test")
    return register


def test_b06_atol_web_server_registers_the_receipt_with_its_fd_number(cashier, place, atol_web, atol_web_desk):
    order = place()
    [receipt] = pay(cashier, order, "300.00", atol_web_desk).receipts

    run_worker()

    receipt.refresh_from_db()
    [fiscalised] = atol_web.receipts
    assert fiscalised["uuid"] == receipt.uuid
    assert (receipt.state, receipt.attempts) == (REGISTERED, 1)
    assert receipt.fd_number == fiscalised["fiscalDocumentNumber"]
    assert (receipt.fn_number, receipt.fiscal_sign) == (atol_web.fn_number, fiscalised["fiscalDocumentSign"])
    assert fiscalised["type"] == "sell"
    assert D(str(fiscalised["total"])) == D("300.00")
    assert [item["paymentMethod"] for item in fiscalised["items"]] == ["advance"]
    assert atol_web.registered == {receipt.uuid: 1}


def test_b06_atol_web_server_offline_then_back_registers_each_receipt_once_in_order(cashier, place, atol_web,
                                                                                    atol_web_desk):
    order = place()
    atol_web.offline = True
    [first] = pay(cashier, order, "300.00", atol_web_desk).receipts
    [second] = pay(cashier, order, "100.00", atol_web_desk, PayMethod.CARD).receipts

    run_worker()

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, first.attempts, second.state, second.attempts) == (PENDING, 1, PENDING, 0)
    assert "unreachable" in first.last_error
    assert atol_web.journal == []

    atol_web.offline = False
    make_due()
    run_worker()

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == (REGISTERED, REGISTERED)
    assert [r["uuid"] for r in atol_web.receipts] == [first.uuid, second.uuid]
    assert [first.fd_number, second.fd_number] == [r["fiscalDocumentNumber"] for r in atol_web.receipts]
    assert first.fd_number < second.fd_number
    assert atol_web.registered == {first.uuid: 1, second.uuid: 1}


def test_b06_atol_web_server_a_worker_killed_after_sending_does_not_print_the_receipt_twice(
        cashier, place, atol_web, atol_web_desk):
    order = place()
    [receipt] = pay(cashier, order, "300.00", atol_web_desk).receipts
    # The worker sent the task and the register printed it; the worker died before saving anything.
    fiscal.driver_for(atol_web_desk).register(fiscal.receipt_doc(receipt), {})
    assert atol_web.registered == {receipt.uuid: 1}
    left_claimed_by_a_dead_worker(receipt)

    assert fiscal.registers_with_due_receipts() == [receipt.register_id]
    run_worker()

    receipt.refresh_from_db()
    [fiscalised] = atol_web.receipts
    assert (receipt.state, receipt.attempts) == (REGISTERED, 2)
    assert receipt.fd_number == fiscalised["fiscalDocumentNumber"]
    assert atol_web.registered == {receipt.uuid: 1}
    assert atol_web.posts[receipt.uuid] == 2  # sent again under the same uuid, and refused as a repeat


@pytest.fixture
def atol_online():
    with AtolOnlineServer(inn=COMPANY["company_inn"]) as server:
        yield server
        assert all(count <= 1 for count in server.registered.values()), server.registered


@pytest.fixture
def atol_online_register(db, atol_online):
    """The shop's online register for e-receipts is an ATOL Online cloud register."""
    return Register.objects.create(
        name="АТОЛ Онлайн", driver=Register.Driver.ATOL_ONLINE, is_online=True,
        connection={"base_url": atol_online.base_url, "login": atol_online.login, "password": atol_online.password,
                    "group_code": atol_online.group_code, "poll_interval": 0.01, "poll_deadline": 2},
        **COMPANY)


def transfer(manager_actor, order: Order, amount: str) -> Receipt:
    """A bank transfer from the private person: a non-cash receipt posted, its e-receipt on the online register."""
    document = payments.create_document(manager_actor, order.pk, "noncash_receipt")
    payments.update_document(manager_actor, document.pk, amount=D(amount))
    [receipt] = payments.post_document(manager_actor, document.pk).receipts
    return receipt


def test_b06_atol_online_registers_the_e_receipt_with_its_fd_number(manager_actor, place, atol_online,
                                                                    atol_online_register):
    order = place()
    receipt = transfer(manager_actor, order, "300.00")
    assert (receipt.register_id, receipt.electronically) == (atol_online_register.pk, True)

    run_worker()

    receipt.refresh_from_db()
    [document] = atol_online.posts(receipt.uuid)
    assert (receipt.state, receipt.attempts) == (REGISTERED, 1)
    assert receipt.fd_number == document.payload["fiscal_document_number"]
    assert receipt.fn_number == atol_online.fn_number
    assert receipt.shift_number == atol_online.shift_number
    assert document.body["receipt"]["client"]["email"] == "buyer@example.com"
    assert [item["payment_method"] for item in document.body["receipt"]["items"]] == ["advance"]
    assert atol_online.registered == {receipt.uuid: 1}


def test_b06_atol_online_offline_then_back_registers_the_receipt_once(manager_actor, place, atol_online,
                                                                     atol_online_register):
    order = place()
    atol_online.offline = True
    receipt = transfer(manager_actor, order, "300.00")

    run_worker()

    receipt.refresh_from_db()
    assert (receipt.state, receipt.attempts) == (PENDING, 1)
    assert "no register online" in receipt.last_error
    assert atol_online.registered == {}

    atol_online.offline = False
    make_due()
    run_worker()

    receipt.refresh_from_db()
    assert (receipt.state, receipt.attempts) == (REGISTERED, 2)
    failed, done = atol_online.posts(receipt.uuid)  # sent again under the same external_id
    assert (failed.status, done.status) == ("fail", "done")
    assert receipt.fd_number == done.payload["fiscal_document_number"]
    assert atol_online.registered == {receipt.uuid: 1}

    make_due()
    run_worker()
    assert atol_online.registered == {receipt.uuid: 1}
    assert len(atol_online.posts(receipt.uuid)) == 2


def test_b06_atol_online_a_worker_killed_after_sending_does_not_register_the_receipt_twice(
        manager_actor, place, atol_online, atol_online_register):
    order = place()
    receipt = transfer(manager_actor, order, "300.00")
    # The worker sent the receipt and ATOL registered it; the worker died before saving ATOL's uuid.
    fiscal.driver_for(atol_online_register).register(fiscal.receipt_doc(receipt), {})
    assert atol_online.registered == {receipt.uuid: 1}
    left_claimed_by_a_dead_worker(receipt)

    assert fiscal.registers_with_due_receipts() == [receipt.register_id]
    run_worker()

    receipt.refresh_from_db()
    [document] = atol_online.posts(receipt.uuid)  # the resend was refused as a repeat (error 33)
    assert (receipt.state, receipt.attempts) == (REGISTERED, 2)
    assert receipt.fd_number == document.payload["fiscal_document_number"]
    assert atol_online.registered == {receipt.uuid: 1}


def test_b06_a_payment_queues_no_job_the_worker_relay_finds_its_receipt_and_registers_it_once(
        cashier, place, registers):
    order = place()
    [receipt] = pay(cashier, order, "300.00", registers.desk).receipts

    assert DBTaskResult.objects.count() == 0
    assert fiscal.registers_with_due_receipts() == [registers.desk.pk]
    assert fiscal.register_due() == 1
    assert fiscal.register_due() == 0

    receipt.refresh_from_db()
    assert (receipt.state, receipt.attempts) == (REGISTERED, 1)
    assert fiscal.registers_with_due_receipts() == []
    assert len(emulator_memory.journal()) == 1


def test_b06_receipts_claimed_in_batches_are_registered_each_once_in_the_order_the_money_moved(
        cashier, place, registers):
    receipts = [pay(cashier, place(), "300.00", registers.desk).receipts[0] for _ in range(fiscal.CLAIM_BATCH + 5)]

    assert fiscal.register_pending(registers.desk.pk) == len(receipts)

    assert [document.uuid for document in emulator_memory.journal()] == [r.uuid for r in receipts]
    assert set(Receipt.objects.values_list("state", "attempts")) == {(REGISTERED, 1)}


def test_b06_registrations_are_written_down_together_a_few_in_one_transaction(cashier, place, registers, monkeypatch):
    monkeypatch.setattr(fiscal, "WRITE_DOWN_EVERY", 3)
    receipts = [pay(cashier, place(), "300.00", registers.desk).receipts[0] for _ in range(7)]
    written, real_write_down = [], fiscal._write_down
    monkeypatch.setattr(fiscal, "_write_down", lambda taken: written.append(len(taken)) or real_write_down(taken))

    assert fiscal.register_pending(registers.desk.pk) == 7

    assert [size for size in written if size] == [3, 3, 1]
    assert [r.fd_number for r in Receipt.objects.order_by("id")] == [1, 2, 3, 4, 5, 6, 7]
    assert [e.payload["fd_number"] for e in OrderEvent.objects.filter(code="receipt.registered").order_by("id")] == [
        1, 2, 3, 4, 5, 6, 7]
    assert journal_uuids(registers.desk) == [r.uuid for r in receipts]


def test_b06_what_a_slow_register_took_is_written_down_before_it_is_asked_again(cashier, place, registers):
    receipts = [pay(cashier, place(), "300.00", registers.desk).receipts[0] for _ in range(3)]
    real_register, seen_registered = EmulatorDriver.register, []

    def slow(self, doc, state):
        seen_registered.append(Receipt.objects.filter(state=REGISTERED).count())
        time.sleep(fiscal.SLOW_ANSWER_SECONDS)
        return real_register(self, doc, state)

    with mock.patch.object(EmulatorDriver, "register", slow):
        assert fiscal.register_pending(registers.desk.pk) == 3

    assert seen_registered == [0, 1, 2]  # each answer written down before the next question
    assert journal_uuids(registers.desk) == [r.uuid for r in receipts]


def test_b06_the_emulator_answers_a_repeated_uuid_with_its_document_after_the_shift_closed(
        cashier, place, registers):
    [receipt] = pay(cashier, place(), "300.00", registers.desk).receipts
    [unsent] = pay(cashier, place(), "300.00", registers.desk).receipts
    first = EmulatorDriver(registers.desk).register(fiscal.receipt_doc(receipt), {})
    Shift.objects.filter(register=registers.desk).update(closed_at=timezone.now())

    again = EmulatorDriver(registers.desk).register(fiscal.receipt_doc(receipt), {})

    assert (again.fd_number, again.fiscal_sign, again.shift_number) == (first.fd_number, first.fiscal_sign, 1)
    with pytest.raises(RegisterUnavailable):  # a new document still needs an open shift
        EmulatorDriver(registers.desk).register(fiscal.receipt_doc(unsent), {})
    assert journal_uuids(registers.desk) == [receipt.uuid]


def test_b06_a_registration_whose_claim_another_pass_took_over_is_written_down_once(cashier, place, registers):
    [receipt] = pay(cashier, place(), "300.00", registers.desk).receipts
    real_register = EmulatorDriver.register

    def claim_taken_over_meanwhile(self, doc, state):
        registration = real_register(self, doc, state)
        Receipt.objects.filter(pk=receipt.pk).update(claimed_until=timezone.now() + timedelta(minutes=9))
        return registration

    with mock.patch.object(EmulatorDriver, "register", claim_taken_over_meanwhile):
        fiscal.register_pending(registers.desk.pk)

    receipt.refresh_from_db()
    assert receipt.state == REGISTERING  # left to the pass that holds the claim now
    assert not OrderEvent.objects.filter(code="receipt.registered").exists()


class WorkerKilled(BaseException):
    """Stands for kill -9: nothing after it runs."""


def test_b06_a_worker_killed_before_writing_down_what_the_register_took_leaves_each_receipt_to_be_printed_once(
        cashier, place, registers, monkeypatch):
    receipts = [pay(cashier, place(), "300.00", registers.desk).receipts[0] for _ in range(3)]
    real_register, sent = EmulatorDriver.register, []

    def killed_after_the_third(self, doc, state):
        registration = real_register(self, doc, state)
        sent.append(doc.uuid)
        if len(sent) == 3:
            raise WorkerKilled
        return registration

    with (mock.patch.object(EmulatorDriver, "register", killed_after_the_third),
          mock.patch.object(fiscal, "_write_down", lambda taken: None),  # kill -9 leaves no time to write
          pytest.raises(WorkerKilled)):
        fiscal.register_pending(registers.desk.pk)
    assert journal_uuids(registers.desk) == [r.uuid for r in receipts]  # the register printed all three
    assert set(Receipt.objects.values_list("state", flat=True)) == {REGISTERING}  # the product wrote none down

    Receipt.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert fiscal.register_pending(registers.desk.pk) == 3

    assert journal_uuids(registers.desk) == [r.uuid for r in receipts]  # each printed once
    assert list(Receipt.objects.order_by("id").values_list("state", "fd_number")) == [
        (REGISTERED, 1), (REGISTERED, 2), (REGISTERED, 3)]


def test_b06_a_worker_stopped_by_an_error_writes_down_what_the_register_took_before_it(
        cashier, place, registers):
    receipts = [pay(cashier, place(), "300.00", registers.desk).receipts[0] for _ in range(3)]
    real_register = EmulatorDriver.register

    def failing_at_the_third(self, doc, state):
        if doc.uuid == receipts[2].uuid:
            raise RuntimeError("the driver broke")
        return real_register(self, doc, state)

    with mock.patch.object(EmulatorDriver, "register", failing_at_the_third), pytest.raises(RuntimeError):
        fiscal.register_pending(registers.desk.pk)

    assert list(Receipt.objects.order_by("id").values_list("state", flat=True)) == [REGISTERED, REGISTERED, REGISTERING]


def test_b06_each_receipt_of_a_claimed_batch_is_sent_with_its_own_lines(cashier, place, registers):
    """The batch's lines are read in one go and shared out: each receipt goes to the register with
    its own lines, which add up to its total."""
    for amount in ("100.00", "250.00", "900.00"):
        pay(cashier, place(), amount, registers.desk)
    sent = []
    really_register = EmulatorDriver.register

    def register(driver, doc, state):
        sent.append(doc)
        return really_register(driver, doc, state)

    with mock.patch.object(EmulatorDriver, "register", register):
        assert fiscal.register_pending(registers.desk.pk) == 3

    assert [doc.total for doc in sent] == [D("100.00"), D("250.00"), D("900.00")]
    for doc in sent:
        receipt = Receipt.objects.get(uuid=doc.uuid)
        assert [line.amount for line in doc.lines] == list(receipt.lines.values_list("amount", flat=True))
        assert sum(line.amount for line in doc.lines) == doc.total


def test_b06_when_the_register_goes_away_mid_batch_the_untried_receipts_wait_unattempted_behind_it(
        cashier, place, registers, monkeypatch):
    receipts = [pay(cashier, place(), "300.00", registers.desk).receipts[0] for _ in range(3)]
    really_register, sent = EmulatorDriver.register, []

    def away_at_the_second(driver, doc, state):
        sent.append(doc.uuid)
        if len(sent) == 2:
            raise RegisterUnavailable("the register does not answer")
        return really_register(driver, doc, state)

    monkeypatch.setattr(EmulatorDriver, "register", away_at_the_second)
    assert fiscal.register_pending(registers.desk.pk) == 1

    assert [(r.state, r.attempts, r.claimed_until) for r in Receipt.objects.order_by("id")] == [
        (REGISTERED, 1, None), (PENDING, 1, None), (PENDING, 0, None)]
    assert fiscal.register_pending(registers.desk.pk) == 0  # the third waits behind the second
    assert fiscal.registers_with_due_receipts() == []  # and does not wake the relay while it waits

    monkeypatch.undo()
    make_due()
    assert fiscal.register_pending(registers.desk.pk) == 2
    assert [document.uuid for document in emulator_memory.journal()] == [r.uuid for r in receipts]


def test_b06_a_stopping_worker_hands_back_the_receipts_it_claimed_and_did_not_send(cashier, place, registers):
    receipts = [pay(cashier, place(), "300.00", registers.desk).receipts[0] for _ in range(3)]

    def until_the_first_is_sent() -> bool:
        return not emulator_memory.journal()

    assert fiscal.register_due(keep_going=until_the_first_is_sent) == 1

    assert [(r.state, r.attempts, r.claimed_until) for r in Receipt.objects.order_by("id")] == [
        (REGISTERED, 1, None), (PENDING, 0, None), (PENDING, 0, None)]
    assert fiscal.registers_with_due_receipts() == [registers.desk.pk]  # due again at once
    assert fiscal.register_due() == 2
    assert [document.uuid for document in emulator_memory.journal()] == [r.uuid for r in receipts]


def test_b06_a_relay_pass_takes_one_batch_of_a_register_so_a_busy_one_does_not_hold_up_the_others(
        cashier, place, registers):
    for _ in range(fiscal.CLAIM_BATCH + 2):
        pay(cashier, place(), "300.00", registers.desk)

    assert fiscal.register_due() == fiscal.CLAIM_BATCH
    assert fiscal.register_due() == 2


def test_b06_a_batch_sent_to_a_slow_register_is_claimed_afresh_before_its_claim_could_run_out(
        cashier, place, registers, monkeypatch):
    receipts = [pay(cashier, place(), "300.00", registers.desk).receipts[0] for _ in range(3)]
    clock, claims = [1000.0], []
    really_claim, really_register = fiscal._claim_due, EmulatorDriver.register

    def claim(register_id):
        claims.append(register_id)
        return really_claim(register_id)

    def slow_register(driver, doc, state):
        clock[0] += fiscal.CLAIM_SECONDS / 2 + 1
        return really_register(driver, doc, state)

    monkeypatch.setattr(fiscal, "monotonic", lambda: clock[0])
    monkeypatch.setattr(fiscal, "_claim_due", claim)
    monkeypatch.setattr(EmulatorDriver, "register", slow_register)

    assert fiscal.register_pending(registers.desk.pk) == 3

    assert len(claims) == 4  # a fresh claim before each receipt, and the last finds nothing
    assert [document.uuid for document in emulator_memory.journal()] == [r.uuid for r in receipts]
    assert set(Receipt.objects.values_list("state", "attempts")) == {(REGISTERED, 1)}
