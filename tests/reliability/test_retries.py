"""B6, S1, R11 under retries: the same request sent 100 times (a lost answer, an impatient client,
an acquirer that repeats its notification) has one effect. Everything goes through the HTTP API."""

from decimal import Decimal

from orderdesk.acquiring.models import AcquirerNotification
from orderdesk.fiscal.models import Receipt
from orderdesk.orders.models import Order, OrderEvent
from orderdesk.payments.models import Document, PaymentEntry
from tests.api.test_online_payments import Shop, deliver
from tests.conftest import order_body, run_worker

ORDERS = "/api/v1/orders"
TIMES = 100


def test_s01_the_same_site_order_sent_100_times_creates_one_order(machine_client):
    site = machine_client("site")
    body = order_body("site-retry-1")

    responses = [site.post_json(ORDERS, body) for _ in range(TIMES)]

    assert [r.status_code for r in responses] == [201] + [200] * (TIMES - 1)
    assert len({r.json()["id"] for r in responses}) == 1
    assert len({r.json()["number"] for r in responses}) == 1
    order = Order.objects.get()
    assert order.external_id == "site-retry-1"
    assert order.items.count() == 2
    assert OrderEvent.objects.filter(order=order).count() == 1


def test_b06_the_same_cash_desk_payment_sent_100_times_is_one_document_one_entry_one_receipt(
        machine_client, client_as, registers):
    order = machine_client("site").post_json(ORDERS, order_body("site-retry-2")).json()
    cashier = client_as("cashier")
    body = {"register_id": registers.desk.pk, "amount": "300.00", "method": "cash", "idempotency_key": "till-1-0042"}

    responses = [cashier.post_json(f"{ORDERS}/{order['id']}/payments", body) for _ in range(TIMES)]

    assert {r.status_code for r in responses} == {201}, responses[-1].content
    assert len({r.json()["document"]["id"] for r in responses}) == 1
    assert len({tuple(receipt["id"] for receipt in r.json()["receipts"]) for r in responses}) == 1
    assert Document.objects.count() == PaymentEntry.objects.count() == Receipt.objects.count() == 1
    card = cashier.get(f"{ORDERS}/{order['id']}").json()
    assert (card["paid_amount"], card["payment_status"]) == ("300.00", "partially_paid")
    run_worker()
    assert list(Receipt.objects.values_list("state", flat=True)) == [Receipt.State.REGISTERED]


def test_r11_the_same_acquirer_notification_delivered_100_times_makes_one_payment(
        client_as, machine_client, sandbox_acquirer, registers):
    shop = Shop(client_as, machine_client, sandbox_acquirer, registers)
    order = shop.order()
    link = shop.link(order, "300.00")
    payment_id = shop.payment_id(link)
    shop.sandbox.pay(payment_id)

    responses = [deliver(shop.sandbox, payment_id) for _ in range(TIMES)]

    assert [r.status_code for r in responses] == [200] * TIMES
    assert [r.json()["outcome"] for r in responses] == ["paid"] + ["already_applied"] * (TIMES - 1)
    assert shop.statuses(order) == ("agreed", "partially_paid", "300.00")
    assert Document.objects.count() == PaymentEntry.objects.count() == Receipt.objects.count() == 1
    assert PaymentEntry.objects.get().amount == Decimal("300.00")
    assert AcquirerNotification.objects.count() == TIMES  # each delivery is on record, one was applied
