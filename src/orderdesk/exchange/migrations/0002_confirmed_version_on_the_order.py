"""The version 1C confirmed moves onto the order (orders 0005), where a partial index finds the
orders 1C lacks: a `query` with nothing due read every order's version (about a second at a
million orders)."""

from django.db import migrations
from django.db.models import OuterRef, Subquery


def copy_to_orders(apps, schema_editor):
    OrderExchange = apps.get_model("exchange", "OrderExchange")
    Order = apps.get_model("orders", "Order")
    confirmed = OrderExchange.objects.filter(pk=OuterRef("pk")).values("confirmed_version")
    Order.objects.filter(exchange__confirmed_version__gt=0).update(one_c_confirmed_version=Subquery(confirmed))


def copy_back(apps, schema_editor):
    OrderExchange = apps.get_model("exchange", "OrderExchange")
    Order = apps.get_model("orders", "Order")
    confirmed = Order.objects.filter(pk=OuterRef("pk")).values("one_c_confirmed_version")
    OrderExchange.objects.filter(order__one_c_confirmed_version__isnull=False).update(
        confirmed_version=Subquery(confirmed))


class Migration(migrations.Migration):

    dependencies = [
        ("exchange", "0001_initial"),
        ("orders", "0005_order_one_c_confirmed_version"),
    ]

    operations = [
        migrations.RunPython(copy_to_orders, copy_back, elidable=False),
        migrations.RemoveField(model_name="orderexchange", name="confirmed_version"),
    ]
