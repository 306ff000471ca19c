"""A customer's notifications are the customer-visible events of his orders: the row each change
wrote for them goes, and what he has read is kept as read marks."""

from itertools import islice

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def keep_what_was_read(apps, schema_editor):
    notifications = apps.get_model("orders", "CustomerNotification")
    read_marks = apps.get_model("orders", "NotificationRead")
    read = notifications.objects.filter(read_at__isnull=False).values_list("event_id", "read_at").iterator()
    while chunk := list(islice(read, 1000)):  # a shop's whole history is not held in memory at once
        read_marks.objects.bulk_create([read_marks(event_id=event_id, read_at=read_at) for event_id, read_at in chunk],
                                       ignore_conflicts=True)


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0007_indexes_read_by_no_query"),
    ]

    operations = [
        migrations.CreateModel(
            name="NotificationRead",
            fields=[
                ("event", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                               related_name="read_mark", serialize=False, to="orders.orderevent")),
                ("read_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
        migrations.RunPython(keep_what_was_read, migrations.RunPython.noop),
        migrations.DeleteModel(
            name="CustomerNotification",
        ),
    ]
