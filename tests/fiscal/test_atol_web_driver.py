"""The ATOL driver 10 web server driver against a local server speaking the same protocol
(fiscal.md §4.2). No database: a driver, a server and receipt documents."""

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from orderdesk.fiscal.codes import Measure, PaymentForm, PaymentMethod, Settlement, Subject, Taxation, Vat
from orderdesk.fiscal.drivers.atol_web import AtolWebServerDriver
from orderdesk.fiscal.drivers.base import (
    LineDoc,
    ReceiptDoc,
    ReceiptRejected,
    RegisterUnavailable,
    RegistrationPending,
)
from tests.fiscal.atol_web_server import AtolWebServer

D = Decimal


@pytest.fixture
def server():
    with AtolWebServer() as atol:
        yield atol
        assert all(count <= 1 for count in atol.registered.values()), atol.registered


@pytest.fixture
def driver(server):
    atol = AtolWebServerDriver(
        server.url, timeout=2, poll_interval=0.005, poll_deadline=2, operator_name="Кассир Иванова"
    )
    yield atol
    atol.close()


@pytest.fixture
def impatient(server):
    """A driver that looks once and gives up: the register is slow."""
    atol = AtolWebServerDriver(server.url, timeout=2, poll_interval=0.005, poll_deadline=0)
    yield atol
    atol.close()


def receipt(uuid: str, lines, payments, *, settlement=Settlement.INCOME, **more) -> ReceiptDoc:
    fields = {
        "uuid": uuid,
        "settlement": settlement,
        "lines": tuple(lines),
        "payments": payments,
        "total": sum((line.amount for line in lines), D("0.00")),
        "taxation": Taxation.OSN,
        "company_inn": "7700000000",
        "company_email": "shop@example.org",
        "payment_address": "г. Москва, ул. Примерная, 1",
        "electronically": True,
        "created_at": datetime(2026, 11, 22, 14, 5, tzinfo=UTC),
        "buyer_contact": "buyer@example.org",
        "order_number": "123",
    }
    fields.update(more)
    return ReceiptDoc(**fields)


def advance(uuid: str, amount: str = "2000.00", form=PaymentForm.CASH, **more) -> ReceiptDoc:
    line = LineDoc(
        name="Оплата заказа №123",
        quantity=D("1"),
        price=D(amount),
        amount=D(amount),
        payment_method=PaymentMethod.ADVANCE,
        subject=Subject.PAYMENT,
        vat=Vat.VAT122,
        vat_amount=(D(amount) * 22 / 122).quantize(D("0.01")),
    )
    return receipt(uuid, [line], {form: D(amount)}, **more)


def final(uuid: str) -> ReceiptDoc:
    lines = [
        LineDoc(
            "Товар A",
            D("1"),
            D("7000.00"),
            D("7000.00"),
            PaymentMethod.FULL_PAYMENT,
            Subject.GOODS,
            Vat.VAT22,
            D("1262.30"),
        ),
        LineDoc(
            "Сыр",
            D("1.25"),
            D("2400.00"),
            D("3000.00"),
            PaymentMethod.FULL_PAYMENT,
            Subject.GOODS,
            Vat.VAT22,
            D("540.98"),
            Measure.KILOGRAM,
        ),
    ]
    return receipt(uuid, lines, {PaymentForm.PREPAYMENT: D("5000.00"), PaymentForm.CASH: D("5000.00")})


def sent_task(server, uuid: str) -> tuple[dict, str]:
    """The one task the driver POSTed under uuid, numbers read as Decimal, and the raw text."""
    raw = server.bodies[uuid]
    body = json.loads(raw, parse_float=Decimal)
    assert body["uuid"] == uuid
    assert len(body["request"]) == 1
    return body["request"][0], raw.decode()


# ---- B2: what the register is asked to print


def test_b02_advance_task_is_one_payment_line_at_22_122_paid_in_cash(server, driver):
    doc = advance("adv-1")

    driver.register(doc, {})

    task, raw = sent_task(server, "adv-1")
    assert task == {
        "type": "sell",
        "taxationType": "osn",
        "electronically": True,
        "operator": {"name": "Кассир Иванова"},
        "clientInfo": {"emailOrPhone": "buyer@example.org"},
        "paymentsAddress": "г. Москва, ул. Примерная, 1",
        "items": [
            {
                "type": "position",
                "name": "Оплата заказа №123",
                "price": D("2000.00"),
                "quantity": 1,
                "amount": D("2000.00"),
                "measurementUnit": 0,
                "paymentMethod": "advance",
                "paymentObject": "payment",
                "tax": {"type": "vat122"},
            }
        ],
        "payments": [{"type": "cash", "sum": D("2000.00")}],
        "total": D("2000.00"),
    }
    # JSON numbers with two decimals, never strings
    assert re.search(r'"price":\s*2000\.00[,}]', raw)
    assert re.search(r'"sum":\s*2000\.00[,}]', raw)
    assert '"2000' not in raw


def test_b02_final_receipt_offsets_the_advances_and_takes_the_rest_in_cash(server, driver):
    doc = final("final-1")

    driver.register(doc, {})

    task, raw = sent_task(server, "final-1")
    assert task["type"] == "sell"
    assert [(i["name"], i["price"], i["quantity"], i["amount"], i["measurementUnit"]) for i in task["items"]] == [
        ("Товар A", D("7000.00"), 1, D("7000.00"), 0),
        ("Сыр", D("2400.00"), D("1.25"), D("3000.00"), 11),
    ]
    assert {(i["paymentMethod"], i["paymentObject"], i["tax"]["type"]) for i in task["items"]} == {
        ("fullPayment", "commodity", "vat22")
    }
    assert task["payments"] == [{"type": "cash", "sum": D("5000.00")}, {"type": "prepaid", "sum": D("5000.00")}]
    assert task["total"] == D("10000.00")
    assert re.search(r'"quantity":\s*1\.25[,}]', raw)
    assert server.receipts[0]["payments"] == {"prepaid": D("5000.00"), "cash": D("5000.00")}


def test_b02_refund_of_an_advance_is_a_sell_return_by_card_with_the_buyers_details(server, driver):
    doc = advance(
        "refund-1",
        "1500.00",
        PaymentForm.ELECTRONIC,
        settlement=Settlement.INCOME_REFUND,
        buyer_name="ООО Ромашка",
        buyer_inn="7701234567",
        taxation=Taxation.USN_INCOME_OUTCOME,
    )

    driver.register(doc, {})

    task, _ = sent_task(server, "refund-1")
    assert task["type"] == "sellReturn"
    assert task["taxationType"] == "usnIncomeOutcome"
    assert task["clientInfo"] == {"emailOrPhone": "buyer@example.org", "name": "ООО Ромашка", "vatin": "7701234567"}
    assert task["payments"] == [{"type": "electronically", "sum": D("1500.00")}]
    assert server.receipts[0]["type"] == "sellReturn"


def test_b02_registration_returns_the_registers_fiscal_params(server, driver):
    registration = driver.register(advance("adv-params"), {})

    entry = server.receipts[0]
    assert registration.fn_number == server.fn_number
    assert registration.fd_number == entry["fiscalDocumentNumber"] == 2  # FD 1 opened the shift itself
    assert registration.fiscal_sign == entry["fiscalDocumentSign"]
    assert registration.shift_number == 1
    assert registration.receipt_number == 1
    assert registration.registered_at == datetime.fromisoformat(entry["fiscalDocumentDateTime"])
    assert registration.registered_at.tzinfo is not None
    assert registration.extra["fns_url"] == "www.nalog.gov.ru"
    assert registration.extra["warnings"]["shiftAutoOpened"] is True


@pytest.mark.parametrize(
    "change, code",
    [
        (lambda d: replace(d, payments={PaymentForm.CASH: D("1999.99")}), "66"),
        (lambda d: replace(d, payments={PaymentForm.ELECTRONIC: D("2500.00")}), "52"),
        (lambda d: replace(d, lines=(replace(d.lines[0], quantity=D("0")),)), "17"),
        (lambda d: replace(d, lines=(replace(d.lines[0], price=D("-1.00")),)), "16"),
    ],
    ids=["paid-below-total", "card-above-total", "zero-quantity", "negative-price"],
)
def test_b02_a_receipt_the_register_refuses_is_rejected_and_nothing_is_registered(server, driver, change, code):
    doc = change(advance("bad-1"))
    state = {}

    with pytest.raises(ReceiptRejected, match=rf"error {code}\b"):
        driver.register(doc, state)
    with pytest.raises(ReceiptRejected, match=rf"error {code}\b"):
        driver.register(doc, state)  # a person may retry it: it is sent again and refused again

    assert server.receipts == []


def test_b02_cash_above_the_total_is_change_and_goes_through(server, driver):
    doc = replace(advance("change-1"), payments={PaymentForm.CASH: D("5000.00")})

    driver.register(doc, {})

    assert server.receipts[0]["payments"] == {"cash": D("5000.00")}


def test_b02_the_protocol_server_refuses_money_written_as_strings():
    # the register double the driver is tested against enforces the number rule itself
    with AtolWebServer() as atol:
        task = {
            "type": "sell",
            "items": [
                {
                    "type": "position",
                    "name": "x",
                    "price": "10.00",
                    "quantity": 1,
                    "amount": 10,
                    "tax": {"type": "none"},
                }
            ],
            "payments": [{"type": "cash", "sum": 10}],
        }
        posted = httpx.post(f"{atol.url}/api/v2/requests", json={"uuid": "s-1", "request": [task]})
        two = httpx.post(f"{atol.url}/api/v2/requests", json={"uuid": "s-2", "request": [{"type": "openShift"}, task]})
        result = httpx.get(f"{atol.url}/api/v2/requests/s-1").json()["results"][0]

    assert posted.status_code == 201
    assert two.status_code == 400
    assert result["status"] == "error"
    assert result["error"]["code"] == 501
    assert "items[0].price" in result["error"]["description"]


# ---- B6: registered exactly once, whatever happens


def test_b06_the_same_receipt_sent_again_with_its_state_is_polled_not_posted(server, driver):
    doc = advance("twice-1")
    state = {}

    first = driver.register(doc, state)
    second = driver.register(doc, state)

    assert second.fd_number == first.fd_number
    assert server.posts["twice-1"] == 1
    assert len(server.receipts) == 1


def test_b06_the_same_receipt_sent_again_after_its_state_was_lost_is_registered_once(server, driver):
    doc = advance("crash-1")

    first = driver.register(doc, {})
    second = driver.register(doc, {})  # a crash before the caller saved the state

    assert second.fd_number == first.fd_number
    assert server.posts["crash-1"] == 2  # the second POST met 409 and was polled
    assert len(server.receipts) == 1


def test_b06_register_offline_then_back_registers_exactly_once(server, driver):
    doc = advance("offline-1")
    state = {}
    server.offline = True

    with pytest.raises(RegisterUnavailable, match="unreachable"):
        driver.register(doc, state)
    with pytest.raises(RegisterUnavailable):
        driver.register(doc, state)
    server.offline = False
    registration = driver.register(doc, state)

    assert server.posts["offline-1"] == 1
    assert [r["fiscalDocumentNumber"] for r in server.receipts] == [registration.fd_number]


def test_b06_an_answer_lost_after_the_server_took_the_receipt_does_not_register_it_twice(server, driver):
    doc = advance("lost-answer-1")
    state = {}
    server.drop_post_responses = 1

    with pytest.raises(RegisterUnavailable):
        driver.register(doc, state)
    registration = driver.register(doc, state)

    assert server.posts["lost-answer-1"] == 2  # sent again, met 409, polled
    assert [r["fiscalDocumentNumber"] for r in server.receipts] == [registration.fd_number]


def test_b06_a_slow_register_leaves_the_receipt_pending_and_a_later_call_polls_it_without_resending(
    server, driver, impatient
):
    doc = advance("slow-1")
    state = {}
    server.delay = 3

    with pytest.raises(RegistrationPending, match="inProgress"):
        impatient.register(doc, state)
    with pytest.raises(RegistrationPending):
        impatient.register(doc, state)
    assert server.receipts == []
    registration = driver.register(doc, state)

    assert server.posts["slow-1"] == 1
    assert server.polls["slow-1"] == 4
    assert [r["fiscalDocumentNumber"] for r in server.receipts] == [registration.fd_number]


def test_b06_a_blocked_task_is_polled_until_it_resolves_never_resent(server, driver, impatient):
    doc = advance("blocked-1")
    state = {}
    server.blocked = 2

    with pytest.raises(RegistrationPending, match="blocked"):
        impatient.register(doc, state)
    registration = driver.register(doc, state)

    assert server.posts["blocked-1"] == 1
    assert [r["fiscalDocumentNumber"] for r in server.receipts] == [registration.fd_number]


def test_b06_web_server_down_while_polling_keeps_the_receipt_pending(server, driver, impatient):
    doc = advance("poll-down-1")
    state = {}
    server.delay = 1
    with pytest.raises(RegistrationPending):
        impatient.register(doc, state)
    server.offline = True

    with pytest.raises(RegistrationPending, match="unreachable"):
        driver.register(doc, state)
    server.offline = False
    driver.register(doc, state)

    assert server.posts["poll-down-1"] == 1
    assert len(server.receipts) == 1


def test_b06_a_task_the_web_server_never_kept_is_sent_again(server, driver, impatient):
    doc = advance("forgotten-1")
    state = {}
    server.delay = 1
    with pytest.raises(RegistrationPending):
        impatient.register(doc, state)
    server.forget("forgotten-1")  # its queue was lost before the task ran

    with pytest.raises(RegisterUnavailable, match="never received"):
        driver.register(doc, state)
    registration = driver.register(doc, state)

    assert server.posts["forgotten-1"] == 2
    assert [r["fiscalDocumentNumber"] for r in server.receipts] == [registration.fd_number]


def test_b06_no_connection_to_the_register_then_the_receipt_goes_through_once_as_a_new_task(server, driver):
    doc = advance("device-1")
    state = {}
    server.device_error = 2  # «Нет связи»: the web server is up, the register is not

    with pytest.raises(RegisterUnavailable, match=r"error 2\b"):
        driver.register(doc, state)
    server.device_error = None
    registration = driver.register(doc, state)
    again = driver.register(doc, state)

    # the failed task's uuid is spent (409 forever), so the second try is a task of its own
    assert server.posts["device-1"] == 1
    assert len(server.posts) == 2
    assert again.fd_number == registration.fd_number
    assert [r["fiscalDocumentNumber"] for r in server.receipts] == [registration.fd_number]


def test_b06_after_a_failed_task_and_a_lost_state_the_receipt_still_registers_once(server, driver):
    doc = advance("device-2")
    server.device_error = 2
    with pytest.raises(RegisterUnavailable):
        driver.register(doc, {})
    server.device_error = None

    first = driver.register(doc, {})  # state lost: walks past the failed task to a new one
    second = driver.register(doc, {})  # and again: finds the registered one

    assert second.fd_number == first.fd_number
    assert [r["fiscalDocumentNumber"] for r in server.receipts] == [first.fd_number]


# ---- B8: shifts


def test_b08_a_shift_over_24_hours_leaves_the_receipt_waiting_until_someone_closes_it(server, driver):
    doc = advance("expired-1")
    state = {}
    driver.open_shift("Кассир Иванова")
    server.shift_expired = True

    with pytest.raises(RegisterUnavailable, match="24 hours"):
        driver.register(doc, state)
    assert [e["type"] for e in server.journal] == ["openShift"]  # the driver closes no shift itself
    driver.close_shift("Кассир Иванова")
    registration = driver.register(doc, state)

    assert registration.shift_number == 2  # the register opened the next shift for the receipt
    assert len(server.receipts) == 1


def test_b08_open_x_report_and_close_shift_report_the_shift(server, driver):
    opened = driver.open_shift("Кассир Петрова")
    driver.register(advance("shift-1", "2000.00"), {})
    driver.register(advance("shift-2", "3500.50", PaymentForm.ELECTRONIC), {})
    driver.register(advance("shift-3", "500.00", settlement=Settlement.INCOME_REFUND), {})

    x = driver.x_report()
    closed = driver.close_shift("Кассир Петрова")

    assert (opened.shift_number, opened.receipts, opened.income, opened.refunds) == (1, 0, D("0.00"), D("0.00"))
    assert (x.shift_number, x.receipts, x.income, x.refunds) == (1, 3, D("5500.50"), D("500.00"))
    assert (closed.shift_number, closed.receipts, closed.income, closed.refunds) == (1, 3, D("5500.50"), D("500.00"))
    assert [(e["type"], e["fiscalDocumentNumber"]) for e in server.journal] == [
        ("openShift", 1),
        ("sell", 2),
        ("sell", 3),
        ("sellReturn", 4),
        ("closeShift", 5),
    ]
    assert server.tasks[next(iter(server.tasks))].subtasks[0]["operator"] == {"name": "Кассир Петрова"}


def test_b08_opening_an_open_shift_is_refused_with_the_registers_reason(server, driver):
    driver.open_shift("Кассир Иванова")

    with pytest.raises(ReceiptRejected, match="83"):
        driver.open_shift("Кассир Иванова")

    assert [e["type"] for e in server.journal] == ["openShift"]
