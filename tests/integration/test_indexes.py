"""B7: a relation whose look-ups another index serves, or that nothing looks rows up by, has no
index of its own (each index more is written with every row), and its look-ups still go through an
index."""

import pytest
from django.db import connection

from orderdesk.fiscal.models import Receipt
from orderdesk.orders.models import Order, OrderEvent, OrderItem
from orderdesk.payments.models import PaymentEntry
from tests.conftest import committed_db

# the relation, and a look-up by it as the product makes it
COVERED = [
    (Order, "status", Order.objects.filter(status_id="agreed").order_by("-created_at", "-id")),
    (OrderItem, "order", OrderItem.objects.filter(order_id=1)),
    (OrderEvent, "order", OrderEvent.objects.filter(order_id=1).order_by("id")),
    (Receipt, "register", Receipt.objects.filter(register_id=1, state="pending").order_by("id")),
    (PaymentEntry, "document", PaymentEntry.objects.filter(document_id=1)),
]
# relations read from their row only: an event's user
UNREAD = [(OrderEvent, "user")]
# the relation, the unique index that also serves its look-ups, and such a look-up
UNIQUE = [(Receipt, "entry", "one_receipt_per_payment", Receipt.objects.filter(entry_id__in=[1, 2]))]
EVERY = [(model, relation) for model, relation, *_ in COVERED + UNREAD + UNIQUE]


def _indexes_on(model) -> dict[str, dict]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return {name: c for name, c in constraints.items() if c["index"] or c["unique"]}


def _own_index(model, relation) -> bool:
    """Whether the relation has the plain index Django makes for a foreign key."""
    column = model._meta.get_field(relation).column
    return any(c["columns"] == [column] and not c["unique"] for c in _indexes_on(model).values())


def _plan(lookup) -> str:
    with connection.cursor() as cursor:
        sql, params = lookup.query.sql_with_params()
        return " ".join(row[-1] for row in cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())


@pytest.mark.django_db
@pytest.mark.parametrize("model, relation, lookup", COVERED, ids=[f"{m.__name__}.{r}" for m, r, _ in COVERED])
def test_b07_a_relation_leading_a_composite_index_has_none_of_its_own(model, relation, lookup):
    column = model._meta.get_field(relation).column
    indexes = [c["columns"] for c in _indexes_on(model).values()]

    assert [column] not in indexes
    assert any(len(columns) > 1 and columns[0] == column for columns in indexes), indexes
    if connection.vendor == "sqlite":  # PostgreSQL's planner scans a small table whatever its indexes
        plan = _plan(lookup)
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan


@pytest.mark.django_db
@pytest.mark.parametrize("model, relation", UNREAD, ids=[f"{m.__name__}.{r}" for m, r in UNREAD])
def test_b07_a_relation_nothing_looks_rows_up_by_is_in_no_index(model, relation):
    column = model._meta.get_field(relation).column

    assert not any(column in c["columns"] for c in _indexes_on(model).values())


@pytest.mark.django_db
@pytest.mark.parametrize("model, relation, unique, lookup", UNIQUE, ids=[f"{m.__name__}.{r}" for m, r, *_ in UNIQUE])
def test_b07_a_relation_its_unique_index_serves_has_none_of_its_own(model, relation, unique, lookup):
    column = model._meta.get_field(relation).column

    assert not _own_index(model, relation)
    assert _indexes_on(model)[unique]["columns"] == [column]
    if connection.vendor == "sqlite":
        assert f"USING INDEX {unique}" in _plan(lookup) or f"USING COVERING INDEX {unique}" in _plan(lookup)


@committed_db  # migrating runs outside a test's transaction
def test_b07_undoing_the_migrations_makes_the_indexes_again_and_redoing_drops_them():
    from django.core.management import call_command

    def own_indexes() -> list[str]:
        return sorted(f"{model.__name__}.{relation}" for model, relation in EVERY if _own_index(model, relation))

    call_command("migrate", "fiscal", "0003", verbosity=0)
    call_command("migrate", "payments", "0002", verbosity=0)
    call_command("migrate", "orders", "0005", verbosity=0)
    try:
        undone = own_indexes()
    finally:
        call_command("migrate", verbosity=0)

    assert undone == sorted(f"{model.__name__}.{relation}" for model, relation in EVERY)
    assert own_indexes() == []


@pytest.mark.django_db
def test_s04_a_customers_notifications_are_read_from_his_orders_not_from_a_scan_of_every_event(actor_of):
    from orderdesk.core.rights import Role
    from orderdesk.orders import services

    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's planner scans small tables whatever the indexes (this test runs in the SQLite pass)")
    plan = _plan(services.customer_notifications(actor_of(Role.CUSTOMER))[:50])

    assert "SCAN" not in plan, plan
    assert "SEARCH orders_orderevent USING INDEX order_event_order_idx" in plan, plan
