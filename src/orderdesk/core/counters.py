"""Gap-free named counters for human-readable numbers (orders, documents)."""

from django.db import IntegrityError, transaction

from orderdesk.core import rows
from orderdesk.core.models import Counter


def next_value(name: str) -> int:
    """The counter row stays locked by the UPDATE until the caller's transaction ends, so numbers
    are never given twice nor skipped. UPDATE … RETURNING (SQLite ≥ 3.35, PostgreSQL) is one trip."""
    returned = rows.execute(f"UPDATE {Counter._meta.db_table} SET value = value + 1 WHERE name = %s RETURNING value",
                            [name])[0]
    if returned:
        return returned[0][0]
    try:
        with transaction.atomic():
            Counter.objects.create(name=name, value=1)
        return 1
    except IntegrityError:  # made by a concurrent first caller
        return next_value(name)
