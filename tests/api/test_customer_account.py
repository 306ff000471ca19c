"""S4: the customer's personal account — his orders and a notification for every change he cares about."""

import pytest
from django.core.management import call_command
from django.db import connection

from orderdesk.core.actors import Actor
from orderdesk.core.rights import Role
from orderdesk.orders import services
from orderdesk.orders.models import NotificationRead, OrderEvent
from orderdesk.orders.rules import StatusCode
from orderdesk.orders.schemas import ItemIn, OrderIn
from tests.conftest import committed_db, order_body

pytestmark = pytest.mark.django_db

NBSP = "\xa0"  # the Russian thousands separator



@pytest.fixture
def anna(make_user):
    # An account that exists before the order: the site order with her e-mail is linked to it.
    return make_user(Role.CUSTOMER, email="anna@example.com")


@pytest.fixture
def manager(actor_of) -> Actor:
    return actor_of(Role.MANAGER)


def place(site_actor, external_id: str, email: str):
    return services.place_order(site_actor, OrderIn(**order_body(external_id, email=email))).order


def worked_order(site_actor, manager, email: str):
    """Placed (900,00 ₽), agreed, marked and unmarked for removal, items replaced (1 300,00 ₽)."""
    order = place(site_actor, "acc-1", email)
    services.set_status(manager, order.pk, StatusCode.AGREED)
    services.set_removal_mark(manager, order.pk, True)
    services.set_removal_mark(manager, order.pk, False)
    services.replace_items(manager, order.pk, [ItemIn(name="Чайник", quantity="1", price="1000.00", vat_rate="22")])
    return order


def test_s04_personal_account_has_one_notification_per_customer_visible_change_newest_first(
    anna, client_as, site_actor, manager
):
    order = worked_order(site_actor, manager, anna.email)

    response = client_as(anna).get("/api/v1/me/notifications")

    assert response.status_code == 200
    n = order.number
    assert [x["text"] for x in response.json()] == [
        f"Заказ №{n}: изменён состав заказа; сумма теперь 1{NBSP}300,00 ₽ (была 900,00 ₽).",
        f"Заказ №{n}: статус изменён с «На согласовании» на «Согласован».",
        f"Заказ №{n} оформлен на сумму 900,00 ₽.",
    ]  # the removal mark is housekeeping and is not announced
    assert {(x["order_id"], x["order_number"], x["read"]) for x in response.json()} == {(order.pk, n, False)}
    ids = [x["id"] for x in response.json()]
    assert ids == sorted(ids, reverse=True)


@pytest.mark.parametrize("accept_language", ["en", "en-US,en;q=0.9,ru;q=0.5"])
def test_b11_personal_account_notifications_in_english_when_the_browser_asks_for_it(
    anna, client_as, site_actor, manager, accept_language
):
    order = worked_order(site_actor, manager, anna.email)
    client = client_as(anna)

    english = client.get("/api/v1/me/notifications", HTTP_ACCEPT_LANGUAGE=accept_language)
    russian_again = client.get("/api/v1/me/notifications")

    n = order.number
    assert [x["text"] for x in english.json()] == [
        f"Order №{n}: the items changed; the total is now 1,300.00 ₽ (was 900.00 ₽).",
        f"Order №{n}: the status changed from «Pending approval» to «Agreed».",
        f"Order №{n} has been placed, total 900.00 ₽.",
    ]
    assert english["Content-Language"] == "en"
    # the language is per request: the next call without the header is Russian again
    assert russian_again.json()[-1]["text"] == f"Заказ №{n} оформлен на сумму 900,00 ₽."
    assert russian_again["Content-Language"] == "ru"


def test_b11_without_a_browser_language_the_profile_language_is_spoken(make_user, client_as, site_actor):
    john = make_user(Role.CUSTOMER, email="john@example.com", language="en")
    services.link_customer_account(john)
    order = place(site_actor, "acc-en", john.email)

    response = client_as(john).get("/api/v1/me/notifications")

    assert response.json()[0]["text"] == f"Order №{order.number} has been placed, total 900.00 ₽."
    assert response["Content-Language"] == "en"


def test_b11_a_language_the_product_does_not_speak_falls_back_to_russian(anna, client_as, site_actor):
    order = place(site_actor, "acc-de", anna.email)

    response = client_as(anna).get("/api/v1/me/notifications", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9")

    assert response.json()[0]["text"] == f"Заказ №{order.number} оформлен на сумму 900,00 ₽."


def test_s04_unread_filter_lists_only_notifications_not_yet_read(anna, client_as, site_actor, manager):
    order = place(site_actor, "acc-1", anna.email)
    client = client_as(anna)
    [created] = client.get("/api/v1/me/notifications").json()
    client.post_json("/api/v1/me/notifications/read", {"ids": [created["id"]]})
    services.set_status(manager, order.pk, StatusCode.AGREED)

    unread = client.get("/api/v1/me/notifications?unread=true").json()
    everything = client.get("/api/v1/me/notifications").json()

    assert [x["text"] for x in unread] == [f"Заказ №{order.number}: статус изменён с «На согласовании» на «Согласован»."]
    assert [(x["id"], x["read"]) for x in everything] == [(unread[0]["id"], False), (created["id"], True)]


def test_s04_marking_notifications_read_by_id_touches_only_those(anna, client_as, site_actor, manager):
    order = place(site_actor, "acc-1", anna.email)
    services.set_status(manager, order.pk, StatusCode.AGREED)
    client = client_as(anna)
    newest, oldest = client.get("/api/v1/me/notifications").json()

    response = client.post_json("/api/v1/me/notifications/read", {"ids": [oldest["id"]]})

    assert response.status_code == 200
    assert response.json() == {"marked": 1}
    assert [(x["id"], x["read"]) for x in client.get("/api/v1/me/notifications").json()] == [
        (newest["id"], False), (oldest["id"], True)]
    # marking it again marks nothing new
    assert client.post_json("/api/v1/me/notifications/read", {"ids": [oldest["id"]]}).json() == {"marked": 0}


def test_s04_marking_all_read_without_ids(anna, client_as, site_actor, manager):
    order = place(site_actor, "acc-1", anna.email)
    services.set_status(manager, order.pk, StatusCode.AGREED)
    client = client_as(anna)

    response = client.post_json("/api/v1/me/notifications/read", {})

    assert response.json() == {"marked": 2}
    assert client.get("/api/v1/me/notifications?unread=true").json() == []
    assert all(x["read"] for x in client.get("/api/v1/me/notifications").json())


def test_b09_another_customers_notifications_are_neither_shown_nor_marked(
    anna, make_user, client_as, site_actor, manager
):
    boris = make_user(Role.CUSTOMER, email="boris@example.com")
    place(site_actor, "anna-1", anna.email)
    borises = place(site_actor, "boris-1", boris.email)
    services.set_status(manager, borises.pk, StatusCode.AGREED)
    boris_ids = [x["id"] for x in client_as(boris).get("/api/v1/me/notifications").json()]
    assert len(boris_ids) == 2
    client = client_as(anna)
    [annas] = client.get("/api/v1/me/notifications").json()

    response = client.post_json("/api/v1/me/notifications/read", {"ids": [*boris_ids, annas["id"]]})
    everything = client.post_json("/api/v1/me/notifications/read", {})

    assert response.json() == {"marked": 1}
    assert everything.json() == {"marked": 0}
    assert not NotificationRead.objects.filter(event_id__in=boris_ids).exists()
    assert [x["read"] for x in client_as(boris).get("/api/v1/me/notifications").json()] == [False, False]


def test_s04_my_orders_lists_only_my_orders_newest_first(anna, make_user, client_as, site_actor):
    first = place(site_actor, "anna-1", anna.email)
    place(site_actor, "boris-1", "boris@example.com")
    second = place(site_actor, "anna-2", anna.email)

    response = client_as(anna).get("/api/v1/me/orders")

    assert response.status_code == 200
    assert [o["number"] for o in response.json()["results"]] == [second.number, first.number]
    assert response.json()["next_cursor"] is None


def test_s04_orders_placed_before_the_account_existed_appear_once_it_is_linked(make_user, client_as, site_actor):
    earlier = place(site_actor, "early-1", "vera@example.com")
    vera = make_user(Role.CUSTOMER, email="vera@example.com")
    client = client_as(vera)
    assert client.get("/api/v1/me/orders").json()["results"] == []

    services.link_customer_account(vera)

    assert [o["number"] for o in client.get("/api/v1/me/orders").json()["results"]] == [earlier.number]
    assert [x["order_id"] for x in client.get("/api/v1/me/notifications").json()] == [earlier.pk]


def test_s04_a_customer_without_orders_has_an_empty_account(make_user, client_as):
    client = client_as(make_user(Role.CUSTOMER))

    assert client.get("/api/v1/me/orders").json() == {"results": [], "next_cursor": None}
    assert client.get("/api/v1/me/notifications").json() == []


@committed_db  # migrating runs outside a test's transaction
def test_s04_the_migration_to_events_as_notifications_keeps_what_the_customer_had_read(
    anna, client_as, site_actor, manager
):
    order = place(site_actor, "acc-1", anna.email)
    services.set_status(manager, order.pk, StatusCode.AGREED)
    placed, agreed = OrderEvent.objects.filter(order=order).order_by("id")
    call_command("migrate", "orders", "0007", verbosity=0)
    try:
        with connection.cursor() as cursor:  # the notifications as the rows of their own they were
            cursor.executemany(
                "INSERT INTO orders_customernotification (counterparty_id, order_id, event_id, created_at, read_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                [(order.customer_id, order.pk, placed.pk, placed.created_at, placed.created_at),
                 (order.customer_id, order.pk, agreed.pk, agreed.created_at, None)])
    finally:
        call_command("migrate", verbosity=0)

    assert [(x["id"], x["read"]) for x in client_as(anna).get("/api/v1/me/notifications").json()] == [
        (agreed.pk, False), (placed.pk, True)]
