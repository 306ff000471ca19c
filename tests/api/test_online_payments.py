"""R11 (online payment links), the online half of R2 (SBP), B3 and B4 for money paid online,
through the HTTP API and the sandbox acquirer (the YooKassa API v3 over real HTTP on loopback,
driven by the product through the official SDK).

The acquirer's notifications are delivered by the tests themselves with the test client (it
cannot reach the test client's in-process server): `deliver()` sends what the sandbox would
send. The webhook trusts nothing in the body: it re-reads the payment from the sandbox, so the
sandbox's state (pay(), cancel(), tamper()) is what the product sees. One test at the end takes
the real path: the sandbox POSTs its notification over HTTP to a live server.

The order of `order_body()`: 900.00 in all (two items of 300.00 and a courier delivery of 300.00
at 22 %); advances are one line «Оплата заказа №N» at 22/122.
"""

import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

import pytest

from orderdesk.acquiring.models import AcquirerNotification, PaymentLink
from orderdesk.payments.models import Document
from tests.api.test_cash_desk import ADVANCE, FULL_PAYMENT, PAYMENT, VAT122, brief, items, line, receipt
from tests.conftest import JsonClient, committed_db, order_body, run_worker

ORDERS = "/api/v1/orders"
LINKS = "/api/v1/payment-links"
WEBHOOK = "/api/v1/acquiring/yookassa"
INCOME_REFUND = 2


def notification(sandbox, payment_id: str, event: str = "payment.succeeded") -> dict:
    """What YooKassa POSTs: the event and the payment object as the acquirer has it now."""
    return {"type": "notification", "event": event, "object": sandbox.payment(payment_id)}


def deliver(sandbox, payment_id: str, event: str = "payment.succeeded", *, body: dict | None = None,
            source: str = "127.0.0.1"):
    """The acquirer's notification reaching the webhook (from `source`); no credentials, as YooKassa sends it."""
    return JsonClient().post_json(WEBHOOK, body or notification(sandbox, payment_id, event), REMOTE_ADDR=source)


def advance(order: dict, amount: str, vat_amount: str) -> dict:
    """The advance e-receipt of an online payment: one line «Оплата заказа №N», paid electronically."""
    name = f"Оплата заказа №{order['number']}"
    return receipt("advance", [line(name, amount, ADVANCE, PAYMENT, VAT122, vat_amount)], amount, electronic=amount)


def receipt_mails(smtp_server) -> list:
    return [m for m in smtp_server.messages if m["Subject"].strip().startswith("Кассовый чек")]


class Shop:
    """A manager with the order card's Payment tab, the site, and the acquirer."""

    def __init__(self, client_as, machine_client, sandbox, registers):
        self.manager = client_as("manager")
        self.site = machine_client("site")
        self.sandbox = sandbox
        self.registers = registers
        self._ids = iter(range(1, 10_000))

    def order(self, status: str = "agreed", **body) -> dict:
        response = self.site.post_json(ORDERS, order_body(f"online-{next(self._ids)}", **body))
        assert response.status_code == 201, response.content
        order = response.json()
        if status != order["status"]:
            assert self.manager.post_json(f"{ORDERS}/{order['id']}/status", {"status": status}).status_code == 200
        return self.card(order)

    def make_link(self, order: dict, amount: str | None = None, method: str | None = None):
        body = {k: v for k, v in (("amount", amount), ("method", method)) if v is not None}
        return self.manager.post_json(f"{ORDERS}/{order['id']}/payment-links", body)

    def link(self, order: dict, amount: str | None = None, method: str | None = None) -> dict:
        response = self.make_link(order, amount, method)
        assert response.status_code == 201, response.content
        return response.json()

    def payment_id(self, link: dict) -> str:
        """The customer follows the link: the acquirer's page of that payment."""
        payment_id = link["confirmation_url"].rsplit("/", 1)[1]
        assert link["confirmation_url"] == self.sandbox.page_url(payment_id)
        return payment_id

    def pay(self, link: dict) -> None:
        """The customer pays on the acquirer's page and its notification arrives."""
        payment_id = self.payment_id(link)
        self.sandbox.pay(payment_id)
        response = deliver(self.sandbox, payment_id)
        assert (response.status_code, response.json()) == (200, {"outcome": "paid"})

    def links(self, order: dict) -> list[dict]:
        response = self.manager.get(f"{ORDERS}/{order['id']}/payment-links")
        assert response.status_code == 200, response.content
        return response.json()

    def issue(self, order: dict, **extra) -> dict:
        response = self.manager.post_json(f"{ORDERS}/{order['id']}/status", {"status": "issued", **extra})
        assert response.status_code == 200, response.content
        return response.json()

    def refund(self, link: dict, amount: str, key: str = "refund-1"):
        return self.manager.post_json(f"{LINKS}/{link['id']}/refunds", {"amount": amount, "idempotency_key": key})

    def card(self, order: dict) -> dict:
        return self._get(f"{ORDERS}/{order['id']}")

    def statuses(self, order: dict) -> tuple[str, str, str]:
        card = self.card(order)
        return card["status"], card["payment_status"], card["paid_amount"]

    def receipts(self, order: dict) -> list[dict]:
        return self._get(f"{ORDERS}/{order['id']}/receipts")

    def briefs(self, order: dict) -> list[dict]:
        return [brief(r) for r in self.receipts(order)]

    def documents(self, order: dict) -> list[dict]:
        return self._get(f"{ORDERS}/{order['id']}/documents")

    def history(self, order: dict) -> list[str]:
        return [event["code"] for event in self._get(f"{ORDERS}/{order['id']}/history")]

    def _get(self, path: str):
        response = self.manager.get(path)
        assert response.status_code == 200, response.content
        return response.json()


@pytest.fixture
def shop(client_as, machine_client, sandbox_acquirer, registers) -> Shop:
    return Shop(client_as, machine_client, sandbox_acquirer, registers)


# ---- R11: the link, paid in full or in part ----


def test_r11_a_link_for_the_whole_debt_paid_online_makes_the_order_paid_and_mails_an_advance_e_receipt(
        shop, smtp_server):
    order = shop.order()

    link = shop.link(order)

    assert (link["amount"], link["method"], link["state"], link["order_id"]) == ("900.00", "online", "pending",
                                                                                  order["id"])
    assert link["qr_svg"].startswith("<svg")
    at_acquirer = shop.sandbox.payment(shop.payment_id(link))
    assert (at_acquirer["status"], at_acquirer["amount"]) == ("pending", {"value": "900.00", "currency": "RUB"})
    assert at_acquirer["description"] == f"Заказ №{order['number']}"
    assert at_acquirer["metadata"]["order_id"] == str(order["id"])
    assert shop.statuses(order) == ("agreed", "not_paid", "0.00")

    shop.pay(link)

    assert shop.statuses(order) == ("agreed", "paid", "900.00")
    [paid_link] = shop.links(order)
    assert (paid_link["state"], paid_link["flag"]) == ("paid", "") and paid_link["paid_at"]
    [e_receipt] = shop.receipts(order)
    assert brief(e_receipt) == advance(order, "900.00", "162.30")
    assert (e_receipt["register_id"], e_receipt["electronically"], e_receipt["buyer_contact"]) == (
        shop.registers.online.pk, True, "buyer@example.com")
    assert receipt_mails(smtp_server) == []  # not before the register has fiscalised it

    run_worker()

    [mail] = receipt_mails(smtp_server)
    assert mail["To"] == "buyer@example.com"
    assert mail["Subject"].strip() == f"Кассовый чек «Аванс» по заказу №{order['number']}"
    assert shop.receipts(order)[0]["state"] == "registered"


def test_r11_a_partial_link_makes_the_order_partially_paid_with_an_advance_e_receipt(shop, smtp_server):
    order = shop.order()

    link = shop.link(order, "300.00")
    shop.pay(link)

    assert link["amount"] == "300.00"
    assert shop.sandbox.payment(shop.payment_id(link))["amount"]["value"] == "300.00"
    assert shop.statuses(order) == ("agreed", "partially_paid", "300.00")
    assert shop.briefs(order) == [advance(order, "300.00", "54.10")]
    run_worker()
    assert [m["Subject"].strip() for m in receipt_mails(smtp_server)] == [
        f"Кассовый чек «Аванс» по заказу №{order['number']}"]


def test_r11_each_further_online_payment_mails_another_advance_and_issued_mails_the_full_settlement(
        shop, smtp_server):
    order = shop.order()
    first, second, third = shop.link(order, "300.00"), shop.link(order, "200.00"), shop.link(order, "400.00")
    assert [link["state"] for link in shop.links(order)] == ["pending"] * 3  # several links may wait at once

    shop.pay(first)
    assert shop.statuses(order) == ("agreed", "partially_paid", "300.00")
    shop.pay(second)
    assert shop.statuses(order) == ("agreed", "partially_paid", "500.00")  # status unchanged until paid in full
    shop.pay(third)
    assert shop.statuses(order) == ("agreed", "paid", "900.00")

    advances = [advance(order, "300.00", "54.10"), advance(order, "200.00", "36.07"), advance(order, "400.00", "72.13")]
    assert shop.briefs(order) == advances

    # the customer has the goods: «Issued», with no cash desk named, mails «Полный расчёт»
    card = shop.issue(order)

    assert (card["status"], card["payment_status"]) == ("issued", "paid")
    *_, final = shop.receipts(order)
    assert shop.briefs(order) == [*advances, receipt("final", items(FULL_PAYMENT), "900.00", prepayment="900.00")]
    assert (final["register_id"], final["electronically"], final["buyer_contact"]) == (
        shop.registers.online.pk, True, "buyer@example.com")

    run_worker()

    advance_mail, final_mail = (f"Кассовый чек «{kind}» по заказу №{order['number']}"
                                for kind in ("Аванс", "Полный расчёт"))
    assert sorted(m["Subject"].strip() for m in receipt_mails(smtp_server)) == sorted([advance_mail] * 3 + [final_mail])
    assert {m["To"] for m in receipt_mails(smtp_server)} == {"buyer@example.com"}


def test_r11_the_default_amount_of_a_link_is_the_debt(shop, client_as):
    order = shop.order()
    cashier = client_as("cashier")
    paid = cashier.post_json(f"{ORDERS}/{order['id']}/payments",
                             {"register_id": shop.registers.desk.pk, "amount": "250.00", "method": "cash"})
    assert paid.status_code == 201, paid.content

    link = shop.link(order)

    assert link["amount"] == "650.00"
    assert shop.sandbox.payment(shop.payment_id(link))["amount"]["value"] == "650.00"


@pytest.mark.parametrize("paid_before, amount", [("0.00", "900.01"), ("300.00", "600.01"), ("900.00", "0.01")])
def test_r11_a_link_above_the_debt_is_refused_and_nothing_reaches_the_acquirer(shop, paid_before, amount):
    order = shop.order()
    if paid_before != "0.00":
        shop.pay(shop.link(order, paid_before))
    payments_before = len(shop.sandbox.payments)

    response = shop.make_link(order, amount)

    assert response.status_code == 409, response.content
    body = response.json()
    assert (body["code"], body["debt"]) == ("amount_exceeds_debt", str(Decimal("900.00") - Decimal(paid_before)))
    assert body["message"]
    assert len(shop.sandbox.payments) == payments_before
    assert len(shop.links(order)) == (0 if paid_before == "0.00" else 1)


@pytest.mark.parametrize("status", ["cancelled", "closed"])
def test_r11_an_order_cancelled_or_closed_gets_no_link(shop, status):
    order = shop.order()
    assert shop.manager.post_json(f"{ORDERS}/{order['id']}/status", {"status": "cancelled"}).status_code == 200
    if status == "closed":
        assert shop.manager.post_json(f"{ORDERS}/{order['id']}/status", {"status": "closed"}).status_code == 200

    response = shop.make_link(order)

    assert (response.status_code, response.json()["code"]) == (409, "order_final")
    assert shop.sandbox.payments == []


def test_r11_a_zero_or_negative_amount_is_a_validation_error(shop):
    order = shop.order()

    for amount in ("0.00", "-1.00"):
        response = shop.make_link(order, amount)
        assert response.status_code == 422, response.content
        assert "amount" in response.json()["fields"]
    assert shop.links(order) == [] and shop.sandbox.payments == []


def test_r11_a_paid_link_is_paid_once_however_often_the_customer_or_the_acquirer_repeats_it(shop):
    order = shop.order()
    link = shop.link(order, "300.00")
    shop.pay(link)
    payment_id = shop.payment_id(link)

    # the customer presses «Pay» on the page again: the acquirer takes no second payment
    again = shop.sandbox.pay(payment_id)
    page = urllib.request.urlopen(shop.sandbox.page_url(payment_id), timeout=5).read().decode()
    duplicate = deliver(shop.sandbox, payment_id)

    assert again["amount"]["value"] == "300.00"
    assert "This payment is succeeded" in page and "<button" not in page
    assert (duplicate.status_code, duplicate.json()) == (200, {"outcome": "already_applied"})
    assert shop.statuses(order) == ("agreed", "partially_paid", "300.00")
    assert len(shop.documents(order)) == 1
    assert shop.briefs(order) == [advance(order, "300.00", "54.10")]


def test_r11_a_cancelled_link_takes_no_money(shop):
    order = shop.order()
    link = shop.link(order)
    payment_id = shop.payment_id(link)

    shop.sandbox.cancel(payment_id)
    response = deliver(shop.sandbox, payment_id, "payment.canceled")

    assert (response.status_code, response.json()) == (200, {"outcome": "canceled"})
    [cancelled] = shop.links(order)
    assert (cancelled["state"], cancelled["paid_at"]) == ("canceled", None)
    assert shop.statuses(order) == ("agreed", "not_paid", "0.00")
    assert shop.documents(order) == [] and shop.receipts(order) == []
    with pytest.raises(ValueError):
        shop.sandbox.pay(payment_id)  # a cancelled payment cannot be paid
    # a cancelled link is not sent to the customer; a new one is made instead
    sent = shop.manager.post_json(f"{LINKS}/{cancelled['id']}/email")
    assert (sent.status_code, sent.json()["code"]) == (409, "link_not_sendable")
    assert shop.link(order)["amount"] == "900.00"


def test_r11_two_links_for_the_whole_debt_both_paid_make_the_order_overpaid_with_two_advances(shop):
    order = shop.order()
    first, second = shop.link(order), shop.link(order)

    shop.pay(first)
    shop.pay(second)

    # money taken is money taken: each payment has its advance, and the order shows the surplus (B12)
    assert shop.statuses(order) == ("agreed", "overpaid", "1800.00")
    assert shop.briefs(order) == [advance(order, "900.00", "162.30")] * 2


# ---- notifications: duplicate, late, out of order, forged ----


def test_r11_duplicate_late_and_out_of_order_notifications_count_a_payment_once(shop):
    order = shop.order()
    link = shop.link(order)
    payment_id = shop.payment_id(link)
    shop.sandbox.pay(payment_id)

    # out of order: a «canceled» arrives first; the re-read says succeeded, and that is what counts
    first = deliver(shop.sandbox, payment_id, "payment.canceled")
    # the «succeeded» that follows, and the acquirer's resending of it
    duplicates = [deliver(shop.sandbox, payment_id) for _ in range(2)]

    assert first.json() == {"outcome": "paid"}
    assert [r.json() for r in duplicates] == [{"outcome": "already_applied"}] * 2
    assert shop.statuses(order) == ("agreed", "paid", "900.00")
    assert shop.links(order)[0]["state"] == "paid"

    shop.issue(order)
    # late: the same notifications again after the order was handed over
    late = [deliver(shop.sandbox, payment_id, event) for event in ("payment.succeeded", "payment.canceled")]

    assert [r.json() for r in late] == [{"outcome": "already_applied"}] * 2
    assert shop.statuses(order) == ("issued", "paid", "900.00")
    assert len(shop.documents(order)) == 1
    assert [r["purpose"] for r in shop.receipts(order)] == ["advance", "final"]
    assert list(AcquirerNotification.objects.values_list("outcome", flat=True)) == [
        "paid", "already_applied", "already_applied", "already_applied", "already_applied"]


def test_r11_a_notification_saying_succeeded_of_a_payment_still_pending_records_nothing(shop):
    order = shop.order()
    link = shop.link(order)
    payment_id = shop.payment_id(link)
    forged = notification(shop.sandbox, payment_id)
    forged["object"].update(status="succeeded", paid=True)

    response = deliver(shop.sandbox, payment_id, body=forged)

    assert (response.status_code, response.json()) == (200, {"outcome": "not_final"})
    assert shop.links(order)[0]["state"] == "pending"
    assert shop.statuses(order) == ("agreed", "not_paid", "0.00")
    assert shop.documents(order) == [] and shop.receipts(order) == []


def test_r11_a_notification_with_another_amount_in_its_body_records_what_the_acquirer_says(shop):
    order = shop.order()
    link = shop.link(order, "300.00")
    payment_id = shop.payment_id(link)
    shop.sandbox.pay(payment_id)
    forged = notification(shop.sandbox, payment_id)
    forged["object"]["amount"]["value"] = "900.00"

    response = deliver(shop.sandbox, payment_id, body=forged)

    assert response.json() == {"outcome": "paid"}
    assert shop.statuses(order) == ("agreed", "partially_paid", "300.00")


def test_r11_a_notification_from_outside_the_acquirers_networks_is_refused_and_records_nothing(shop):
    order = shop.order()
    link = shop.link(order)
    payment_id = shop.payment_id(link)
    shop.sandbox.pay(payment_id)

    response = deliver(shop.sandbox, payment_id, source="8.8.8.8")

    assert response.status_code == 403
    assert response.json()["code"] == "untrusted_source" and response.json()["message"]
    assert shop.links(order)[0]["state"] == "pending"
    assert shop.statuses(order) == ("agreed", "not_paid", "0.00")
    assert shop.documents(order) == [] and shop.receipts(order) == []
    logged = AcquirerNotification.objects.get()
    assert (logged.source_ip, logged.outcome, logged.object_id) == ("8.8.8.8", "untrusted_source", payment_id)

    # the same notification from the acquirer's network is applied
    assert deliver(shop.sandbox, payment_id, source="185.71.76.5").json() == {"outcome": "paid"}
    assert shop.statuses(order) == ("agreed", "paid", "900.00")


def test_r11_the_trusted_networks_are_a_setting(shop, settings):
    order = shop.order()
    link = shop.link(order)
    payment_id = shop.payment_id(link)
    shop.sandbox.pay(payment_id)
    settings.ACQUIRER_TRUSTED_NETWORKS = ["10.1.0.0/16"]

    refused = deliver(shop.sandbox, payment_id)  # loopback is no longer trusted
    accepted = deliver(shop.sandbox, payment_id, source="10.1.2.3")

    assert refused.status_code == 403
    assert accepted.json() == {"outcome": "paid"}


def test_r11_notifications_of_unknown_payments_or_other_objects_are_answered_and_ignored(shop):
    order = shop.order()
    link = shop.link(order)
    payment_id = shop.payment_id(link)
    shop.sandbox.pay(payment_id)
    unknown = notification(shop.sandbox, payment_id)
    unknown["object"]["id"] = "2f3c1a5e-000f-5000-9000-1b2c3d4e5f60"

    answers = [
        deliver(shop.sandbox, payment_id, body=unknown),
        deliver(shop.sandbox, payment_id, body={**notification(shop.sandbox, payment_id), "event": "refund.succeeded"}),
        deliver(shop.sandbox, payment_id, body={"type": "notification"}),
        JsonClient().generic("POST", WEBHOOK, b"not json", content_type="application/json"),
    ]

    assert [(r.status_code, r.json()) for r in answers] == [
        (200, {"outcome": "unknown_payment"}), (200, {"outcome": "ignored"}), (200, {"outcome": "ignored"}),
        (200, {"outcome": "ignored"})]
    assert shop.statuses(order) == ("agreed", "not_paid", "0.00")
    assert AcquirerNotification.objects.count() == 4


def test_r11_b06_when_the_acquirer_cannot_be_asked_the_notification_is_not_taken_so_that_it_is_resent(shop):
    order = shop.order()
    link = shop.link(order)
    payment_id = shop.payment_id(link)
    shop.sandbox.pay(payment_id)
    body = notification(shop.sandbox, payment_id)
    shop.sandbox.stop()

    response = deliver(shop.sandbox, payment_id, body=body)

    # not a 200: the acquirer resends only what was not answered 200, and nothing else would find this payment
    assert response.status_code == 503
    assert (response.json()["code"], response.json()["outcome"]) == ("reread_failed", "reread_failed")
    assert shop.statuses(order) == ("agreed", "not_paid", "0.00")

    shop.sandbox.start()  # the same port: the acquirer is back, and resends
    assert deliver(shop.sandbox, payment_id, body=body).json() == {"outcome": "paid"}
    assert shop.statuses(order) == ("agreed", "paid", "900.00")


@pytest.mark.parametrize("tamper, flag", [
    ({"amount": "899.00"}, "paid 899.00 RUB, the link asked 900.00 RUB"),
    ({"currency": "USD"}, "paid 900.00 USD, the link asked 900.00 RUB"),
], ids=["amount", "currency"])
def test_r11_a_payment_that_does_not_match_its_link_is_flagged_and_records_no_payment(shop, tamper, flag):
    order = shop.order()
    link = shop.link(order)
    payment_id = shop.payment_id(link)
    shop.sandbox.pay(payment_id)
    shop.sandbox.tamper(payment_id, **tamper)

    response = deliver(shop.sandbox, payment_id)
    again = deliver(shop.sandbox, payment_id)

    assert (response.status_code, response.json()) == (200, {"outcome": "mismatch"})
    assert again.json() == {"outcome": "already_applied"}
    [flagged] = shop.links(order)
    assert (flagged["state"], flagged["flag"], flagged["paid_at"]) == ("mismatch", flag, None)
    assert shop.history(order).count("payment.mismatch") == 1
    assert shop.statuses(order) == ("agreed", "not_paid", "0.00")
    assert shop.documents(order) == [] and shop.receipts(order) == []


# ---- what an online payment is in the books ----


def test_r11_s07_every_online_payment_is_a_posted_noncash_receipt_of_the_order(shop):
    order = shop.order()
    first, second = shop.link(order, "100.00"), shop.link(order, "250.00", "sbp")

    shop.pay(first)
    shop.pay(second)

    documents = shop.documents(order)
    assert [(d["kind"], d["state"], d["amount"], d["method"], d["register_id"]) for d in documents] == [
        ("noncash_receipt", "posted", "100.00", "online", None), ("noncash_receipt", "posted", "250.00", "sbp", None)]
    assert all(d["posted_at"] for d in documents)
    assert list(Document.objects.filter(order_id=order["id"]).values_list("acquirer_payment_id", flat=True)) == [
        shop.payment_id(first), shop.payment_id(second)]
    assert [PaymentLink.objects.get(pk=link["id"]).document.number for link in (first, second)] == [
        d["number"] for d in documents]


def test_r02_r11_an_sbp_link_is_paid_by_sbp_with_an_advance_e_receipt(shop, smtp_server):
    order = shop.order()

    link = shop.link(order, method="sbp")
    at_acquirer = shop.sandbox.payment(shop.payment_id(link))
    shop.pay(link)

    assert (link["method"], link["amount"]) == ("sbp", "900.00")
    assert at_acquirer["payment_method"]["type"] == "sbp"
    assert shop.sandbox.payment(shop.payment_id(link))["payment_method"]["sbp_operation_id"]
    [document] = shop.documents(order)
    assert (document["kind"], document["method"]) == ("noncash_receipt", "sbp")
    [e_receipt] = shop.receipts(order)
    assert brief(e_receipt) == advance(order, "900.00", "162.30")
    assert (e_receipt["electronically"], e_receipt["buyer_contact"]) == (True, "buyer@example.com")
    run_worker()
    [mail] = receipt_mails(smtp_server)
    assert (mail["To"], mail["Subject"].strip()) == (
        "buyer@example.com", f"Кассовый чек «Аванс» по заказу №{order['number']}")


def test_b03_r11_an_online_payment_of_an_issued_orders_debt_gets_a_credit_payment_e_receipt(shop):
    order = shop.order()
    link = shop.link(order)  # made before the goods went out on credit; paid after
    response = shop.manager.post_json(f"{ORDERS}/{order['id']}/status", {"status": "issued", "choice": "issue"})
    assert response.status_code == 200, response.content

    shop.pay(link)

    credit, payment = shop.receipts(order)
    assert (credit["purpose"], credit["credit"]) == ("credit", "900.00")
    assert (payment["purpose"], payment["electronic"], payment["total"]) == ("credit_payment", "900.00", "900.00")
    assert payment["electronically"] is True
    assert shop.statuses(order) == ("issued", "paid", "900.00")


# ---- the link to the customer ----


def test_r11_the_link_is_mailed_to_the_customer(shop, smtp_server):
    order = shop.order(email="olga@example.org")
    link = shop.link(order, "450.00")

    response = shop.manager.post_json(f"{LINKS}/{link['id']}/email")
    assert response.status_code == 200, response.content
    assert response.json()["id"] == link["id"]
    run_worker()

    subject = f"Оплата заказа №{order['number']}"
    [mail] = [m for m in smtp_server.messages if m["Subject"].strip() == subject]
    assert mail["To"] == "olga@example.org"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert link["confirmation_url"] in text
    assert "450" in text


def test_r11_a_paid_link_is_not_mailed_again(shop):
    order = shop.order()
    link = shop.link(order)
    shop.pay(link)

    response = shop.manager.post_json(f"{LINKS}/{link['id']}/email")

    assert (response.status_code, response.json()["code"]) == (409, "link_not_sendable")


def test_r11_unknown_links_are_404(shop):
    for response in (shop.manager.post_json(f"{LINKS}/999999/email"), shop.refund({"id": 999999}, "1.00"),
                     shop.manager.get(f"{ORDERS}/999999/payment-links"), shop.make_link({"id": 999999})):
        assert response.status_code == 404, response.content
        assert response.json()["code"].endswith("_not_found")


def test_r11_an_acquirer_that_refuses_or_fails_makes_no_pending_link(shop):
    order = shop.order()
    shop.sandbox.fail_next(1, status=500)

    response = shop.make_link(order)

    assert (response.status_code, response.json()["code"]) == (409, "acquirer_unavailable")
    [link] = shop.links(order)
    assert (link["state"], link["confirmation_url"]) == ("created", "")
    assert shop.sandbox.payments == []


# ---- B4: refunds of money paid online go back through the acquirer ----


def test_b04_refunding_an_online_advance_goes_back_through_the_acquirer_with_its_refund_e_receipt(
        shop, smtp_server):
    order = shop.order()
    link = shop.link(order)
    shop.pay(link)
    payment_id = shop.payment_id(link)

    response = shop.refund(link, "300.00", "refund-1")

    assert response.status_code == 201, response.content
    result = response.json()
    assert (result["document"]["kind"], result["document"]["method"], result["document"]["amount"]) == (
        "refund", "online", "300.00")
    assert (result["order"]["payment_status"], result["order"]["paid_amount"]) == ("partially_paid", "600.00")
    [refund_receipt] = result["receipts"]
    assert brief(refund_receipt) == {**advance(order, "300.00", "54.10"), "purpose": "advance_refund",
                                     "settlement": INCOME_REFUND}
    assert (refund_receipt["electronically"], refund_receipt["buyer_contact"]) == (True, "buyer@example.com")
    assert shop.sandbox.payment(payment_id)["refunded_amount"] == {"value": "300.00", "currency": "RUB"}

    # the same request again (a lost answer, a double click): refunded once
    repeated = shop.refund(link, "300.00", "refund-1")

    assert repeated.status_code == 201
    assert repeated.json()["document"]["id"] == result["document"]["id"]
    assert shop.sandbox.payment(payment_id)["refunded_amount"]["value"] == "300.00"
    assert sum(shop.sandbox.refunds_created_per_key.values()) == 1
    assert shop.statuses(order) == ("agreed", "partially_paid", "600.00")
    assert [d["kind"] for d in shop.documents(order)] == ["noncash_receipt", "refund"]

    run_worker()
    assert [m["Subject"].strip() for m in receipt_mails(smtp_server)] == [
        f"Кассовый чек «Аванс» по заказу №{order['number']}",
        f"Кассовый чек «Возврат прихода» по заказу №{order['number']}"]


def test_b04_refunding_an_online_payment_after_hand_over_returns_the_items(shop):
    order = shop.order()
    link = shop.link(order)
    shop.pay(link)
    shop.issue(order)

    response = shop.refund(link, "900.00")

    assert response.status_code == 201, response.content
    [refund_receipt] = response.json()["receipts"]
    assert brief(refund_receipt) == {
        **receipt("sale_refund", items(FULL_PAYMENT), "900.00", electronic="900.00"), "settlement": INCOME_REFUND}
    assert shop.statuses(order) == ("issued", "refunded", "0.00")
    at_acquirer = shop.sandbox.payment(shop.payment_id(link))
    assert (at_acquirer["refunded_amount"]["value"], at_acquirer["refundable"]) == ("900.00", False)


def test_b04_an_online_refund_is_at_most_what_the_link_took_less_its_refunds(shop):
    order = shop.order()
    first, second = shop.link(order, "300.00"), shop.link(order, "600.00")
    shop.pay(first)
    shop.pay(second)
    assert shop.refund(first, "200.00", "a").status_code == 201

    too_much = shop.refund(first, "100.01", "b")

    assert too_much.status_code == 409, too_much.content
    assert (too_much.json()["code"], too_much.json()["paid"]) == ("refund_exceeds_paid", "100.00")
    assert shop.sandbox.payment(shop.payment_id(first))["refunded_amount"]["value"] == "200.00"
    assert shop.statuses(order) == ("agreed", "partially_paid", "700.00")
    assert shop.refund(first, "100.00", "c").status_code == 201
    assert shop.statuses(order) == ("agreed", "partially_paid", "600.00")


def test_b04_a_link_not_paid_has_nothing_to_refund(shop):
    order = shop.order()
    link = shop.link(order)

    response = shop.refund(link, "1.00")

    assert (response.status_code, response.json()["code"]) == (404, "payment_link_not_found")
    assert "refunded_amount" not in shop.sandbox.payment(shop.payment_id(link))


def test_b04_a_refund_the_acquirer_refuses_records_nothing(shop):
    order = shop.order()
    link = shop.link(order)
    shop.pay(link)
    shop.sandbox.fail_next(1, status=500)

    response = shop.refund(link, "100.00")

    assert response.status_code == 409, response.content
    assert response.json()["code"] == "acquirer_refused"
    assert shop.statuses(order) == ("agreed", "paid", "900.00")
    assert [d["kind"] for d in shop.documents(order)] == ["noncash_receipt"]
    # tried again with the same key, it goes through once
    assert shop.refund(link, "100.00").status_code == 201
    assert shop.statuses(order) == ("agreed", "partially_paid", "800.00")


def test_b04_a_refund_key_of_any_accepted_length_refunds_once(shop):
    order = shop.order()
    link = shop.link(order)
    shop.pay(link)
    key = "k" * 60  # the longest the API accepts

    responses = [shop.refund(link, "100.00", key) for _ in range(2)]

    assert [r.status_code for r in responses] == [201, 201], responses[0].content
    assert responses[0].json()["document"]["id"] == responses[1].json()["document"]["id"]
    assert shop.sandbox.payment(shop.payment_id(link))["refunded_amount"]["value"] == "100.00"


def test_b04_money_already_refunded_elsewhere_is_not_refunded_again_through_the_acquirer(shop):
    order = shop.order()
    link = shop.link(order)
    shop.pay(link)
    at_the_desk = shop.manager.post_json(f"{ORDERS}/{order['id']}/refunds",
                                         {"amount": "900.00", "method": "cash", "register_id": shop.registers.desk.pk})
    assert at_the_desk.status_code == 201, at_the_desk.content

    response = shop.refund(link, "100.00")

    assert (response.status_code, response.json()["code"]) == (409, "refund_exceeds_paid")
    assert "refunded_amount" not in shop.sandbox.payment(shop.payment_id(link))  # no money left the acquirer


# ---- the real path: the acquirer's notification over HTTP to a running server ----


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@committed_db
def test_r11_the_acquirers_notification_reaches_the_webhook_over_http_and_the_link_is_paid(
        live_server, sandbox_acquirer, client_as, machine_client, registers):
    shop = Shop(client_as, machine_client, sandbox_acquirer, registers)
    sandbox_acquirer.webhook_url = f"{live_server.url}{WEBHOOK}"
    order = shop.order()
    link = shop.link(order)

    # the customer presses «Pay» on the acquirer's page (the form a browser would post)
    form = urllib.request.Request(sandbox_acquirer.page_url(shop.payment_id(link)), method="POST",
                                  data=urllib.parse.urlencode({"action": "pay"}).encode())
    with pytest.raises(urllib.error.HTTPError) as page:  # 303 back to the shop, not followed here
        urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect).open(form, timeout=10)
    assert page.value.code == 303

    [sent] = sandbox_acquirer.wait_for_notifications(1, timeout=10)
    assert (sent.event, sent.delivered, sent.status, sent.attempts) == ("payment.succeeded", True, 200, 1)
    deadline = time.monotonic() + 10
    while shop.links(order)[0]["state"] != "paid" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert shop.links(order)[0]["state"] == "paid"
    assert shop.statuses(order) == ("agreed", "paid", "900.00")
    assert shop.briefs(order) == [advance(order, "900.00", "162.30")]
    assert AcquirerNotification.objects.get().outcome == "paid"


# ---- what the acquirer failed to answer ----


def test_r11_a_link_whose_creation_lost_its_answer_is_sent_again_with_the_same_key(shop):
    order = shop.order()
    shop.sandbox.fail_next(1, status=500, after_processing=True)  # the payment is made, the answer lost

    response = shop.make_link(order, "400.00")

    assert response.status_code == 409 and response.json()["code"] == "acquirer_unavailable"
    [link] = PaymentLink.objects.filter(order_id=order["id"])
    assert link.state == PaymentLink.State.CREATED and link.acquirer_payment_id is None

    from orderdesk.acquiring.services import retry_unsent_links

    assert retry_unsent_links() == 1
    link.refresh_from_db()
    assert link.state == PaymentLink.State.PENDING
    assert [p["id"] for p in shop.sandbox.payments] == [link.acquirer_payment_id]  # one payment, not two
    assert retry_unsent_links() == 0


def test_r11_an_acquirer_that_never_answers_times_out_instead_of_holding_the_caller(shop, settings):
    import socket

    from orderdesk.acquiring import yookassa_adapter

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    settings.YOOKASSA_API_URL = f"http://127.0.0.1:{silent.getsockname()[1]}/v3"
    settings.ACQUIRER_TIMEOUT_SECONDS = 0.5
    try:
        started = time.monotonic()
        with pytest.raises(yookassa_adapter.AcquirerUnavailable):
            yookassa_adapter.get_payment("any")
        assert time.monotonic() - started < 5
    finally:
        silent.close()


def test_b04_an_online_payment_is_refunded_through_the_acquirer_not_by_un_posting_its_document(shop):
    order = shop.order()
    shop.pay(shop.link(order))
    [document] = shop.documents(order)

    response = shop.manager.post_json(f"/api/v1/documents/{document['id']}/unpost", {})

    assert response.status_code == 409 and response.json()["code"] == "refund_through_acquirer"
    assert shop.statuses(order)[1] == "paid"
