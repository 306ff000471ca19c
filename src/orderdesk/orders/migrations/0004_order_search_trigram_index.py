"""S2: the text search finds orders through a trigram index instead of reading the whole table.

SQLite: an FTS5 table with the trigram tokenizer over orders_order.search_text, orders_order being
its content. Triggers keep it in step: orders are also written by raw INSERTs (core/rows.py) and
bulk loads, which only a trigger sees. SQLite drops a table's triggers when a migration rebuilds
the table (Django does so to alter most columns); tests/integration/test_order_search.py fails
until such a migration creates them again.

PostgreSQL: pg_trgm's GIN index, which serves `LIKE '%…%'` itself. pg_trgm is a trusted extension
that a database owner may create; where it cannot be created the search keeps working, unindexed,
and the deploy goes on with a warning.
"""

import logging

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger(__name__)

SQLITE_FORWARD = [
    # External content: the index holds only the trigrams, the text stays in orders_order. The
    # tokenizer folds case itself too, so it finds every row that LIKE finds.
    """CREATE VIRTUAL TABLE orders_order_search USING fts5(
        search_text, content='orders_order', content_rowid='id', tokenize='trigram', columnsize=0
    )""",
    "INSERT INTO orders_order_search(orders_order_search) VALUES ('rebuild')",
    """CREATE TRIGGER orders_order_search_insert AFTER INSERT ON orders_order BEGIN
        INSERT INTO orders_order_search(rowid, search_text) VALUES (new.id, new.search_text);
    END""",
    # An external-content index forgets a row only when told the text it indexed.
    """CREATE TRIGGER orders_order_search_delete AFTER DELETE ON orders_order BEGIN
        INSERT INTO orders_order_search(orders_order_search, rowid, search_text)
            VALUES ('delete', old.id, old.search_text);
    END""",
    # Most updates of an order write its other columns, or search_text unchanged (a full save()).
    """CREATE TRIGGER orders_order_search_update AFTER UPDATE OF id, search_text ON orders_order
    WHEN old.id IS NOT new.id OR old.search_text IS NOT new.search_text BEGIN
        INSERT INTO orders_order_search(orders_order_search, rowid, search_text)
            VALUES ('delete', old.id, old.search_text);
        INSERT INTO orders_order_search(rowid, search_text) VALUES (new.id, new.search_text);
    END""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS orders_order_search_update",
    "DROP TRIGGER IF EXISTS orders_order_search_delete",
    "DROP TRIGGER IF EXISTS orders_order_search_insert",
    "DROP TABLE IF EXISTS orders_order_search",
]
POSTGRES_FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX order_search_trgm_idx ON orders_order USING gin (search_text gin_trgm_ops)",
]
# The extension stays: it belongs to the whole database, and something else may use it by now.
POSTGRES_BACKWARD = ["DROP INDEX IF EXISTS order_search_trgm_idx"]

NO_INDEX_WARNING = (
    "Поиск заказов будет работать без индекса и медленнее: не удалось создать расширение pg_trgm или "
    "индекс на нём (%(error)s). Пусть администратор базы выполнит CREATE EXTENSION pg_trgm, затем "
    "выполните orderdesk manage migrate orders 0003 и orderdesk migrate. / "
    "The order search will work without its index, and slower: the pg_trgm extension or the index on "
    "it could not be created (%(error)s). Have the database administrator run CREATE EXTENSION "
    "pg_trgm, then run orderdesk manage migrate orders 0003 and orderdesk migrate."
)


def create_index(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)
    elif connection.vendor == "postgresql":
        try:
            # A failed statement aborts a PostgreSQL transaction: the savepoint keeps the
            # migration's own transaction alive.
            with transaction.atomic(using=connection.alias):
                for statement in POSTGRES_FORWARD:
                    schema_editor.execute(statement)
        except DatabaseError as error:
            logger.warning(NO_INDEX_WARNING, {"error": str(error).strip()})


def drop_index(apps, schema_editor):
    statements = {"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD}
    for statement in statements.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0003_list_indexes_by_creation'),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index),
    ]
