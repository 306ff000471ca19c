"""The emulator register's journal moves out of the shop's database into the emulator's own fiscal
memory (orderdesk/fiscal/drivers/emulator_memory.py), its documents with it: a uuid registered
before the upgrade is still answered with its document, and the numbering goes on from the last."""

from django.db import migrations


def copy_journal_to_memory(apps, schema_editor):
    from orderdesk.fiscal.drivers import emulator_memory
    from orderdesk.fiscal.drivers.emulator import fn_number

    journal = apps.get_model("fiscal", "EmulatorJournal").objects.using(schema_editor.connection.alias)
    for row in journal.select_related("register").order_by("register_id", "fd_number").iterator():
        drive = fn_number(row.register_id, row.register.connection)
        emulator_memory.keep(drive, emulator_memory.Document(
            row.uuid, row.fd_number, row.fiscal_sign, row.shift_number, row.settlement, row.total, row.registered_at))


class Migration(migrations.Migration):

    dependencies = [
        ("fiscal", "0005_receipt_entry_indexed_by_its_unique_only"),
    ]

    operations = [
        migrations.RunPython(copy_journal_to_memory, migrations.RunPython.noop, elidable=True),
        migrations.DeleteModel(name="EmulatorJournal"),
    ]
