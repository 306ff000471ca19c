"""The ATOL Online v5 driver against a local service speaking the same protocol (fiscal.md §4.1):
what the receipts carry (B2) and that each is registered exactly once whatever fails (B6)."""

import json
import re
import socket
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from orderdesk.fiscal.codes import (
    Measure,
    PaymentForm,
    PaymentMethod,
    Settlement,
    Subject,
    Taxation,
    Vat,
)
from orderdesk.fiscal.drivers.atol_online import AtolOnlineDriver
from orderdesk.fiscal.drivers.base import (
    LineDoc,
    ReceiptDoc,
    ReceiptRejected,
    RegisterUnavailable,
    RegistrationPending,
)
from tests.fiscal.atol_online_server import AtolOnlineServer

D = Decimal
ONE = D(1)
CREATED = datetime(2026, 11, 22, 11, 5, tzinfo=UTC)  # 14:05 in Moscow


def receipt(uuid="rcpt-1", settlement=Settlement.INCOME, lines=None, payments=None, total=None, **extra) -> ReceiptDoc:
    lines = lines or (advance_line(D("3000.00"), D("540.98")),)
    payments = payments or {PaymentForm.ELECTRONIC: sum((line.amount for line in lines), D(0))}
    fields = {
        "uuid": uuid,
        "settlement": settlement,
        "lines": tuple(lines),
        "payments": payments,
        "total": sum((line.amount for line in lines), D(0)) if total is None else total,
        "taxation": Taxation.OSN,
        "company_inn": "7700000000",
        "company_email": "shop@example.org",
        "payment_address": "г. Москва, ул. Примерная, 1",
        "electronically": True,
        "created_at": CREATED,
        "buyer_contact": "buyer@example.org",
        "order_number": "123",
    }
    return ReceiptDoc(**(fields | extra))


def advance_line(amount: Decimal, vat_amount: Decimal) -> LineDoc:
    return LineDoc(name="Оплата заказа №123", quantity=D(1), price=amount, amount=amount,
                   payment_method=PaymentMethod.ADVANCE, subject=Subject.PAYMENT, vat=Vat.VAT122,
                   vat_amount=vat_amount)


def goods_line(name: str, price: Decimal, vat_amount: Decimal, quantity=ONE, measure=Measure.PIECE) -> LineDoc:
    amount = (price * quantity).quantize(D("0.01"))
    return LineDoc(name=name, quantity=quantity, price=price, amount=amount,
                   payment_method=PaymentMethod.FULL_PAYMENT, subject=Subject.GOODS, vat=Vat.VAT22,
                   vat_amount=vat_amount, measure=measure)


def sent_body(atol: AtolOnlineServer, external_id: str) -> dict:
    [document] = atol.posts(external_id)
    return json.loads(document.raw, parse_float=Decimal)


@pytest.fixture
def atol():
    with AtolOnlineServer() as server:
        yield server


@pytest.fixture
def make_driver(atol):
    drivers = []

    def make(**options) -> AtolOnlineDriver:
        settings = {"base_url": atol.base_url, "login": atol.login, "password": atol.password,
                    "group_code": atol.group_code, "timeout": 2, "poll_interval": 0.01, "poll_deadline": 2}
        driver = AtolOnlineDriver(**(settings | options))
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.close()


@pytest.fixture
def driver(make_driver):
    return make_driver()


# -- B2: what the receipts carry ---------------------------------------------------------------


def test_b02_an_advance_is_one_payment_line_at_the_advance_method_and_the_calculated_22_122_rate(atol, make_driver):
    driver = make_driver(callback_url="https://backoffice.example.org/hooks/atol")

    driver.register(receipt("adv-1"), {})

    [document] = atol.posts("adv-1")
    assert document.operation == "sell"
    body = sent_body(atol, "adv-1")
    assert body["external_id"] == "adv-1"
    assert body["timestamp"] == "22.11.2026 14:05:00"
    assert body["service"] == {"callback_url": "https://backoffice.example.org/hooks/atol"}
    assert body["receipt"]["client"] == {"email": "buyer@example.org"}
    assert body["receipt"]["company"] == {"email": "shop@example.org", "sno": "osn", "inn": "7700000000",
                                          "payment_address": "г. Москва, ул. Примерная, 1"}
    assert body["receipt"]["items"] == [{
        "name": "Оплата заказа №123", "price": D("3000.00"), "quantity": 1, "sum": D("3000.00"), "measure": 0,
        "payment_method": "advance", "payment_object": 10, "vat": {"type": "vat122", "sum": D("540.98")},
    }]
    assert body["receipt"]["payments"] == [{"type": 1, "sum": D("3000.00")}]
    assert body["receipt"]["total"] == D("3000.00")


def test_b02_the_final_receipt_offsets_the_advances_and_takes_the_rest_in_cash_and_by_card(atol, driver):
    lines = (goods_line("Товар A", D("6000.00"), D("1081.97")), goods_line("Товар B", D("4000.00"), D("721.31")))
    payments = {PaymentForm.PREPAYMENT: D("5000.00"), PaymentForm.CASH: D("2000.00"),
                PaymentForm.ELECTRONIC: D("3000.00")}

    driver.register(receipt("final-1", lines=lines, payments=payments), {})

    body = sent_body(atol, "final-1")
    assert "service" not in body  # no callback configured
    items = body["receipt"]["items"]
    assert [(i["name"], i["sum"], i["payment_method"], i["payment_object"], i["vat"]) for i in items] == [
        ("Товар A", D("6000.00"), "full_payment", 1, {"type": "vat22", "sum": D("1081.97")}),
        ("Товар B", D("4000.00"), "full_payment", 1, {"type": "vat22", "sum": D("721.31")}),
    ]
    assert sorted((p["type"], p["sum"]) for p in body["receipt"]["payments"]) == [
        (0, D("2000.00")), (1, D("3000.00")), (2, D("5000.00"))]
    assert body["receipt"]["total"] == D("10000.00")


def test_b02_a_refund_goes_to_sell_refund_and_a_phone_contact_goes_as_the_buyer_phone(atol, driver):
    doc = receipt("refund-1", settlement=Settlement.INCOME_REFUND, buyer_contact="+7 (900) 123-45-67",
                  buyer_name="ООО Ромашка", buyer_inn="7711111111")

    registration = driver.register(doc, {})

    [document] = atol.posts("refund-1")
    assert document.operation == "sell_refund"
    body = sent_body(atol, "refund-1")
    assert body["receipt"]["client"] == {"phone": "+79001234567", "name": "ООО Ромашка", "inn": "7711111111"}
    assert body["receipt"]["items"][0]["payment_method"] == "advance"
    assert body["receipt"]["items"][0]["vat"]["type"] == "vat122"
    assert "&n=2" in registration.ofd_url  # возврат прихода


def test_b02_money_goes_as_exact_two_decimal_numbers_and_quantities_up_to_three(atol, driver):
    lines = (goods_line("Гайка", D("33.33"), D("18.02"), quantity=D("3")),
             goods_line("Шайба", D("0.10"), D("0.05"), quantity=D("3")),
             goods_line("Гвозди", D("250.00"), D("22.54"), quantity=D("0.500"), measure=Measure.KILOGRAM))
    doc = receipt("money-1", lines=lines, payments={PaymentForm.CASH: D("225.29")})

    driver.register(doc, {})  # the service checks items and payments add up to the total, exactly

    raw = atol.posts("money-1")[0].raw.decode()
    for key in ("price", "sum", "total"):
        values = re.findall(rf'"{key}": ([^,}}\]]+)', raw)
        assert values and all(re.fullmatch(r"\d+\.\d{2}", v) for v in values), (key, values)
    assert '"price": 0.10' in raw and '"sum": 99.99' in raw and '"total": 225.29' in raw
    assert re.findall(r'"quantity": ([^,}]+)', raw) == ["3", "3", "0.5"]
    assert sent_body(atol, "money-1")["receipt"]["items"][2]["measure"] == 11


def test_b02_registration_returns_the_fiscal_data_of_the_register(atol, driver):
    state = {}

    registration = driver.register(receipt("fd-1"), state)

    payload = atol.documents[state["atol_uuid"]].payload
    assert re.fullmatch(r"\d{16}", registration.fn_number) and registration.fn_number == payload["fn_number"]
    assert registration.fd_number == payload["fiscal_document_number"]
    assert registration.fiscal_sign == str(payload["fiscal_document_attribute"])
    assert registration.shift_number == atol.shift_number
    assert registration.receipt_number == payload["fiscal_receipt_number"]
    assert registration.registered_at.tzinfo is not None
    assert registration.registered_at.strftime("%d.%m.%Y %H:%M:%S") == payload["receipt_datetime"]
    query = dict(part.split("=") for part in registration.ofd_url.split("?")[1].split("&"))
    assert query == {"t": registration.registered_at.strftime("%Y%m%dT%H%M"), "s": "3000.00",
                     "fn": registration.fn_number, "i": str(registration.fd_number),
                     "fp": registration.fiscal_sign, "n": "1"}
    assert registration.extra["atol_uuid"] == state["atol_uuid"]

    second = driver.register(receipt("fd-2"), {})
    assert second.fd_number == registration.fd_number + 1


def test_b02_a_receipt_the_service_finds_invalid_is_rejected_for_a_person(atol, driver):
    state = {}
    doc = receipt("bad-1", payments={PaymentForm.ELECTRONIC: D("2999.00")})  # payments ≠ total

    with pytest.raises(ReceiptRejected, match="32.*sum of payments"):
        driver.register(doc, state)

    assert "atol_uuid" not in state
    assert atol.registered == {}


def test_b02_a_receipt_without_the_buyers_email_or_phone_is_rejected(atol, driver):
    with pytest.raises(ReceiptRejected, match="email or phone"):
        driver.register(receipt("nobody-1", buyer_contact=""), {})

    assert atol.registered == {}


def test_b02_a_register_refusing_the_receipt_is_a_rejection_not_a_retry(atol, driver):
    with pytest.raises(ReceiptRejected, match="2009.*ИНН"):
        driver.register(receipt("inn-1", company_inn="7799999999"), {})

    assert atol.registered == {}


# -- B6: exactly once, whatever fails ----------------------------------------------------------


def test_b06_the_same_receipt_sent_again_with_its_saved_state_is_polled_not_posted_again(atol, driver):
    state = {}
    first = driver.register(receipt("once-1"), state)

    again = driver.register(receipt("once-1"), state)

    assert again == first
    assert atol.calls("POST", "/sell") == 1
    assert atol.registered == {"once-1": 1}


def test_b06_a_resend_after_a_crash_before_the_atol_uuid_was_saved_is_answered_33_and_polled(atol, driver):
    first = driver.register(receipt("crash-1"), {})  # the state of this call was never persisted

    state = {}
    again = driver.register(receipt("crash-1"), state)

    assert again.fd_number == first.fd_number and again.fiscal_sign == first.fiscal_sign
    assert state["atol_uuid"] == first.extra["atol_uuid"]
    assert atol.calls("POST", "/sell") == 2  # the second POST was refused with 33
    assert len(atol.posts("crash-1")) == 1
    assert atol.registered == {"crash-1": 1}


def test_b06_a_repeated_external_id_answered_33_without_uuid_waits_for_a_person(atol, driver):
    atol.error33_without_uuid = True
    driver.register(receipt("no-uuid-1"), {})

    state = {}
    with pytest.raises(RegistrationPending, match="a person must check"):
        driver.register(receipt("no-uuid-1"), state)

    assert "atol_uuid" not in state
    assert len(atol.documents) == 1  # never sent under another external_id
    assert atol.registered == {"no-uuid-1": 1}


def test_b06_a_saved_uuid_the_service_does_not_know_is_asked_again_under_the_same_external_id(atol, driver):
    state = {"atol_uuid": "00000000-0000-0000-0000-000000000000"}  # e.g. kept from another group

    registration = driver.register(receipt("lost-1"), state)

    assert state["atol_uuid"] == registration.extra["atol_uuid"] != "00000000-0000-0000-0000-000000000000"
    assert [d.external_id for d in atol.posts()] == ["lost-1"]
    assert atol.registered == {"lost-1": 1}


def test_b06_the_cloud_with_no_register_online_then_back_registers_once(atol, driver):
    atol.offline = True
    state = {}

    with pytest.raises(RegisterUnavailable, match="no register online"):
        driver.register(receipt("offline-1"), state)
    assert "atol_uuid" not in state and atol.registered == {}

    atol.offline = False
    registration = driver.register(receipt("offline-1"), state)
    driver.register(receipt("offline-1"), state)

    assert state["atol_uuid"] == registration.extra["atol_uuid"]
    assert {d.external_id for d in atol.posts()} == {"offline-1"}  # the same external_id every time
    assert atol.registered == {"offline-1": 1}


def test_b06_a_cloud_that_keeps_a_timed_out_external_id_is_left_to_a_person_not_looped(atol, driver):
    atol.offline = True
    atol.timeout_keeps_external_id = True
    state = {}
    with pytest.raises(RegisterUnavailable):
        driver.register(receipt("kept-1"), state)
    atol.offline = False

    with pytest.raises(ReceiptRejected, match="a person must decide"):
        driver.register(receipt("kept-1"), state)

    assert len(atol.documents) == 1 and atol.registered == {}


def test_b06_an_unreachable_service_is_register_unavailable_then_registers_once(atol, make_driver):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/possystem/v5"
    state = {}

    with pytest.raises(RegisterUnavailable):
        make_driver(base_url=closed).register(receipt("down-1"), state)
    assert "atol_uuid" not in state

    make_driver().register(receipt("down-1"), state)
    assert atol.registered == {"down-1": 1}


def test_b06_a_slow_register_is_pending_and_the_next_call_polls_to_done_without_posting(atol, make_driver):
    driver = make_driver(poll_deadline=0.15)
    atol.wait_polls = 10**6
    state = {}

    started = time.monotonic()
    with pytest.raises(RegistrationPending):
        driver.register(receipt("slow-1"), state)
    assert time.monotonic() - started < 1
    assert state["atol_uuid"] in atol.documents

    atol.wait_polls = 0
    gets_before = atol.calls("GET", "/report/")
    registration = driver.register(receipt("slow-1"), state)

    assert registration.extra["atol_uuid"] == state["atol_uuid"]
    assert atol.calls("POST", "/sell") == 1
    assert atol.calls("GET", "/report/") > gets_before
    assert atol.registered == {"slow-1": 1}


def test_b06_a_state_not_yet_known_answer_34_is_polled_again_never_resent(atol, driver):
    atol.answer34_polls, atol.wait_polls = 2, 3

    driver.register(receipt("state34-1"), {})

    assert atol.calls("GET", "/report/") == 4
    assert atol.calls("POST", "/sell") == 1 and atol.registered == {"state34-1": 1}


def test_b06_the_token_is_kept_and_renewed_transparently_once_it_expires(atol, driver):
    atol.token_ttl = 2.0  # long enough for two registrations on a loaded CI machine
    driver.register(receipt("tok-1"), {})
    driver.register(receipt("tok-2"), {})
    assert atol.token_requests == 1  # cached between calls

    time.sleep(2.0)
    driver.register(receipt("tok-3"), {})

    assert atol.token_refusals == 1 and atol.token_requests == 2
    assert atol.registered == {"tok-1": 1, "tok-2": 1, "tok-3": 1}


def test_b06_wrong_credentials_or_group_are_a_configuration_rejection_not_a_retry(atol, make_driver):
    with pytest.raises(ReceiptRejected, match="configuration.*error 12"):
        make_driver(password="wrong").register(receipt("cfg-1"), {})
    with pytest.raises(ReceiptRejected, match="configuration.*error 20"):
        make_driver(group_code="another-group").register(receipt("cfg-1"), {})
    with pytest.raises(ReceiptRejected, match="configuration.*error 21"):
        make_driver(base_url=atol.base_url.replace("/v5", "/v4")).register(receipt("cfg-1"), {})

    assert atol.posts() == []


# -- B8: shifts --------------------------------------------------------------------------------


def test_b08_the_cloud_manages_its_own_shifts_and_the_driver_calls_nothing(atol, driver):
    reports = [driver.open_shift("Иванова"), driver.x_report(), driver.close_shift("Иванова")]

    assert all(r.extra == {"managed_by": "atol_online"} and r.shift_number == 0 for r in reports)
    assert atol.requests == []
