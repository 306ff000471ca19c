"""B7: a relation that leads a composite index has no index of its own (each index more is written
with every row), and its look-ups still go through an index."""

import pytest
from django.db import connection

from orderdesk.fiscal.models import EmulatorJournal, Receipt
from orderdesk.orders.models import CustomerNotification, Order, OrderEvent, OrderItem

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
