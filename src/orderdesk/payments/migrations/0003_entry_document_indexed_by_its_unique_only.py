"""A ledger entry's document loses its own index: the unique (document, direction) leads with it."""

import django.db.models.deletion
from django.db import migrations, models

from orderdesk.core.migration_ops import drop_field_index


class Migration(migrations.Migration):

    dependencies = [
        ("payments", "0002_acquirer_payment_id"),
    ]

    operations = [
        drop_field_index("payments", migrations.AlterField(
            model_name="paymententry",
            name="document",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="entries",
                                    to="payments.document"),
        )),
    ]
