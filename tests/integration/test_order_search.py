"""S2: the order list's text search reads a trigram index (SQLite: an FTS5 table kept by triggers;
PostgreSQL: pg_trgm's GIN index) and finds exactly the orders the search over every row found."""

import importlib
import random
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orderdesk.core import rows
from orderdesk.orders import rules, services
from orderdesk.orders.models import Counterparty, Order
from orderdesk.orders.schemas import OrderIn, OrderListFilters
from tests.conftest import committed_db, order_body

ORDERS = "/api/v1/orders"
MIGRATION = importlib.import_module("orderdesk.orders.migrations.0004_order_search_trigram_index")

BUYERS = [  # (name, e-mail, phone): Cyrillic, Latin, and the characters of FTS5 and LIKE syntax
    ("Иван Петров", "ivan.petrov@example.com", "+7 912 345-67-89"),
    ("Анна Смирнова", "anna@example.org", "+7 999 000-11-22"),
    ("ЁЛКИНА Анастасия", None, "8 (916) 111-22-33"),
    ("Пётр Иванович Сидоров", "p.sidorov@example.ru", None),
    ("John O'Smith", "JOHN@EXAMPLE.COM", "+44 20 7946 0958"),
    ('ООО "Ромашка"', "romashka@example.ru", "+7 495 123-45-67"),
    ("Скидка 100% Зайцев", "zaitsev@example.ru", None),
    ("Иван_Петров", "ivan_p@example.ru", None),
    ("AND OR NOT", "logic@example.com", None),
    ("NEAR(Орлов, 5)", "orlov@example.com", None),
    ("Звезда* ^Кот {search_text}: x", "star@example.com", None),
    ("Back\\slash", "slash@example.com", None),
    ("Straße Müller", "strasse@example.de", None),
    ("İlker Çelik, ﬁnans", "ilker@example.com.tr", None),  # folded, these grow a character
]
SYNTAX = ['"', '""', '"""', "*", "a*", "AND", "OR", "NOT", "NEAR(", "NEAR(Орлов, 5)", "%", "_", "%%", "_x_",
          "100%", "^Кот", "^кот", "search_text:иван", "{search_text}: x", "(", ")", "-иван", "+", ":", "'",
          "\\", "\\%", "иван OR петров", '"иван"', "O'Smith", 'ООО "Ромашка"', '"Ромашка" OR "Зайцев"']


@pytest.fixture
def place(site_actor):
    counter = iter(range(1, 100_000))

    def make(name: str, email: str | None = None, phone: str | None = "+7 912 345-67-89") -> Order:
        n = next(counter)
        body = order_body(f"search-{n}", email=email or f"buyer{n}@example.com")
        body["customer"].update(name=name, phone=phone)
        return services.place_order(site_actor, OrderIn(**body)).order

    return make


@pytest.fixture
def manager_actor(actor_of):
    return actor_of("manager")


def unindexed(text: str) -> Q:
    """The search as it was before the index, a LIKE over every order: what it must still find."""
    match = Q(number=text) | Q(search_text__contains=rules.search_needle(text))
    if (phone := rules.normalize_phone(text)) is not None:
        match |= Q(customer_phone=phone)
    elif sum(c.isdigit() for c in text) >= 4:
        match |= Q(customer_phone__contains="".join(c for c in text if c.isdigit()))
    return match


def expected(q: str) -> list[int]:
    orders = Order.objects.filter(deletion_mark=False).filter(unindexed(q))
    return list(orders.order_by("-created_at", "-pk").values_list("pk", flat=True))


def found(actor, limit: int = 200, **params) -> list[int]:
    """Every order the list gives for the filters, page after page."""
    walked, cursor = [], None
    while True:
        page, cursor = services.list_orders(actor, OrderListFilters(**params, limit=limit, cursor=cursor))
        walked += [o.pk for o in page]
        if cursor is None:
            return walked


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [o["id"] for o in response.json()["results"]]


def queries_from(orders: list[Order], seed: int) -> list[str]:
    """Pieces of the orders' texts as a manager would type them: any length, any case."""
    rnd, queries = random.Random(seed), []
    for order in orders:
        text = order.search_text
        for _ in range(6):
            length = rnd.randint(1, 8)
            start = rnd.randrange(max(len(text) - length, 0) + 1)
            piece = text[start:start + length]
            queries += [piece, piece.upper()]
        queries += [order.number, order.customer_name, order.customer_phone[-7:]]
    return queries


# ---- what it finds ----


def test_s02_text_search_finds_a_name_part_case_insensitively_in_cyrillic(manager, place):
    elkina = place("ЁЛКИНА Анастасия")
    petr = place("Пётр Иванович Сидоров")
    place("Елкин Анатолий")  # е is not ё

    assert ids(manager.get(ORDERS, {"q": "ёлкина"})) == [elkina.pk]
    assert ids(manager.get(ORDERS, {"q": "Ёлкина анаСТАСИЯ"})) == [elkina.pk]
    assert ids(manager.get(ORDERS, {"q": "ИВАНОВИЧ"})) == [petr.pk]
    assert ids(manager.get(ORDERS, {"q": "ётр ив"})) == [petr.pk]
    assert ids(manager.get(ORDERS, {"q": "Анаст"})) == [elkina.pk]


@pytest.mark.parametrize("q", SYNTAX)
def test_s02_text_search_treats_fts_syntax_as_plain_text(manager, place, q):
    for name, email, phone in BUYERS:
        place(name, email, phone)

    response = manager.get(ORDERS, {"q": q, "limit": 200})

    assert ids(response) == expected(OrderListFilters(q=q).q)


def test_s02_text_search_treats_like_wildcards_as_plain_text(manager, place):
    discount = place("Скидка 100% Зайцев")
    underscored = place("Иван_Петров")
    place("Скидка 1000 Зайцев")
    place("Иван Петров")

    assert ids(manager.get(ORDERS, {"q": "100%"})) == [discount.pk]
    assert ids(manager.get(ORDERS, {"q": "н_п"})) == [underscored.pk]
    assert ids(manager.get(ORDERS, {"q": "%"})) == [discount.pk]
    assert ids(manager.get(ORDERS, {"q": "_"})) == [underscored.pk]


@pytest.mark.parametrize("max_hits", [2000, 1], ids=["through-the-index", "walking-the-list"])
def test_s02_text_search_finds_exactly_what_the_search_over_every_order_found(
        manager_actor, place, monkeypatch, max_hits):
    """Both ways the search can go: through the index, and (a needle in more orders than the index
    is worth) along the list; pieces of every text, short ones that the trigrams cannot take,
    numbers, phones written any way, LIKE and FTS5 syntax."""
    monkeypatch.setattr(services, "SEARCH_INDEX_MAX_HITS", max_hits)
    orders = [place(name, email, phone) for name, email, phone in BUYERS]
    services.set_removal_mark(manager_actor, orders[1].pk, True)
    phones = ["+79123456789", "8 (912) 345-67-89", "9123456789", "345-67-89", "4567", "0958", "+442079460958"]

    for q in queries_from(orders, seed=2) + SYNTAX + phones + ["нет такого", "00", orders[0].number[-4:]]:
        q = OrderListFilters(q=q).q
        if q:
            assert found(manager_actor, q=q) == expected(q), q


def test_s02_text_search_combines_with_the_filters_and_the_cursor_newest_first(manager_actor, place):
    petrovs = [place(f"Иван Петров {n}") for n in range(7)]
    place("Анна Смирнова")
    for order in petrovs[::2]:
        services.set_status(manager_actor, order.pk, "agreed")
    tomorrow = timezone.now() + timedelta(days=1)
    Order.objects.filter(pk=petrovs[2].pk).update(created_at=tomorrow)

    agreed = [petrovs[2].pk, petrovs[6].pk, petrovs[4].pk, petrovs[0].pk]
    assert found(manager_actor, limit=3, q="петров", status="agreed") == agreed
    assert found(manager_actor, limit=2, q="ПЕТРОВ") == expected("ПЕТРОВ") == [petrovs[2].pk] + [
        o.pk for o in reversed(petrovs) if o != petrovs[2]]
    assert found(manager_actor, limit=2, q="петров", created_from=tomorrow) == [petrovs[2].pk]


# ---- the index ----


@pytest.fixture
def many_orders(db):
    """3,000 orders besides the test's own, and the planner's statistics of them."""
    buyer = Counterparty.objects.create(name="Покупатель", email="buyer@example.com")
    now = timezone.now() - timedelta(days=30)
    Order.objects.bulk_create([
        Order(number=f"B-{i}", source="manager", customer=buyer, customer_name=f"Покупатель {i}",
              customer_phone=f"+7495555{i:04d}", status_id="pending_approval", created_at=now + timedelta(minutes=i),
              search_text=rules.search_text(f"B-{i}", f"Покупатель {i}", f"buyer{i}@example.com", f"+7495555{i:04d}"))
        for i in range(3000)
    ], batch_size=500)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("ANALYZE")
        else:  # and what autovacuum does: new rows wait in the GIN index's pending list until then
            cursor.execute("ANALYZE orders_order")
            cursor.execute("SELECT gin_clean_pending_list('order_search_trgm_idx')")


def plan(sql: str) -> str:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            return "\n".join(row[3] for row in cursor.fetchall())
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize("q", ["Шереметьев", "+7 912 345-67-89", "345-67-89", "number"])
def test_s02_text_search_reads_the_trigram_index_not_every_order(manager_actor, place, many_orders, q):
    wanted = place("Евдокия Шереметьева", phone="+7 912 345-67-89")
    q = wanted.number if q == "number" else q

    with CaptureQueriesContext(connection) as run:
        page, _ = services.list_orders(manager_actor, OrderListFilters(q=q))

    assert [o.pk for o in page] == [wanted.pk]
    sqls = [query["sql"] for query in run.captured_queries if "orders_order" in query["sql"]]
    if connection.vendor == "sqlite":
        lookup, listing = sqls
        assert "VIRTUAL TABLE INDEX" in plan(lookup) and "orders_order_search" in plan(lookup)
        assert "SEARCH orders_order USING INTEGER PRIMARY KEY" in plan(listing), plan(listing)
        assert "SCAN orders_order" not in plan(listing), plan(listing)
    else:
        (listing,) = sqls
        assert "order_search_trgm_idx" in plan(listing), plan(listing)
        assert "Index Scan Backward" not in plan(listing), plan(listing)


def search_index_is_sound() -> None:
    """SQLite: FTS5 checks its index against orders_order, the content it indexed."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO orders_order_search(orders_order_search, rank) VALUES ('integrity-check', 1)")


def test_s02_the_search_index_follows_every_write_to_an_order(manager_actor, place, many_orders):
    anna = place("Анна Смирнова")
    buyer = Counterparty.objects.create(name="Ольга", email="olga@example.com")
    moment = timezone.now()
    stamp = connection.ops.adapt_datetimefield_value(moment)
    raw = rows.insert(Order, number="R-1", source="manager", customer=buyer, customer_name="Ольга Волкова",
                      status_id="pending_approval", created_at=moment, updated_at=moment,
                      search_text=rules.search_text("R-1", "Ольга Волкова", "olga@example.com"))
    with connection.cursor() as cursor:  # as bench/run.py loads a shop's orders
        cursor.executemany(
            "INSERT INTO orders_order (number, source, intake_fingerprint, customer_name, customer_email, "
            "customer_phone, search_text, status_changed_at, payment_status, currency, items_total, delivery_price, "
            "total, paid_amount, delivery_method, delivery_address, comment, deletion_mark, is_quick, created_at, "
            "updated_at, version, customer_id, status_id) VALUES (%s, 'manager', '', %s, '', '', %s, %s, 'not_paid', "
            "'RUB', 0, 0, 0, 0, '', '', '', %s, %s, %s, %s, 1, %s, 'pending_approval')",
            [(f"X-{n}", "Фёдор Морозов", rules.search_text(f"X-{n}", "Фёдор Морозов"), stamp, False, False,
              stamp, stamp, buyer.pk) for n in range(3)])

    assert found(manager_actor, q="смирнова") == [anna.pk]
    assert found(manager_actor, q="волкова") == [raw.pk]
    assert len(found(manager_actor, q="фёдор морозов")) == 3

    Order.objects.filter(pk=anna.pk).update(
        search_text=rules.search_text(anna.number, "Анна Кузнецова", anna.customer_email, anna.customer_phone))
    Order.objects.filter(pk=raw.pk).update(total=100)  # search_text untouched
    services.set_status(manager_actor, raw.pk, "agreed")
    Order.objects.filter(customer_name="Фёдор Морозов").delete()

    assert found(manager_actor, q="смирнова") == []
    assert found(manager_actor, q="кузнецова") == [anna.pk]
    assert found(manager_actor, q="волкова") == [raw.pk]
    assert found(manager_actor, q="фёдор морозов") == []
    search_index_is_sound()


def search_index() -> list[str]:
    """The names of the search index's parts that exist in the database."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE name LIKE 'orders_order_search%' "
                           "AND type IN ('table', 'trigger') ORDER BY name")
        else:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname = 'order_search_trgm_idx'")
        return [row[0] for row in cursor.fetchall()]


@committed_db
def test_s02_the_search_index_migration_reverses_and_builds_the_index_of_the_orders_there_are(
        manager_actor, place):
    anna = place("Анна Смирнова")
    ivan = place("Иван Петров")
    built = search_index()

    call_command("migrate", "orders", "0003", verbosity=0)  # the exchange's later migrations go back with it
    assert search_index() == []
    with connection.cursor() as cursor:  # a change made while no index kept up (the model is ahead of 0003)
        cursor.execute("UPDATE orders_order SET search_text = %s WHERE id = %s",
                       [rules.search_text(ivan.number, "Иван Смирнов", ivan.customer_email), ivan.pk])
    call_command("migrate", verbosity=0)

    assert search_index() == built and built
    assert found(manager_actor, q="смирнов") == [ivan.pk, anna.pk]
    search_index_is_sound()


def test_s02_without_pg_trgm_the_migration_warns_and_the_search_still_works(manager_actor, place, caplog):
    if connection.vendor != "postgresql":
        pytest.skip("pg_trgm is PostgreSQL's (this test runs in the PostgreSQL pass)")
    anna = place("Анна Смирнова")
    with connection.cursor() as cursor:  # all undone with the test's transaction
        cursor.execute("DROP EXTENSION pg_trgm CASCADE")
        cursor.execute("CREATE ROLE orderdesk_no_extensions NOLOGIN")
        cursor.execute("SET ROLE orderdesk_no_extensions")  # may not create extensions in the database

    with connection.schema_editor(atomic=False) as editor:
        MIGRATION.create_index(None, editor)

    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")
    assert "pg_trgm" in caplog.text and "CREATE EXTENSION pg_trgm" in caplog.text
    assert "Поиск заказов будет работать без индекса" in caplog.text
    assert search_index() == []
    assert found(manager_actor, q="смирнова") == [anna.pk]


@pytest.mark.parametrize("field", ["q", "status", "cursor"])
def test_s02_a_nul_in_a_list_filter_is_a_field_error_not_a_500(manager, field):
    response = manager.get("/api/v1/orders", {field: "ab\x00cd"})

    assert response.status_code == 422, response.content
    assert field in response.json()["fields"]
