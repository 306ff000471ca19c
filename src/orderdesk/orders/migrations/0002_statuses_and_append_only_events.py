from django.db import migrations

STATUSES = [
    # code, Russian, English, position, final, hands goods over
    ("pending_approval", "На согласовании", "Pending approval", 10, False, False),
    ("agreed", "Согласован", "Agreed", 20, False, False),
    ("shipped", "Отгружен", "Shipped", 30, False, False),
    ("issued", "Выдан", "Issued", 40, False, True),
    ("closed", "Закрыт", "Closed", 50, True, False),
    ("cancelled", "Отменён", "Cancelled", 60, True, False),
]


def add_statuses(apps, schema_editor):
    StatusDefinition = apps.get_model("orders", "StatusDefinition")
    for code, name_ru, name_en, position, is_final, hands_over in STATUSES:
        StatusDefinition.objects.update_or_create(
            code=code,
            defaults={"name_ru": name_ru, "name_en": name_en, "position": position, "is_final": is_final,
                      "hands_over_goods": hands_over},
        )
    apps.get_model("orders", "ShopSettings").objects.get_or_create(pk=1, defaults={"default_site_status_id": "pending_approval"})
    # The order-number counter exists from the start, so the first orders never race to create it.
    apps.get_model("core", "Counter").objects.get_or_create(name="order_number", defaults={"value": 0})


# The event log is append-only below the ORM too: an UPDATE is refused by the database itself.
# (DELETE stays possible so that test databases can be flushed; the model refuses it.)
SQLITE_TRIGGER = """
CREATE TRIGGER orders_orderevent_append_only BEFORE UPDATE ON orders_orderevent
BEGIN SELECT RAISE(ABORT, 'order events are append-only'); END;
"""
POSTGRES_TRIGGER = """
CREATE FUNCTION orders_orderevent_refuse_update() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'order events are append-only'; END; $$ LANGUAGE plpgsql;
CREATE TRIGGER orders_orderevent_append_only BEFORE UPDATE ON orders_orderevent
FOR EACH ROW EXECUTE FUNCTION orders_orderevent_refuse_update();
"""


def add_trigger(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute(SQLITE_TRIGGER)
    elif vendor == "postgresql":
        schema_editor.execute(POSTGRES_TRIGGER)


def drop_trigger(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS orders_orderevent_append_only")
    elif vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS orders_orderevent_append_only ON orders_orderevent")
        schema_editor.execute("DROP FUNCTION IF EXISTS orders_orderevent_refuse_update()")


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial"), ("core", "0001_initial")]

    operations = [
        migrations.RunPython(add_statuses, migrations.RunPython.noop),
        migrations.RunPython(add_trigger, drop_trigger),
    ]
