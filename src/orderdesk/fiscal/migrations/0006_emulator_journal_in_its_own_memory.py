"""The emulator register's journal moves out of the shop's database into the emulator's own fiscal
memory (orderdesk/fiscal/drivers/emulator_memory.py), its documents with it: a uuid registered
before the upgrade is still answered with its document, and the numbering goes on from the last.
A memory that holds another document under one of their numbers or uuids stops the upgrade, with
nothing moved. Undone, the emulator registers' documents go back into the table."""

from pathlib import Path

from django.db import migrations


def copy_journal_to_memory(apps, schema_editor):
    from orderdesk.fiscal.drivers import emulator_memory
    from orderdesk.fiscal.drivers.emulator import fn_number

    journal = apps.get_model("fiscal", "EmulatorJournal").objects.using(schema_editor.connection.alias)
    documents = [(fn_number(row.register_id, row.register.connection), emulator_memory.Document(
        row.uuid, row.fd_number, row.fiscal_sign, row.shift_number, row.settlement, row.total, row.registered_at))
        for row in journal.select_related("register").order_by("register_id", "fd_number")]
    if documents:
        emulator_memory.keep(documents)


def copy_memory_to_journal(apps, schema_editor):
    from django.conf import settings

    from orderdesk.fiscal.drivers import emulator_memory
    from orderdesk.fiscal.drivers.emulator import fn_number

    if not Path(settings.FISCAL_EMULATOR_PATH).exists():
        return
    alias = schema_editor.connection.alias
    journal = apps.get_model("fiscal", "EmulatorJournal")
    emulators = apps.get_model("fiscal", "Register").objects.using(alias).filter(driver="emulator").order_by("pk")
    journal.objects.using(alias).bulk_create(
        journal(register=register, uuid=document.uuid, fd_number=document.fd_number, fiscal_sign=document.fiscal_sign,
                shift_number=document.shift_number, settlement=document.settlement, total=document.total,
                registered_at=document.registered_at)
        for register in emulators for document in emulator_memory.journal(fn_number(register.pk, register.connection)))


class Migration(migrations.Migration):

    dependencies = [
        ("fiscal", "0005_receipt_entry_indexed_by_its_unique_only"),
    ]

    operations = [
        migrations.RunPython(copy_journal_to_memory, copy_memory_to_journal, elidable=True),
        migrations.DeleteModel(name="EmulatorJournal"),
    ]
