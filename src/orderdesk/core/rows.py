"""Lean INSERTs and UPDATEs for the writes every order makes (intake, the event log, the outbox).

`Model.save()` compiles its INSERT anew on every call: about a millisecond of Python per row
here, spent while the transaction holds SQLite's only write lock. These build each model's
statement once and adapt the values with the model's own fields, so the rows are exactly
what the ORM would write. No signals are sent: nothing in orderdesk listens to them.
"""

from functools import cache

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model


def _connection():
    """The thread's connection itself, not the proxy: every field asks it for its adapter."""
    return connections[DEFAULT_DB_ALIAS]


@cache
def _statement(model: type[Model]) -> tuple[str, str, tuple]:
    meta = model._meta
    fields = tuple(f for f in meta.concrete_fields if not f.primary_key)
    quote = _connection().ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})"
    return sql, f"{sql} RETURNING {quote(meta.pk.column)}", fields


def _values(obj: Model, fields: tuple, connection) -> list:
    return [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields]


def insert(obj: Model) -> Model:
    """INSERT one row in the caller's transaction; sets and returns the object with its pk."""
    _, returning, fields = _statement(type(obj))
    connection = _connection()
    with connection.cursor() as cursor:
        cursor.execute(returning, _values(obj, fields, connection))
        obj.pk = cursor.fetchone()[0]
    obj._state.adding, obj._state.db = False, connection.alias
    return obj


def insert_many(objs: list[Model]) -> list[Model]:
    """INSERT rows of one model in one executemany; their pks are not read back."""
    if objs:
        sql, _, fields = _statement(type(objs[0]))
        connection = _connection()
        with connection.cursor() as cursor:
            cursor.executemany(sql, [_values(obj, fields, connection) for obj in objs])
    return objs


@cache
def _update_statement(model: type[Model], names: tuple[str, ...]) -> tuple[str, tuple]:
    meta, quote = model._meta, _connection().ops.quote_name
    fields = tuple(meta.get_field(name) for name in names)
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    return f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s", fields


def update(model: type[Model], pk, **values) -> int:
    """UPDATE the columns of one row by pk, values adapted by the model's fields; rows changed."""
    sql, fields = _update_statement(model, tuple(values))
    connection = _connection()
    params = [f.get_db_prep_save(value, connection) for f, value in zip(fields, values.values())]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, pk])
        return cursor.rowcount


@cache
def _lookup(model: type[Model], fields: tuple[str, ...], keys: tuple[str, ...]) -> str:
    meta, quote = model._meta, _connection().ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in fields)
    where = " AND ".join(f"{quote(meta.get_field(key).column)} = %s" if key[0] != "!" else
                         f"{quote(meta.get_field(key[1:]).column)} IS NULL" for key in keys)
    return f"SELECT {columns} FROM {quote(meta.db_table)} WHERE {where} ORDER BY {quote(meta.pk.column)} LIMIT 1"


def first(model: type[Model], fields: tuple[str, ...], *, null: tuple[str, ...] = (), **equals) -> Model | None:
    """The first row (by pk) whose columns equal `equals` and whose `null` columns are NULL, as an
    instance holding only `fields` (the rest are deferred). Only for fields whose stored value is
    already the Python value (text, integers): no database converters are applied."""
    attnames = tuple(f.attname for f in model._meta.concrete_fields if f.attname in fields)  # from_db's order
    if len(attnames) != len(fields):
        raise ValueError(f"not attribute names of {model.__name__}: {set(fields) - set(attnames)}")
    sql = _lookup(model, attnames, (*equals, *(f"!{name}" for name in null)))
    connection = _connection()
    with connection.cursor() as cursor:
        cursor.execute(sql, list(equals.values()))
        row = cursor.fetchone()
    return None if row is None else model.from_db(connection.alias, list(attnames), row)
