"""A receipt's register is indexed by the relay's queue index, an emulator journal's register by
its unique document ids: neither keeps an index of its own."""

import django.db.models.deletion
from django.db import migrations, models

from orderdesk.core.migration_ops import drop_field_index


class Migration(migrations.Migration):

    dependencies = [
        ("fiscal", "0003_receipt_due_index"),
    ]

    operations = [
        drop_field_index("fiscal", migrations.AlterField(
            model_name="emulatorjournal",
            name="register",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                    to="fiscal.register"),
        )),
        drop_field_index("fiscal", migrations.AlterField(
            model_name="receipt",
            name="register",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="receipts", to="fiscal.register"),
        )),
    ]
