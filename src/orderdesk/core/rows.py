"""Lean INSERTs, UPDATEs and reads for the statements of the hot paths: the intake, payments and
status changes, a person's session, the event log, the outbox and the worker's receipt relay.

`Model.save()` compiles its INSERT anew on every call: about a millisecond of Python per row
here, spent while the transaction holds SQLite's only write lock. These build each model's
statement once and adapt the values with the model's own fields, so the rows are exactly
what the ORM would write. No signals are sent: nothing in orderdesk listens to them.
"""

import inspect
import itertools
import re
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache, lru_cache
from weakref import WeakKeyDictionary

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models import (NOT_PROVIDED, AutoField, BooleanField, CharField, DateTimeField, DecimalField, Field,
                              ForeignKey, IntegerField, Model, TextField)
from django.db.models.base import DEFERRED, ModelState
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query import ModelIterable, ValuesListIterable, get_related_populators
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init
from django.utils import timezone


def _connection():
    """The thread's connection itself, not the proxy: every field asks it for its adapter."""
    return connections[DEFAULT_DB_ALIAS]


def execute(sql: str, params, connection=None) -> tuple[list, int]:
    """Run one statement (in the caller's transaction, if there is one) on the driver's own
    cursor: its rows (none for a statement that returns none) and its rowcount. Django's cursor
    wrapper added 5 µs a statement here (its context manager, thread check, execute wrappers and
    attribute forwarding: 8.3 µs against 3.3); what it guarantees is kept: database errors come as
    Django's, a transaction that needs a rollback refuses more statements, and on SQLite the
    backend's cursor still puts a write made outside a transaction through the writer gate.
    Where something watches the statements (a debug cursor that logs them, an execute wrapper
    of a test) they take Django's way, so it sees them all."""
    connection = connection or _connection()
    if connection.queries_logged or connection.execute_wrappers:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return (cursor.fetchall() if cursor.description else []), cursor.rowcount
    connection.ensure_connection()
    connection.validate_thread_sharing()
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors:
        cursor, numbered = _lean_cursor(connection)
        try:
            cursor.execute(numbered_placeholders(sql) if numbered else sql, params)
            return (cursor.fetchall() if _returned_rows(cursor) else []), cursor.rowcount
        except BaseException:
            # A statement left unfinished would keep SQLite from committing: the cursor goes.
            del connection.__dict__["_lean_cursor"]
            cursor.close()
            raise


def _lean_cursor(connection) -> tuple:
    """The driver cursor these statements share, one per database connection (made again with
    the connection), and whether it takes PostgreSQL's numbered placeholders. psycopg spends
    7–20 µs making a cursor, with its own copy of the adapters. Each statement's rows are all
    fetched, so none is left running.

    Where PostgreSQL binds the parameters (server_side_binding) the cursor is psycopg's raw one:
    the statement goes as it is written, with $1, $2 … (numbered_placeholders, once per
    statement). psycopg's own cursor finds the %s of every statement it runs, and remembers
    what it found only for statements of at most 50 parameters: an order's five items, 55
    values, cost 240 µs of the client's CPU against 105 µs raw; a receipt's six lines are 66."""
    driver_connection = connection.connection
    kept = connection.__dict__.get("_lean_cursor")
    if kept is None or kept[0] is not driver_connection:
        numbered = (connection.vendor == "postgresql"
                    and connection.settings_dict["OPTIONS"].get("server_side_binding") is True)
        kept = connection.__dict__["_lean_cursor"] = (driver_connection, _new_cursor(connection, numbered), numbered)
    return kept[1], kept[2]


def _new_cursor(connection, raw: bool):
    """Django's cursor (its time zone set as Django sets it), of psycopg's raw class if `raw`."""
    if not raw:
        return connection.create_cursor()
    from psycopg import RawCursor

    driver_connection = connection.connection
    usual = driver_connection.cursor_factory
    driver_connection.cursor_factory = RawCursor
    try:
        return connection.create_cursor()
    finally:
        driver_connection.cursor_factory = usual


_PLACEHOLDER = re.compile(r"%[s%]")


@lru_cache(maxsize=4096)
def numbered_placeholders(sql: str) -> str:
    """A statement written for psycopg's cursor (%s for each value, %% for a percent sign) as
    PostgreSQL writes it: $1, $2 … and %."""
    numbers = itertools.count(1)
    return _PLACEHOLDER.sub(lambda found: "%" if found[0] == "%%" else f"${next(numbers)}", sql)


def _returned_rows(cursor) -> bool:
    """Whether the statement gave rows. psycopg's `description` makes an object for every column
    (15–20 µs for an order's row); its result's status says the same."""
    result = getattr(cursor, "pgresult", None)
    if result is not None:
        return result.status == _TUPLES_OK
    return cursor.description is not None


try:
    from psycopg.pq import ExecStatus
    _TUPLES_OK = ExecStatus.TUPLES_OK
except ImportError:  # SQLite alone
    _TUPLES_OK = None


_SAVE_STEPS = ("pre_save", "get_db_prep_save", "get_db_prep_value", "get_prep_value", "to_python")


def _steps_of(field, base: type) -> bool:
    """Whether `field` saves a value by `base`'s own steps (a subclass such as EmailField adds none)."""
    return isinstance(field, base) and all(getattr(type(field), step) is getattr(base, step) for step in _SAVE_STEPS)


def _verbatim_type(field, ops: type) -> type | None:
    """The type whose values `field` writes as they are on a backend with these operations: for a
    value of exactly this type, Django's steps (pre_save, get_db_prep_save, get_prep_value,
    to_python, the backend's adapter) give back the value itself or, for a Decimal, its copy.
    None: every value goes through the steps."""
    base_ops = BaseDatabaseOperations
    if isinstance(field, ForeignKey):
        keeps_ints = (type(field).get_db_prep_save is ForeignKey.get_db_prep_save
                      and _steps_of(field.target_field, AutoField)
                      and ops.validate_autopk_value is base_ops.validate_autopk_value)
        return int if keeps_ints else None
    if _steps_of(field, CharField) or _steps_of(field, TextField):
        return str
    if _steps_of(field, BooleanField):
        return bool
    if _steps_of(field, DecimalField) and ops.adapt_decimalfield_value is base_ops.adapt_decimalfield_value:
        return Decimal
    if _steps_of(field, IntegerField) and ops.adapt_integerfield_value is base_ops.adapt_integerfield_value:
        return int
    return None


@dataclass(frozen=True)
class _Column:
    """A field of a lean statement, and how its values are adapted: a value of the field's usual
    type skips the ORM's steps, which would hand it on unchanged (five calls a field, 50 µs for an
    order's row); an aware datetime goes straight to the backend's adapter."""
    field: Field
    verbatim: type | None
    aware_datetimes: bool  # a DateTimeField that keeps what it is given (no auto_now)
    plain: bool  # either of the above: its pre_save only reads the attribute, and None is written as None

    @classmethod
    def of(cls, field: Field) -> "_Column":
        verbatim = _verbatim_type(field, type(_connection().ops))
        aware_datetimes = _steps_of(field, DateTimeField) and not (field.auto_now or field.auto_now_add)
        return cls(field, verbatim, aware_datetimes, verbatim is not None or aware_datetimes)

    def adapted(self, value, connection):
        """`value` as the field's get_db_prep_save makes it."""
        kind = type(value)
        if self.plain and (value is None or kind is self.verbatim and (kind is not Decimal or value.is_finite())):
            return value
        if self.aware_datetimes and kind is datetime and value.tzinfo is not None:
            return connection.ops.adapt_datetimefield_value(value)
        return self.field.get_db_prep_save(value, connection)


@cache
def _statement(model: type[Model]) -> tuple[str, str, tuple[_Column, ...]]:
    meta = model._meta
    fields = tuple(f for f in meta.concrete_fields if not f.primary_key)
    quote = _connection().ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({placeholders})"
    return sql, f"{sql} RETURNING {quote(meta.pk.column)}", tuple(map(_Column.of, fields))


def _values(obj: Model, connection) -> list:
    """The instance's values for its INSERT, as the ORM would write them."""
    return [column.adapted(getattr(obj, column.field.attname) if column.plain
                           else column.field.pre_save(obj, add=True), connection)
            for column in _statement(type(obj))[2]]


@dataclass(frozen=True)
class _Blank:
    """A new instance's __dict__ as Model.__init__ fills it before it is given anything."""
    defaults: dict  # every field's attname, in field order, with its default (a placeholder if fresh)
    fresh: tuple[Field, ...]  # the fields whose default is made anew each time (a callable, a database default)
    names: frozenset[str]  # what Model.__init__ takes: every attname, and a relation's name
    relations: dict[str, Field]  # the relations, by name


def _fresh_default(field: Field) -> bool:
    return (field.has_default() and callable(field.default)) or field.db_default is not NOT_PROVIDED


@cache
def _blank(model: type[Model]) -> _Blank | None:
    """None for a model `new` must leave to Model.__init__."""
    if not plainly_made(model):
        return None
    fields = [f for f in model._meta.fields if f.column is not None and not f.generated]
    fresh = tuple(f for f in fields if _fresh_default(f))
    relations = {f.name: f for f in fields if f.is_relation}
    return _Blank({f.attname: None if f in fresh else f.get_default() for f in fields}, fresh,
                  frozenset({f.attname for f in fields} | relations.keys()), relations)


def new(model: type[Model], **values) -> Model:
    """`model(**values)`, made by filling the instance's __dict__ as Model.__init__ does: 5 µs
    against 7 for an order item, whose instances a payment or an intake makes a dozen of. A
    relation given as an object still goes through its descriptor (the object cached, its key
    copied, the routers asked). Anything else Model.__init__ would do more with goes to it: a model
    `plainly_made` refuses, listeners of the init signals, a name that is not a field (a property,
    a mistake), a relation given both ways, a deferred value."""
    blank = _blank(model)
    if (blank is None or not values.keys() <= blank.names
            or pre_init.has_listeners(model) or post_init.has_listeners(model)):
        return model(**values)
    obj = model.__new__(model)
    obj._state = ModelState()
    attrs = obj.__dict__
    attrs.update(blank.defaults)
    for field in blank.fresh:
        if field.attname not in values and field.name not in values:
            attrs[field.attname] = field.get_default()
    for name, value in values.items():
        relation = blank.relations.get(name)
        if value is DEFERRED or relation is not None and relation.attname in values:
            return model(**values)
        if relation is None:
            attrs[name] = value
        else:
            setattr(obj, name, value)
    return obj


def insert(model: type[Model], **values) -> Model:
    """INSERT one row made of `values` (as `model(**values)` would be) in the caller's transaction;
    the instance, with its pk."""
    obj = new(model, **values)
    returning = _statement(model)[1]
    connection = _connection()
    obj.pk = execute(returning, _values(obj, connection), connection)[0][0][0]
    obj._state.adding, obj._state.db = False, connection.alias
    return obj


# Rows in one INSERT: a thousand items of fourteen columns stay below SQLite's 32,766 parameters.
ROWS_PER_INSERT = 1000


@lru_cache(maxsize=256)
def _multi_row_statement(model: type[Model], count: int) -> str:
    sql, _, columns = _statement(model)
    row = f"({', '.join(['%s'] * len(columns))})"
    return f"{sql.partition(' VALUES ')[0]} VALUES {', '.join([row] * count)}"


def insert_many(objs: list[Model]) -> list[Model]:
    """INSERT rows of one model in one statement (a multi-row VALUES, not executemany: psycopg
    sends an executemany through its pipeline, whose Python loop cost more than the rows
    themselves); their pks are not read back."""
    if objs:
        model, connection = type(objs[0]), _connection()
        for start in range(0, len(objs), ROWS_PER_INSERT):
            chunk = objs[start:start + ROWS_PER_INSERT]
            execute(_multi_row_statement(model, len(chunk)),
                    [value for obj in chunk for value in _values(obj, connection)], connection)
    return objs


# Rows in one UPDATE by pks: far below either database's limit on parameters.
PKS_PER_UPDATE = 500


@cache
def _update_rows_statement(model: type[Model], names: tuple[str, ...], counted: tuple[str, ...],
                           count: int) -> tuple[str, tuple[_Column, ...]]:
    meta, quote = model._meta, _connection().ops.quote_name
    fields = tuple(meta.get_field(name) for name in names)
    assignments = [f"{quote(f.column)} = %s" for f in fields]
    assignments += [f"{quote(column)} = {quote(column)} + 1" for column in (meta.get_field(n).column for n in counted)]
    return (f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} "
            f"WHERE {quote(meta.pk.column)} IN ({', '.join(['%s'] * count)})", tuple(map(_Column.of, fields)))


def update_rows(model: type[Model], pks: list, *, count_up: tuple[str, ...] = (), **values) -> int:
    """UPDATE the rows of these pks alike: the named columns set to `values`, one added to each
    column of `count_up`; one statement for up to PKS_PER_UPDATE rows (prepared once for each
    number of rows). Rows changed."""
    connection, changed = _connection(), 0
    for start in range(0, len(pks), PKS_PER_UPDATE):
        chunk = pks[start:start + PKS_PER_UPDATE]
        sql, columns = _update_rows_statement(model, tuple(values), count_up, len(chunk))
        params = [column.adapted(value, connection) for column, value in zip(columns, values.values())]
        changed += execute(sql, [*params, *chunk], connection)[1]
    return changed


def update(model: type[Model], pk, **values) -> int:
    """UPDATE the columns of one row by pk, values adapted by the model's fields; rows changed."""
    return update_rows(model, [pk], **values)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    slots: list  # per parameter of the SQL: the name of the value it takes, or None (a constant)
    adapters: dict
    compiler: object
    converters: dict
    locks: bool
    model: type | None  # what a row makes (None: values() only)
    model_columns: slice | None  # where the model's own columns are in a row
    attnames: list
    populators: list  # one per select_related object
    plain: bool  # instances may be made by filling their __dict__ (plainly_made)


class Prepared:
    """An ORM read compiled once per connection and run with new values from then on.

    Building and compiling a queryset costs ~0.3 ms of Python each time, several times per
    request, and a locking read pays it while holding the write lock. `build` is called once
    with a stand-in value per parameter; every later run reuses its SQL and the compiler's
    columns, converters and select_related layout, so the instances are what the ORM would make.
    Parameters are ints and strs compared for equality (`pk=order_id`) and aware datetimes
    (`next_attempt_at__lte=now`). What the instances or rows could not be made as the ORM makes
    them is refused at the first run: a lookup that transforms its value (`__icontains`),
    annotations on instances, prefetch_related, flat or named values, extra ordering columns.
    """

    _STAND_IN = {int: lambda i: 1_987_650_000 + i, str: lambda i: f"\u2063prepared-{i}\u2063",
                 datetime: lambda i: datetime(1901, 2, 3, 4, 5, 0, 678901, tzinfo=UTC) + timedelta(seconds=i)}

    def __init__(self, build, **params: type):
        self.build, self.params = build, params

    @staticmethod
    def _adapter(kind: type, connection):
        if kind is datetime:
            return connection.ops.adapt_datetimefield_value
        return kind  # "7" is taken as 7, as the ORM takes it

    def _compile(self, connection) -> _Compiled:
        stand_ins = {name: self._STAND_IN[kind](i) for i, (name, kind) in enumerate(self.params.items())}
        adapters = {name: self._adapter(kind, connection) for name, kind in self.params.items()}
        queryset = self.build(**stand_ins)
        compiler = queryset.query.get_compiler(using=connection.alias)  # instances then know their database
        sql, params = compiler.as_sql()
        by_value = {adapters[name](value): name for name, value in stand_ins.items()}
        slots = [by_value.get(p) if isinstance(p, Hashable) else None for p in params]
        transformed = any(isinstance(p, str) and "\u2063prepared-" in p for p, slot in zip(params, slots) if slot is None)
        if set(slots) - {None} != set(stand_ins) or transformed:
            raise ValueError(f"{queryset.model.__name__}: a parameter is not compared as it is")
        if (queryset._iterable_class not in (ModelIterable, ValuesListIterable) or queryset._prefetch_related_lookups
                or queryset._known_related_objects or getattr(compiler, "has_extra_select", False)
                or (queryset._iterable_class is ModelIterable and compiler.annotation_col_map)):
            raise ValueError(f"{queryset.model.__name__}: this queryset's results cannot be prepared")
        select, info = compiler.select, compiler.klass_info
        converters = compiler.get_converters([column[0] for column in select[:compiler.col_count]])
        model, model_columns, attnames, populators = None, None, [], []
        if info is not None:
            model = info["model"]
            model_columns = slice(info["select_fields"][0], info["select_fields"][-1] + 1)
            attnames = [column[0].target.attname for column in select[model_columns]]
            populators = get_related_populators(info, select, connection.alias)
        return _Compiled(sql, tuple(params), slots, adapters, compiler, converters,
                         bool(queryset.query.select_for_update), model, model_columns, attnames, populators,
                         model is not None and plainly_made(model))

    def _compiled(self, connection) -> _Compiled:
        cache = connection.__dict__.setdefault("_orderdesk_prepared", WeakKeyDictionary())
        if (found := cache.get(self)) is None:
            found = cache[self] = self._compile(connection)
        return found

    def _rows(self, values: dict) -> tuple[list, _Compiled | None]:
        connection = _connection()
        compiled = self._compiled(connection)
        bound_values = {}
        for name, kind in self.params.items():
            value = values[name]
            if kind is int and _beyond_any_integer(value, connection):
                return [], compiled  # the ORM answers an out-of-range integer with no rows, as here
            if kind is datetime and timezone.is_naive(value):
                raise ValueError(f"{name}: a naive datetime")
            bound_values[name] = compiled.adapters[name](value)
        if compiled.locks:
            _refuse_outside_transaction(connection)
        bound = [p if slot is None else bound_values[slot] for p, slot in zip(compiled.params, compiled.slots)]
        fetched = execute(compiled.sql, bound, connection)[0]
        if compiled.converters:
            fetched = list(compiled.compiler.apply_converters(fetched, compiled.converters))
        return fetched, compiled

    def values(self, **values) -> list[tuple]:
        """The rows, as values_list() would give them."""
        return [tuple(row) for row in self._rows(values)[0]]

    def scalar(self, default=None, **values):
        """The first column of the first row, or `default` when there is no row."""
        fetched = self._rows(values)[0]
        return fetched[0][0] if fetched else default

    def all(self, **values) -> list[Model]:
        """The instances, with their select_related objects, as iterating the queryset would."""
        fetched, compiled = self._rows(values)
        model, alias, made = compiled.model, compiled.compiler.using, []
        plain = compiled.plain and not (pre_init.has_listeners(model) or post_init.has_listeners(model))
        for row in fetched:
            if plain:
                obj = model.__new__(model)
                obj.__dict__.update(zip(compiled.attnames, row[compiled.model_columns]))
                obj._state = state = ModelState()
                state.adding, state.db = False, alias
            else:
                obj = model.from_db(alias, compiled.attnames, row[compiled.model_columns])
            for populator in compiled.populators:
                populator.populate(row, obj)
            made.append(obj)
        return made

    def lock(self, **values) -> None:
        """Take this locking read's row locks in the caller's transaction, reading nothing. Where
        the database has no row locks (SQLite: its writer gate holds every other writer off until
        the transaction ends), the statement would lock nothing, and only the transaction is checked."""
        connection = _connection()
        if connection.features.has_select_for_update:
            self._rows(values)
        else:
            _refuse_outside_transaction(connection)

    def first(self, **values) -> Model | None:
        """The first instance in the query's own order (give it one, and a slice, where more than one
        row may match: unlike QuerySet.first(), nothing is added)."""
        found = self.all(**values)
        return found[0] if found else None


class PreparedIn:
    """A prepared read whose filter takes a list of ids (`pk__in=ids`): `build(ids, **values)` is
    prepared once for each number of ids it meets, up to MAX_IDS (a relay's batch, the few
    messages or receipts a poll finds: compiling the ORM's query cost more than reading their
    rows); a longer list is read by the ORM itself, whose compiling it outweighs."""

    MAX_IDS = 100

    def __init__(self, build, **params: type):
        self.build, self.params = build, params
        self._by_count: dict[int, Prepared] = {}

    def _prepared(self, count: int) -> Prepared:
        if (found := self._by_count.get(count)) is None:
            names = [f"id_{i}" for i in range(count)]

            def build(**values):
                return self.build([values[name] for name in names], **{name: values[name] for name in self.params})

            found = self._by_count[count] = Prepared(build, **dict.fromkeys(names, int), **self.params)
        return found

    def all(self, ids, **values) -> list[Model]:
        """The instances, as the ORM's queryset would give them. Each id is taken once, and None
        or an integer beyond any id (which no row can have) not at all, as the ORM's IN has it."""
        connection = _connection()
        ids = [pk for pk in dict.fromkeys(ids) if pk is not None and not _beyond_any_integer(pk, connection)]
        if not ids:
            return []
        if len(ids) > self.MAX_IDS:
            return list(self.build(ids, **values))
        return self._prepared(len(ids)).all(**{f"id_{i}": pk for i, pk in enumerate(ids)}, **values)

    def by_pk(self, ids, **values) -> dict:
        """The instances by pk, as QuerySet.in_bulk gives them."""
        return {obj.pk: obj for obj in self.all(ids, **values)}


def _beyond_any_integer(value, connection) -> bool:
    """Whether `value` lies beyond the database's largest integer column, so that no row holds it."""
    low, high = connection.ops.integer_field_range("BigIntegerField")
    return not low <= int(value) <= high


def _refuse_outside_transaction(connection) -> None:
    """A locking read outside a transaction locks nothing for long: refused on SQLite too, where
    the ORM lets it pass, so a mistake shows in either test run."""
    if connection.get_autocommit():
        raise transaction.TransactionManagementError("a locking read outside a transaction")


_PLAIN_FIELD_ACCESS = (DeferredAttribute, ForeignKeyDeferredAttribute)


def plainly_made(model: type[Model]) -> bool:
    """Whether an instance read from the database is made whole by putting its columns in its
    __dict__, with a fresh ModelState, as Model.__init__ does for plain fields (a third of the
    cost of from_db, which the reads of a status change or a payment run some thirty times).
    Not for a model with its own __init__ or from_db, or with a field that does more than keep
    its value (a file field's descriptor); one whose init signals have listeners is made by
    from_db at the time of the read (Prepared.all)."""
    return (model.__init__ is Model.__init__ and model.from_db.__func__ is Model.from_db.__func__
            and all(type(inspect.getattr_static(model, field.attname)) in _PLAIN_FIELD_ACCESS
                    for field in model._meta.concrete_fields))


def _link_back(obj: Model, relation: str, children: list[Model]) -> None:
    """Each child knows `obj` as its parent without a query, as after prefetch_related."""
    foreign_key = obj._meta.get_field(relation).field
    for child in children:
        foreign_key.set_cached_value(child, obj)


def related(obj: Model, relation: str, prepared: Prepared, **values) -> list[Model]:
    """`obj.<relation>.all()` if it was prefetched (or attached), else `prepared` run with `values`."""
    if relation in getattr(obj, "_prefetched_objects_cache", {}):
        return list(getattr(obj, relation).all())
    children = prepared.all(**values)
    _link_back(obj, relation, children)
    return children


def attach(obj: Model, relation: str, related: list[Model]) -> None:
    """Give `obj.<relation>.all()` these instances, as prefetch_related would have."""
    _link_back(obj, relation, related)
    queryset = getattr(obj, relation).all()
    queryset._result_cache, queryset._prefetch_done = related, True
    obj.__dict__.setdefault("_prefetched_objects_cache", {})[relation] = queryset
