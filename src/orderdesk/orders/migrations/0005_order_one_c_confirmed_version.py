"""The version of an order 1C confirmed, kept on the order, and the partial index of the orders 1C
does not hold as they are now (exchange 0002 moves the confirmed versions here). The column is
nullable with no default, so SQLite adds it in place: a rebuilt table would lose its search
triggers (0004)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0004_order_search_trigram_index'),
    ]

    operations = [
        migrations.AddField(
            model_name='order',
            name='one_c_confirmed_version',
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='order',
            index=models.Index(condition=models.Q(('one_c_confirmed_version__isnull', True), ('one_c_confirmed_version__lt', models.F('version')), _connector='OR'), fields=['id'], name='order_due_to_1c_idx'),
        ),
    ]
