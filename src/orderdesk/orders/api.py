"""HTTP face of the orders services. Handlers translate; every decision is in services and rules."""

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Status

from orderdesk.orders import services
from orderdesk.payments import rules as payment_rules
from orderdesk.payments import services as payments
from orderdesk.orders.models import Order, ShopSettings, StatusDefinition
from orderdesk.orders.notifications import describe
from orderdesk.orders.rules import allowed_targets
from orderdesk.orders.schemas import (
    DeliveryIn,
    ErrorOut,
    EventOut,
    ItemsIn,
    NotificationOut,
    NotificationsReadIn,
    OrderIn,
    OrderListFilters,
    OrderOut,
    OrderPageOut,
    PurgeIn,
    RemovalMarkIn,
    SettingsIn,
    SettingsOut,
    StatusIn,
    StatusOut,
)

orders_router = Router(tags=["orders"])
customer_router = Router(tags=["personal account"])
reference_router = Router(tags=["settings"])

ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}


def summary(order: Order) -> dict:
    return {
        "id": order.pk, "number": order.number, "source": order.source, "external_id": order.external_id,
        "status": order.status_id, "status_name": order.status.name(), "payment_status": order.payment_status,
        "customer_name": order.customer_name, "customer_email": order.customer_email,
        "customer_phone": order.customer_phone, "total": order.total, "paid_amount": order.paid_amount,
        "deletion_mark": order.deletion_mark, "is_quick": order.is_quick, "created_at": order.created_at,
    }


def card(order: Order, items: list | None = None) -> dict:
    return {
        **summary(order),
        "customer": order.customer, "items": services.items_of(order) if items is None else items,
        "items_total": order.items_total,
        "delivery_price": order.delivery_price, "delivery_method": order.delivery_method,
        "delivery_address": order.delivery_address, "comment": order.comment, "currency": order.currency,
        "updated_at": order.updated_at, "version": order.version, "allowed_statuses": allowed_targets(order.status_id),
    }


def _card_of(request: HttpRequest, order_id: int) -> dict:
    return card(services.get_order(request.auth, order_id))


@orders_router.post("", response={200: OrderOut, 201: OrderOut, **ERRORS}, summary="Place an order (site intake)")
def place_order(request: HttpRequest, body: OrderIn):
    """Idempotent on `external_id`: the same id and body answer 200 with the order already made;
    the same id with another body answers 409 `external_id_conflict`."""
    placed = services.place_order(request.auth, body)
    if placed.created:
        return Status(201, card(placed.order, placed.items))
    return Status(200, _card_of(request, placed.order.pk))


@orders_router.get("", response={200: OrderPageOut, **ERRORS}, summary="Order list")
def list_orders(request: HttpRequest, filters: Query[OrderListFilters]):
    page, next_cursor = services.list_orders(request.auth, filters)
    return {"results": [summary(o) for o in page], "next_cursor": next_cursor}


@orders_router.get("/{int:order_id}", response={200: OrderOut, **ERRORS}, summary="Order card")
def get_order(request: HttpRequest, order_id: int):
    return _card_of(request, order_id)


@orders_router.get("/{int:order_id}/history", response={200: list[EventOut], **ERRORS}, summary="Order history")
def order_history(request: HttpRequest, order_id: int):
    status_name = StatusDefinition.name_lookup()
    return [_event(e, status_name) for e in services.order_history(request.auth, order_id)]


def _event(event, status_name) -> dict:
    return {
        "id": event.pk, "code": event.code, "text": describe(event, status_name), "actor": event.actor_label,
        "actor_role": event.actor_role, "created_at": event.created_at, "payload": event.payload,
    }


@orders_router.post("/{int:order_id}/status", response={200: OrderOut, **ERRORS}, summary="Set status")
def set_status(request: HttpRequest, order_id: int, body: StatusIn, response: HttpResponse):
    """Setting «Issued» prints the hand-over receipt; on an order not paid in full it first answers
    409 `confirmation_required` (question `issue_unpaid`, choices back/pay/issue, R6)."""
    choice = payment_rules.IssueChoice(body.choice) if body.choice else None
    result = payments.change_status(request.auth, order_id, body.status, choice=choice, register_id=body.register_id)
    if result.next_step:
        response["X-Next-Step"] = result.next_step  # R6 [Pay]: the client goes to the cash desk
    return card(services.as_seen_by(request.auth, result.order))


@orders_router.put("/{int:order_id}/items", response={200: OrderOut, **ERRORS}, summary="Replace the items")
def replace_items(request: HttpRequest, order_id: int, body: ItemsIn):
    services.replace_items(request.auth, order_id, body.items, body.expected_version)
    return _card_of(request, order_id)


@orders_router.put("/{int:order_id}/delivery", response={200: OrderOut, **ERRORS}, summary="Change the delivery")
def update_delivery(request: HttpRequest, order_id: int, body: DeliveryIn):
    services.update_delivery(request.auth, order_id, body)
    return _card_of(request, order_id)


@orders_router.put("/{int:order_id}/removal-mark", response={200: OrderOut, **ERRORS}, summary="Mark or unmark for removal")
def set_removal_mark(request: HttpRequest, order_id: int, body: RemovalMarkIn):
    services.set_removal_mark(request.auth, order_id, body.marked)
    return _card_of(request, order_id)


@orders_router.post("/purge", response={200: dict, **ERRORS}, summary="Purge orders marked for removal")
def purge(request: HttpRequest, body: PurgeIn):
    result = services.purge_marked(request.auth, body.order_ids)
    return {"purged": result.purged, "kept": result.kept}


@customer_router.get("/orders", response={200: OrderPageOut, **ERRORS}, summary="My orders")
def my_orders(request: HttpRequest, filters: Query[OrderListFilters]):
    page, next_cursor = services.list_my_orders(request.auth, filters)
    return {"results": [summary(o) for o in page], "next_cursor": next_cursor}


@customer_router.get("/notifications", response={200: list[NotificationOut], **ERRORS}, summary="My notifications")
def my_notifications(request: HttpRequest, unread: bool = False, limit: int = 50):
    notifications = services.customer_notifications(request.auth, unread=unread)
    status_name = StatusDefinition.name_lookup()
    return [
        {"id": n.pk, "order_id": n.order_id, "order_number": n.order_number, "text": describe(n, status_name),
         "created_at": n.created_at, "read": n.read_at is not None}
        for n in notifications[: max(1, min(limit, 200))]
    ]


@customer_router.post("/notifications/read", response={200: dict, **ERRORS}, summary="Mark notifications read")
def read_notifications(request: HttpRequest, body: NotificationsReadIn):
    return {"marked": services.mark_notifications_read(request.auth, body.ids)}


@reference_router.get("statuses", response={200: list[StatusOut], **ERRORS}, summary="Order statuses")
def statuses(request: HttpRequest):
    return list(StatusDefinition.objects.all())


def settings_out(shop: ShopSettings) -> dict:
    return {"default_site_status": shop.default_site_status_id, "prepayment_style": shop.prepayment_style,
            "auto_close_enabled": shop.auto_close_enabled, "auto_close_after_days": shop.auto_close_after_days}


@reference_router.get("settings", response={200: SettingsOut, **ERRORS}, summary="Shop settings")
def get_settings(request: HttpRequest):
    return settings_out(ShopSettings.current())


@reference_router.put("settings", response={200: SettingsOut, **ERRORS}, summary="Change shop settings")
def put_settings(request: HttpRequest, body: SettingsIn):
    return settings_out(services.update_settings(request.auth, **body.model_dump(exclude_none=True)))
