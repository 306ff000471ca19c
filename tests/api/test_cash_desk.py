"""R1–R9, R12, B2, B2a, B3, B6, B8 through the HTTP API: what the cash desk takes, which receipts
every payment and every «Issued» owes (to the line: 1214, 1212, 1199, VAT to the kopeck, payment
forms), and what becomes of the order's status and payment status.

The order of `order_body()`: two items at 2 × 150.50 − 1.00 = 300.00 (VAT "22") and a courier
delivery of 300.00, a service line in receipts — 900.00 in all. Today is 2026, so the general rate
is 22 %: 1199=11 on hand-over receipts, 22/122 (1199=12) on advances.
"""

import re
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.conftest import order_body, run_worker

ORDERS = "/api/v1/orders"
QUICK_SALES = "/api/v1/cash-desk/quick-sales"
REGISTERS = "/api/v1/registers"

# FFD 1.2 codes, spelled out so a wrong mapping in the code cannot hide behind the same constant.
FULL_PREPAYMENT, PREPAYMENT, ADVANCE, FULL_PAYMENT, PARTIAL_AND_CREDIT, CREDIT_TRANSFER, CREDIT_PAYMENT = range(1, 8)
GOODS, SERVICE, PAYMENT = 1, 4, 10
VAT10, VAT22, VAT122 = 2, 11, 12
INCOME = 1


# ---- what the tests compare ----


def line(name, amount, method, subject, vat, vat_amount, *, quantity="1.000", price=None) -> dict:
    return {"name": name, "quantity": quantity, "price": price or amount, "amount": amount, "payment_method": method,
            "subject": subject, "vat": vat, "vat_amount": vat_amount}


def items(method: int, vat: int = VAT22, shares=("300.00", "300.00", "300.00"),
          vat_amounts=("54.10", "54.10", "54.10")) -> list[dict]:
    """The order's three receipt lines, each for its share of the sum."""
    return [
        line("Товар 1", shares[0], method, GOODS, vat, vat_amounts[0], quantity="2.000", price="150.50"),
        line("Товар 2", shares[1], method, GOODS, vat, vat_amounts[1], quantity="2.000", price="150.50"),
        line("Доставка (courier)", shares[2], method, SERVICE, vat, vat_amounts[2], price="300.00"),
    ]


def advance_line(order: dict, amount: str, vat_amount: str) -> dict:
    return line(f"Оплата заказа №{order['number']}", amount, ADVANCE, PAYMENT, VAT122, vat_amount)


def receipt(purpose: str, lines: list[dict], total: str, *, cash="0.00", electronic="0.00", prepayment="0.00",
            credit="0.00") -> dict:
    return {"purpose": purpose, "settlement": INCOME, "total": total, "cash": cash, "electronic": electronic,
            "prepayment": prepayment, "credit": credit, "lines": lines}


def brief(receipt_json: dict) -> dict:
    """A receipt as the tests state it: purpose, 1054, payment forms, total and the lines."""
    keys = ("purpose", "settlement", "total", "cash", "electronic", "prepayment", "credit")
    line_keys = ("name", "quantity", "price", "amount", "payment_method", "subject", "vat", "vat_amount")
    return {**{k: receipt_json[k] for k in keys},
            "lines": [{k: row[k] for k in line_keys} for row in receipt_json["lines"]]}


def qr_of(registered: dict, total: str) -> str:
    """The fiscal QR string a registered receipt must carry: t (local time, to the minute), s, fn, i, fp, n."""
    moment = re.fullmatch(r"t=(\d{8}T\d{4})&.*", registered["qr_string"])
    assert moment and moment[1].startswith(timezone.localdate().strftime("%Y%m%d")), registered["qr_string"]
    return (f"t={moment[1]}&s={total}&fn={registered['fn_number']}&i={registered['fd_number']}"
            f"&fp={registered['fiscal_sign']}&n=1")


# ---- the shop ----


class Shop:
    """A manager who makes and agrees orders, a cashier at the cash desk `registers.desk`."""

    def __init__(self, client_as, machine_client, registers):
        self.manager = client_as("manager")
        self.cashier = client_as("cashier")
        self._machine_client = machine_client
        self._site = None
        self.registers = registers
        self.desk = registers.desk.pk
        self._ids = iter(range(1, 10_000))

    @property
    def site(self):
        self._site = self._site or self._machine_client("site")
        return self._site

    def order(self, source: str = "manager", status: str = "agreed", **body) -> dict:
        """A new order of 900.00 from the site or made by a manager, brought to `status`."""
        if source == "site":
            response = self.site.post_json(ORDERS, order_body(f"cash-desk-{next(self._ids)}", **body))
        else:
            response = self.manager.post_json(ORDERS, order_body(None, **body))
        assert response.status_code == 201, response.content
        order = response.json()
        assert order["source"] == source
        if status != order["status"]:
            assert self.manager.post_json(f"{ORDERS}/{order['id']}/status", {"status": status}).status_code == 200
        return self.card(order)

    def pay(self, order: dict, amount: str, method: str = "cash", **extra):
        return self.cashier.post_json(f"{ORDERS}/{order['id']}/payments",
                                      {"register_id": self.desk, "amount": amount, "method": method, **extra})

    def paid(self, order: dict, amount: str, method: str = "cash", **extra) -> dict:
        response = self.pay(order, amount, method, **extra)
        assert response.status_code == 201, response.content
        return response.json()

    def set_status(self, order: dict, status: str, **extra):
        return self.cashier.post_json(f"{ORDERS}/{order['id']}/status", {"status": status, **extra})

    def issue(self, order: dict, **extra) -> dict:
        response = self.set_status(order, "issued", register_id=self.desk, **extra)
        assert response.status_code == 200, response.content
        return response.json()

    def card(self, order: dict) -> dict:
        response = self.manager.get(f"{ORDERS}/{order['id']}")
        assert response.status_code == 200
        return response.json()

    def receipts(self, order: dict) -> list[dict]:
        response = self.cashier.get(f"{ORDERS}/{order['id']}/receipts")
        assert response.status_code == 200
        return response.json()

    def briefs(self, order: dict) -> list[dict]:
        return [brief(r) for r in self.receipts(order)]

    def history(self, order: dict) -> list[dict]:
        response = self.manager.get(f"{ORDERS}/{order['id']}/history")
        assert response.status_code == 200
        return response.json()

    def statuses(self, order: dict) -> tuple[str, str, str]:
        card = self.card(order)
        return card["status"], card["payment_status"], card["paid_amount"]


@pytest.fixture
def shop(client_as, machine_client, registers) -> Shop:
    return Shop(client_as, machine_client, registers)


# ---- R1, R2: a sale with no order ----

SALE_ITEMS = [
    {"sku": "C-1", "name": "Кофе в зёрнах", "unit": "шт", "quantity": "2", "price": "120.00", "vat_rate": "22"},
    {"name": "Хлеб", "quantity": "1", "price": "60.00", "discount": "5.00", "vat_rate": "10"},
    {"name": "Пакет", "quantity": "1", "price": "5.00", "vat_rate": "22"},
]
SALE_LINES = [
    line("Кофе в зёрнах", "240.00", FULL_PAYMENT, GOODS, VAT22, "43.28", quantity="2.000", price="120.00"),
    line("Хлеб", "55.00", FULL_PAYMENT, GOODS, VAT10, "5.00", price="60.00"),
    line("Пакет", "5.00", FULL_PAYMENT, GOODS, VAT22, "0.90"),
]


def test_r01_a_sale_with_no_order_is_paid_in_full_with_one_full_settlement_receipt_and_a_closed_quick_order(shop):
    response = shop.cashier.post_json(QUICK_SALES, {"register_id": shop.desk, "items": SALE_ITEMS, "method": "cash"})

    assert response.status_code == 201, response.content
    body = response.json()
    order = body["order"]
    assert (order["source"], order["is_quick"], order["status"], order["payment_status"]) == (
        "cash_desk", True, "closed", "paid")
    assert (order["total"], order["paid_amount"]) == ("300.00", "300.00")
    assert body["document"]["amount"] == "300.00"
    assert [brief(r) for r in body["receipts"]] == [receipt("sale", SALE_LINES, "300.00", cash="300.00")]
    assert shop.briefs(order) == [receipt("sale", SALE_LINES, "300.00", cash="300.00")]
    [printed] = shop.receipts(order)
    assert (printed["electronically"], printed["register_id"]) == (False, shop.desk)


def test_r01_a_quick_sale_takes_no_amount_the_items_total_is_what_is_paid(shop):
    response = shop.cashier.post_json(QUICK_SALES, {"register_id": shop.desk, "items": SALE_ITEMS, "method": "card",
                                                     "amount": "100.00"})

    assert response.status_code == 201, response.content
    [sale] = response.json()["receipts"]
    assert (sale["total"], sale["electronic"], sale["cash"]) == ("300.00", "300.00", "0.00")


def test_r01_only_the_right_to_edit_quick_orders_lets_a_person_past_the_quick_orders_lock(shop, client_as, make_user):
    order = shop.cashier.post_json(
        QUICK_SALES, {"register_id": shop.desk, "items": SALE_ITEMS, "method": "cash"}).json()["order"]
    new_items = {"items": [{"name": "Чай", "quantity": "1", "price": "300.00", "vat_rate": "22"}]}

    def attempts(client) -> list[tuple[int, str]]:
        answers = [
            client.post_json(f"{ORDERS}/{order['id']}/status", {"status": "cancelled"}),
            client.put_json(f"{ORDERS}/{order['id']}/items", new_items),
            client.put_json(f"{ORDERS}/{order['id']}/removal-mark", {"marked": True}),
        ]
        return [(a.status_code, a.json().get("code", "")) for a in answers]

    # A manager may edit orders, but not quick ones.
    assert attempts(shop.manager) == [(403, "forbidden")] * 3
    assert shop.card(order)["deletion_mark"] is False

    # With the right, the lock opens; the quick order is closed, so what the lifecycle forbids stays forbidden.
    for who in (client_as(make_user("manager", can_edit_quick_orders=True)), client_as("administrator")):
        assert attempts(who) == [(409, "status_transition_forbidden"), (409, "items_frozen"), (200, "")]
        assert who.put_json(f"{ORDERS}/{order['id']}/removal-mark", {"marked": False}).status_code == 200
    card = shop.card(order)
    assert (card["status"], card["payment_status"], card["total"], card["deletion_mark"]) == (
        "closed", "paid", "300.00", False)
    assert [i["name"] for i in card["items"]] == ["Кофе в зёрнах", "Хлеб", "Пакет"]


def receipt_mails(smtp_server) -> list:
    """E-receipts among what the SMTP server got (the customer's order e-mails go there too)."""
    return [m for m in smtp_server.messages if m["Subject"].strip().startswith("Кассовый чек")]


@pytest.mark.parametrize("customer, mailed_to", [
    ({"kind": "person", "name": "Анна Смирнова", "email": "anna@example.org"}, "anna@example.org"),
    (None, "shop@example.com"),  # no buyer: the company's e-mail from the register card
], ids=["to the customer", "to the company"])
def test_r02_a_quick_sale_paid_by_sbp_mails_the_full_settlement_e_receipt(shop, smtp_server, customer, mailed_to):
    sale = {"register_id": shop.desk, "items": SALE_ITEMS, "method": "sbp"}
    if customer:
        sale["customer"] = customer
    response = shop.cashier.post_json(QUICK_SALES, sale)
    assert response.status_code == 201, response.content
    order = response.json()["order"]
    [pending] = shop.receipts(order)
    assert brief(pending) == receipt("sale", SALE_LINES, "300.00", electronic="300.00")
    assert (pending["electronically"], pending["buyer_contact"]) == (True, mailed_to)
    assert receipt_mails(smtp_server) == []  # nothing leaves before the register has fiscalised it

    run_worker()

    [mail] = receipt_mails(smtp_server)
    assert mail["To"] == mailed_to
    assert mail["Subject"].strip() == f"Кассовый чек «Полный расчёт» по заказу №{order['number']}"
    registered = shop.cashier.get(f"/api/v1/receipts/{pending['id']}").json()
    assert registered["state"] == "registered"
    qr = registered["qr_string"]
    assert qr == qr_of(registered, "300.00")
    text = mail.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    assert registered["text"] in text
    assert "ПОЛНЫЙ РАСЧЕТ" in text and f"QR: {qr}" in text and "БЕЗНАЛИЧНЫМИ" in text
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "<svg" in html  # the fiscal QR code itself


def test_r02_a_quick_sale_paid_in_cash_mails_no_receipt(shop, smtp_server):
    response = shop.cashier.post_json(QUICK_SALES, {"register_id": shop.desk, "items": SALE_ITEMS, "method": "cash"})
    assert response.status_code == 201

    run_worker()

    [printed] = shop.receipts(response.json()["order"])
    assert (printed["state"], printed["electronically"], printed["buyer_contact"]) == ("registered", False, "")
    assert receipt_mails(smtp_server) == []


# ---- R3–R5: advances at the cash desk, «Полный расчёт» at «Issued» ----


@pytest.mark.parametrize("source", ["site", "manager"])
@pytest.mark.parametrize("method, form", [("cash", "cash"), ("card", "electronic"), ("sbp", "electronic")])
def test_r03_every_cash_desk_payment_of_an_order_prints_an_advance_and_only_issued_prints_full_settlement(
        shop, source, method, form):
    order = shop.order(source)

    first = shop.paid(order, "300.00", method)
    second = shop.paid(order, "600.00", method, settle="no")  # R8 asks; the order is not handed over yet

    advances = [receipt("advance", [advance_line(order, "300.00", "54.10")], "300.00", **{form: "300.00"}),
                receipt("advance", [advance_line(order, "600.00", "108.20")], "600.00", **{form: "600.00"})]
    assert [brief(r) for r in first["receipts"] + second["receipts"]] == advances
    assert shop.briefs(order) == advances
    assert shop.statuses(order) == ("agreed", "paid", "900.00")

    shop.issue(order)

    final = receipt("final", items(FULL_PAYMENT), "900.00", prepayment="900.00")
    assert shop.briefs(order) == [*advances, final]
    assert shop.statuses(order) == ("issued", "paid", "900.00")


def test_s07_a_cash_desk_payment_and_a_quick_sale_each_leave_a_posted_receipt_document(shop):
    order = shop.order()
    cash = shop.paid(order, "300.00")["document"]
    card = shop.paid(order, "200.00", "card")["document"]
    sale = shop.cashier.post_json(QUICK_SALES, {"register_id": shop.desk, "items": SALE_ITEMS, "method": "cash"})
    assert sale.status_code == 201, sale.content
    sold = sale.json()["document"]

    documents = [cash, card, sold]
    assert [(d["kind"], d["state"], d["amount"], d["method"], d["register_id"]) for d in documents] == [
        ("cash_receipt", "posted", "300.00", "cash", shop.desk), ("noncash_receipt", "posted", "200.00", "card", shop.desk),
        ("cash_receipt", "posted", "300.00", "cash", shop.desk)]
    assert all(d["posted_at"] for d in documents)


def test_r03_an_sbp_advance_is_an_e_receipt_to_the_customers_e_mail_and_cash_is_printed(shop):
    order = shop.order(email="olga@example.org")

    shop.paid(order, "100.00", "cash")
    shop.paid(order, "100.00", "sbp")

    cash, sbp = shop.receipts(order)
    assert (cash["electronically"], cash["buyer_contact"]) == (False, "")
    assert (sbp["electronically"], sbp["buyer_contact"]) == (True, "olga@example.org")


def test_r03_the_cash_desk_takes_cash_card_or_sbp_not_a_bank_transfer(shop):
    order = shop.order()

    response = shop.pay(order, "300.00", "bank_transfer")

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert "method" in response.json()["fields"]
    assert shop.receipts(order) == []
    assert shop.statuses(order) == ("agreed", "not_paid", "0.00")


def test_r04_three_partial_payments_print_three_advance_receipts(shop):
    order = shop.order()

    shop.paid(order, "100.00", "cash")
    shop.paid(order, "200.00", "card")
    shop.paid(order, "300.00", "sbp")

    assert shop.briefs(order) == [
        receipt("advance", [advance_line(order, "100.00", "18.03")], "100.00", cash="100.00"),
        receipt("advance", [advance_line(order, "200.00", "36.07")], "200.00", electronic="200.00"),
        receipt("advance", [advance_line(order, "300.00", "54.10")], "300.00", electronic="300.00"),
    ]
    assert shop.statuses(order) == ("agreed", "partially_paid", "600.00")


def test_r05_full_payment_prints_an_advance_and_issued_prints_full_settlement_offsetting_it(shop):
    order = shop.order("site")

    paid = shop.paid(order, "900.00", "cash")

    assert paid["order"]["payment_status"] == "paid"
    assert [brief(r) for r in paid["receipts"]] == [
        receipt("advance", [advance_line(order, "900.00", "162.30")], "900.00", cash="900.00")]
    assert shop.statuses(order) == ("agreed", "paid", "900.00")

    card = shop.issue(order)

    assert (card["status"], card["payment_status"]) == ("issued", "paid")
    advance, final = shop.receipts(order)
    assert brief(final) == receipt("final", items(FULL_PAYMENT), "900.00", prepayment="900.00")
    assert (final["register_id"], final["electronically"]) == (shop.desk, False)
    # «Issued» once more changes nothing and prints nothing.
    assert shop.set_status(order, "issued", register_id=shop.desk).status_code == 200
    assert len(shop.receipts(order)) == 2


# ---- R6, B3: «Issued» with a debt ----


@pytest.fixture(params=["not paid", "partially paid"])
def unpaid_order(request, shop) -> dict:
    order = shop.order()
    if request.param == "partially paid":
        shop.paid(order, "300.00", "cash")
    return shop.card(order)


def test_r06_issuing_an_order_not_paid_in_full_asks_back_pay_or_issue(shop, unpaid_order):
    response = shop.set_status(unpaid_order, "issued", register_id=shop.desk)

    assert response.status_code == 409
    body = response.json()
    assert (body["code"], body["question"], body["choices"]) == ("confirmation_required", "issue_unpaid",
                                                                 ["back", "pay", "issue"])
    assert body["payment_status"] == unpaid_order["payment_status"]


@pytest.mark.parametrize("choice", [None, "back", "pay"])
def test_r06_back_and_pay_change_nothing(shop, unpaid_order, choice):
    before = (shop.statuses(unpaid_order), shop.receipts(unpaid_order), shop.history(unpaid_order))

    extra = {"choice": choice} if choice else {}
    response = shop.set_status(unpaid_order, "issued", register_id=shop.desk, **extra)

    assert response.status_code == (409 if choice is None else 200)
    assert (shop.statuses(unpaid_order), shop.receipts(unpaid_order), shop.history(unpaid_order)) == before
    assert before[0][0] == "agreed"


def test_r06_b03_issue_on_an_unpaid_order_prints_a_credit_transfer(shop):
    order = shop.order()

    card = shop.issue(order, choice="issue")

    assert (card["status"], card["payment_status"], card["paid_amount"]) == ("issued", "not_paid", "0.00")
    assert shop.briefs(order) == [receipt("credit", items(CREDIT_TRANSFER), "900.00", credit="900.00")]


def test_r06_b03_issue_on_a_partly_paid_order_prints_partial_settlement_and_credit(shop):
    order = shop.order()
    shop.paid(order, "300.00", "card")

    card = shop.issue(order, choice="issue")

    assert (card["status"], card["payment_status"], card["paid_amount"]) == ("issued", "partially_paid", "300.00")
    assert shop.briefs(order) == [
        receipt("advance", [advance_line(order, "300.00", "54.10")], "300.00", electronic="300.00"),
        receipt("credit", items(PARTIAL_AND_CREDIT), "900.00", prepayment="300.00", credit="600.00"),
    ]


def test_b03_paying_the_debt_of_an_issued_order_asks_nothing_and_prints_credit_payment(shop, unpaid_order):
    shop.issue(unpaid_order, choice="issue")
    debt = "900.00" if unpaid_order["payment_status"] == "not_paid" else "600.00"
    vat = {"900.00": "162.30", "600.00": "108.20"}[debt]
    before = shop.briefs(unpaid_order)

    response = shop.pay(unpaid_order, debt, "cash")

    assert response.status_code == 201, response.content
    credit_payment = receipt("credit_payment", [
        line(f"Оплата долга по заказу №{unpaid_order['number']}", debt, CREDIT_PAYMENT, PAYMENT, VAT22, vat)],
        debt, cash=debt)
    assert [brief(r) for r in response.json()["receipts"]] == [credit_payment]
    assert shop.briefs(unpaid_order) == [*before, credit_payment]
    assert shop.statuses(unpaid_order) == ("issued", "paid", "900.00")


def test_b03_each_part_of_the_debt_gets_its_own_credit_payment_receipt(shop):
    order = shop.order()
    shop.issue(order, choice="issue")

    shop.paid(order, "400.00", "card")
    assert shop.statuses(order) == ("issued", "partially_paid", "400.00")
    shop.paid(order, "500.00", "cash")  # the rest of the debt: no R8 question, the goods are out

    name = f"Оплата долга по заказу №{order['number']}"
    assert shop.briefs(order)[1:] == [
        receipt("credit_payment", [line(name, "400.00", CREDIT_PAYMENT, PAYMENT, VAT22, "72.13")], "400.00",
                electronic="400.00"),
        receipt("credit_payment", [line(name, "500.00", CREDIT_PAYMENT, PAYMENT, VAT22, "90.16")], "500.00",
                cash="500.00"),
    ]
    assert shop.statuses(order) == ("issued", "paid", "900.00")


# ---- R7–R9: partial payments and the question of settling in full ----


def test_r07_a_partial_payment_prints_an_advance_and_makes_the_order_partially_paid(shop):
    order = shop.order("site")

    paid = shop.paid(order, "250.50", "card")

    assert [brief(r) for r in paid["receipts"]] == [
        receipt("advance", [advance_line(order, "250.50", "45.17")], "250.50", electronic="250.50")]
    assert shop.statuses(order) == ("agreed", "partially_paid", "250.50")


@pytest.fixture
def partly_paid(shop) -> dict:
    order = shop.order()
    shop.paid(order, "300.00", "cash")
    return order


def test_r08_paying_the_whole_debt_of_a_partly_paid_order_asks_whether_to_settle_in_full(shop, partly_paid):
    before = (shop.statuses(partly_paid), shop.receipts(partly_paid), shop.history(partly_paid))

    response = shop.pay(partly_paid, "600.00", "cash")

    assert response.status_code == 409
    body = response.json()
    assert (body["code"], body["question"], body["choices"]) == ("confirmation_required", "settle_in_full",
                                                                 ["yes", "no"])
    assert (shop.statuses(partly_paid), shop.receipts(partly_paid), shop.history(partly_paid)) == before
    assert len(shop.manager.get(f"{ORDERS}/{partly_paid['id']}/documents").json()) == 1


def test_r08_no_prints_an_advance_and_issued_later_prints_full_settlement(shop, partly_paid):
    paid = shop.paid(partly_paid, "600.00", "card", settle="no")

    first_advance = receipt("advance", [advance_line(partly_paid, "300.00", "54.10")], "300.00", cash="300.00")
    second_advance = receipt("advance", [advance_line(partly_paid, "600.00", "108.20")], "600.00",
                             electronic="600.00")
    assert [brief(r) for r in paid["receipts"]] == [second_advance]
    assert shop.statuses(partly_paid) == ("agreed", "paid", "900.00")

    shop.issue(partly_paid)

    assert shop.briefs(partly_paid) == [
        first_advance, second_advance, receipt("final", items(FULL_PAYMENT), "900.00", prepayment="900.00")]
    assert shop.statuses(partly_paid) == ("issued", "paid", "900.00")


@pytest.mark.parametrize("method, form", [("cash", "cash"), ("sbp", "electronic")])
def test_r08_yes_prints_full_settlement_offsetting_the_advances_and_issues_the_order(shop, partly_paid, method, form):
    paid = shop.paid(partly_paid, "600.00", method, settle="yes")

    final = receipt("final", items(FULL_PAYMENT), "900.00", prepayment="300.00", **{form: "600.00"})
    assert [brief(r) for r in paid["receipts"]] == [final]
    assert (paid["order"]["status"], paid["order"]["payment_status"]) == ("issued", "paid")
    assert shop.briefs(partly_paid) == [
        receipt("advance", [advance_line(partly_paid, "300.00", "54.10")], "300.00", cash="300.00"), final]
    assert shop.statuses(partly_paid) == ("issued", "paid", "900.00")
    # Issued already: nothing more to print.
    assert shop.set_status(partly_paid, "issued", register_id=shop.desk).status_code == 200
    assert len(shop.receipts(partly_paid)) == 2


def test_r08_the_question_is_not_asked_of_an_order_not_paid_at_all(shop):
    order = shop.order()

    response = shop.pay(order, "900.00", "cash")

    assert response.status_code == 201  # R5: full payment at once is an advance, no question
    assert [r["purpose"] for r in response.json()["receipts"]] == ["advance"]


def test_r09_less_than_the_debt_of_a_partly_paid_order_asks_nothing_and_prints_an_advance(shop, partly_paid):
    response = shop.pay(partly_paid, "599.99", "cash")

    assert response.status_code == 201, response.content
    assert [brief(r) for r in response.json()["receipts"]] == [
        receipt("advance", [advance_line(partly_paid, "599.99", "108.19")], "599.99", cash="599.99")]
    assert shop.statuses(partly_paid) == ("agreed", "partially_paid", "899.99")


@pytest.mark.parametrize("paid_before, amount", [("0", "900.01"), ("300.00", "600.01"), ("900.00", "0.01")])
def test_r09_more_than_the_debt_is_refused_and_nothing_is_written(shop, paid_before, amount):
    order = shop.order()
    if paid_before != "0":
        shop.paid(order, paid_before, "cash")
    before = (shop.statuses(order), shop.receipts(order), shop.history(order))

    response = shop.pay(order, amount, "cash", settle="yes")

    assert response.status_code == 409
    debt = str(Decimal("900.00") - Decimal(paid_before))
    assert (response.json()["code"], response.json()["debt"]) == ("amount_exceeds_debt", debt)
    assert (shop.statuses(order), shop.receipts(order), shop.history(order)) == before


# ---- B8: shifts ----


def test_b08_payments_need_an_open_shift_and_x_and_z_reports_tell_what_the_shift_took(shop):
    order = shop.order()
    shift = f"{REGISTERS}/{shop.desk}/shift"
    z_first = shop.cashier.post_json(f"{shift}/close")
    assert z_first.status_code == 200, z_first.content
    assert (z_first.json()["shift_number"], z_first.json()["receipts"]) == (1, 0)

    refused = shop.pay(order, "300.00", "cash")

    assert refused.status_code == 409
    assert (refused.json()["code"], refused.json()["register_id"]) == ("shift_closed", shop.desk)
    assert "смен" in refused.json()["message"]
    assert shop.receipts(order) == []
    assert shop.statuses(order) == ("agreed", "not_paid", "0.00")
    assert shop.cashier.get(f"{shift}/x-report").json()["code"] == "shift_closed"
    assert shop.cashier.post_json(QUICK_SALES, {"register_id": shop.desk, "items": SALE_ITEMS,
                                                "method": "cash"}).json()["code"] == "shift_closed"

    opened = shop.cashier.post_json(f"{shift}/open")
    assert opened.status_code == 201, opened.content
    assert (opened.json()["register_id"], opened.json()["number"]) == (shop.desk, 2)
    again = shop.cashier.post_json(f"{shift}/open")
    assert (again.status_code, again.json()["code"]) == (409, "shift_already_open")
    assert shop.manager.post_json(f"{shift}/close").status_code == 403  # a manager does not run the cash desk

    shop.paid(order, "300.00", "cash")
    shop.paid(order, "200.00", "card")
    x_report = shop.cashier.get(f"{shift}/x-report")
    assert x_report.status_code == 200
    assert {k: x_report.json()[k] for k in ("shift_number", "receipts", "registered", "waiting", "income_cash",
                                            "income_electronic", "income_total", "refunds_total", "closed_at")} == {
        "shift_number": 2, "receipts": 2, "registered": 0, "waiting": 2, "income_cash": "300.00",
        "income_electronic": "200.00", "income_total": "500.00", "refunds_total": "0.00", "closed_at": None}

    run_worker()
    z_report = shop.cashier.post_json(f"{shift}/close")

    assert z_report.status_code == 200
    assert {k: z_report.json()[k] for k in ("shift_number", "receipts", "registered", "waiting", "income_cash",
                                            "income_electronic", "income_total")} == {
        "shift_number": 2, "receipts": 2, "registered": 2, "waiting": 0, "income_cash": "300.00",
        "income_electronic": "200.00", "income_total": "500.00"}
    assert z_report.json()["closed_at"] is not None
    assert [r["shift_number"] for r in shop.receipts(order)] == [2, 2]
    after = shop.pay(order, "100.00", "cash")
    assert (after.status_code, after.json()["code"]) == (409, "shift_closed")
    assert shop.statuses(order) == ("agreed", "partially_paid", "500.00")
    listed = {r["id"]: r for r in shop.cashier.get(REGISTERS).json()}
    assert listed[shop.desk]["shift_open"] is False


def test_b08_issuing_at_a_cash_desk_with_its_shift_closed_is_refused_and_changes_nothing(shop):
    order = shop.order()
    shop.paid(order, "900.00", "cash")
    assert shop.cashier.post_json(f"{REGISTERS}/{shop.desk}/shift/close").status_code == 200

    response = shop.set_status(order, "issued", register_id=shop.desk)

    assert (response.status_code, response.json()["code"]) == (409, "shift_closed")
    assert shop.statuses(order) == ("agreed", "paid", "900.00")
    assert [r["purpose"] for r in shop.receipts(order)] == ["advance"]


# ---- R12: aggregated or itemized full settlement, by the FR card ----


def test_r12_a_register_set_to_aggregate_prints_full_settlement_as_one_line_per_rate_and_subject(shop, client_as):
    admin = client_as("administrator")
    card = {"name": "Касса 1", "itemized_final": False, "company_inn": "7707083893",
            "company_email": "shop@example.com", "payment_address": "г. Москва, ул. Примерная, 1"}
    response = admin.put_json(f"{REGISTERS}/{shop.desk}", card)
    assert response.status_code == 200, response.content
    assert (response.json()["itemized_final"], response.json()["shift_open"]) == (False, True)
    assert shop.manager.put_json(f"{REGISTERS}/{shop.desk}", card).status_code == 403
    order = shop.order()
    shop.paid(order, "900.00", "cash")

    shop.issue(order)

    name = f"Оплата заказа №{order['number']}"
    assert shop.briefs(order) == [
        receipt("advance", [advance_line(order, "900.00", "162.30")], "900.00", cash="900.00"),
        receipt("final", [line(name, "600.00", FULL_PAYMENT, GOODS, VAT22, "108.20"),
                          line(name, "300.00", FULL_PAYMENT, SERVICE, VAT22, "54.10")], "900.00", prepayment="900.00"),
    ]


def test_r12_an_aggregating_register_sells_with_no_order_in_one_line_per_rate(shop, registers):
    registers.desk.itemized_final = False
    registers.desk.save()

    response = shop.cashier.post_json(QUICK_SALES, {"register_id": shop.desk, "items": SALE_ITEMS, "method": "cash"})

    order = response.json()["order"]
    name = f"Оплата заказа №{order['number']}"
    assert shop.briefs(order) == [receipt("sale", [
        line(name, "245.00", FULL_PAYMENT, GOODS, VAT22, "44.18"),
        line(name, "55.00", FULL_PAYMENT, GOODS, VAT10, "5.00"),
    ], "300.00", cash="300.00")]


# ---- B2a: itemized prepayment receipts ----


@pytest.fixture
def itemized_prepayments(client_as):
    response = client_as("administrator").put_json("/api/v1/settings", {"prepayment_style": "itemized"})
    assert response.status_code == 200
    assert response.json()["prepayment_style"] == "itemized"


def test_b02a_a_full_prepayment_in_the_itemized_style_carries_the_items_as_prepayment_100(shop, itemized_prepayments):
    order = shop.order()

    shop.paid(order, "900.00", "card")
    shop.issue(order)

    assert shop.briefs(order) == [
        receipt("advance", items(FULL_PREPAYMENT, VAT122), "900.00", electronic="900.00"),
        receipt("final", items(FULL_PAYMENT), "900.00", prepayment="900.00"),
    ]


def test_b02a_partial_prepayments_in_the_itemized_style_carry_item_shares_and_the_final_offsets_them(
        shop, itemized_prepayments):
    order = shop.order()

    shop.paid(order, "100.00", "cash")
    shop.paid(order, "800.00", "card", settle="no")
    shop.issue(order)

    assert shop.briefs(order) == [
        receipt("advance", items(PREPAYMENT, VAT122, ("33.34", "33.33", "33.33"), ("6.01", "6.01", "6.01")),
                "100.00", cash="100.00"),
        receipt("advance", items(PREPAYMENT, VAT122, ("266.67", "266.67", "266.66"), ("48.09", "48.09", "48.09")),
                "800.00", electronic="800.00"),
        receipt("final", items(FULL_PAYMENT), "900.00", prepayment="900.00"),
    ]


def test_b02a_settling_in_full_in_the_itemized_style_offsets_the_prepayments_the_same_way(shop, itemized_prepayments):
    order = shop.order()
    shop.paid(order, "300.00", "cash")

    shop.paid(order, "600.00", "cash", settle="yes")

    assert shop.briefs(order) == [
        receipt("advance", items(PREPAYMENT, VAT122, ("100.00", "100.00", "100.00"), ("18.03", "18.03", "18.03")),
                "300.00", cash="300.00"),
        receipt("final", items(FULL_PAYMENT), "900.00", prepayment="300.00", cash="600.00"),
    ]
    assert shop.statuses(order) == ("issued", "paid", "900.00")


# ---- B6: a repeated call pays once ----


def test_b06_the_same_payment_sent_twice_with_its_idempotency_key_is_taken_once(shop):
    order = shop.order()

    first = shop.pay(order, "300.00", "cash", idempotency_key="desk-1-0001")
    second = shop.pay(order, "300.00", "cash", idempotency_key="desk-1-0001")

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["document"]["id"] == first.json()["document"]["id"]
    assert [r["id"] for r in second.json()["receipts"]] == [r["id"] for r in first.json()["receipts"]]
    assert len(shop.receipts(order)) == 1
    assert shop.statuses(order) == ("agreed", "partially_paid", "300.00")
    assert len(shop.manager.get(f"{ORDERS}/{order['id']}/documents").json()) == 1


def test_b06_an_idempotency_key_reused_for_another_payment_is_refused(shop):
    order, other = shop.order(), shop.order()
    shop.paid(order, "300.00", "cash", idempotency_key="desk-1-0002")

    for target, amount in ((order, "200.00"), (other, "300.00")):
        response = shop.pay(target, amount, "cash", idempotency_key="desk-1-0002")
        assert (response.status_code, response.json()["code"]) == (409, "idempotency_key_reused")

    assert len(shop.receipts(order)) == 1 and shop.receipts(other) == []
    assert shop.statuses(order) == ("agreed", "partially_paid", "300.00")
    assert shop.statuses(other) == ("agreed", "not_paid", "0.00")


def test_b06_the_same_quick_sale_sent_twice_with_its_idempotency_key_sells_once(shop):
    sale = {"register_id": shop.desk, "items": SALE_ITEMS, "method": "card", "idempotency_key": "desk-1-sale-7"}

    first, second = shop.cashier.post_json(QUICK_SALES, sale), shop.cashier.post_json(QUICK_SALES, sale)

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["order"]["id"] == first.json()["order"]["id"]
    assert second.json()["document"]["id"] == first.json()["document"]["id"]
    assert shop.briefs(first.json()["order"]) == [receipt("sale", SALE_LINES, "300.00", electronic="300.00")]
    quick = shop.manager.get(ORDERS, {"q": first.json()["order"]["number"]}).json()["results"]
    assert [o["id"] for o in quick] == [first.json()["order"]["id"]]


# ---- B2: the receipt as printed, once registered ----


def test_b02_a_receipt_is_registered_by_the_worker_with_its_fiscal_data_and_printed_text(shop):
    order = shop.order()
    shop.paid(order, "900.00", "cash")
    [advance_id] = [r["id"] for r in shop.receipts(order)]
    waiting = shop.cashier.get(f"/api/v1/receipts/{advance_id}").json()
    assert (waiting["state"], waiting["qr_string"], waiting["fd_number"]) == ("pending", "", None)
    assert "ОЖИДАЕТ РЕГИСТРАЦИИ" in waiting["text"]

    run_worker()
    shop.issue(order)
    run_worker()

    advance, final = (shop.cashier.get(f"/api/v1/receipts/{r['id']}").json() for r in shop.receipts(order))
    for printed in (advance, final):
        assert printed["state"] == "registered"
        assert printed["fn_number"].isdigit() and len(printed["fn_number"]) == 16
        assert len(printed["fiscal_sign"]) == 10 and printed["fiscal_sign"].isdigit()
        assert printed["shift_number"] == 1
        assert printed["qr_string"] == qr_of(printed, "900.00")
        assert "КАССОВЫЙ ЧЕК" in printed["text"] and "ПРИХОД" in printed["text"]
        assert f"Заказ №{order['number']}" in printed["text"]
        assert f"QR: {printed['qr_string']}" in printed["text"]
        assert "<svg" in printed["html"]
    assert final["fd_number"] == advance["fd_number"] + 1

    def rows(text: str, left: str, right: str) -> int:
        """How many printed rows read `left … right`."""
        return len(re.findall(rf"^{re.escape(left)} +{re.escape(right)}$", text, re.MULTILINE))

    assert "\n   АВАНС, ПЛАТЕЖ\n" in advance["text"]
    assert rows(advance["text"], "   1 x 900,00", "900,00") == 1
    assert rows(advance["text"], "   НДС 22/122", "162,30") == 1
    assert rows(advance["text"], "НАЛИЧНЫМИ", "900,00") == 1
    assert rows(advance["text"], "ИТОГ", "900,00") == 1
    assert "ПОЛНЫЙ РАСЧЕТ" not in advance["text"] and "НДС 22%" not in advance["text"]

    assert final["text"].count("   ПОЛНЫЙ РАСЧЕТ, ТОВАР\n") == 2 and "   ПОЛНЫЙ РАСЧЕТ, УСЛУГА\n" in final["text"]
    assert rows(final["text"], "   2 x 150,50", "300,00") == 2
    assert rows(final["text"], "   НДС 22%", "54,10") == 3
    assert rows(final["text"], "ПРЕДВАРИТЕЛЬНАЯ ОПЛАТА (АВАНС)", "900,00") == 1
    assert rows(final["text"], "ИТОГ", "900,00") == 1
    assert "НАЛИЧНЫМИ" not in final["text"] and "АВАНС, ПЛАТЕЖ" not in final["text"]


# ---- B8: which desk takes money ----


def test_b08_a_cash_desk_and_its_open_shift_are_read_in_one_query(registers, django_assert_num_queries):
    from orderdesk.payments.services import cash_desk

    with django_assert_num_queries(1):
        desk, shift = cash_desk(registers.desk.pk)

    assert (desk.pk, shift.register_id, shift.number, shift.closed_at) == (registers.desk.pk, registers.desk.pk, 1, None)
    assert shift.register is desk


@pytest.mark.parametrize("which", ["unknown", "online register", "deactivated desk"])
def test_b08_only_an_active_cash_desk_takes_money(registers, which):
    from orderdesk.core.errors import NotFound
    from orderdesk.payments.services import cash_desk

    register_id = {"unknown": registers.desk.pk + 100, "online register": registers.online.pk,
                   "deactivated desk": registers.desk.pk}[which]
    if which == "deactivated desk":
        type(registers.desk).objects.filter(pk=register_id).update(active=False)

    with pytest.raises(NotFound) as refused:
        cash_desk(register_id)
    assert refused.value.code == "register_not_found"
