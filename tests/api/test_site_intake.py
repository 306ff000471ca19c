"""S1, S5, B1 through the HTTP API: the site (and a manager) places orders; what comes back and
what the back office sees at once; idempotency on the site's order id; field-level refusals."""

import json
import threading
from datetime import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.utils.translation import gettext_lazy, override

from orderdesk.api import UnicodeJSONRenderer
from orderdesk.core.models import OutboxMessage
from orderdesk.orders.models import Counterparty, Order, OrderEvent
from tests.conftest import JsonClient, committed_db, order_body

ORDERS = "/api/v1/orders"


def assert_error(response, status: int, code: str) -> dict:
    """Every refusal is JSON with a machine code and a human message."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"].strip()
    return body





# ---- S1: the order appears at once ----


def test_s01_site_order_appears_in_the_back_office_at_once_with_customer_items_delivery_and_comment(site, manager):
    body = order_body("site-1001", email="Anna.Smirnova@Example.com")
    body["customer"].update(name="Анна Смирнова", phone="8 (912) 345-67-89")
    body["comment"] = "Позвонить за час, домофон 12"

    created = site.post_json(ORDERS, body)

    assert created.status_code == 201, created.content
    order_id = created.json()["id"]
    card = manager.get(f"{ORDERS}/{order_id}")
    assert card.status_code == 200
    card = card.json()
    assert card["source"] == "site"
    assert card["external_id"] == "site-1001"
    assert card["number"] == created.json()["number"] and card["number"]
    assert card["customer_name"] == "Анна Смирнова"
    assert card["customer_email"] == "anna.smirnova@example.com"
    assert card["customer_phone"] == "+79123456789"
    assert card["customer"]["name"] == "Анна Смирнова"
    assert card["customer"]["email"] == "anna.smirnova@example.com"
    assert [(i["position"], i["sku"], i["name"], Decimal(i["quantity"]), Decimal(i["price"]), i["vat_rate"])
            for i in card["items"]] == [
        (1, "SKU-1", "Товар 1", Decimal("2"), Decimal("150.50"), "22"),
        (2, "SKU-2", "Товар 2", Decimal("2"), Decimal("150.50"), "22"),
    ]
    assert card["delivery_method"] == "courier"
    assert card["delivery_address"] == "Москва, ул. Тверская, 1"
    assert Decimal(card["delivery_price"]) == Decimal("300.00")
    assert card["comment"] == "Позвонить за час, домофон 12"

    listed = manager.get(ORDERS).json()["results"]
    assert [(o["id"], o["number"], o["customer_name"]) for o in listed] == [
        (order_id, card["number"], "Анна Смирнова")
    ]


def test_s01_the_answer_writes_money_as_strings_cyrillic_as_it_is_and_instants_to_the_microsecond(site):
    body = order_body("site-1002")
    body["customer"]["name"] = "Рога & Копыта"

    created = site.post_json(ORDERS, body)

    assert created.status_code == 201, created.content
    raw = created.content.decode("utf-8")
    assert '"Рога & Копыта"' in raw and "\\u" not in raw
    answer = created.json()
    stored = Order.objects.get(pk=answer["id"])
    assert answer["total"] == str(stored.total) and "." in answer["total"]
    assert answer["items"][0]["price"] == "150.50"
    assert datetime.fromisoformat(answer["created_at"]) == stored.created_at
    assert answer["status_name"] == stored.status.name()


def test_s01_what_pydantic_core_cannot_write_is_written_as_ninjas_encoder_writes_it():
    with override("ru"):
        raw = UnicodeJSONRenderer().render(None, {"message": gettext_lazy("Not found."), "sum": Decimal("0.10")},
                                           response_status=404)
    assert json.loads(raw) == {"message": "Не найдено.", "sum": "0.10"}


def test_s05_a_new_site_order_is_pending_approval(site):
    response = site.post_json(ORDERS, order_body("site-2"))

    assert response.status_code == 201
    order = response.json()
    assert order["status"] == "pending_approval"
    assert order["status_name"] == "На согласовании"
    assert order["payment_status"] == "not_paid"
    assert order["allowed_statuses"] == ["agreed", "cancelled"]


def test_b01_order_total_is_items_less_discounts_plus_delivery_to_the_kopeck(site):
    body = order_body("site-b01")
    body["items"] = [
        # 0.333 × 99.99 = 33.29667 → 33.30, less 0.05 → 33.25
        {"name": "Сыр весовой", "unit": "кг", "quantity": "0.333", "price": "99.99", "discount": "0.05", "vat_rate": "10"},
        # JSON numbers, not strings: 3 × 0.1 must be 0.30 exactly, never 0.30000000000000004
        {"name": "Пакет", "quantity": 3, "price": 0.1, "vat_rate": "22"},
        # 1.5 × 0.03 = 0.045 → rounded half up to 0.05
        {"name": "Скрепка", "quantity": "1.5", "price": "0.03", "vat_rate": "22"},
    ]
    body["delivery"] = {"method": "pickup point", "price": "249.90"}

    order = site.post_json(ORDERS, body).json()

    assert [Decimal(i["amount"]) for i in order["items"]] == [Decimal("33.25"), Decimal("0.30"), Decimal("0.05")]
    assert Decimal(order["items_total"]) == Decimal("33.60")
    assert Decimal(order["delivery_price"]) == Decimal("249.90")
    assert Decimal(order["total"]) == Decimal("283.50")
    assert order["total"] == "283.50"  # money leaves as an exact decimal string, not a float
    stored = Order.objects.get(pk=order["id"])
    assert stored.total == stored.items_total + stored.delivery_price == Decimal("283.50")


# ---- S1: re-sending never makes a second order ----


def test_s01_resending_the_same_site_order_returns_the_same_order(site):
    first = site.post_json(ORDERS, order_body("site-77"))

    again = site.post_json(ORDERS, order_body("site-77"))

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["number"] == first.json()["number"]
    assert Order.objects.count() == 1
    assert OrderEvent.objects.count() == 1
    assert OutboxMessage.objects.count() == 1


def test_s01_resending_the_same_order_written_differently_is_still_the_same_order(site):
    site.post_json(ORDERS, order_body("site-78"))
    body = order_body("site-78")
    body["customer"]["email"] = "BUYER@Example.COM"  # the same address
    body["customer"]["phone"] = "89123456789"  # the same number
    body["items"][0]["quantity"] = 2  # a JSON number instead of a string

    again = site.post_json(ORDERS, body)

    assert again.status_code == 200, again.content
    assert Order.objects.count() == 1


def test_s01_same_external_id_with_a_different_body_is_a_409_external_id_conflict(site):
    first = site.post_json(ORDERS, order_body("site-9")).json()
    changed = order_body("site-9")
    changed["items"][0]["quantity"] = "3"

    response = site.post_json(ORDERS, changed)

    body = assert_error(response, 409, "external_id_conflict")
    assert body["order_id"] == first["id"]
    assert body["number"] == first["number"]
    assert Order.objects.count() == 1
    assert Order.objects.get().items.get(position=1).quantity == Decimal("2")
    assert OrderEvent.objects.count() == 1


def test_s01_a_refused_repeat_leaves_no_customer_and_no_order_number_behind(site):
    """A repeat is found by the unique external id when its order is written: what that write had
    made before it (a new customer, the next order number) is undone with it."""
    first = site.post_json(ORDERS, order_body("site-10")).json()
    changed = order_body("site-10")
    changed["customer"] = {"name": "Другой покупатель", "email": "other@example.com", "phone": "+79990001122"}

    assert_error(site.post_json(ORDERS, changed), 409, "external_id_conflict")
    assert Counterparty.objects.count() == 1
    following = site.post_json(ORDERS, order_body("site-11")).json()
    assert int(following["number"]) == int(first["number"]) + 1


def test_s01_a_site_order_without_external_id_is_refused_with_422(site):
    response = site.post_json(ORDERS, order_body(None))

    body = assert_error(response, 422, "validation_error")
    assert list(body["fields"]) == ["external_id"]
    assert Order.objects.count() == 0


def test_s01_a_blank_external_id_is_refused_with_422(site):
    response = site.post_json(ORDERS, order_body("   "))

    assert "external_id" in assert_error(response, 422, "validation_error")["fields"]
    assert Order.objects.count() == 0


@committed_db
def test_s01_concurrent_duplicate_submissions_create_exactly_one_order(machine_client):
    threads_count = 6
    body = order_body("site-race")
    secrets = [machine_client("site") for _ in range(threads_count)]
    barrier = threading.Barrier(threads_count)
    results: list = [None] * threads_count

    def submit(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            response = secrets[index].post_json(ORDERS, body)
            results[index] = (response.status_code, response.json().get("id"))
        except Exception as exc:  # a thread's failure must show in the assertion, not vanish
            results[index] = ("exception", repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    statuses = sorted(r[0] for r in results if r)
    assert statuses == [200] * (threads_count - 1) + [201], results
    assert len({r[1] for r in results}) == 1
    order = Order.objects.get(external_id="site-race")
    assert Order.objects.count() == 1
    assert order.number == "000001"  # the losers' rolled-back numbers leave no gap
    assert OrderEvent.objects.filter(order_id=order.pk).count() == 1
    assert OutboxMessage.objects.count() == 1


# ---- field-level refusals ----


def _bad_item(field: str, value):
    def change(body):
        body["items"][0][field] = value

    return change


def _bad_customer(field: str, value):
    def change(body):
        body["customer"][field] = value

    return change


def _set(key: str, value):
    def change(body):
        body[key] = value

    return change


def _bad_delivery(field: str, value):
    def change(body):
        body["delivery"][field] = value

    return change


@pytest.mark.parametrize(
    "change, field",
    [
        pytest.param(_bad_item("quantity", "0"), "items.0.quantity", id="zero quantity"),
        pytest.param(_bad_item("quantity", "-1"), "items.0.quantity", id="negative quantity"),
        pytest.param(_bad_item("quantity", "1.0005"), "items.0.quantity", id="quantity finer than 0.001"),
        pytest.param(_bad_item("quantity", "два"), "items.0.quantity", id="quantity not a number"),
        pytest.param(_bad_item("quantity", "1000001"), "items.0.quantity", id="quantity too large"),
        pytest.param(_bad_item("price", "-0.01"), "items.0.price", id="negative price"),
        pytest.param(_bad_item("price", "10.001"), "items.0.price", id="price finer than a kopeck"),
        pytest.param(_bad_item("price", "NaN"), "items.0.price", id="price NaN"),
        pytest.param(_bad_item("price", "Infinity"), "items.0.price", id="price infinite"),
        pytest.param(_bad_item("price", "1e400"), "items.0.price", id="price too many digits"),
        pytest.param(_bad_item("discount", "-1"), "items.0.discount", id="negative discount"),
        pytest.param(_bad_item("discount", "301.01"), "items.0", id="discount above the line amount"),
        pytest.param(_bad_item("vat_rate", "18"), "items.0.vat_rate", id="VAT rate abolished"),
        pytest.param(_bad_item("vat_rate", "20%"), "items.0.vat_rate", id="VAT rate with percent sign"),
        pytest.param(_bad_item("name", ""), "items.0.name", id="item without a name"),
        pytest.param(_bad_item("name", "т" * 256), "items.0.name", id="item name too long"),
        pytest.param(_bad_customer("email", "ivan@"), "customer.email", id="bad e-mail"),
        pytest.param(_bad_customer("email", "ivan petrov@example.com"), "customer.email", id="e-mail with a space"),
        pytest.param(_bad_customer("phone", "12345"), "customer.phone", id="phone too short"),
        pytest.param(_bad_customer("phone", "+7 912 ABC-67-89"), "customer.phone", id="phone with letters"),
        pytest.param(_bad_customer("name", "Я" * 256), "customer.name", id="customer name too long"),
        pytest.param(_bad_customer("inn", "7707083894"), "customer.inn", id="INN with a wrong check digit"),
        pytest.param(_set("comment", "к" * 2001), "comment", id="comment too long"),
        pytest.param(_set("external_id", "e" * 101), "external_id", id="external id too long"),
        pytest.param(_bad_delivery("address", "а" * 501), "delivery.address", id="address too long"),
        pytest.param(_bad_delivery("price", "-300"), "delivery.price", id="negative delivery price"),
        pytest.param(_set("items", []), "items", id="no items"),
    ],
)
def test_s01_bad_fields_are_refused_with_422_naming_the_field(site, change, field):
    body = order_body("site-bad")
    change(body)

    response = site.post_json(ORDERS, body)

    errors = assert_error(response, 422, "validation_error")["fields"]
    assert list(errors) == [field], errors
    assert all(isinstance(m, str) and m for m in errors[field])
    assert Order.objects.count() == 0


def test_s01_customer_without_email_and_phone_is_refused(site):
    body = order_body("site-nocontact")
    body["customer"] = {"name": "Иван"}

    errors = assert_error(site.post_json(ORDERS, body), 422, "validation_error")["fields"]

    assert list(errors) == ["customer"]


def test_s01_several_bad_fields_are_all_reported_at_once(site):
    body = order_body("site-many")
    body["items"][0]["quantity"] = "0"
    body["items"][1]["price"] = "1.001"
    body["customer"]["email"] = "nobody"

    errors = assert_error(site.post_json(ORDERS, body), 422, "validation_error")["fields"]

    assert set(errors) == {"items.0.quantity", "items.1.price", "customer.email"}


def test_s01_more_than_1000_items_are_refused(site):
    errors = assert_error(site.post_json(ORDERS, order_body("site-big", items=1001)), 422, "validation_error")["fields"]

    assert list(errors) == ["items"]
    assert Order.objects.count() == 0


def test_s01_exactly_1000_items_are_accepted(site):
    response = site.post_json(ORDERS, order_body("site-1000", items=1000))

    assert response.status_code == 201, response.content[:500]
    assert len(response.json()["items"]) == 1000


def test_b01_a_line_too_large_for_a_money_column_is_a_422_not_a_500(site):
    body = order_body("site-huge")
    body["items"][0].update(quantity="1000000", price="999999999999.99", discount="0")

    errors = assert_error(site.post_json(ORDERS, body), 422, "validation_error")["fields"]

    assert list(errors) == ["items.0"]
    assert Order.objects.count() == 0


def test_b01_an_order_total_too_large_for_a_money_column_is_a_422_not_a_500(site):
    body = order_body("site-huge-total")
    for item in body["items"]:
        item.update(quantity="1", price="600000000000.00", discount="0")

    assert_error(site.post_json(ORDERS, body), 422, "validation_error")
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    "raw, content_type",
    [
        ("{not json", "application/json"),
        ('{"external_id": "x", ', "application/json"),
        ("[1, 2]", "application/json"),
        ('"an order"', "application/json"),
        ("null", "application/json"),
        ("42", "application/json"),
        ("", "application/json"),
        ("external_id=x", "application/x-www-form-urlencoded"),
    ],
)
def test_s01_a_body_that_is_not_a_json_object_is_a_4xx_json_error_never_a_500(site, raw, content_type):
    response = site.post(ORDERS, raw, content_type=content_type)

    assert 400 <= response.status_code < 500, response.content
    assert_error(response, response.status_code, response.json().get("code"))
    assert Order.objects.count() == 0


# ---- a manager places an order too ----


def test_s01_a_manager_creates_an_order_without_external_id(manager):
    response = manager.post_json(ORDERS, order_body(None))

    assert response.status_code == 201, response.content
    order = response.json()
    assert order["source"] == "manager"
    assert order["external_id"] is None
    assert order["status"] == "pending_approval"
    event = OrderEvent.objects.get(order_id=order["id"])
    assert (event.code, event.actor_label, event.actor_role) == ("order.created", manager.user.email, "manager")


def test_s01_two_manager_orders_without_external_id_are_two_orders(manager):
    first = manager.post_json(ORDERS, order_body(None)).json()
    second = manager.post_json(ORDERS, order_body(None)).json()

    assert first["id"] != second["id"]
    assert int(second["number"]) == int(first["number"]) + 1


def test_s01_a_site_order_is_placed_only_with_a_valid_key(db):
    response = JsonClient(HTTP_AUTHORIZATION="Bearer od_nope_nope").post_json(ORDERS, order_body("site-x"))

    assert_error(response, 401, "unauthorized")
    assert Order.objects.count() == 0


def test_s01_a_customer_cannot_place_an_order_through_the_back_office_api(client_as):
    response = client_as("customer").post_json(ORDERS, order_body(None))

    assert_error(response, 403, "forbidden")
    assert Order.objects.count() == 0
