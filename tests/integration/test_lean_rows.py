"""B7/S1: the lean INSERTs and look-ups of the hot paths (orderdesk/core/rows.py) write and read
exactly what the ORM would."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from orderdesk.core import rows
from orderdesk.core.models import ApiKey
from orderdesk.orders.models import Counterparty, Order, OrderEvent, OrderItem


@pytest.fixture
def customer(db):
    return Counterparty.objects.create(name="Анна", email="anna@example.com")


def _order(customer, **extra) -> Order:
    moment = datetime(2026, 11, 23, 12, 30, 15, 123456, tzinfo=timezone.utc)
    return Order(number="R-1", source="site", external_id="ext-1", customer=customer, customer_name="Анна",
                 status_id="pending_approval", items_total=Decimal("1234.50"), total=Decimal("1534.50"),
                 delivery_price=Decimal("300.00"), created_at=moment, updated_at=moment, **extra)


def test_b07_an_inserted_row_reads_back_through_the_orm_field_by_field(customer):
    written = rows.insert(_order(customer, comment="позвонить заранее"))
    read = Order.objects.get(pk=written.pk)

    for field in Order._meta.concrete_fields:
        assert getattr(read, field.attname) == getattr(written, field.attname), field.attname
    assert read.total == Decimal("1534.50") and read.created_at.microsecond == 123456


def test_b07_an_event_payload_is_stored_as_json_and_reads_back_as_the_same_dict(customer):
    order = rows.insert(_order(customer))
    payload = {"total": "1534.50", "state": {"status": "pending_approval"}, "names": ["Чайник", None, 2]}

    event = rows.insert(OrderEvent(order=order, order_number=order.number, code="order.created",
                                   actor_label="site:test", actor_role="site", payload=payload))

    assert OrderEvent.objects.get(pk=event.pk).payload == payload


def test_s01_many_items_are_written_in_one_statement_in_their_order(customer, django_assert_num_queries):
    order = rows.insert(_order(customer))
    items = [OrderItem(order=order, position=n, name=f"Товар {n}", quantity=Decimal("1.500"), price=Decimal("10.00"),
                       amount=Decimal("15.00"), vat_rate="22") for n in range(1, 6)]

    with django_assert_num_queries(1):
        rows.insert_many(items)

    assert list(order.items.values_list("position", "quantity")) == [(n, Decimal("1.500")) for n in range(1, 6)]


def test_b09_a_lean_look_up_finds_the_first_match_and_honours_the_null_condition(db):
    live, _ = ApiKey.issue(name="site", role="site")
    found = rows.first(ApiKey, ("id", "name", "role"), key_hash=live.key_hash, null=("revoked_at",))
    assert (found.pk, found.name, found.role) == (live.pk, "site", "site")

    ApiKey.objects.filter(pk=live.pk).update(revoked_at=datetime.now(timezone.utc))
    assert rows.first(ApiKey, ("id",), key_hash=live.key_hash, null=("revoked_at",)) is None


def test_b09_a_lean_look_up_refuses_a_field_the_model_does_not_have(db):
    with pytest.raises(ValueError, match="not attribute names"):
        rows.first(ApiKey, ("id", "secret"), name="x")


def test_b07_a_lean_update_changes_only_the_named_columns_of_that_row(customer):
    other = _order(customer)
    other.number, other.external_id = "R-2", "ext-2"
    first, second = rows.insert(_order(customer)), rows.insert(other)
    moment = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)

    changed = rows.update(Order, first.pk, total=Decimal("99.90"), updated_at=moment, comment="")

    assert changed == 1
    first_read, second_read = Order.objects.get(pk=first.pk), Order.objects.get(pk=second.pk)
    assert (first_read.total, first_read.updated_at, first_read.items_total) == (Decimal("99.90"), moment, Decimal("1234.50"))
    assert second_read.total == Decimal("1534.50")
    assert rows.update(Order, 10**9, total=Decimal("1.00")) == 0
