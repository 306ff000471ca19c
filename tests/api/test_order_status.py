"""S3, S5, S6, S9, S10, B1, B7 through the HTTP API: statuses and their transitions, the default
status of site orders, editing items, the history of an order, marking for removal and purging."""

from decimal import Decimal

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from orderdesk.fiscal.rules import PayMethod
from orderdesk.payments import services as payments
from orderdesk.orders import services
from orderdesk.orders.models import Order, OrderEvent, OrderItem
from orderdesk.orders.schemas import OrderIn
from tests.conftest import order_body

ORDERS = "/api/v1/orders"
SETTINGS = "/api/v1/settings"

ALLOWED_FROM = {
    "pending_approval": ["agreed", "cancelled"],
    "agreed": ["pending_approval", "shipped", "issued", "cancelled"],
    "shipped": ["agreed", "issued", "closed", "cancelled"],
    "issued": ["closed"],
    "closed": [],
    "cancelled": ["pending_approval", "closed"],
}
# How to bring a new order (pending approval) to each status.
PATH_TO = {
    "pending_approval": [],
    "agreed": ["agreed"],
    "shipped": ["agreed", "shipped"],
    "issued": ["agreed", "issued"],
    "closed": ["agreed", "issued", "closed"],
    "cancelled": ["cancelled"],
}
NAME_RU = {
    "pending_approval": "На согласовании", "agreed": "Согласован", "shipped": "Отгружен", "issued": "Выдан",
    "closed": "Закрыт", "cancelled": "Отменён",
}






@pytest.fixture
def system_actor(actor_of):
    return actor_of("administrator")


@pytest.fixture
def place(site_actor):
    counter = iter(range(1, 100_000))

    def make() -> Order:
        return services.place_order(site_actor, OrderIn(**order_body(f"st-{next(counter)}"))).order

    return make


@pytest.fixture
def order_in(place, system_actor):
    """order_in("issued") → a new site order brought to that status by the allowed steps."""

    def make(status: str) -> Order:
        order = place()
        for step in PATH_TO[status]:
            services.set_status(system_actor, order.pk, step)
        order.refresh_from_db()
        assert order.status_id == status
        return order

    return make


def assert_error(response, status: int, code: str) -> dict:
    """Every refusal is JSON with a machine code and a human message."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["message"], str) and body["message"].strip()
    return body


def set_status(client, order_id: int, status: str):
    return client.post_json(f"{ORDERS}/{order_id}/status", {"status": status})


def history(client, order_id: int) -> list[dict]:
    response = client.get(f"{ORDERS}/{order_id}/history")
    assert response.status_code == 200, response.content
    return response.json()


def new_items(*lines: tuple[str, str, str]) -> list[dict]:
    return [
        {"sku": f"NEW-{n}", "name": f"Новый товар {n}", "quantity": quantity, "price": price, "discount": discount,
         "vat_rate": "22"}
        for n, (quantity, price, discount) in enumerate(lines, start=1)
    ]


# ---- S5, S3, S9: the lifecycle ----


def test_s05_a_manager_agrees_an_order_pending_approval(manager, place):
    order = place()

    response = set_status(manager, order.pk, "agreed")

    assert response.status_code == 200, response.content
    card = response.json()
    assert (card["status"], card["status_name"]) == ("agreed", "Согласован")
    assert card["version"] == order.version + 1
    assert card["allowed_statuses"] == ALLOWED_FROM["agreed"]
    assert manager.get(f"{ORDERS}/{order.pk}").json()["status"] == "agreed"
    last = history(manager, order.pk)[-1]
    assert last["code"] == "order.status.changed"
    assert (last["actor"], last["actor_role"]) == (manager.user.email, "manager")
    assert last["payload"]["status"] == ["pending_approval", "agreed"]


def test_b07_a_status_change_answers_with_the_items_without_compiling_a_query(manager, place):
    """The card a status change answers with reads its items with a prepared query: compiling one
    anew cost a quarter of the change."""
    from unittest import mock

    from django.db.models.sql.compiler import SQLCompiler

    set_status(manager, place().pk, "agreed")  # the prepared reads compile once, here
    order = place()
    with mock.patch.object(SQLCompiler, "as_sql", side_effect=AssertionError("an ORM query compiled")):
        response = set_status(manager, order.pk, "agreed")

    assert response.status_code == 200, response.content
    assert [item["sku"] for item in response.json()["items"]] == list(
        order.items.order_by("position").values_list("sku", flat=True))


def test_s03_full_lifecycle_agreed_paid_shipped_issued_closed(manager, place, registers, actor_of):
    order = place()
    assert set_status(manager, order.pk, "agreed").json()["status"] == "agreed"
    # paid: a payment status, not a step of the order status (S7 records it)
    payments.take_payment(actor_of("cashier"), order.pk, register_id=registers.desk.pk, amount=order.total,
                          method=PayMethod.CASH)

    for step in ["shipped", "issued", "closed"]:
        response = set_status(manager, order.pk, step)
        assert response.status_code == 200, (step, response.content)
        assert response.json()["status"] == step
        assert response.json()["status_name"] == NAME_RU[step]

    card = manager.get(f"{ORDERS}/{order.pk}").json()
    assert card["status"] == "closed"
    assert card["payment_status"] == "paid"
    assert card["allowed_statuses"] == []
    assert [e["payload"]["status"] for e in history(manager, order.pk) if e["code"] == "order.status.changed"] == [
        ["pending_approval", "agreed"], ["agreed", "shipped"], ["shipped", "issued"], ["issued", "closed"],
    ]


def test_s09_an_issued_order_is_closed_when_all_work_is_done(manager, order_in):
    order = order_in("issued")

    response = set_status(manager, order.pk, "closed")

    assert response.status_code == 200
    assert response.json()["status"] == "closed"


@pytest.mark.parametrize("target", ["pending_approval", "agreed", "shipped", "issued", "cancelled"])
def test_s09_a_closed_order_cannot_leave_closed(manager, order_in, target):
    order = order_in("closed")

    body = assert_error(set_status(manager, order.pk, target), 409, "status_transition_forbidden")

    assert body["allowed"] == []
    assert Order.objects.get(pk=order.pk).status_id == "closed"


@pytest.mark.parametrize(
    "current, target",
    [
        ("pending_approval", "shipped"),
        ("pending_approval", "issued"),
        ("pending_approval", "closed"),
        ("agreed", "closed"),
        ("issued", "agreed"),
        ("issued", "cancelled"),
        ("cancelled", "agreed"),
        ("cancelled", "issued"),
    ],
)
def test_s03_a_forbidden_transition_is_a_409_with_a_clear_message_and_the_allowed_list(manager, order_in, current, target):
    order = order_in(current)
    events_before = OrderEvent.objects.filter(order_id=order.pk).count()

    body = assert_error(set_status(manager, order.pk, target), 409, "status_transition_forbidden")

    assert (body["current"], body["target"]) == (current, target)
    assert body["allowed"] == ALLOWED_FROM[current]
    assert f"«{NAME_RU[current]}»" in body["message"]
    assert f"«{NAME_RU[target]}»" in body["message"]
    after = Order.objects.get(pk=order.pk)
    assert (after.status_id, after.version) == (current, order.version)
    assert OrderEvent.objects.filter(order_id=order.pk).count() == events_before


@pytest.mark.parametrize("status", ["paid", "Agreed", "", "x" * 31])
def test_s03_an_unknown_status_is_a_422(manager, place, status):
    order = place()

    body = assert_error(set_status(manager, order.pk, status), 422, "validation_error")

    assert list(body["fields"]) == ["status"]
    assert Order.objects.get(pk=order.pk).status_id == "pending_approval"


def test_s03_a_status_request_without_status_is_a_422(manager, place):
    order = place()

    body = assert_error(manager.post_json(f"{ORDERS}/{order.pk}/status", {}), 422, "validation_error")

    assert list(body["fields"]) == ["status"]


def test_s05_setting_the_current_status_again_changes_nothing(manager, order_in):
    order = order_in("agreed")
    events_before = OrderEvent.objects.filter(order_id=order.pk).count()

    response = set_status(manager, order.pk, "agreed")

    assert response.status_code == 200
    assert response.json()["status"] == "agreed"
    assert response.json()["version"] == order.version
    assert OrderEvent.objects.filter(order_id=order.pk).count() == events_before


def test_s05_status_of_a_missing_order_is_a_404(manager):
    assert_error(set_status(manager, 987654, "agreed"), 404, "order_not_found")


@pytest.mark.parametrize("who", ["site", "customer"])
def test_s05_only_staff_set_statuses(client_as, machine_client, place, who):
    order = place()
    client = machine_client("site") if who == "site" else client_as("customer")

    status = set_status(client, order.pk, "agreed").status_code

    assert status in (403, 404)  # a customer does not even see another's order
    assert Order.objects.get(pk=order.pk).status_id == "pending_approval"


# ---- S6: the default status of new site orders ----


def test_s06_default_status_applies_to_site_orders_placed_after_the_change(admin, manager, site):
    before = site.post_json(ORDERS, order_body("s6-before")).json()

    response = admin.put_json(SETTINGS, {"default_site_status": "agreed"})

    assert response.status_code == 200, response.content
    assert response.json()["default_site_status"] == "agreed"
    assert admin.get(SETTINGS).json()["default_site_status"] == "agreed"
    after = site.post_json(ORDERS, order_body("s6-after")).json()
    by_manager = manager.post_json(ORDERS, order_body(None)).json()
    assert after["status"] == "agreed"
    assert manager.get(f"{ORDERS}/{before['id']}").json()["status"] == "pending_approval"
    assert by_manager["status"] == "pending_approval"
    assert OrderEvent.objects.get(order_id=after["id"]).payload["status"] == "agreed"


def test_s06_resending_an_order_placed_before_the_change_keeps_its_status(admin, site):
    first = site.post_json(ORDERS, order_body("s6-resend")).json()
    admin.put_json(SETTINGS, {"default_site_status": "agreed"})

    again = site.post_json(ORDERS, order_body("s6-resend"))

    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert again.json()["status"] == "pending_approval"


@pytest.mark.parametrize("status", ["closed", "cancelled", "no_such_status"])
def test_s06_a_final_or_unknown_status_cannot_be_the_default(admin, status):
    body = assert_error(admin.put_json(SETTINGS, {"default_site_status": status}), 422, "validation_error")

    assert list(body["fields"]) == ["default_site_status"]
    assert admin.get(SETTINGS).json()["default_site_status"] == "pending_approval"


def test_s06_only_an_administrator_changes_the_default_status(manager):
    assert_error(manager.put_json(SETTINGS, {"default_site_status": "agreed"}), 403, "forbidden")

    assert manager.get(SETTINGS).json()["default_site_status"] == "pending_approval"


# ---- items: totals, frozen statuses, concurrent edits ----


def test_b01_editing_items_recalculates_the_totals(manager, place):
    order = place()  # 2 × (2 × 150.50 − 1.00) + 300.00 delivery = 900.00
    assert order.total == Decimal("900.00")

    response = manager.put_json(f"{ORDERS}/{order.pk}/items", {"items": new_items(("3", "99.99", "0.97"), ("0.5", "0.05", "0"))})

    assert response.status_code == 200, response.content
    card = response.json()
    # 3 × 99.99 = 299.97 − 0.97 = 299.00; 0.5 × 0.05 = 0.025 → 0.03
    assert [Decimal(i["amount"]) for i in card["items"]] == [Decimal("299.00"), Decimal("0.03")]
    assert Decimal(card["items_total"]) == Decimal("299.03")
    assert Decimal(card["total"]) == Decimal("599.03")
    assert card["version"] == order.version + 1
    assert [i["sku"] for i in card["items"]] == ["NEW-1", "NEW-2"]
    assert Order.objects.get(pk=order.pk).total == Decimal("599.03")
    assert OrderItem.objects.filter(order_id=order.pk).count() == 2


def test_b07_sending_the_same_items_again_changes_nothing(manager, place):
    order = place()
    same = order_body()["items"]

    response = manager.put_json(f"{ORDERS}/{order.pk}/items", {"items": same})

    assert response.status_code == 200
    assert response.json()["version"] == order.version
    assert OrderEvent.objects.filter(order_id=order.pk).count() == 1


def test_b01_bad_items_in_an_edit_are_a_422_naming_the_field(manager, place):
    order = place()
    items = new_items(("0", "10.00", "0"))

    body = assert_error(manager.put_json(f"{ORDERS}/{order.pk}/items", {"items": items}), 422, "validation_error")

    assert list(body["fields"]) == ["items.0.quantity"]
    assert Order.objects.get(pk=order.pk).total == Decimal("900.00")


@pytest.mark.parametrize("status", ["shipped", "issued", "closed", "cancelled"])
def test_s03_items_of_a_shipped_issued_closed_or_cancelled_order_are_frozen(manager, order_in, status):
    order = order_in(status)
    events_before = OrderEvent.objects.filter(order_id=order.pk).count()

    response = manager.put_json(f"{ORDERS}/{order.pk}/items", {"items": new_items(("1", "1.00", "0"))})

    body = assert_error(response, 409, "items_frozen")
    assert body["status"] == status
    assert f"«{NAME_RU[status]}»" in body["message"]
    assert [i.sku for i in OrderItem.objects.filter(order_id=order.pk)] == ["SKU-1", "SKU-2"]
    assert Order.objects.get(pk=order.pk).total == Decimal("900.00")
    assert OrderEvent.objects.filter(order_id=order.pk).count() == events_before


@pytest.mark.parametrize("status", ["pending_approval", "agreed"])
def test_s03_items_can_be_edited_before_shipping(manager, order_in, status):
    order = order_in(status)

    response = manager.put_json(f"{ORDERS}/{order.pk}/items", {"items": new_items(("1", "1.00", "0"))})

    assert response.status_code == 200, response.content


def test_b06_an_items_edit_based_on_a_stale_version_is_a_409_and_changes_nothing(manager, place, system_actor):
    order = place()
    seen_version = manager.get(f"{ORDERS}/{order.pk}").json()["version"]
    services.set_status(system_actor, order.pk, "agreed")  # someone else changed it meanwhile

    response = manager.put_json(
        f"{ORDERS}/{order.pk}/items", {"items": new_items(("1", "1.00", "0")), "expected_version": seen_version}
    )

    body = assert_error(response, 409, "version_mismatch")
    assert body["version"] == seen_version + 1
    assert Order.objects.get(pk=order.pk).total == Decimal("900.00")


def test_b06_an_items_edit_based_on_the_current_version_succeeds(manager, place):
    order = place()
    version = manager.get(f"{ORDERS}/{order.pk}").json()["version"]

    response = manager.put_json(
        f"{ORDERS}/{order.pk}/items", {"items": new_items(("1", "1.00", "0")), "expected_version": version}
    )

    assert response.status_code == 200, response.content
    assert response.json()["version"] == version + 1


# ---- B7: history ----


def test_b07_history_lists_every_change_with_who_when_and_before_after(manager, site):
    started = timezone.now()
    order_id = site.post_json(ORDERS, order_body("b7-1")).json()["id"]
    set_status(manager, order_id, "agreed")
    manager.put_json(f"{ORDERS}/{order_id}/items", {"items": new_items(("1", "500.00", "0"))})
    manager.put_json(f"{ORDERS}/{order_id}/removal-mark", {"marked": True})
    manager.put_json(f"{ORDERS}/{order_id}/removal-mark", {"marked": False})
    finished = timezone.now()

    events = history(manager, order_id)

    assert [e["code"] for e in events] == [
        "order.created", "order.status.changed", "order.items.changed", "order.removal_mark.set",
        "order.removal_mark.cleared",
    ]
    assert [(e["actor"], e["actor_role"]) for e in events] == [("site:test site", "site")] + [
        (manager.user.email, "manager")
    ] * 4
    moments = [parse_datetime(e["created_at"]) for e in events]
    assert all(started <= m <= finished for m in moments)
    assert moments == sorted(moments)
    assert all(e["text"].strip() for e in events)
    created, status, items, mark, unmark = (e["payload"] for e in events)
    assert created["status"] == "pending_approval" and created["total"] == "900.00"
    assert status["status"] == ["pending_approval", "agreed"]
    assert status["state"] == {"status": "agreed", "payment_status": "not_paid", "total": "900.00", "paid": "0.00"}
    items_before, items_after = items["items"]
    assert [(i["sku"], Decimal(i["quantity"]), Decimal(i["price"])) for i in items_before] == [
        ("SKU-1", Decimal("2"), Decimal("150.50")), ("SKU-2", Decimal("2"), Decimal("150.50")),
    ]
    assert [(i["sku"], Decimal(i["quantity"]), Decimal(i["amount"])) for i in items_after] == [
        ("NEW-1", Decimal("1"), Decimal("500.00"))
    ]
    assert items["total"] == ["900.00", "800.00"]
    assert items["state"]["total"] == "800.00"
    assert mark["deletion_mark"] == [False, True]
    assert unmark["deletion_mark"] == [True, False]


def test_b07_history_of_a_missing_order_is_a_404(manager):
    assert_error(manager.get(f"{ORDERS}/987654/history"), 404, "order_not_found")


# ---- S10: mark for removal and purge ----


def test_s10_marking_hides_the_order_from_the_list_without_destroying_it_and_can_be_cleared(manager, place):
    kept, marked = place(), place()

    response = manager.put_json(f"{ORDERS}/{marked.pk}/removal-mark", {"marked": True})

    assert response.status_code == 200
    assert response.json()["deletion_mark"] is True
    assert [o["id"] for o in manager.get(ORDERS).json()["results"]] == [kept.pk]
    assert [o["id"] for o in manager.get(ORDERS, {"marked": "true"}).json()["results"]] == [marked.pk]
    assert manager.get(f"{ORDERS}/{marked.pk}").status_code == 200

    cleared = manager.put_json(f"{ORDERS}/{marked.pk}/removal-mark", {"marked": False})

    assert cleared.json()["deletion_mark"] is False
    assert [o["id"] for o in manager.get(ORDERS).json()["results"]] == [marked.pk, kept.pk]
    assert manager.get(ORDERS, {"marked": "true"}).json()["results"] == []


def test_s10_marking_twice_records_one_change(manager, place):
    order = place()

    manager.put_json(f"{ORDERS}/{order.pk}/removal-mark", {"marked": True})
    manager.put_json(f"{ORDERS}/{order.pk}/removal-mark", {"marked": True})

    assert [e["code"] for e in history(manager, order.pk)] == ["order.created", "order.removal_mark.set"]


def test_s10_a_removal_mark_request_without_a_boolean_is_a_422(manager, place):
    order = place()

    body = assert_error(manager.put_json(f"{ORDERS}/{order.pk}/removal-mark", {"marked": "maybe"}), 422, "validation_error")

    assert list(body["fields"]) == ["marked"]
    assert Order.objects.get(pk=order.pk).deletion_mark is False


def test_s10_an_administrator_purges_a_marked_order_and_its_history_stays(admin, manager, place):
    marked, kept = place(), place()
    manager.put_json(f"{ORDERS}/{marked.pk}/removal-mark", {"marked": True})

    response = admin.post_json(f"{ORDERS}/purge", {"order_ids": [marked.pk]})

    assert response.status_code == 200, response.content
    assert response.json() == {"purged": [marked.number], "kept": []}
    assert_error(manager.get(f"{ORDERS}/{marked.pk}"), 404, "order_not_found")
    assert not Order.objects.filter(pk=marked.pk).exists()
    assert not OrderItem.objects.filter(order_id=marked.pk).exists()
    assert manager.get(f"{ORDERS}/{kept.pk}").status_code == 200
    events = OrderEvent.objects.filter(order_id=marked.pk).order_by("id")
    assert [e.code for e in events] == ["order.created", "order.removal_mark.set", "order.purged"]
    assert all(e.order_number == marked.number for e in events)
    purge = events.last()
    assert (purge.actor_label, purge.actor_role) == (admin.user.email, "administrator")
    assert purge.payload["number"] == marked.number and purge.payload["total"] == "900.00"


def test_s10_purging_without_a_list_purges_every_marked_order_and_only_those(admin, manager, place):
    first, kept, second = place(), place(), place()
    for order in (first, second):
        manager.put_json(f"{ORDERS}/{order.pk}/removal-mark", {"marked": True})

    response = admin.post_json(f"{ORDERS}/purge", {})

    assert response.status_code == 200
    assert sorted(response.json()["purged"]) == sorted([first.number, second.number])
    assert list(Order.objects.values_list("pk", flat=True)) == [kept.pk]


def test_s10_an_unmarked_order_in_the_purge_list_is_a_409_and_nothing_is_purged(admin, manager, place):
    marked, unmarked = place(), place()
    manager.put_json(f"{ORDERS}/{marked.pk}/removal-mark", {"marked": True})

    response = admin.post_json(f"{ORDERS}/purge", {"order_ids": [marked.pk, unmarked.pk]})

    body = assert_error(response, 409, "not_marked_for_removal")
    assert body["order_ids"] == [unmarked.pk]
    assert Order.objects.filter(pk__in=[marked.pk, unmarked.pk]).count() == 2
    assert not OrderEvent.objects.filter(code="order.purged").exists()


def test_s10_a_missing_order_in_the_purge_list_is_a_409_and_nothing_is_purged(admin, manager, place):
    marked = place()
    manager.put_json(f"{ORDERS}/{marked.pk}/removal-mark", {"marked": True})

    body = assert_error(admin.post_json(f"{ORDERS}/purge", {"order_ids": [marked.pk, 987654]}), 409, "not_marked_for_removal")

    assert body["order_ids"] == [987654]
    assert Order.objects.filter(pk=marked.pk).exists()


def test_s10_a_manager_cannot_purge(manager, place):
    order = place()
    manager.put_json(f"{ORDERS}/{order.pk}/removal-mark", {"marked": True})

    assert_error(manager.post_json(f"{ORDERS}/purge", {"order_ids": [order.pk]}), 403, "forbidden")
    assert_error(manager.post_json(f"{ORDERS}/purge", {}), 403, "forbidden")

    assert Order.objects.filter(pk=order.pk).exists()
    assert not OrderEvent.objects.filter(code="order.purged").exists()
