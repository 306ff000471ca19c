"""B6 under load: fifty cashiers' calls on one order at the same moment, each from its own database
connection. The order's lock serializes them (on SQLite the writers queue on the database lock):
the money adds up, nothing is paid twice or lost, and every accepted payment owes one receipt.
B10 likewise: the same 1C file imported twice at the same moment is applied once."""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test import Client

from orderdesk.core.actors import SYSTEM
from orderdesk.core.errors import Conflict
from orderdesk.core.models import ApiKey
from orderdesk.core.rights import Role
from orderdesk.exchange.models import OrderExchange
from orderdesk.fiscal.models import Receipt
from orderdesk.fiscal.rules import PayMethod, Purpose
from orderdesk.orders import events
from orderdesk.orders import services as orders
from orderdesk.orders.models import Order, OrderEvent
from orderdesk.orders.schemas import OrderIn
from orderdesk.payments import services as payments
from orderdesk.payments.models import Document, PaymentEntry
from orderdesk.payments.rules import SettleChoice
from tests.conftest import committed_db, order_body
from tests.exchange.one_c import OneC, status_update
from tests.processes import at_once

pytestmark = committed_db

CALLS = 50
SHARE = Decimal("25.00")  # 50 × 25.00 = 1250.00 offered for an order of 900.00




def test_b06_fifty_concurrent_payments_on_one_order_never_overpay_lose_nothing_and_owe_one_receipt_each(
        registers, actor_of, site_actor):
    order = orders.place_order(site_actor, OrderIn(**order_body("race-fifty"))).order
    assert order.total == Decimal("900.00")
    cashier = actor_of("cashier")
    started = time.monotonic()

    results = at_once(CALLS, lambda n: payments.take_payment(
        cashier, order.pk, register_id=registers.desk.pk, amount=SHARE, method=PayMethod.CASH,
        settle=SettleChoice.NO, idempotency_key=f"till-1-call-{n}"))

    assert time.monotonic() - started < 20
    accepted = [r for r in results if isinstance(r, payments.MoneyResult)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(accepted) + len(refused) == CALLS, [r for r in results if not isinstance(r, payments.MoneyResult | Conflict)]
    # the cash desk takes no more than the debt: exactly 36 shares fit, the other 14 are refused
    assert len(accepted) == 36
    assert {(e.code, e.details["debt"]) for e in refused} == {("amount_exceeds_debt", "0.00")}
    # no lost update: the order, the ledger and the accepted calls agree to the kopeck
    order.refresh_from_db()
    entries = list(PaymentEntry.objects.filter(order=order).values_list("amount", flat=True))
    assert order.paid_amount == sum(entries) == sum(r.document.amount for r in accepted) == Decimal("900.00")
    assert order.payment_status == "paid"
    assert Document.objects.filter(order=order).count() == len(entries) == 36
    assert sorted(Document.objects.values_list("idempotency_key", flat=True)) == sorted(
        r.document.idempotency_key for r in accepted)
    # one «Аванс» receipt per accepted payment, each for its own entry and amount
    receipts = list(Receipt.objects.filter(order=order))
    assert len(receipts) == 36
    assert {r.purpose for r in receipts} == {Purpose.ADVANCE}
    assert len({r.entry_id for r in receipts}) == 36
    assert {r.cash for r in receipts} == {SHARE}
    assert sorted(d.number for d in Document.objects.all()) == [f"Д-{n:06d}" for n in range(1, 37)]
    assert Order.objects.get(pk=order.pk).status_id == order.status_id  # settle="no": not issued


def test_b06_an_order_locked_by_a_payment_does_not_hold_up_the_event_log_rows_that_point_at_it(site_actor):
    """The worker's receipt bookkeeping writes an event and a notification that point at the order
    while a payment may hold the order's lock; with FOR UPDATE the two deadlocked on PostgreSQL."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has row locks of no kind: its writers queue at the gate (this test runs in the PostgreSQL pass)")
    order = orders.place_order(site_actor, OrderIn(**order_body())).order
    holding, let_go = threading.Event(), threading.Event()

    def payment_holding_the_lock():
        from django.db import connection as own

        with transaction.atomic():
            orders.locked_order(order.pk)
            holding.set()
            let_go.wait(10)
        own.close()

    holder = threading.Thread(target=payment_holding_the_lock)
    holder.start()
    try:
        assert holding.wait(10)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")  # a wait would fail, not hang
            events.record(order, "receipt.registered", SYSTEM, {"total": "100.00"}, mail_customer=False)
    finally:
        let_go.set()
        holder.join(10)

    assert OrderEvent.objects.filter(order=order, code="receipt.registered").count() == 1


# ---- B10: the same 1C file imported twice at once ----


def _one_c_run(key: str, version: str | None) -> OneC:
    one_c = OneC(Client(), "1c", key)
    assert one_c.checkauth().first == "success"
    one_c.init(version=version)
    return one_c


def _applied_once(order: Order) -> None:
    codes = sorted(OrderEvent.objects.filter(order=order).values_list("code", flat=True))
    assert codes == ["order.1c.updated", "order.created", "order.removal_mark.set", "order.status.changed"]
    order.refresh_from_db()
    assert (order.status_id, order.deletion_mark, order.version) == ("agreed", True, 3)
    state = OrderExchange.objects.get(order=order)
    assert (state.one_c_number, order.one_c_confirmed_version) == ("ТД00-000731", 3)


def _status_file(order: Order) -> bytes:
    return status_update(order.number, Проведен="true", ПометкаУдаления="true", **{"Номер по 1С": "ТД00-000731"})


def test_b10_two_1c_runs_posting_the_same_file_at_once_apply_it_once(site_actor):
    """Two exchange runs (two sessions, the older protocol: `file` imports) on their own connections."""
    order = orders.place_order(site_actor, OrderIn(**order_body("race-1c-runs"))).order
    key = ApiKey.issue(name="1C", role=Role.INTEGRATION)[1]
    runs = [_one_c_run(key, version=None) for _ in range(2)]
    runs[0].query()
    runs[0].success()  # 1C holds the order: its own change is then not news to it
    data = _status_file(order)

    answers = at_once(2, lambda n: runs[n].upload("documents___race.xml", data))

    assert [(a.status, a.lines) for a in answers] == [(200, ["success"])] * 2, answers
    _applied_once(order)


def test_b10_import_called_twice_at_once_for_one_stored_file_applies_it_once(site_actor):
    """1C asking again for `import` while the first is still at work (the newer protocol)."""
    order = orders.place_order(site_actor, OrderIn(**order_body("race-1c-import"))).order
    one_c = _one_c_run(ApiKey.issue(name="1C", role=Role.INTEGRATION)[1], version="2.08")
    one_c.query()
    one_c.success()
    assert one_c.upload("a.xml", _status_file(order)).lines == ["success"]
    twins = [one_c, OneC(Client(), one_c.login, one_c.password, cookie=one_c.cookie)]  # the same session

    answers = at_once(2, lambda n: twins[n].import_file("a.xml"))  # each repeats import while it hears progress

    assert [(a.status, a.lines) for a in answers] == [(200, ["success"])] * 2, answers
    _applied_once(order)


def test_s05_two_people_setting_the_same_status_at_once_both_succeed_and_it_is_set_once(site_actor):
    """A locking read that joins the status waits for the other, then (on PostgreSQL) re-checks the
    join with the status row it saw before: it found no order once the other had moved it."""
    order = orders.place_order(site_actor, OrderIn(**order_body("race-status"))).order

    results = at_once(8, lambda n: orders.set_status(SYSTEM, order.pk, "agreed").status_id)

    assert results == ["agreed"] * 8, results
    assert OrderEvent.objects.filter(order=order, code="order.status.changed").count() == 1
