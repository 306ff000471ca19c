"""B6, S1, R11, B10 under retries: the same request sent 100 times (a lost answer, an impatient
client, an acquirer that repeats its notification, 1C repeating a step of its exchange) has one
effect. Everything goes through the HTTP API (the 1C exchange through /exchange/1c)."""

from decimal import Decimal

from django.test import Client

from orderdesk.acquiring.models import AcquirerNotification
from orderdesk.core.models import ApiKey
from orderdesk.core.rights import Role
from orderdesk.exchange.models import ExchangeSession, OrderExchange, Upload
from orderdesk.fiscal.models import Receipt
from orderdesk.orders.models import Order, OrderEvent
from orderdesk.payments.models import Document, PaymentEntry
from tests.api.test_online_payments import Shop, deliver
from tests.conftest import order_body, run_worker
from tests.exchange.one_c import OneC, documents, status_update, text

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


# ---- B10: 1C repeating a step of the exchange ----


def _one_c(version: str | None = "2.08") -> OneC:
    """1C signed in and started (`version=None`: the older protocol, where `file` imports)."""
    one_c = OneC(Client(), "1c", ApiKey.issue(name="1C", role=Role.INTEGRATION)[1])
    assert one_c.checkauth().first == "success"
    one_c.init(version=version)
    return one_c


def _site_orders(machine_client, count: int) -> list[Order]:
    site = machine_client("site")
    ids = [site.post_json(ORDERS, order_body(f"1c-retry-{n}")).json()["id"] for n in range(count)]
    return list(Order.objects.filter(pk__in=ids).order_by("pk"))


def _numbers(root) -> list[str]:
    return [text(document, "Номер") for document in documents(root)]


def test_b10_the_same_1c_status_file_posted_100_times_is_applied_once(machine_client):
    [order] = _site_orders(machine_client, 1)
    one_c = _one_c(version=None)
    assert _numbers(one_c.query()) == [order.number]
    one_c.success()
    data = status_update(order.number, Проведен="true", ПометкаУдаления="true", **{"Номер по 1С": "ТД00-000731"})

    answers = [one_c.upload("documents___retry.xml", data) for _ in range(TIMES)]

    assert [(a.status, a.lines) for a in answers] == [(200, ["success"])] * TIMES
    codes = list(OrderEvent.objects.filter(order=order).values_list("code", flat=True))
    assert sorted(codes) == ["order.1c.updated", "order.created", "order.removal_mark.set", "order.status.changed"]
    order.refresh_from_db()
    assert (order.status_id, order.deletion_mark, order.version) == ("agreed", True, 3)
    state = OrderExchange.objects.get(order=order)
    assert (state.one_c_number, state.posted, order.one_c_confirmed_version) == ("ТД00-000731", True, 3)
    assert Upload.objects.count() == 1  # each repeat replaced the file of that name
    assert _numbers(one_c.query()) == []  # 1C's own change, applied once, is not echoed back to it


def test_b10_import_repeated_100_times_after_one_file_is_applied_once_and_repeats_its_report(machine_client):
    [order] = _site_orders(machine_client, 1)
    one_c = _one_c()
    data = status_update(order.number, Проведен="true").replace(  # a total of 1C's that is not ours: a remark
        "<Курс>1</Курс>".encode(), "<Курс>1</Курс><Сумма>1.00</Сумма>".encode())
    one_c.upload("a.xml", data)

    answers = [one_c.import_file("a.xml") for _ in range(TIMES)]

    assert answers[0].first == "success" and len(answers[0].lines) == 2 and order.number in answers[0].lines[1]
    assert [a.lines for a in answers] == [answers[0].lines] * TIMES
    assert OrderEvent.objects.filter(order=order, code="order.status.changed").count() == 1
    assert OrderEvent.objects.filter(order=order, code="order.1c.updated").count() == 1
    order.refresh_from_db()
    assert (order.status_id, order.version) == ("agreed", 2)


def test_b10_success_repeated_100_times_after_one_query_confirms_the_orders_once(machine_client):
    made = _site_orders(machine_client, 3)
    one_c = _one_c()
    assert _numbers(one_c.query()) == [o.number for o in made]
    assert one_c.success().lines == ["success"]
    def exchange_rows():
        return (list(OrderExchange.objects.order_by("pk").values()),
                list(Order.objects.order_by("pk").values_list("one_c_confirmed_version", "updated_at")))

    confirmed = exchange_rows()
    assert [(version, state["queried_version"]) for (version, _), state in zip(confirmed[1], confirmed[0])] == [(1, 1)] * 3

    answers = [one_c.success() for _ in range(TIMES - 1)]

    assert [a.lines for a in answers] == [["success"]] * (TIMES - 1)
    assert exchange_rows() == confirmed  # not one row written again
    assert _numbers(one_c.query()) == []


def test_b10_query_repeated_100_times_without_success_gives_the_same_orders_and_confirms_none(machine_client):
    made = _site_orders(machine_client, 3)
    one_c = _one_c()

    handed_out = [_numbers(one_c.query()) for _ in range(TIMES)]

    assert handed_out == [[o.number for o in made]] * TIMES
    assert set(OrderExchange.objects.values_list("order__one_c_confirmed_version", "queried_version")) == {(None, 1)}
    one_c.success()
    assert _numbers(one_c.query()) == []


def test_b10_checkauth_repeated_100_times_opens_100_sessions_each_working_on_its_own(machine_client):
    made = _site_orders(machine_client, 2)
    one_c = OneC(Client(), "1c", ApiKey.issue(name="1C", role=Role.INTEGRATION)[1])

    cookies = []
    for _ in range(TIMES):
        assert one_c.checkauth().first == "success"
        cookies.append(one_c.cookie)

    assert len(set(cookies)) == TIMES and ExchangeSession.objects.count() == TIMES
    versions = ["2.05" if n % 2 else "2.08" for n in range(TIMES)]
    for cookie, version in zip(cookies, versions):  # each session keeps the version its own init asked for
        one_c.cookie = cookie
        one_c.init(version=version)
    for cookie, version in zip(cookies, versions):
        one_c.cookie = cookie
        root = one_c.query()
        assert (root.get("ВерсияСхемы"), _numbers(root)) == (version, [o.number for o in made])
    assert set(ExchangeSession.objects.values_list("version", flat=True)) == {"2.05", "2.08"}
