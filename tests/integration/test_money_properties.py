"""B1, B6 as properties: whatever sequence of payments, refunds and a hand-over an order goes through,
its receipts account for every kopeck that moved, the hand-over receipt offsets exactly what was
received before it, every receipt is registered exactly once, and the order's paid sum is the ledger's."""

from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderdesk.fiscal.drivers import emulator_memory
from orderdesk.fiscal.models import Receipt, Register, Shift
from orderdesk.fiscal.rules import PayMethod
from orderdesk.orders import services as orders
from orderdesk.orders.schemas import OrderIn
from orderdesk.payments import services as payments
from orderdesk.payments.models import PaymentEntry
from orderdesk.payments.rules import IssueChoice, SettleChoice
from tests.conftest import COMPANY, order_body, run_worker

D = Decimal
KOPECK = D("0.01")
HAND_OVER = ("final", "credit")

operation = st.sampled_from(["pay", "pay", "refund"])
method = st.sampled_from([PayMethod.CASH, PayMethod.CARD])


class Rollback(Exception):
    """Ends an example: everything it wrote is rolled back, the next one starts clean."""


@pytest.fixture
def people(actor_of):
    return actor_of("cashier"), actor_of("manager")


def kopecks(data, upto: Decimal, label: str) -> Decimal:
    return D(data.draw(st.integers(1, int(upto / KOPECK)), label=label)) * KOPECK


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data(), before=st.lists(operation, max_size=5), after=st.lists(operation, max_size=2),
       items=st.integers(1, 3))
def test_b06_receipts_account_for_every_kopeck_whatever_the_payments_refunds_and_hand_over(
        db, site_actor, people, data, before, after, items):
    cashier, manager = people
    try:
        with transaction.atomic():
            _example(data, site_actor, cashier, manager, before, after, items)
            raise Rollback
    except Rollback:
        pass


def _example(data, site_actor, cashier, manager, before, after, items):
    made_before = len(emulator_memory.journal())  # the examples share the memory; their database rolls back
    desk = Register.objects.create(name="Касса", **COMPANY)
    Register.objects.create(name="Интернет-касса", is_online=True, **COMPANY)
    Shift.objects.create(register=desk, number=1, opened_by="test")
    order = orders.place_order(site_actor, OrderIn(**order_body("prop-1", items=items))).order
    orders.set_status(manager, order.pk, "agreed")
    order.refresh_from_db()
    moved = D("0.00")  # payments − refunds, as the people at the desk saw them

    def step(op: str) -> None:
        nonlocal moved
        order.refresh_from_db()
        debt, paid = order.total - order.paid_amount, order.paid_amount
        how = data.draw(method, label="method")
        if op == "pay" and debt > 0:
            amount = kopecks(data, debt, "payment")
            payments.take_payment(cashier, order.pk, register_id=desk.pk, amount=amount, method=how,
                                  settle=SettleChoice.NO)
            moved += amount
        elif op == "refund" and paid > 0:
            amount = kopecks(data, paid, "refund")
            at_desk = data.draw(st.booleans(), label="refund at the cash desk")
            payments.refund(manager, order.pk, amount=amount, method=how, register_id=desk.pk if at_desk else None)
            moved -= amount

    for op in before:
        step(op)
    received_before_hand_over = moved
    payments.change_status(cashier, order.pk, "issued", choice=IssueChoice.ISSUE, register_id=desk.pk)
    for op in after:
        step(op)

    run_worker()

    order.refresh_from_db()
    receipts = list(Receipt.objects.filter(order=order))
    [hand_over] = [r for r in receipts if r.purpose in HAND_OVER]
    others = [r for r in receipts if r is not hand_over]
    income = sum((r.total for r in others if r.settlement == 1), D("0.00"))
    refunded = sum((r.total for r in others if r.settlement == 2), D("0.00"))
    assert income - refunded == moved
    assert hand_over.prepayment == received_before_hand_over
    assert hand_over.total == order.total
    assert hand_over.prepayment + hand_over.credit == order.total
    for receipt in receipts:
        lines = list(receipt.lines.all())
        assert sum((line.amount for line in lines), D("0.00")) == receipt.total
        assert receipt.cash + receipt.electronic + receipt.prepayment + receipt.credit == receipt.total
    assert {r.state for r in receipts} == {Receipt.State.REGISTERED}
    journal = [document.uuid for document in emulator_memory.journal()[made_before:]]
    assert sorted(journal) == sorted(r.uuid for r in receipts)
    ledger = sum((-e.amount if e.is_refund else e.amount for e in PaymentEntry.objects.filter(order=order)),
                 D("0.00"))
    assert order.paid_amount == ledger == moved
