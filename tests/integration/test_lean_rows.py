"""B7/S1: the lean INSERTs and look-ups of the hot paths (orderdesk/core/rows.py) write and read
exactly what the ORM would."""

import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.db.transaction import TransactionManagementError
from django.utils.translation import gettext_lazy

from orderdesk import settings
from orderdesk.core import rows
from orderdesk.core.models import ApiKey
from orderdesk.orders.models import Counterparty, Order, OrderEvent, OrderItem, OrderSource


@pytest.fixture
def customer(db):
    return Counterparty.objects.create(name="Анна", email="anna@example.com")


def _order(customer, **extra) -> dict:
    """An order's fields, for rows.insert(Order, ...)."""
    moment = datetime(2026, 11, 23, 12, 30, 15, 123456, tzinfo=timezone.utc)
    return {"number": "R-1", "source": "site", "external_id": "ext-1", "customer": customer,
            "customer_name": "Анна", "status_id": "pending_approval", "items_total": Decimal("1234.50"),
            "total": Decimal("1534.50"), "delivery_price": Decimal("300.00"), "created_at": moment,
            "updated_at": moment, **extra}


def test_b07_an_inserted_row_reads_back_through_the_orm_field_by_field(customer):
    written = rows.insert(Order, **_order(customer, comment="позвонить заранее"))
    read = Order.objects.get(pk=written.pk)

    for field in Order._meta.concrete_fields:
        assert getattr(read, field.attname) == getattr(written, field.attname), field.attname
    assert read.total == Decimal("1534.50") and read.created_at.microsecond == 123456


# Values of every kind a field may be given, the usual and the odd: None, the empty string, a str
# enum, a lazy translation, Decimals that the ORM copies or refuses, a bool where an int goes, aware
# datetimes in and out of UTC and a naive one.
ODD_AND_USUAL = [
    None, "", "Анна", OrderSource.SITE, gettext_lazy("Cash"), 0, 7, 2**40, True, False, Decimal("1234.50"),
    Decimal("1E+2"), Decimal("-0.00"), Decimal("NaN"), Decimal("Infinity"), {"a": [1, "б"]},
    datetime(2026, 11, 23, 12, 30, 15, 123456, tzinfo=timezone.utc),
    datetime(2026, 11, 23, 15, 30, 15, tzinfo=timezone(timedelta(hours=3))), datetime(2026, 11, 23, 12, 30),
]


def _outcome(write):
    try:
        written = write()
    except Exception as exc:  # what the ORM refuses, the lean statements must refuse alike
        return type(exc), None
    return type(written), str(written)


@pytest.mark.filterwarnings("ignore:DateTimeField .* received a naive datetime")
def test_b07_every_field_of_every_model_is_written_as_the_orm_writes_it(db):
    """The lean statements pass a field's usual type on without the ORM's steps; for each field of
    each of orderdesk's models and each value above, what an INSERT and an UPDATE write is what the
    ORM writes, type and all, or they refuse the value as the ORM does."""
    connection, checked = rows._connection(), 0
    for model in apps.get_models():
        if not model.__module__.startswith("orderdesk."):
            continue
        for position, column in enumerate(rows._statement(model)[2]):
            field = column.field
            for value in ODD_AND_USUAL:
                obj = model()
                setattr(obj, field.attname, value)
                label = f"{model.__name__}.{field.name} = {value!r}"
                orm = _outcome(lambda: field.get_db_prep_save(field.pre_save(obj, add=True), connection))
                assert _outcome(lambda: rows._values(obj, connection)[position]) == orm, label
                orm_update = _outcome(lambda: field.get_db_prep_save(value, connection))
                assert _outcome(lambda: column.adapted(value, connection)) == orm_update, label
                checked += 1
    assert checked > 1000


def _sample(field, by_object: bool):
    """A value of the field's kind; a relation's as the related object or as its key."""
    if field.is_relation:
        key = _sample(field.target_field, False)
        return field.related_model(**{field.target_field.attname: key}) if by_object else key
    kind = field.get_internal_type()
    samples = {"DecimalField": Decimal("12.50"), "BooleanField": True, "JSONField": {"a": [1, "б"]},
               "DateTimeField": datetime(2026, 11, 23, 12, 30, tzinfo=timezone.utc), "UUIDField": uuid.UUID(int=7),
               "DateField": date(2026, 11, 23), "BinaryField": b"\x00\x01"}
    if kind in samples:
        return samples[kind]
    return 11 if "Integer" in kind or "AutoField" in kind else "значение"


def _as_made(obj) -> tuple:
    """Everything Model.__init__ leaves on an instance, in its order; a value from a callable
    default (now(), a new dict) by its type alone."""
    fresh = {f.attname for f in obj._meta.concrete_fields if f.has_default() and callable(f.default)}
    fields = [(name, type(value) if name in fresh else value) for name, value in obj.__dict__.items() if name != "_state"]
    return fields, obj._state.db, obj._state.adding, dict(obj._state.fields_cache)


@pytest.mark.parametrize("given", ["nothing", "every field", "relations as objects"])
def test_b07_a_new_instance_is_what_the_models_init_makes_for_every_model(given):
    checked = 0
    for model in apps.get_models():
        if not model.__module__.startswith("orderdesk."):
            continue
        fields = [f for f in model._meta.concrete_fields if given != "nothing"]

        def values():  # anew for each instance: a related object's state is changed by the assignment
            by_object = given == "relations as objects"
            return {f.name if f.is_relation and by_object else f.attname: _sample(f, by_object) for f in fields}

        made, again = rows.new(model, **values()), rows.new(model, **values())
        assert _as_made(made) == _as_made(model(**values())), model.__name__
        for field in model._meta.concrete_fields:  # a default made anew is not shared between rows
            if field.has_default() and callable(field.default) and field.attname not in values():
                value = getattr(made, field.attname)
                assert value is not getattr(again, field.attname) or isinstance(value, (int, str)), field
        checked += 1
    assert checked >= 20


def test_b07_the_hot_paths_models_are_made_without_their_init():
    from orderdesk.core.models import OutboxMessage
    from orderdesk.fiscal.models import Receipt, ReceiptLine
    from orderdesk.payments.models import Document, PaymentEntry

    for model in (Counterparty, Order, OrderItem, OrderEvent, OutboxMessage, Receipt,
                  ReceiptLine, Document, PaymentEntry):
        assert rows._blank(model) is not None, model.__name__


def test_b07_a_new_instance_is_left_to_the_models_init_for_what_it_alone_does(customer):
    from django.db.models.signals import post_init

    seen = []

    def listener(sender, instance, **kwargs):
        seen.append(instance.number)

    post_init.connect(listener, sender=Order)
    try:
        rows.new(Order, number="R-7")
    finally:
        post_init.disconnect(listener, sender=Order)
    assert seen == ["R-7"]
    with pytest.raises(TypeError, match="unexpected keyword"):
        rows.new(Order, numbr="R-7")
    both = rows.new(Order, customer=customer, customer_id=customer.pk + 1)  # as __init__: the key given last wins
    assert both.customer_id == Order(customer=customer, customer_id=customer.pk + 1).customer_id


def test_b07_an_event_payload_is_stored_as_json_and_reads_back_as_the_same_dict(customer):
    order = rows.insert(Order, **_order(customer))
    payload = {"total": "1534.50", "state": {"status": "pending_approval"}, "names": ["Чайник", None, 2]}

    event = rows.insert(OrderEvent, order=order, order_number=order.number, code="order.created",
                        actor_label="site:test", actor_role="site", payload=payload)

    assert OrderEvent.objects.get(pk=event.pk).payload == payload


def test_s01_many_items_are_written_in_one_statement_in_their_order(customer, django_assert_num_queries):
    order = rows.insert(Order, **_order(customer))
    items = [OrderItem(order=order, position=n, name=f"Товар {n}", quantity=Decimal("1.500"), price=Decimal("10.00"),
                       amount=Decimal("15.00"), vat_rate="22") for n in range(1, 6)]

    with django_assert_num_queries(1):
        rows.insert_many(items)

    assert list(order.items.values_list("position", "quantity")) == [(n, Decimal("1.500")) for n in range(1, 6)]


def test_s01_an_order_of_more_items_than_one_statement_holds_is_written_in_several(
        customer, django_assert_num_queries, monkeypatch):
    monkeypatch.setattr(rows, "ROWS_PER_INSERT", 2)
    order = rows.insert(Order, **_order(customer))
    items = [OrderItem(order=order, position=n, name=f"Товар {n}", quantity=Decimal(n), price=Decimal("10.00"),
                       amount=Decimal(10 * n), vat_rate="22") for n in range(1, 6)]

    with django_assert_num_queries(3):
        rows.insert_many(items)

    assert list(order.items.values_list("position", "name", "amount").order_by("position")) == [
        (n, f"Товар {n}", Decimal(10 * n)) for n in range(1, 6)]


def test_b07_a_lean_statement_runs_on_the_drivers_cursor_unless_something_watches_the_statements(customer):
    """Unwatched, a statement skips Django's cursor wrapper; with an execute wrapper (or a debug
    cursor), it takes Django's way and is seen."""
    seen = []

    def watch(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    rows.insert(Order, **_order(customer))
    assert seen == []
    with connection.execute_wrapper(watch):
        rows.insert(Order, **_order(customer, number="R-2", external_id="ext-2"))
    assert len(seen) == 1 and seen[0].startswith('INSERT INTO "orders_order"')


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the connection is closed and made again
def test_b07_lean_statements_share_a_cursor_until_their_connection_is_made_again(customer):
    first = rows.insert(Order, **_order(customer))
    cursor = rows._lean_cursor(rows._connection())[0]
    assert rows.execute("UPDATE orders_order SET comment = %s WHERE id = %s", ["и снова", first.pk]) == ([], 1)
    assert rows._lean_cursor(rows._connection())[0] is cursor

    connection.close()
    assert rows.execute("SELECT comment FROM orders_order WHERE id = %s", [first.pk])[0] == [("и снова",)]
    assert rows._lean_cursor(rows._connection())[0] is not cursor


def test_b07_postgresql_prepares_a_statement_that_runs_again_and_again(customer):
    """The hot statements are parsed and planned once per connection (settings.PREPARE_THRESHOLD):
    PostgreSQL lists the lean read among the connection's prepared statements."""
    if connection.vendor != "postgresql":
        pytest.skip("statements are prepared by psycopg for PostgreSQL (this test runs in the PostgreSQL pass)")
    sql = "SELECT number FROM orders_order WHERE customer_id = %s"
    for _ in range(settings.PREPARE_THRESHOLD + 1):
        rows.execute(sql, [customer.pk])

    prepared, _count = rows.execute("SELECT statement FROM pg_prepared_statements", [])
    assert "SELECT number FROM orders_order WHERE customer_id = $1" in [statement for (statement,) in prepared]


def test_b07_placeholders_are_numbered_as_postgresql_writes_them_and_a_doubled_percent_is_one():
    sql = "UPDATE t SET a = %s WHERE b LIKE '%%x' AND c IN (%s, %s)"
    assert rows.numbered_placeholders(sql) == "UPDATE t SET a = $1 WHERE b LIKE '%x' AND c IN ($2, $3)"


def test_b07_a_lean_statement_takes_its_values_in_order_and_a_doubled_percent_as_one(customer):
    assert rows.execute("SELECT %s || '%%' || %s", ["50", "!"])[0] == [("50%!",)]


def test_b07_on_postgresql_a_lean_statement_of_many_values_goes_as_written(customer):
    """psycopg's own cursor reads the %s of a statement of more than 50 values anew on every run;
    the lean statements run on its raw cursor with $1, $2 …: six items, 66 values, in one
    statement, read back as the ORM reads them."""
    if connection.vendor != "postgresql":
        pytest.skip("the raw cursor is PostgreSQL's (this test runs in the PostgreSQL pass)")
    from psycopg import RawCursor

    order = rows.insert(Order, **_order(customer))
    rows.insert_many([OrderItem(order=order, position=n, name=f"Товар {n}", quantity=Decimal(n),
                                price=Decimal("10.00"), amount=Decimal(10 * n), vat_rate="22") for n in range(1, 7)])

    assert isinstance(rows._lean_cursor(rows._connection())[0], RawCursor)
    assert list(order.items.values_list("position", "name", "amount").order_by("position")) == [
        (n, f"Товар {n}", Decimal(10 * n)) for n in range(1, 7)]


def test_b07_on_postgresql_without_server_side_binding_lean_statements_keep_djangos_cursor(customer, monkeypatch):
    """DB_SERVER_SIDE_BINDING=0 (a pooler that keeps no prepared statements): the values are bound
    by the client, as for every other statement."""
    if connection.vendor != "postgresql":
        pytest.skip("server-side binding is PostgreSQL's (this test runs in the PostgreSQL pass)")
    from psycopg import RawCursor

    wrapper = rows._connection()
    monkeypatch.setitem(wrapper.settings_dict["OPTIONS"], "server_side_binding", False)
    wrapper.__dict__.pop("_lean_cursor", None)

    assert rows.execute("SELECT %s || '%%'", ["50"])[0] == [("50%",)]
    cursor, numbered = rows._lean_cursor(wrapper)
    assert not numbered and not isinstance(cursor, RawCursor)
    wrapper.__dict__.pop("_lean_cursor")


def test_b07_a_lean_statement_that_breaks_a_constraint_raises_djangos_integrity_error(customer):
    rows.insert(Order, **_order(customer))

    with pytest.raises(IntegrityError), transaction.atomic():  # place_order's race with a twin relies on it
        rows.insert(Order, **_order(customer, number="R-2"))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # commits of its own
def test_b07_a_lean_statement_that_fails_leaves_no_statement_running_and_the_next_transaction_commits(customer):
    cursor = rows._lean_cursor(rows._connection())[0]
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.execute("INSERT INTO orders_order (number) VALUES (%s) RETURNING id", [None])

    assert rows._lean_cursor(rows._connection())[0] is not cursor
    with transaction.atomic():
        rows.insert(Order, **_order(customer, number="R-9"))
    assert Order.objects.filter(number="R-9").exists()


def test_b07_a_transaction_marked_for_rollback_refuses_lean_statements(customer):
    with transaction.atomic():
        transaction.set_rollback(True)
        with pytest.raises(TransactionManagementError):
            rows.execute("SELECT 1", [])


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the statuses of the migrations stay
def test_b07_a_lean_write_outside_a_transaction_passes_the_sqlite_writer_gate(monkeypatch):
    if connection.vendor != "sqlite":
        pytest.skip("the writer gate is SQLite's: PostgreSQL locks rows itself")
    customer = Counterparty.objects.create(name="Анна")
    order = rows.insert(Order, **_order(customer))
    held = []
    gate = type(connection.gate)
    original = gate.acquire
    monkeypatch.setattr(gate, "acquire", lambda self, timeout: held.append(timeout) or original(self, timeout))

    assert rows.update(Order, order.pk, comment="позвонить") == 1
    rows.execute('SELECT "comment" FROM "orders_order"', [])

    assert len(held) == 1  # the write took the gate, the read did not
    assert Order.objects.get(pk=order.pk).comment == "позвонить"


def test_b09_a_live_key_is_found_by_its_hash_and_a_revoked_one_is_not(db, django_assert_num_queries):
    live, key = ApiKey.issue(name="site", role="site")
    ApiKey.issue(name="other", role="site")

    with django_assert_num_queries(1):
        found = ApiKey.live(key)
    assert (found.pk, found.name, found.role) == (live.pk, "site", "site")
    assert ApiKey.live(key + "x") is None

    ApiKey.objects.filter(pk=live.pk).update(revoked_at=datetime.now(timezone.utc))
    assert ApiKey.live(key) is None


def test_b07_a_lean_update_changes_only_the_named_columns_of_that_row(customer):
    first = rows.insert(Order, **_order(customer))
    second = rows.insert(Order, **_order(customer, number="R-2", external_id="ext-2"))
    moment = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)

    changed = rows.update(Order, first.pk, total=Decimal("99.90"), updated_at=moment, comment="")

    assert changed == 1
    first_read, second_read = Order.objects.get(pk=first.pk), Order.objects.get(pk=second.pk)
    assert (first_read.total, first_read.updated_at, first_read.items_total) == (Decimal("99.90"), moment, Decimal("1234.50"))
    assert second_read.total == Decimal("1534.50")
    assert rows.update(Order, 10**9, total=Decimal("1.00")) == 0


# ---- prepared reads: compiled once, then run with new values ----

ORDER_WITH_PARTIES = rows.Prepared(lambda number: Order.objects.select_related("customer", "status")
                                   .filter(number=number), number=str)


def _two_orders(customer):
    first = rows.insert(Order, **_order(customer, comment="первый"))
    return first, rows.insert(Order, **_order(customer, number="R-2", external_id="ext-2", total=Decimal("0.10")))


def test_b07_rows_of_many_pks_are_updated_alike_in_one_statement_and_counted_up(customer, django_assert_num_queries):
    orders = [rows.insert(Order, **_order(customer, number=f"R-{n}", external_id=f"ext-{n}")) for n in range(4)]
    picked = [orders[0].pk, orders[2].pk, orders[3].pk]

    with django_assert_num_queries(1):
        assert rows.update_rows(Order, picked, count_up=("version",), comment="вместе") == 3

    assert dict(Order.objects.values_list("pk", "comment")) == {
        orders[0].pk: "вместе", orders[1].pk: "", orders[2].pk: "вместе", orders[3].pk: "вместе"}
    assert dict(Order.objects.values_list("pk", "version")) == {
        orders[0].pk: 2, orders[1].pk: 1, orders[2].pk: 2, orders[3].pk: 2}


def test_b07_rows_beyond_one_statement_are_updated_in_several(customer, monkeypatch, django_assert_num_queries):
    monkeypatch.setattr(rows, "PKS_PER_UPDATE", 2)
    orders = [rows.insert(Order, **_order(customer, number=f"R-{n}", external_id=f"ext-{n}")) for n in range(5)]

    with django_assert_num_queries(3):
        assert rows.update_rows(Order, [o.pk for o in orders], comment="частями") == 5
    assert set(Order.objects.values_list("comment", flat=True)) == {"частями"}


def test_b07_a_prepared_read_makes_the_instances_the_orm_makes_with_their_select_related_objects(customer):
    first, second = _two_orders(customer)

    for written in (first, second):
        prepared = ORDER_WITH_PARTIES.first(number=written.number)
        orm = Order.objects.select_related("customer", "status").get(number=written.number)
        for field in Order._meta.concrete_fields:
            assert getattr(prepared, field.attname) == getattr(orm, field.attname), field.attname
        assert type(prepared.total) is Decimal and prepared.created_at.tzinfo is not None
        assert (prepared.customer.name, prepared.status.name_ru) == ("Анна", orm.status.name_ru)
    assert ORDER_WITH_PARTIES.first(number="R-404") is None


def test_b07_a_prepared_instance_saves_defers_and_compares_as_the_orms_does(customer):
    from orderdesk.orders.models import StatusDefinition

    first, _second = _two_orders(customer)
    prepared = ORDER_WITH_PARTIES.first(number=first.number)
    assert (prepared._state.adding, prepared._state.db) == (False, "default")
    assert prepared == Order.objects.get(pk=first.pk) and prepared.get_deferred_fields() == set()
    prepared.comment = "перезвонить"
    prepared.save()  # an UPDATE of the row read, not a second order
    assert list(Order.objects.values_list("number", "comment").order_by("number")) == [
        ("R-1", "перезвонить"), ("R-2", "")]

    named = StatusDefinition.named("agreed")  # read with only() some columns
    orm = StatusDefinition.objects.only("code", "name_ru", "name_en", "hands_over_goods").get(code="agreed")
    assert named.get_deferred_fields() == orm.get_deferred_fields() != set()
    assert named.is_final == StatusDefinition.objects.get(code="agreed").is_final  # a deferred column, loaded


def test_b07_a_prepared_read_makes_instances_through_from_db_while_init_signals_are_listened_to(customer):
    from django.db.models.signals import post_init

    first, _second = _two_orders(customer)
    seen = []

    def listener(sender, instance, **kwargs):
        seen.append(instance.number)

    post_init.connect(listener, sender=Order)
    try:
        prepared = ORDER_WITH_PARTIES.first(number=first.number)
    finally:
        post_init.disconnect(listener, sender=Order)
    assert seen == ["R-1"] and prepared.number == "R-1"


def test_b07_a_prepared_read_is_compiled_once_per_connection(customer, django_assert_num_queries):
    from unittest import mock

    from django.db.models.sql.compiler import SQLCompiler

    first, second = _two_orders(customer)
    ledger = rows.Prepared(lambda order_id: Order.objects.filter(pk=order_id).values_list("number", "total"),
                           order_id=int)
    assert ledger.values(order_id=first.pk) == [("R-1", Decimal("1534.50"))]
    assert (ledger.scalar(order_id=first.pk), ledger.scalar("none", order_id=10**6)) == ("R-1", "none")

    with mock.patch.object(SQLCompiler, "as_sql", side_effect=AssertionError("compiled again")):
        with django_assert_num_queries(1):
            assert ledger.values(order_id=second.pk) == [("R-2", Decimal("0.10"))]


ORDERS_BY_ID = rows.PreparedIn(lambda ids, source: Order.objects.select_related("customer")
                                .filter(pk__in=ids, source=source).order_by("-pk"), source=str)


def test_b07_a_read_by_a_list_of_ids_gives_what_the_orm_gives_prepared_once_for_each_count(customer, monkeypatch):
    from unittest import mock

    from django.db.models.sql.compiler import SQLCompiler

    first, second = _two_orders(customer)
    third = rows.insert(Order, **_order(customer, number="R-3", external_id="ext-3"))
    rows.update(Order, second.pk, source="manager")
    orm = Order.objects.select_related("customer").filter(pk__in=[first.pk, third.pk], source="site").order_by("-pk")

    found = ORDERS_BY_ID.all([first.pk, third.pk, first.pk, 10**6], source="site")  # an id twice, one of no order

    assert [(o.pk, o.number, o.customer.name) for o in found] == [(o.pk, o.number, o.customer.name) for o in orm]
    assert ORDERS_BY_ID.by_pk([second.pk], source="site") == {} and ORDERS_BY_ID.all([], source="site") == []
    with mock.patch.object(SQLCompiler, "as_sql", side_effect=AssertionError("compiled again")):
        assert [o.number for o in ORDERS_BY_ID.all([second.pk, third.pk, first.pk], source="site")] == ["R-3", "R-1"]
    monkeypatch.setattr(ORDERS_BY_ID, "MAX_IDS", 2)  # beyond it, the ORM's own query
    assert ORDERS_BY_ID.by_pk([first.pk, second.pk, third.pk], source="site").keys() == {first.pk, third.pk}


def test_b07_a_read_by_many_ids_with_a_moment_takes_none_and_ids_beyond_any_as_no_row(customer):
    """Sixty ids and more beside a datetime (a relay's batch); None and an integer beyond any id
    match no row and leave the others found, as in the ORM's IN."""
    moment = datetime(2026, 11, 23, 12, 30, 15, 123456, tzinfo=timezone.utc)
    recent = rows.PreparedIn(lambda ids, since: Order.objects.filter(pk__in=ids, created_at__gte=since), since=datetime)
    first, second = _two_orders(customer)
    ids = [first.pk, None, 2**70, *range(10**6, 10**6 + 70), second.pk]

    assert {o.pk for o in recent.all(ids, since=moment)} == {first.pk, second.pk}
    assert recent.all(ids, since=moment + timedelta(seconds=1)) == []


def test_b07_a_prepared_read_takes_an_integer_beyond_any_id_as_no_row_as_the_orm_does(customer):
    by_id = rows.Prepared(lambda order_id: Order.objects.filter(pk=order_id), order_id=int)
    assert by_id.all(order_id=10**30) == [] == list(Order.objects.filter(pk=10**30))
    assert by_id.all(order_id="7") == []  # ids arriving as text are compared as numbers


@pytest.mark.parametrize("build", [
    lambda name: Order.objects.filter(customer_name__icontains=name),
    lambda name: Order.objects.filter(Q(customer_name=name) | Q(comment__icontains=name)),
], ids=["transformed", "as it is and transformed"])
def test_b07_a_lookup_that_transforms_its_value_cannot_be_prepared(customer, build):
    with pytest.raises(ValueError, match="not compared as it is"):
        rows.Prepared(build, name=str).all(name="анна")


@pytest.mark.parametrize("build", [
    lambda order_id: Order.objects.filter(pk=order_id).prefetch_related("items"),
    lambda order_id: Order.objects.filter(pk=order_id).annotate(lines=Count("items")),
    lambda order_id: Order.objects.filter(pk=order_id).values_list("pk", flat=True),
    lambda order_id: Order.objects.filter(pk=order_id).values("pk"),
    lambda order_id: Order.objects.filter(pk=order_id).order_by("customer__name").distinct(),
], ids=["prefetch", "annotation", "flat values", "dicts", "distinct with foreign ordering"])
def test_b07_a_queryset_whose_results_the_orm_shapes_further_cannot_be_prepared(customer, build):
    with pytest.raises(ValueError, match="cannot be prepared"):
        rows.Prepared(build, order_id=int).all(order_id=1)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the statuses of the migrations stay
def test_b07_a_prepared_locking_read_outside_a_transaction_is_refused(customer):
    from django.db import transaction

    locking = rows.Prepared(lambda order_id: Order.objects.select_for_update().filter(pk=order_id), order_id=int)
    order = rows.insert(Order, **_order(customer))
    with transaction.atomic():
        assert [o.pk for o in locking.all(order_id=order.pk)] == [order.pk]
    with pytest.raises(transaction.TransactionManagementError):
        locking.all(order_id=order.pk)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_b07_a_lock_alone_runs_its_statement_only_where_rows_can_be_locked(customer):
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    locking = rows.Prepared(lambda order_id: Order.objects.select_for_update(no_key=True).filter(pk=order_id)
                            .values_list("pk"), order_id=int)
    order = rows.insert(Order, **_order(customer))
    with transaction.atomic(), CaptureQueriesContext(connection) as ran:
        locking.lock(order_id=order.pk)
    statements = [q["sql"] for q in ran.captured_queries if "orders_order" in q["sql"]]
    if connection.features.has_select_for_update:
        assert len(statements) == 1 and "FOR NO KEY UPDATE" in statements[0]
    else:  # SQLite: the writer gate, taken by the transaction, is the lock
        assert statements == []
    with pytest.raises(transaction.TransactionManagementError):
        locking.lock(order_id=order.pk)


def test_b07_related_objects_come_from_the_prefetch_when_there_is_one(customer, django_assert_num_queries):
    order = rows.insert(Order, **_order(customer))
    rows.insert_many([OrderItem(order=order, position=n, name=f"Товар {n}", quantity=Decimal("2"),
                                price=Decimal("5.00"), amount=Decimal("10.00"), vat_rate="22") for n in (2, 1)])
    items = rows.Prepared(lambda order_id: OrderItem.objects.filter(order_id=order_id), order_id=int)

    with django_assert_num_queries(1):
        read = rows.related(order, "items", items, order_id=order.pk)
        assert {item.order is order for item in read} == {True}  # the parent, as prefetch leaves it
    assert [(i.position, i.quantity) for i in read] == [(1, Decimal("2.000")), (2, Decimal("2.000"))]

    rows.attach(order, "items", read)
    with django_assert_num_queries(0):
        assert rows.related(order, "items", items, order_id=order.pk) == read == list(order.items.all())
