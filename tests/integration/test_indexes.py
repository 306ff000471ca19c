"""B7: a relation that leads a composite index has no index of its own (each index more is written
with every row), and its look-ups still go through an index."""

import pytest
from django.db import connection

from orderdesk.fiscal.models import EmulatorJournal, Receipt
from orderdesk.orders.models import CustomerNotification, Order, OrderEvent, OrderItem
from tests.conftest import committed_db

# the relation, and a look-up by it as the product makes it
COVERED = [
    (Order, "status", Order.objects.filter(status_id="agreed").order_by("-created_at", "-id")),
    (OrderItem, "order", OrderItem.objects.filter(order_id=1)),
    (OrderEvent, "order", OrderEvent.objects.filter(order_id=1).order_by("id")),
    (CustomerNotification, "counterparty", CustomerNotification.objects.filter(counterparty_id=1).order_by("-id")),
    (Receipt, "register", Receipt.objects.filter(register_id=1, state="pending").order_by("id")),
    (EmulatorJournal, "register", EmulatorJournal.objects.filter(register_id=1, uuid="x")),
]


def _indexes_on(model) -> list[list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return [c["columns"] for c in constraints.values() if c["index"] or c["unique"]]


@pytest.mark.django_db
@pytest.mark.parametrize("model, relation, lookup", COVERED, ids=[f"{m.__name__}.{r}" for m, r, _ in COVERED])
def test_b07_a_relation_leading_a_composite_index_has_none_of_its_own(model, relation, lookup):
    column = model._meta.get_field(relation).column
    indexes = _indexes_on(model)

    assert [column] not in indexes
    assert any(len(columns) > 1 and columns[0] == column for columns in indexes), indexes
    if connection.vendor == "sqlite":  # PostgreSQL's planner scans a small table whatever its indexes
        with connection.cursor() as cursor:
            sql, params = lookup.query.sql_with_params()
            plan = " ".join(row[-1] for row in cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan


@committed_db  # migrating runs outside a test's transaction
def test_b07_undoing_the_migrations_makes_the_indexes_again_and_redoing_drops_them():
    from django.core.management import call_command

    def own_indexes() -> list[str]:
        return [f"{model.__name__}.{relation}" for model, relation, _ in COVERED
                for columns in _indexes_on(model) if columns == [model._meta.get_field(relation).column]]

    call_command("migrate", "orders", "0005", verbosity=0)
    call_command("migrate", "fiscal", "0003", verbosity=0)
    try:
        undone = own_indexes()
    finally:
        call_command("migrate", verbosity=0)

    like = ["Order.status"] if connection.vendor == "postgresql" else []  # a char key's LIKE index
    assert sorted(undone) == sorted([f"{m.__name__}.{r}" for m, r, _ in COVERED] + like)
    assert own_indexes() == []
