"""S1 intake validation and B1 money shape: what OrderIn / ItemIn / CustomerIn accept and refuse.
Pure pydantic, no database."""

from decimal import Decimal

import pytest
from pydantic import ValidationError

from orderdesk.orders.schemas import MAX_ITEMS, CustomerIn, ItemsIn, OrderIn
from tests.conftest import order_body

D = Decimal


def refused(body: dict, schema=OrderIn) -> set[str]:
    """The dotted paths of the fields the schema refused (and it must refuse something)."""
    with pytest.raises(ValidationError) as error:
        schema(**body)
    return {".".join(map(str, e["loc"])) for e in error.value.errors()}


def item(**overrides) -> dict:
    return {"sku": "SKU-1", "name": "Товар", "unit": "шт", "quantity": "1", "price": "100.00",
            "discount": "0", "vat_rate": "22", "kind": "goods", **overrides}


def with_item(**overrides) -> dict:
    return order_body(items=1) | {"items": [item(**overrides)]}


def with_customer(**overrides) -> dict:
    body = order_body()
    body["customer"] = {**body["customer"], **overrides}
    return body


def test_s01_the_example_site_order_is_accepted_whole():
    order = OrderIn(**order_body())
    assert order.external_id == "site-1"
    assert order.customer.name == "Иван Петров"
    assert [i.sku for i in order.items] == ["SKU-1", "SKU-2"]
    assert order.delivery.address == "Москва, ул. Тверская, 1"
    assert order.comment == "Позвонить за час"


# ---- quantities and prices ----


@pytest.mark.parametrize("quantity", ["0", "-1", "-0.001", "0.0001", "1000000.001", "abc", "NaN", "Infinity"])
def test_s01_quantity_must_be_positive_with_at_most_three_decimals(quantity):
    assert refused(with_item(quantity=quantity)) == {"items.0.quantity"}


@pytest.mark.parametrize("quantity", ["0.001", "1", "2.5", "1000000", "999999.999"])
def test_s01_reasonable_quantities_are_accepted(quantity):
    assert OrderIn(**with_item(quantity=quantity, price="1.00")).items[0].quantity == D(quantity)


@pytest.mark.parametrize("field", ["price", "discount"])
@pytest.mark.parametrize("value", ["-0.01", "0.001", "10.005", "NaN", "-Infinity", "Infinity", "1000000000000.00", "ten"])
def test_b01_money_fields_are_non_negative_kopecks(field, value):
    assert refused(with_item(**{field: value})) == {f"items.0.{field}"}


@pytest.mark.parametrize("price", ["0", "0.00", "0.01", "99.9", "999999999999.99"])
def test_b01_prices_from_zero_to_the_column_limit_are_accepted(price):
    body = with_item(price=price) | {"delivery": {"price": "0"}}  # the order total has the same limit
    assert OrderIn(**body).items[0].price == D(price)


def test_b01_delivery_price_is_money_too():
    assert refused(order_body(delivery={"price": "-1"})) == {"delivery.price"}
    assert refused(order_body(delivery={"price": "1.001"})) == {"delivery.price"}


def test_b01_json_numbers_become_decimals_not_floats():
    order = OrderIn(**with_item(quantity=0.1, price=0.1, discount=0.01) | {"delivery": {"price": 300.1}})
    line = order.items[0]
    assert (type(line.quantity), type(line.price), type(line.discount)) == (Decimal, Decimal, Decimal)
    assert (line.quantity, line.price, line.discount) == (D("0.1"), D("0.1"), D("0.01"))
    assert order.delivery.price == D("300.10")


@pytest.mark.parametrize(
    "quantity, price, discount",
    [("2", "10.00", "20.01"), ("1", "0", "0.01"), ("0.001", "1.00", "0.01")],  # 0.001 × 1.00 rounds to 0.00
)
def test_b01_discount_larger_than_the_line_amount_is_refused(quantity, price, discount):
    assert refused(with_item(quantity=quantity, price=price, discount=discount)) == {"items.0"}


@pytest.mark.parametrize(
    "quantity, price, discount",
    [("2", "10.00", "20.00"), ("0.5", "0.01", "0.01")],  # whole line given away; 0.005 rounds half up to 0.01
)
def test_b01_discount_up_to_the_line_amount_is_accepted(quantity, price, discount):
    assert OrderIn(**with_item(quantity=quantity, price=price, discount=discount)).items[0].discount == D(discount)


# ---- VAT ----


@pytest.mark.parametrize("rate", ["none", "0", "5", "7", "10", "20", "22"])
def test_s01_known_vat_rates_are_accepted(rate):
    assert OrderIn(**with_item(vat_rate=rate)).items[0].vat_rate == rate


@pytest.mark.parametrize("rate", ["18", "22/122", "20%", "", "NONE", "без НДС", None])
def test_s01_unknown_vat_rates_are_refused(rate):
    assert refused(with_item(vat_rate=rate)) == {"items.0.vat_rate"}


def test_s01_vat_rate_is_required():
    line = item()
    del line["vat_rate"]
    assert refused(order_body() | {"items": [line]}) == {"items.0.vat_rate"}


# ---- customer ----


def test_s01_customer_email_is_normalized_to_lower_case():
    assert OrderIn(**with_customer(email="  Anna.Petrova@Example.COM ")).customer.email == "anna.petrova@example.com"


@pytest.mark.parametrize("email", ["anna", "anna@", "@example.com", "anna@example", "anna @example.com", "a@b@example.com",
                                   "x" * 250 + "@example.com"])
def test_s01_malformed_email_is_refused(email):
    assert refused(with_customer(email=email)) == {"customer.email"}


@pytest.mark.parametrize("phone", ["8 912 345-67-89", "+7 (912) 345 67 89", "9123456789"])
def test_s01_customer_phone_is_normalized(phone):
    assert OrderIn(**with_customer(phone=phone)).customer.phone == "+79123456789"


@pytest.mark.parametrize("phone", ["12345", "phone", "+7 912 345", "8 912 345 67 89 0", "+7 (912) 345-67-89" + " " * 20])
def test_s01_malformed_phone_is_refused(phone):
    assert refused(with_customer(phone=phone)) == {"customer.phone"}


@pytest.mark.parametrize("contacts", [
    {"email": "anna@example.com", "phone": None},
    {"email": None, "phone": "+79123456789"},
    {"email": "", "phone": "89123456789"},
])
def test_s01_customer_with_email_or_phone_is_accepted(contacts):
    customer = CustomerIn(name="Анна", **contacts)
    assert customer.email or customer.phone


@pytest.mark.parametrize("contacts", [{"email": None, "phone": None}, {"email": "", "phone": ""}, {}])
def test_s01_customer_needs_email_or_phone(contacts):
    body = order_body()
    body["customer"] = {"name": "Анна", **contacts}
    assert refused(body) == {"customer"}


@pytest.mark.parametrize("kind, inn", [("company", "7707083893"), ("person", "500100732259"), ("sole_trader", "500100732259")])
def test_s01_customer_inn_with_valid_check_digits_is_accepted(kind, inn):
    assert OrderIn(**with_customer(kind=kind, inn=inn)).customer.inn == inn


@pytest.mark.parametrize("inn", ["7707083894", "500100732258", "770708389", "77070838931", "7707O83893", "5001007322591"])
def test_s01_customer_inn_with_wrong_check_digits_or_shape_is_refused(inn):
    assert refused(with_customer(kind="company", inn=inn)) == {"customer.inn"}


def test_s01_customer_kind_and_language_are_from_fixed_lists():
    assert refused(with_customer(kind="alien")) == {"customer.kind"}
    assert refused(with_customer(language="de")) == {"customer.language"}


# ---- sizes and lengths ----


def test_s01_an_order_needs_at_least_one_item():
    assert refused(order_body() | {"items": []}) == {"items"}


def test_s01_an_order_of_max_items_is_accepted():
    assert MAX_ITEMS == 1000
    assert len(OrderIn(**order_body(items=1000)).items) == 1000


def test_s01_an_order_of_more_than_max_items_is_refused():
    assert refused(order_body(items=1001)) == {"items"}


def test_s01_item_replacement_has_the_same_item_limit():
    assert len(ItemsIn(items=[item()] * 1000).items) == 1000
    assert refused({"items": [item()] * 1001}, schema=ItemsIn) == {"items"}
    assert refused({"items": []}, schema=ItemsIn) == {"items"}


@pytest.mark.parametrize("path, limit", [
    ("customer.name", 255),
    ("items.0.name", 255),
    ("items.0.sku", 100),
    ("items.0.unit", 20),
    ("external_id", 100),
    ("comment", 2000),
    ("delivery.method", 255),
    ("delivery.address", 500),
])
def test_s01_text_fields_are_accepted_up_to_their_limit_and_refused_beyond(path, limit):
    def body_with(text):
        body = order_body(items=1) | {"delivery": dict(order_body()["delivery"])}
        target = body
        *parents, field = path.split(".")
        for step in parents:
            target = target[int(step)] if step.isdigit() else target[step]
        target[field] = text
        return body

    OrderIn(**body_with("я" * limit))
    assert refused(body_with("я" * (limit + 1))) == {path}


@pytest.mark.parametrize("path", ["customer.name", "items.0.name"])
def test_s01_names_cannot_be_blank(path):
    body = order_body(items=1)
    section, *rest = path.split(".")
    target = body[section][0] if rest[0] == "0" else body[section]
    target["name"] = "   "
    assert refused(body) == {path}


def test_s01_surrounding_spaces_are_trimmed_before_length_checks():
    order = OrderIn(**order_body(comment="  " + "я" * 2000 + "  ", external_id="  site-7  "))
    assert order.comment == "я" * 2000
    assert order.external_id == "site-7"


def test_s01_order_without_external_id_is_accepted():
    assert OrderIn(**order_body(external_id=None)).external_id is None


def test_s01_blank_external_id_is_refused():
    assert refused(order_body(external_id="   ")) == {"external_id"}
