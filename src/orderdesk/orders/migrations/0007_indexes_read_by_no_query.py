"""Two relations lose an index no query reads: an event's user (who did it, shown with the event)
and a notification's event (reached from the notification; the append-only log's events are
never deleted). Each was written with every event."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from orderdesk.core.migration_ops import drop_field_index


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0006_relations_indexed_by_composites_only"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        drop_field_index("orders", migrations.AlterField(
            model_name="customernotification",
            name="event",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                    to="orders.orderevent"),
        )),
        drop_field_index("orders", migrations.AlterField(
            model_name="orderevent",
            name="user",
            field=models.ForeignKey(db_constraint=False, db_index=False, null=True,
                                    on_delete=django.db.models.deletion.DO_NOTHING, related_name="+",
                                    to=settings.AUTH_USER_MODEL),
        )),
    ]
