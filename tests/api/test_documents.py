"""S7, S8, B4, B5 through the HTTP API: documents «based on» an order (cash receipt order, non-cash
receipt, sale), posting and un-posting them, refunds, and the receipts each one owes."""

from decimal import Decimal

import pytest

from orderdesk.fiscal.models import Receipt, Register, Shift
from orderdesk.fiscal.rules import PayMethod
from orderdesk.orders import services
from orderdesk.orders.models import Order, OrderEvent
from orderdesk.orders.schemas import OrderIn
from orderdesk.payments import services as payments
from orderdesk.payments.models import Document, PaymentEntry
from tests.conftest import COMPANY, committed_db, order_body

ORDERS = "/api/v1/orders"
DOCUMENTS = "/api/v1/documents"
D = Decimal

# The order of order_body(): two items of 2 × 150.50 − 1.00 = 300.00 at 22 %, delivery 300.00.
TOTAL = D("900.00")
COMPANY_CUSTOMER = {"kind": "company", "name": "ООО «Ромашка»", "email": "buh@romashka.ru", "phone": "+7 495 123-45-67",
                    "inn": "7707083893"}



@pytest.fixture
def place(site_actor, actor_of):
    """place() → a new site order, agreed; place(customer=...) for another buyer."""
    counter = iter(range(1, 100_000))
    admin = actor_of("administrator")

    def make(status: str = "agreed", **body) -> Order:
        order = services.place_order(site_actor, OrderIn(**order_body(f"doc-{next(counter)}", **body))).order
        if status == "agreed":
            services.set_status(admin, order.pk, "agreed")
        order.refresh_from_db()
        return order

    return make


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"].strip()
    return body


def create(client, order_id: int, kind: str) -> dict:
    response = client.post_json(f"{ORDERS}/{order_id}/documents", {"kind": kind})
    assert response.status_code == 201, response.content
    return response.json()


def edit(client, document_id: int, **fields):
    return client.put_json(f"{DOCUMENTS}/{document_id}", fields)


def post(client, document_id: int):
    return client.post_json(f"{DOCUMENTS}/{document_id}/post")


def unpost(client, document_id: int):
    return client.post_json(f"{DOCUMENTS}/{document_id}/unpost")


def card(client, order_id: int) -> dict:
    response = client.get(f"{ORDERS}/{order_id}")
    assert response.status_code == 200, response.content
    return response.json()


def receipts_of(client, order_id: int) -> list[dict]:
    response = client.get(f"{ORDERS}/{order_id}/receipts")
    assert response.status_code == 200, response.content
    return response.json()


def lines(receipt: dict) -> list[tuple]:
    """(name, amount, 1214, 1212, 1199, 1200) of each line."""
    return [(line["name"], D(line["amount"]), line["payment_method"], line["subject"], line["vat"], D(line["vat_amount"]))
            for line in receipt["lines"]]


def forms(receipt: dict) -> dict:
    """The payment block: only the forms with a sum."""
    return {name: D(receipt[name]) for name in ("cash", "electronic", "prepayment", "credit") if D(receipt[name])}


def advance_line(number: str, amount: str) -> tuple:
    """«Аванс»: one line «Оплата заказа №N», 1214=3, 1212=10, VAT 22/122 (1199=12)."""
    return (f"Оплата заказа №{number}", D(amount), 3, 10, 12, (D(amount) * 22 / 122).quantize(D("0.01")))


# ---- S7: receipts of money «based on» the order ----


def test_s07_a_cash_receipt_order_based_on_the_order_copies_the_debt_and_starts_as_a_draft(manager, place):
    order = place()

    document = create(manager, order.pk, "cash_receipt")

    assert document["kind"] == "cash_receipt"
    assert document["state"] == "draft"
    assert document["order_id"] == order.pk
    assert D(document["amount"]) == TOTAL
    assert document["method"] == "cash"
    assert document["payer_kind"] == "person"
    assert document["register_id"] is None
    assert document["posted_at"] is None
    assert document["number"].startswith("Д-")
    listed = manager.get(f"{ORDERS}/{order.pk}/documents").json()
    assert [d["id"] for d in listed] == [document["id"]]
    # a draft moves no money
    assert card(manager, order.pk)["payment_status"] == "not_paid"
    assert PaymentEntry.objects.filter(order=order).count() == 0
    assert Receipt.objects.filter(order=order).count() == 0


def test_s07_a_non_cash_receipt_copies_what_remains_after_earlier_payments(manager, place, registers, actor_of):
    order = place()
    payments.take_payment(actor_of("cashier"), order.pk, register_id=registers.desk.pk, amount=D("250.00"),
                          method=PayMethod.CARD)

    document = create(manager, order.pk, "noncash_receipt")

    assert document["kind"] == "noncash_receipt"
    assert D(document["amount"]) == D("650.00")
    assert document["method"] == "bank_transfer"
    assert document["state"] == "draft"


def test_s07_a_draft_is_edited_then_posted_and_the_payment_status_follows(manager, place, registers):
    order = place()
    document = create(manager, order.pk, "cash_receipt")

    response = edit(manager, document["id"], amount="400.00", register_id=registers.desk.pk, comment="Аванс в кассу")

    assert response.status_code == 200, response.content
    edited = response.json()
    assert (D(edited["amount"]), edited["register_id"], edited["comment"], edited["state"]) == (
        D("400.00"), registers.desk.pk, "Аванс в кассу", "draft")

    response = post(manager, document["id"])  # «Post and close»

    assert response.status_code == 200, response.content
    posted = response.json()
    assert posted["state"] == "posted"
    assert posted["posted_at"] is not None
    summary = card(manager, order.pk)
    assert (summary["payment_status"], D(summary["paid_amount"]), summary["status"]) == (
        "partially_paid", D("400.00"), "agreed")
    [entry] = PaymentEntry.objects.filter(order=order)
    assert (entry.document_id, entry.is_refund, entry.amount, entry.method, entry.receipt_owed) == (
        document["id"], False, D("400.00"), "cash", True)
    [receipt] = receipts_of(manager, order.pk)
    assert (receipt["purpose"], receipt["settlement"], D(receipt["total"])) == ("advance", 1, D("400.00"))
    assert lines(receipt) == [advance_line(order.number, "400.00")]
    assert lines(receipt)[0][5] == D("72.13")
    assert forms(receipt) == {"cash": D("400.00")}
    assert (receipt["register_id"], receipt["electronically"]) == (registers.desk.pk, False)
    assert Receipt.objects.get(pk=receipt["id"]).shift == Shift.objects.get(register=registers.desk)


def test_s07_the_rest_by_a_non_cash_receipt_makes_the_order_paid_with_its_e_receipt(manager, place, registers):
    order = place()
    first = create(manager, order.pk, "cash_receipt")
    edit(manager, first["id"], amount="400.00", register_id=registers.desk.pk)
    assert post(manager, first["id"]).status_code == 200

    second = create(manager, order.pk, "noncash_receipt")
    assert D(second["amount"]) == D("500.00")
    response = post(manager, second["id"])

    assert response.status_code == 200, response.content
    summary = card(manager, order.pk)
    assert (summary["payment_status"], D(summary["paid_amount"])) == ("paid", TOTAL)
    _cash, transfer = receipts_of(manager, order.pk)
    # a bank transfer from a private person owes a receipt (B5): an e-receipt of the online register
    assert (transfer["purpose"], transfer["settlement"], D(transfer["total"])) == ("advance", 1, D("500.00"))
    assert lines(transfer) == [advance_line(order.number, "500.00")]
    assert forms(transfer) == {"electronic": D("500.00")}
    assert (transfer["register_id"], transfer["electronically"], transfer["buyer_contact"]) == (
        registers.online.pk, True, "buyer@example.com")


def test_s07_every_field_of_a_draft_can_be_edited(manager, place, registers):
    order = place()
    document = create(manager, order.pk, "noncash_receipt")

    response = edit(manager, document["id"], amount="123.45", method="card", payer_kind="sole_trader",
                    register_id=registers.desk.pk, comment="по счёту 17")

    assert response.status_code == 200, response.content
    stored = Document.objects.get(pk=document["id"])
    assert (stored.amount, stored.method, stored.payer_kind, stored.register_id, stored.comment) == (
        D("123.45"), "card", "sole_trader", registers.desk.pk, "по счёту 17")


def test_s07_a_posted_document_cannot_be_edited_or_posted_again(manager, place, registers):
    order = place()
    document = create(manager, order.pk, "cash_receipt")
    edit(manager, document["id"], register_id=registers.desk.pk)
    assert post(manager, document["id"]).status_code == 200

    body = assert_error(edit(manager, document["id"], amount="1.00"), 409, "document_not_draft")
    assert body["state"] == "posted"
    assert_error(post(manager, document["id"]), 409, "document_not_draft")

    stored = Document.objects.get(pk=document["id"])
    assert stored.amount == TOTAL
    assert PaymentEntry.objects.filter(order=order).count() == 1
    assert Receipt.objects.filter(order=order).count() == 1
    assert card(manager, order.pk)["payment_status"] == "paid"


def test_s07_a_cash_receipt_without_a_cash_desk_is_refused_and_moves_no_money(manager, place, registers):
    order = place()
    document = create(manager, order.pk, "cash_receipt")

    body = assert_error(post(manager, document["id"]), 422, "validation_error")

    assert "register_id" in body["fields"]
    assert Document.objects.get(pk=document["id"]).state == "draft"
    assert PaymentEntry.objects.filter(order=order).count() == 0
    assert Receipt.objects.filter(order=order).count() == 0


def test_s07_a_cash_receipt_at_a_cash_desk_whose_shift_is_closed_is_refused(manager, place, registers, client_as):
    order = place()
    closed_desk = Register.objects.create(name="Касса 2", **COMPANY)
    document = create(manager, order.pk, "cash_receipt")
    edit(manager, document["id"], register_id=closed_desk.pk)

    body = assert_error(post(manager, document["id"]), 409, "shift_closed")

    assert body["register_id"] == closed_desk.pk
    assert "Касса 2" in body["message"]
    assert Document.objects.get(pk=document["id"]).state == "draft"
    assert PaymentEntry.objects.filter(order=order).count() == 0
    assert card(manager, order.pk)["payment_status"] == "not_paid"

    # the cashier opens the shift, and the same draft posts
    cashier = client_as("cashier")
    assert cashier.post_json(f"/api/v1/registers/{closed_desk.pk}/shift/open").status_code == 201
    assert post(manager, document["id"]).status_code == 200
    assert card(manager, order.pk)["payment_status"] == "paid"


@committed_db
def test_s07_a_draft_naming_an_unknown_cash_desk_is_refused_with_a_404_not_a_500(manager, place, registers):
    order = place()
    document = create(manager, order.pk, "cash_receipt")

    assert_error(edit(manager, document["id"], register_id=999_999, comment="x"), 404, "register_not_found")

    stored = Document.objects.get(pk=document["id"])
    assert (stored.register_id, stored.comment) == (None, "")
    assert edit(manager, document["id"], register_id=registers.desk.pk).status_code == 200


def test_s07_a_draft_with_a_zero_amount_is_refused_on_posting(manager, place, registers):
    order = place()
    document = create(manager, order.pk, "cash_receipt")
    edit(manager, document["id"], amount="0.00", register_id=registers.desk.pk)

    body = assert_error(post(manager, document["id"]), 422, "validation_error")

    assert "amount" in body["fields"]
    assert Document.objects.get(pk=document["id"]).state == "draft"


# ---- S8: the sale ----


def test_s08_posting_a_sale_ships_the_order_and_un_posting_it_takes_the_order_back_to_agreed(manager, place):
    order = place()
    document = create(manager, order.pk, "sale")
    assert (document["kind"], D(document["amount"]), document["state"]) == ("sale", TOTAL, "draft")

    response = post(manager, document["id"])

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "posted"
    shipped = card(manager, order.pk)
    assert (shipped["status"], shipped["status_name"]) == ("shipped", "Отгружен")
    assert Receipt.objects.filter(order=order).count() == 0  # a shipment moves goods, not money

    response = unpost(manager, document["id"])

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "unposted"
    back = card(manager, order.pk)
    assert (back["status"], back["status_name"]) == ("agreed", "Согласован")
    changes = [e.payload["status"] for e in OrderEvent.objects.filter(order=order, code="order.status.changed")]
    assert changes[-2:] == [["agreed", "shipped"], ["shipped", "agreed"]]
    assert_error(unpost(manager, document["id"]), 409, "document_not_posted")
    assert_error(post(manager, document["id"]), 409, "document_not_draft")


def test_s08_a_sale_of_an_order_not_yet_agreed_is_refused(manager, place):
    order = place(status="pending_approval")
    document = create(manager, order.pk, "sale")

    assert_error(post(manager, document["id"]), 409, "status_transition_forbidden")

    assert card(manager, order.pk)["status"] == "pending_approval"
    assert Document.objects.get(pk=document["id"]).state == "draft"


# ---- B4: un-posting money, refunds, cancellation ----


def sale_line(name: str, amount: str, subject: int = 1) -> tuple:
    """An item line at hand-over: 1214=4, VAT 22 % (1199=11)."""
    return (name, D(amount), 4, subject, 11, (D(amount) * 22 / 122).quantize(D("0.01")))


def pay(client, order_id: int, amount: str, register_id: int) -> dict:
    document = create(client, order_id, "cash_receipt")
    assert edit(client, document["id"], amount=amount, register_id=register_id).status_code == 200
    response = post(client, document["id"])
    assert response.status_code == 200, response.content
    return document


def refund(client, order_id: int, amount: str, method: str = "cash", register_id: int | None = None):
    body = {"amount": amount, "method": method}
    if register_id is not None:
        body["register_id"] = register_id
    return client.post_json(f"{ORDERS}/{order_id}/refunds", body)


def test_b04_un_posting_a_receipt_reverses_the_payment_with_a_refund_receipt(manager, place, registers):
    order = place()
    document = pay(manager, order.pk, "400.00", registers.desk.pk)

    response = unpost(manager, document["id"])

    assert response.status_code == 200, response.content
    assert response.json()["state"] == "unposted"
    summary = card(manager, order.pk)
    assert (summary["payment_status"], D(summary["paid_amount"])) == ("refunded", D("0.00"))
    entries = list(PaymentEntry.objects.filter(order=order).values_list("document_id", "is_refund", "amount"))
    assert entries == [(document["id"], False, D("400.00")), (document["id"], True, D("400.00"))]
    advance, reversal = receipts_of(manager, order.pk)
    assert advance["purpose"] == "advance"
    # «Возврат прихода» mirroring the advance: 1214=3, 1212=10, the calculated rate 22/122
    assert (reversal["purpose"], reversal["settlement"], D(reversal["total"])) == ("advance_refund", 2, D("400.00"))
    assert lines(reversal) == [advance_line(order.number, "400.00")]
    assert lines(reversal) == lines(advance)
    assert forms(reversal) == {"cash": D("400.00")}
    assert_error(unpost(manager, document["id"]), 409, "document_not_posted")


def test_b04_un_posting_one_of_two_payments_leaves_the_order_partially_paid(manager, place, registers):
    order = place()
    pay(manager, order.pk, "300.00", registers.desk.pk)
    second = pay(manager, order.pk, "600.00", registers.desk.pk)
    assert card(manager, order.pk)["payment_status"] == "paid"

    assert unpost(manager, second["id"]).status_code == 200

    summary = card(manager, order.pk)
    assert (summary["payment_status"], D(summary["paid_amount"])) == ("partially_paid", D("300.00"))
    reversal = receipts_of(manager, order.pk)[-1]
    assert (reversal["purpose"], reversal["settlement"]) == ("advance_refund", 2)
    assert lines(reversal) == [advance_line(order.number, "600.00")]
    # the next document copies the debt that is owed again
    assert D(create(manager, order.pk, "cash_receipt")["amount"]) == D("600.00")


def test_b04_a_refund_before_hand_over_mirrors_the_advance(manager, place, registers):
    order = place()
    pay(manager, order.pk, "500.00", registers.desk.pk)

    response = refund(manager, order.pk, "200.00", "cash", registers.desk.pk)

    assert response.status_code == 201, response.content
    result = response.json()
    assert result["document"]["kind"] == "refund"
    assert result["document"]["state"] == "posted"
    assert (result["order"]["payment_status"], D(result["order"]["paid_amount"])) == ("partially_paid", D("300.00"))
    [receipt] = result["receipts"]
    assert (receipt["purpose"], receipt["settlement"], D(receipt["total"])) == ("advance_refund", 2, D("200.00"))
    assert lines(receipt) == [advance_line(order.number, "200.00")]
    assert lines(receipt)[0][5] == D("36.07")
    assert forms(receipt) == {"cash": D("200.00")}
    assert (receipt["register_id"], receipt["electronically"]) == (registers.desk.pk, False)


def test_b04_a_refund_after_hand_over_returns_the_items_at_full_settlement(manager, place, registers):
    order = place()
    pay(manager, order.pk, "900.00", registers.desk.pk)
    response = manager.post_json(f"{ORDERS}/{order.pk}/status", {"status": "issued", "register_id": registers.desk.pk})
    assert response.status_code == 200, response.content

    response = refund(manager, order.pk, "300.00", "card")  # no cash desk named: an e-receipt

    assert response.status_code == 201, response.content
    result = response.json()
    assert (result["order"]["payment_status"], D(result["order"]["paid_amount"])) == ("partially_paid", D("600.00"))
    [receipt] = result["receipts"]
    assert (receipt["purpose"], receipt["settlement"], D(receipt["total"])) == ("sale_refund", 2, D("300.00"))
    # the sum is shared by the lines of the final receipt, at its rate and attributes
    assert lines(receipt) == [sale_line("Товар 1", "100.00"), sale_line("Товар 2", "100.00"),
                              sale_line("Доставка (courier)", "100.00", subject=4)]
    assert forms(receipt) == {"electronic": D("300.00")}
    assert (receipt["register_id"], receipt["electronically"], receipt["buyer_contact"]) == (
        registers.online.pk, True, "buyer@example.com")


def test_b04_a_refund_above_what_was_paid_is_refused(manager, place, registers):
    order = place()
    pay(manager, order.pk, "300.00", registers.desk.pk)

    body = assert_error(refund(manager, order.pk, "300.01", "cash", registers.desk.pk), 409, "refund_exceeds_paid")

    assert D(body["paid"]) == D("300.00")
    assert PaymentEntry.objects.filter(order=order, is_refund=True).count() == 0
    assert Receipt.objects.filter(order=order, settlement=2).count() == 0
    assert card(manager, order.pk)["payment_status"] == "partially_paid"
    # nothing paid at all: nothing to refund
    assert_error(refund(manager, place().pk, "1.00"), 409, "refund_exceeds_paid")


def test_b04_a_cancelled_order_with_advances_is_closed_only_after_the_refund(manager, place, registers):
    order = place()
    pay(manager, order.pk, "400.00", registers.desk.pk)
    assert manager.post_json(f"{ORDERS}/{order.pk}/status", {"status": "cancelled"}).status_code == 200

    body = assert_error(manager.post_json(f"{ORDERS}/{order.pk}/status", {"status": "closed"}), 409, "refund_required")

    assert D(body["paid"]) == D("400.00")
    assert card(manager, order.pk)["status"] == "cancelled"
    assert refund(manager, order.pk, "150.00", "cash", registers.desk.pk).status_code == 201
    assert_error(manager.post_json(f"{ORDERS}/{order.pk}/status", {"status": "closed"}), 409, "refund_required")
    assert refund(manager, order.pk, "250.00", "cash", registers.desk.pk).status_code == 201

    response = manager.post_json(f"{ORDERS}/{order.pk}/status", {"status": "closed"})

    assert response.status_code == 200, response.content
    closed = response.json()
    assert (closed["status"], closed["payment_status"], D(closed["paid_amount"])) == ("closed", "refunded", D("0.00"))
    refunds = [r for r in receipts_of(manager, order.pk) if r["settlement"] == 2]
    assert [(r["purpose"], D(r["total"])) for r in refunds] == [("advance_refund", D("150.00")),
                                                               ("advance_refund", D("250.00"))]


def test_b04_a_cancelled_order_without_money_is_closed_at_once(manager, place):
    order = place()
    assert manager.post_json(f"{ORDERS}/{order.pk}/status", {"status": "cancelled"}).status_code == 200

    response = manager.post_json(f"{ORDERS}/{order.pk}/status", {"status": "closed"})

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "closed"


# ---- B5: no receipt where none is due ----


def test_b05_a_bank_transfer_from_a_company_customer_prints_no_receipt_and_pays_the_order(manager, place, registers):
    order = place(customer=COMPANY_CUSTOMER)
    document = create(manager, order.pk, "noncash_receipt")
    assert document["payer_kind"] == "company"

    response = post(manager, document["id"])

    assert response.status_code == 200, response.content
    summary = card(manager, order.pk)
    assert (summary["payment_status"], D(summary["paid_amount"])) == ("paid", TOTAL)
    assert receipts_of(manager, order.pk) == []
    [entry] = PaymentEntry.objects.filter(order=order)
    assert (entry.method, entry.payer_kind, entry.receipt_owed) == ("bank_transfer", "company", False)


@pytest.mark.parametrize("payer_kind", ["company", "sole_trader"])
def test_b05_a_bank_transfer_marked_as_paid_by_a_company_prints_no_receipt(manager, place, registers, payer_kind):
    order = place()  # a private person's order, paid for by a company or a sole trader
    document = create(manager, order.pk, "noncash_receipt")
    assert edit(manager, document["id"], payer_kind=payer_kind).status_code == 200

    response = post(manager, document["id"])

    assert response.status_code == 200, response.content
    assert card(manager, order.pk)["payment_status"] == "paid"
    assert receipts_of(manager, order.pk) == []
    assert PaymentEntry.objects.get(order=order).receipt_owed is False


def test_b05_a_bank_transfer_from_a_private_person_prints_an_advance_e_receipt(manager, place, registers):
    order = place()
    document = create(manager, order.pk, "noncash_receipt")
    edit(manager, document["id"], amount="350.00")

    assert post(manager, document["id"]).status_code == 200

    assert card(manager, order.pk)["payment_status"] == "partially_paid"
    [receipt] = receipts_of(manager, order.pk)
    assert (receipt["purpose"], receipt["settlement"], D(receipt["total"])) == ("advance", 1, D("350.00"))
    assert lines(receipt) == [advance_line(order.number, "350.00")]
    assert forms(receipt) == {"electronic": D("350.00")}
    assert (receipt["register_id"], receipt["electronically"], receipt["buyer_contact"]) == (
        registers.online.pk, True, "buyer@example.com")


def test_b05_a_company_order_paid_wholly_by_bank_transfer_and_issued_prints_no_receipt_at_all(manager, place, registers):
    order = place(customer=COMPANY_CUSTOMER)
    document = create(manager, order.pk, "noncash_receipt")
    assert post(manager, document["id"]).status_code == 200

    response = manager.post_json(f"{ORDERS}/{order.pk}/status", {"status": "issued"})

    assert response.status_code == 200, response.content
    issued = response.json()
    assert (issued["status"], issued["payment_status"]) == ("issued", "paid")
    assert receipts_of(manager, order.pk) == []
    assert Receipt.objects.filter(order=order).count() == 0


def test_b05_a_company_order_paid_partly_by_bank_transfer_and_partly_in_cash_gets_its_receipts(
        manager, place, registers):
    order = place(customer=COMPANY_CUSTOMER)
    transfer = create(manager, order.pk, "noncash_receipt")
    edit(manager, transfer["id"], amount="600.00")
    assert post(manager, transfer["id"]).status_code == 200
    pay(manager, order.pk, "300.00", registers.desk.pk)

    response = manager.post_json(f"{ORDERS}/{order.pk}/status", {"status": "issued", "register_id": registers.desk.pk})

    assert response.status_code == 200, response.content
    advance, final = receipts_of(manager, order.pk)
    assert (advance["purpose"], D(advance["total"]), forms(advance)) == ("advance", D("300.00"), {"cash": D("300.00")})
    assert advance["buyer_contact"] == ""
    assert final["purpose"] == "final"
    assert D(final["total"]) == TOTAL
    assert forms(final) == {"prepayment": TOTAL}


def test_b04_un_posting_a_transfer_a_person_paid_for_a_company_order_refunds_its_receipt(manager, place, registers):
    order = place(customer=COMPANY_CUSTOMER)  # the company's order, paid by its director from his own account
    document = create(manager, order.pk, "noncash_receipt")
    edit(manager, document["id"], amount="200.00", payer_kind="person")
    assert post(manager, document["id"]).status_code == 200
    [advance] = receipts_of(manager, order.pk)
    assert (advance["purpose"], forms(advance)) == ("advance", {"electronic": D("200.00")})

    assert unpost(manager, document["id"]).status_code == 200

    advance, reversal = receipts_of(manager, order.pk)
    assert (reversal["purpose"], reversal["settlement"], forms(reversal)) == (
        "advance_refund", 2, {"electronic": D("200.00")})
    assert lines(reversal) == lines(advance)
    assert card(manager, order.pk)["payment_status"] == "refunded"
