"""How an event reads to a person, in Russian or English (B11), and the customer e-mail it owes (S4)."""

from collections.abc import Callable
from decimal import Decimal

from django.core.mail import EmailMessage
from django.utils import translation
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from orderdesk.core import outbox, rows
from orderdesk.core.models import OutboxMessage
from orderdesk.orders.events import CUSTOMER_EMAIL_TOPIC
from orderdesk.orders.models import Order, OrderEvent, StatusDefinition


StatusName = Callable[[str], str]


def _status_name(code: str | None, status_name: StatusName) -> str:
    return "—" if code is None else status_name(code)


def money_text(amount) -> str:
    """1 234,50 ₽ in Russian, 1,234.50 ₽ in English."""
    if amount is None:
        return "—"
    return f"{number_format(Decimal(amount), decimal_pos=2, use_l10n=True, force_grouping=True)} ₽"


def describe(event: OrderEvent, status_name: StatusName = StatusDefinition.name_of) -> str:
    """One sentence in the active language; a caller describing many events passes
    `StatusDefinition.name_lookup()`."""
    p = event.payload
    number = event.order_number
    match event.code:
        case "order.created":
            return _("Order №%(number)s has been placed, total %(total)s.") % {"number": number, "total": money_text(p.get("total"))}
        case "order.status.changed":
            before, after = p.get("status", [None, None])
            return _("Order №%(number)s: the status changed from «%(before)s» to «%(after)s».") % {
                "number": number, "before": _status_name(before, status_name), "after": _status_name(after, status_name)}
        case "order.items.changed":
            before, after = p.get("total", [None, None])
            return _("Order №%(number)s: the items changed; the total is now %(total)s (was %(was)s).") % {
                "number": number, "total": money_text(after), "was": money_text(before)}
        case "order.delivery.changed":
            before, after = p.get("total", [None, None])
            if before != after:
                return _("Order №%(number)s: the delivery changed; the total is now %(total)s (was %(was)s).") % {
                    "number": number, "total": money_text(after), "was": money_text(before)}
            return _("Order №%(number)s: the delivery changed.") % {"number": number}
        case "payment.received":
            return _("Order №%(number)s: payment of %(amount)s received.") % {
                "number": number, "amount": money_text(p.get("amount"))}
        case "payment.refunded":
            return _("Order №%(number)s: %(amount)s refunded.") % {"number": number, "amount": money_text(p.get("amount"))}
        case "receipt.registered":
            return _("Order №%(number)s: fiscal receipt for %(amount)s registered.") % {
                "number": number, "amount": money_text(p.get("total"))}
        case "receipt.failed":
            return _("Order №%(number)s: the register refused a receipt: %(error)s") % {
                "number": number, "error": p.get("error", "")}
        case "payment.mismatch":
            return _("Order №%(number)s: an online payment of %(paid)s %(currency)s does not match the link's %(asked)s; a manager must look.") % {
                "number": number, "paid": p.get("paid"), "currency": p.get("currency"), "asked": p.get("asked")}
        case "payment_link.created":
            return _("Order №%(number)s: a payment link for %(amount)s created.") % {
                "number": number, "amount": money_text(p.get("amount"))}
        case "document.created":
            return _("Order №%(number)s: document №%(document)s created.") % {"number": number, "document": p.get("document")}
        case "document.unposted":
            return _("Order №%(number)s: posting of document №%(document)s cancelled.") % {
                "number": number, "document": p.get("document")}
        case "order.removal_mark.set":
            return _("Order №%(number)s was marked for removal.") % {"number": number}
        case "order.removal_mark.cleared":
            return _("The removal mark of order №%(number)s was cleared.") % {"number": number}
        case "order.purged":
            return _("Order №%(number)s was purged.") % {"number": number}
    return _("Order №%(number)s changed.") % {"number": number}


Mailing = tuple[OrderEvent, Order | None, StatusName]


_EVENTS = rows.PreparedIn(lambda ids: OrderEvent.objects.filter(pk__in=ids))
_ORDERS_WITH_CUSTOMERS = rows.PreparedIn(lambda ids: Order.objects.select_related("customer").filter(pk__in=ids))


def _mailings(messages: list[OutboxMessage]) -> dict[int, Mailing]:
    """Each message's event and its order (None once purged: the event outlives it), in two queries,
    and one status look-up for the batch."""
    events = _EVENTS.by_pk([m.payload["event_id"] for m in messages])
    orders = _ORDERS_WITH_CUSTOMERS.by_pk({event.order_id for event in events.values()})
    status_name = StatusDefinition.name_lookup()
    return {m.pk: (event, orders.get(event.order_id), status_name) for m in messages
            if (event := events.get(m.payload["event_id"])) is not None}


def _mail_body(order: Order, text: str, status: str, state: dict) -> str:
    """The plain-text letter in the active language: the change, then where the order stands."""
    return "\n".join([
        _("Hello, %(name)s!") % {"name": order.customer_name},
        "",
        text,
        "",
        f"{_('Order number')}: {order.number}",
        f"{_('Order status')}: {status}",
        f"{_('Order total')}: {money_text(state['total'])}",
        f"{_('Paid so far')}: {money_text(state['paid'])}",
        "",
        _("You can follow the order in your personal account.") + "\n",
    ])


@outbox.handler(CUSTOMER_EMAIL_TOPIC, load=_mailings)
def send_customer_email(message: OutboxMessage, mailing: Mailing | None) -> None:
    if mailing is None:
        raise outbox.SkipDelivery("the event is gone")
    event, order, status_name = mailing
    if order is None:
        raise outbox.SkipDelivery("the order was purged")
    address = order.customer_email or order.customer.email
    if not address:
        raise outbox.SkipDelivery("the customer has no e-mail")
    language = order.customer.language
    state = event.payload["state"]
    with translation.override(language):
        status = _status_name(state["status"], status_name)
        subject = _("Order №%(number)s: %(status)s") % {"number": order.number, "status": status}
        body = _mail_body(order, describe(event, status_name), status, state)
    EmailMessage(
        subject=subject,
        body=body,
        to=[address],
        headers={"Message-ID": f"<order-event-{event.pk}@orderdesk>", "Content-Language": language},
    ).send()
