"""B6: the same payment or refund sent twice at the same moment, from separate connections,
moves money once and owes one receipt."""

from decimal import Decimal


from orderdesk.core.actors import Actor
from orderdesk.fiscal.models import Receipt
from orderdesk.fiscal.rules import PayMethod
from orderdesk.orders import services as orders
from orderdesk.orders.schemas import OrderIn
from orderdesk.payments import services as payments
from orderdesk.payments.models import Document, PaymentEntry
from tests.conftest import committed_db, order_body
from tests.processes import at_once

pytestmark = committed_db




def test_b06_the_same_payment_sent_twice_at_once_is_taken_once(registers, actor_of, site_actor):
    order = orders.place_order(site_actor, OrderIn(**order_body("race-pay"))).order
    cashier = actor_of("cashier")

    results = at_once(4, lambda _index: payments.take_payment(
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

    results = at_once(4, lambda _index: payments.refund(
        manager, order.pk, amount=Decimal("200.00"), method=PayMethod.CASH, register_id=registers.desk.pk,
        idempotency_key="refund-7"))

    assert all(isinstance(r, payments.MoneyResult) for r in results), results
    assert PaymentEntry.objects.filter(is_refund=True).count() == 1
    assert Receipt.objects.filter(settlement=2).count() == 1
    order.refresh_from_db()
    assert order.paid_amount == Decimal("300.00")
