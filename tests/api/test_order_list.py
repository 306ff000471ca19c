"""S2 through the HTTP API: the order list filters by status, payment status, date range and a text
search, hides orders marked for removal, and pages with a stable keyset cursor."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orderdesk.orders import services
from orderdesk.orders.models import Order
from orderdesk.orders.schemas import OrderIn
from tests.conftest import order_body

ORDERS = "/api/v1/orders"
MSK = ZoneInfo("Europe/Moscow")




@pytest.fixture
def manager_actor(actor_of):
    return actor_of("manager")


@pytest.fixture
def place(site_actor):
    """place(name=..., email=..., phone=...) → a new site order, placed through the service."""
    counter = iter(range(1, 100_000))

    def make(name: str = "Иван Петров", email: str | None = None, phone: str = "+7 912 345-67-89") -> Order:
        n = next(counter)
        body = order_body(f"list-{n}", email=email or f"buyer{n}@example.com")
        body["customer"].update(name=name, phone=phone)
        return services.place_order(site_actor, OrderIn(**body)).order

    return make


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [o["id"] for o in response.json()["results"]]


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"].strip()
    return body


# ---- filters ----


def test_s02_the_list_shows_newest_first(manager, place):
    a, b, c = place(), place(), place()

    assert ids(manager.get(ORDERS)) == [c.pk, b.pk, a.pk]


def test_s02_filter_by_status(manager, manager_actor, place):
    a, b, c = place(), place(), place()
    services.set_status(manager_actor, b.pk, "agreed")

    assert ids(manager.get(ORDERS, {"status": "agreed"})) == [b.pk]
    assert ids(manager.get(ORDERS, {"status": "pending_approval"})) == [c.pk, a.pk]
    assert ids(manager.get(ORDERS, {"status": "closed"})) == []


def test_s02_filter_by_payment_status(manager, manager_actor, place):
    a, b, c = place(), place(), place()
    Order.objects.filter(pk=b.pk).update(payment_status="partially_paid")
    Order.objects.filter(pk=c.pk).update(payment_status="paid")
    services.set_status(manager_actor, c.pk, "agreed")

    assert ids(manager.get(ORDERS, {"payment_status": "paid"})) == [c.pk]
    assert ids(manager.get(ORDERS, {"payment_status": "partially_paid"})) == [b.pk]
    assert ids(manager.get(ORDERS, {"payment_status": "not_paid"})) == [a.pk]
    assert ids(manager.get(ORDERS, {"payment_status": "paid", "status": "agreed"})) == [c.pk]
    assert ids(manager.get(ORDERS, {"payment_status": "paid", "status": "pending_approval"})) == []


def test_s02_an_unknown_payment_status_is_a_422(manager):
    body = assert_error(manager.get(ORDERS, {"payment_status": "half"}), 422, "validation_error")

    assert list(body["fields"]) == ["payment_status"]


def test_s02_filter_by_date_range_from_inclusive_to_exclusive(manager, place):
    march_1, march_2, march_3 = place(), place(), place()
    Order.objects.filter(pk=march_1.pk).update(created_at=datetime(2026, 3, 1, 23, 59, 59, tzinfo=MSK))
    Order.objects.filter(pk=march_2.pk).update(created_at=datetime(2026, 3, 2, 0, 0, tzinfo=MSK))
    Order.objects.filter(pk=march_3.pk).update(created_at=datetime(2026, 3, 3, 0, 0, tzinfo=MSK))

    one_day = {"created_from": "2026-03-02T00:00:00+03:00", "created_to": "2026-03-03T00:00:00+03:00"}
    assert ids(manager.get(ORDERS, one_day)) == [march_2.pk]
    assert ids(manager.get(ORDERS, {"created_from": "2026-03-02T00:00:00+03:00"})) == [march_3.pk, march_2.pk]
    assert ids(manager.get(ORDERS, {"created_to": "2026-03-02T00:00:00+03:00"})) == [march_1.pk]


def test_s02_date_range_in_another_time_zone_means_the_same_instant(manager, place):
    late_evening_msk, next_day = place(), place()
    Order.objects.filter(pk=late_evening_msk.pk).update(created_at=datetime(2026, 3, 1, 23, 30, tzinfo=MSK))
    Order.objects.filter(pk=next_day.pk).update(created_at=datetime(2026, 3, 2, 10, 0, tzinfo=MSK))

    # 2026-03-01 20:00 UTC is 23:00 in Moscow: the late-evening order is after it.
    assert ids(manager.get(ORDERS, {"created_from": "2026-03-01T20:00:00Z", "created_to": "2026-03-01T21:00:00Z"})) == [
        late_evening_msk.pk
    ]


@pytest.mark.parametrize("field", ["created_from", "created_to"])
def test_s02_a_date_without_time_zone_is_a_422(manager, field):
    body = assert_error(manager.get(ORDERS, {field: "2026-03-02T00:00:00"}), 422, "validation_error")

    assert list(body["fields"]) == [field]
    assert "+03:00" in body["fields"][field][0]  # tells how to write it


def test_s02_a_date_that_is_not_a_date_is_a_422(manager):
    body = assert_error(manager.get(ORDERS, {"created_from": "вчера"}), 422, "validation_error")

    assert list(body["fields"]) == ["created_from"]


# ---- text search ----


def test_s02_search_by_order_number(manager, place):
    place(), (wanted := place()), place()

    assert ids(manager.get(ORDERS, {"q": wanted.number})) == [wanted.pk]


def test_s02_search_by_customer_name_ignores_case(manager, place):
    smith = place(name="John Smith")
    place(name="Иван Петров")

    assert ids(manager.get(ORDERS, {"q": "smith"})) == [smith.pk]
    assert ids(manager.get(ORDERS, {"q": "JOHN S"})) == [smith.pk]


def test_s02_search_by_customer_name_ignores_case_in_cyrillic(manager, place):
    petrov = place(name="Иван Петров")
    place(name="Анна Смирнова")

    assert ids(manager.get(ORDERS, {"q": "Петров"})) == [petrov.pk]
    assert ids(manager.get(ORDERS, {"q": "петров"})) == [petrov.pk]
    assert ids(manager.get(ORDERS, {"q": "ИВАН ПЕТРОВ"})) == [petrov.pk]


@pytest.mark.parametrize("query", ["+79123456789", "8 (912) 345-67-89", "+7 912 345 67 89", "9123456789", "345-67-89"])
def test_s02_search_by_phone_written_any_way(manager, place, query):
    wanted = place(phone="+7 (912) 345-67-89")
    place(phone="+7 999 000-11-22")

    assert ids(manager.get(ORDERS, {"q": query})) == [wanted.pk]


def test_s02_search_by_email(manager, place):
    anna = place(email="anna.smirnova@example.com")
    place(email="ivan@example.org")

    assert ids(manager.get(ORDERS, {"q": "anna.smirnova@example.com"})) == [anna.pk]
    assert ids(manager.get(ORDERS, {"q": "Anna.Smirnova@Example.COM"})) == [anna.pk]
    assert ids(manager.get(ORDERS, {"q": "smirnova@"})) == [anna.pk]


def test_s02_search_combines_with_filters(manager, manager_actor, place):
    agreed = place(name="Иван Петров")
    place(name="Иван Петров")
    services.set_status(manager_actor, agreed.pk, "agreed")

    assert ids(manager.get(ORDERS, {"q": "Петров", "status": "agreed"})) == [agreed.pk]


def test_s02_search_that_matches_nothing_is_an_empty_page(manager, place):
    place()

    response = manager.get(ORDERS, {"q": "no such customer"})

    assert response.json() == {"results": [], "next_cursor": None}


# ---- S10 in the list ----


def test_s10_orders_marked_for_removal_are_hidden_unless_asked_for(manager, manager_actor, place):
    a, b, c = place(), place(), place()
    services.set_removal_mark(manager_actor, b.pk, True)

    assert ids(manager.get(ORDERS)) == [c.pk, a.pk]
    assert ids(manager.get(ORDERS, {"marked": "true"})) == [b.pk]
    assert ids(manager.get(ORDERS, {"q": b.number})) == []


# ---- keyset pagination ----


def walk(client, params: dict, between_pages=lambda: None, max_pages: int = 100) -> list[list[int]]:
    pages, cursor = [], None
    for _ in range(max_pages):
        response = client.get(ORDERS, {**params, **({"cursor": cursor} if cursor else {})})
        pages.append(ids(response))
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages
        between_pages()
    raise AssertionError("the cursor never ended")


def test_s02_pages_walk_every_order_exactly_once(manager, place):
    orders = [place() for _ in range(7)]

    pages = walk(manager, {"limit": 3})

    assert [len(p) for p in pages] == [3, 3, 1]
    assert sum(pages, []) == [o.pk for o in reversed(orders)]


def test_s02_a_full_last_page_has_no_next_cursor(manager, place):
    for _ in range(4):
        place()

    assert [len(p) for p in walk(manager, {"limit": 2})] == [2, 2]


def test_s02_orders_created_between_pages_neither_duplicate_nor_shift_the_walk(manager, place):
    orders = [place() for _ in range(7)]
    created_meanwhile = []

    pages = walk(manager, {"limit": 3}, between_pages=lambda: created_meanwhile.extend([place(), place()]))

    walked = sum(pages, [])
    assert len(walked) == len(set(walked))
    assert walked == [o.pk for o in reversed(orders)]
    # the new ones are at the top of a fresh first page
    assert ids(manager.get(ORDERS, {"limit": 4})) == [o.pk for o in reversed(created_meanwhile)]


def test_s02_paging_keeps_the_filters(manager, manager_actor, place):
    orders = [place() for _ in range(6)]
    agreed = orders[::2]
    for order in agreed:
        services.set_status(manager_actor, order.pk, "agreed")

    pages = walk(manager, {"limit": 2, "status": "agreed"})

    assert pages == [[agreed[2].pk, agreed[1].pk], [agreed[0].pk]]


def test_s02_orders_made_in_the_same_microsecond_are_each_walked_once_newest_id_first(manager, place):
    orders = [place() for _ in range(5)]
    same_moment = orders[0].created_at.replace(microsecond=999_999)  # a float would round this one
    Order.objects.filter(pk__in=[o.pk for o in orders]).update(created_at=same_moment)

    pages = walk(manager, {"limit": 2})

    assert pages == [[orders[4].pk, orders[3].pk], [orders[2].pk, orders[1].pk], [orders[0].pk]]


@pytest.mark.parametrize("cursor", ["99999999999999999_1", "1_" + "9" * 19])
def test_s02_a_cursor_beyond_any_date_or_id_is_a_422_not_a_500(manager, place, cursor):
    place()

    body = assert_error(manager.get(ORDERS, {"cursor": cursor}), 422, "validation_error")

    assert list(body["fields"]) == ["cursor"]


@pytest.mark.parametrize("cursor", ["abc", "-5", "1.5", "MTI=", "x" * 41])
def test_s02_a_cursor_the_list_did_not_give_out_is_a_422(manager, place, cursor):
    place()

    body = assert_error(manager.get(ORDERS, {"cursor": cursor}), 422, "validation_error")

    assert list(body["fields"]) == ["cursor"]


@pytest.mark.parametrize("limit", ["0", "201", "-1", "many"])
def test_s02_a_page_size_out_of_range_is_a_422(manager, limit):
    body = assert_error(manager.get(ORDERS, {"limit": limit}), 422, "validation_error")

    assert list(body["fields"]) == ["limit"]


def test_s02_a_page_costs_the_same_queries_for_3_orders_as_for_30(manager, place, django_assert_max_num_queries):
    for _ in range(30):
        place()

    with CaptureQueriesContext(connection) as small:
        assert len(ids(manager.get(ORDERS, {"limit": 3}))) == 3
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert len(ids(manager.get(ORDERS, {"limit": 30}))) == 30
    assert len(small.captured_queries) <= 5  # session, user, the page; nothing per row
