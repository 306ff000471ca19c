"""The relations that lead a composite index lose their own: the order's status (the list's
index), an item's order (its unique position), an event's order and a notification's
counterparty (the history's and the feed's indexes)."""

import django.db.models.deletion
from django.db import migrations, models

from orderdesk.core.migration_ops import drop_field_index


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0005_order_one_c_confirmed_version"),
    ]

    operations = [
        drop_field_index("orders", migrations.AlterField(
            model_name="customernotification",
            name="counterparty",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="notifications", to="orders.counterparty"),
        )),
        drop_field_index("orders", migrations.AlterField(
            model_name="order",
            name="status",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="+",
                                    to="orders.statusdefinition", verbose_name="status"),
        )),
        drop_field_index("orders", migrations.AlterField(
            model_name="orderevent",
            name="order",
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING,
                                    related_name="events", to="orders.order"),
        )),
        drop_field_index("orders", migrations.AlterField(
            model_name="orderitem",
            name="order",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="items",
                                    to="orders.order"),
        )),
    ]
