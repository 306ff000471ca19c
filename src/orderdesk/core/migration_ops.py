"""Migration operations of our own."""

from django.db import migrations


def drop_field_index(app_label: str, alter: migrations.AlterField) -> migrations.SeparateDatabaseAndState:
    """`alter` sets db_index=False on a field: the index Django made for it (on PostgreSQL, its LIKE
    index too) is dropped by the name Django gave it, where Django's AlterField would rebuild the
    whole table on SQLite, copying every row and losing the table's triggers; no other index on
    the column is touched. Undone, the indexes are made as Django makes a field's indexes. (Both
    names and statements come from the schema editor's own helpers, which AlterField uses.)"""

    def field_of(apps):
        model = apps.get_model(app_label, alter.model_name)
        return model, model._meta.get_field(alter.name)

    def drop(apps, schema_editor):
        model, field = field_of(apps)
        for suffix in ("", "_like"):  # the names Django gives a field's index, and on PostgreSQL its LIKE index
            name = schema_editor._create_index_name(model._meta.db_table, [field.column], suffix=suffix)
            schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")

    def restore(apps, schema_editor):  # `apps` as before the migration: the field still indexed
        model, field = field_of(apps)
        for statement in schema_editor._field_indexes_sql(model, field):
            schema_editor.execute(statement)

    return migrations.SeparateDatabaseAndState(state_operations=[alter],
                                               database_operations=[migrations.RunPython(drop, restore)])
