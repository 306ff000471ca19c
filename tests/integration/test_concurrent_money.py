"""B6: the same payment or refund sent twice at the same moment, from separate connections,
moves money once and owes one receipt."""

import threading
from decimal import Decimal

from django.db import connection

from orderdesk.core.actors import Actor
from orderdesk.fiscal.models import Receipt
from orderdesk.fiscal.rules import PayMethod
from orderdesk.orders import services as orders
from orderdesk.orders.schemas import OrderIn
from orderdesk.payments import services as payments
from orderdesk.payments.models import Document, PaymentEntry
from tests.conftest import committed_db, order_body

pytestmark = committed_db


def _at_once(calls: int, call) -> list:
    barrier = threading.Barrier(calls)
    results: list = [None] * calls

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as exc:  # a thread's failure must show in the assertion, not vanish
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_b06_the_same_payment_sent_twice_at_once_is_taken_once(registers, actor_of, site_actor):
    order = orders.place_order(site_actor, OrderIn(**order_body("race-pay"))).order
    cashier = actor_of("cashier")

    results = _at_once(4, lambda: payments.take_payment(
        cashier, order.pk, register_id=registers.desk.pk, amount=Decimal("100.00"), method=PayMethod.CASH,
        idempotency_key="till-1-receipt-42"))

    assert all(isinstance(r, payments.MoneyResult) for r in results), results
    assert len({r.document.pk for r in results}) == 1
    assert Document.objects.count() == PaymentEntry.objects.count() == Receipt.objects.count() == 1
    order.refresh_from_db()
    assert order.paid_amount == Decimal("100.00")


def test_b06_the_same_refund_sent_twice_at_once_pays_back_once(registers, actor_of, site_actor):
    order = orders.place_order(site_actor, OrderIn(**order_body("race-refund"))).order
    payments.take_payment(actor_of("cashier"), order.pk, register_id=registers.desk.pk, amount=Decimal("500.00"),
                          method=PayMethod.CASH)
    manager: Actor = actor_of("manager")

    results = _at_once(4, lambda: payments.refund(
        manager, order.pk, amount=Decimal("200.00"), method=PayMethod.CASH, register_id=registers.desk.pk,
        idempotency_key="refund-7"))

    assert all(isinstance(r, payments.MoneyResult) for r in results), results
    assert PaymentEntry.objects.filter(is_refund=True).count() == 1
    assert Receipt.objects.filter(settlement=2).count() == 1
    order.refresh_from_db()
    assert order.paid_amount == Decimal("300.00")
