"""Writing the event log (B7) and what every logged change owes the customer (S4)."""

from orderdesk.core import outbox, rows
from orderdesk.core.actors import Actor
from orderdesk.orders.models import Order, OrderEvent

# Changes the customer is told about, by e-mail and as notifications in the personal account (the
# events themselves); housekeeping such as the deletion mark stays internal.
CUSTOMER_VISIBLE = frozenset({
    "order.created", "order.status.changed", "order.items.changed", "order.delivery.changed",
    "payment.received", "payment.refunded", "receipt.registered",
})
CUSTOMER_EMAIL_TOPIC = "orders.customer_email"


def state_of(order: Order) -> dict:
    """The order as it stood right after the change, so a late e-mail still tells that moment."""
    return {"status": order.status_id, "payment_status": order.payment_status, "total": str(order.total),
            "paid": str(order.paid_amount)}


def record(order: Order, code: str, actor: Actor, payload: dict | None = None, *, mail_customer: bool = True) -> OrderEvent:
    """Append an event in the caller's transaction; a customer-visible one is the customer's
    notification and also queues the e-mail, so neither can exist without the other.
    `mail_customer=False` where another mail carries the news (an e-receipt is its own letter)."""
    event = rows.insert(
        OrderEvent,
        order=order,
        order_number=order.number,
        code=code,
        actor_label=actor.label,
        actor_role=actor.role,
        user_id=actor.user_id,
        api_key_id=actor.api_key_id,
        payload={**(payload or {}), "state": state_of(order)},
    )
    if mail_customer and code in CUSTOMER_VISIBLE:
        outbox.post(CUSTOMER_EMAIL_TOPIC, {"event_id": event.pk})
    return event
