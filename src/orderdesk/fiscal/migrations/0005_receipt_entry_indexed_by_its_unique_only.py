"""A receipt's ledger entry loses its own index: one_receipt_per_payment indexes every entry set."""

import django.db.models.deletion
from django.db import migrations, models

from orderdesk.core.migration_ops import drop_field_index


class Migration(migrations.Migration):

    dependencies = [
        ("fiscal", "0004_relations_indexed_by_composites_only"),
        ("payments", "0003_entry_document_indexed_by_its_unique_only"),
    ]

    operations = [
        drop_field_index("fiscal", migrations.AlterField(
            model_name="receipt",
            name="entry",
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="receipts", to="payments.paymententry"),
        )),
    ]
