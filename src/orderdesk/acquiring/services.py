"""Online payments (R11): payment links and SBP through the acquirer, and what its notifications do.

The link row is committed before the acquirer is called, and its id is the Idempotence-Key, so a
call lost on the way is repeated without making a second payment. A notification is trusted only
from the configured networks and only for what re-reading the payment from the acquirer says;
confirming a link locks it, so duplicates and late or out-of-order notifications count a payment once.
"""

import hashlib
import ipaddress
import logging
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from orderdesk.acquiring import yookassa_adapter as acquirer
from orderdesk.acquiring.models import AcquirerNotification, PaymentLink
from orderdesk.core import outbox
from orderdesk.core.actors import SYSTEM, Actor
from orderdesk.core.errors import Conflict, NotFound
from orderdesk.core.rights import Permission
from orderdesk.fiscal.rules import PayMethod
from orderdesk.orders import events
from orderdesk.orders import services as order_services
from orderdesk.payments import services as payments

log = logging.getLogger(__name__)

LINK_EMAIL_TOPIC = "acquiring.link_email"


def create_link(actor: Actor, order_id: int, *, amount: Decimal | None = None, method: str = "online") -> PaymentLink:
    """R11: a link for the whole debt or a part of it, never more than the debt."""
    actor.require(Permission.DOCUMENTS)
    with transaction.atomic():
        order = order_services.locked_order(order_id)
        if order.status.is_final:
            raise Conflict(_("The order is «%(status)s»: it takes no more payments.") % {"status": order.status.name()},
                           code="order_final", status=order.status_id)
        debt = payments.fiscal_state(order).debt
        amount = debt if amount is None else amount
        if amount <= 0 or amount > debt:
            raise Conflict(_("The order owes %(debt)s; a link is for 0.01 up to that.") % {"debt": debt},
                           code="amount_exceeds_debt", debt=str(debt))
        link = PaymentLink.objects.create(order=order, amount=amount, method=method, created_by=actor.label)
        events.record(order, "payment_link.created", actor, {"link_id": link.pk, "amount": str(amount),
                                                               "method": method}, mail_customer=False)
    return send_to_acquirer(link.pk)


def send_to_acquirer(link_id: int) -> PaymentLink:
    """Create the payment at the acquirer; safe to repeat (same Idempotence-Key, same payment)."""
    link = PaymentLink.objects.select_related("order").get(pk=link_id)
    if link.acquirer_payment_id:
        return link
    try:
        payment = acquirer.create_payment(
            idempotence_key=link.idempotence_key, amount=link.amount, method=link.method,
            description=f"Заказ №{link.order.number}", return_url=settings.PAYMENT_RETURN_URL,
            metadata={"order_id": str(link.order_id), "link_id": str(link.pk)},
        )
    except (acquirer.AcquirerUnavailable, acquirer.AcquirerRefused) as exc:
        PaymentLink.objects.filter(pk=link.pk).update(last_error=str(exc)[:2000])
        raise Conflict(_("The acquirer did not take the payment: %(error)s. Try again.") % {"error": exc},
                       code="acquirer_unavailable", link_id=link.pk) from exc
    PaymentLink.objects.filter(pk=link.pk).update(
        acquirer_payment_id=payment.id, confirmation_url=payment.confirmation_url, state=PaymentLink.State.PENDING,
        last_error="",
    )
    link.refresh_from_db()
    return link


def retry_unsent_links() -> int:
    """Links whose creation at the acquirer failed or lost its answer: ask again with the same
    Idempotence-Key, which returns the payment made the first time, if any."""
    sent = 0
    for link_id in PaymentLink.objects.filter(state=PaymentLink.State.CREATED).values_list("pk", flat=True)[:100]:
        try:
            send_to_acquirer(link_id)
            sent += 1
        except Conflict:
            continue
    return sent


def email_link(actor: Actor, link_id: int) -> PaymentLink:
    actor.require(Permission.DOCUMENTS)
    link = PaymentLink.objects.select_related("order").filter(pk=link_id).first()
    if link is None:
        raise NotFound(_("No such payment link."), code="payment_link_not_found")
    if link.state != PaymentLink.State.PENDING or not (link.order.customer_email or link.order.customer.email):
        raise Conflict(_("Only a link waiting for payment is sent, and only to a customer with an e-mail."),
                       code="link_not_sendable", state=link.state)
    with transaction.atomic():
        outbox.post(LINK_EMAIL_TOPIC, {"link_id": link.pk})
    return link


# ---- notifications ----


def trusted_networks() -> list[str]:
    from yookassa.domain.common.security_helper import SecurityHelper

    return settings.ACQUIRER_TRUSTED_NETWORKS or [*SecurityHelper.YOOKASSA_NETWORKS, "127.0.0.1/32", "::1/128"]


def trusted(source_ip: str | None) -> bool:
    try:
        address = ipaddress.ip_address(source_ip or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net) for net in trusted_networks())


def handle_notification(source_ip: str | None, body: dict) -> str:
    """What a notification did, in a word (also logged with the body)."""
    obj = body.get("object") if isinstance(body, dict) else None
    event = str(body.get("event", ""))[:60] if isinstance(body, dict) else ""
    object_id = str(obj.get("id", ""))[:64] if isinstance(obj, dict) else ""
    outcome = _outcome(source_ip, event, object_id)
    AcquirerNotification.objects.create(source_ip=source_ip, event=event, object_id=object_id,
                                        body=body if isinstance(body, dict) else {}, outcome=outcome)
    return outcome


def _outcome(source_ip: str | None, event: str, object_id: str) -> str:
    if not trusted(source_ip):
        return "untrusted_source"
    if not event.startswith("payment.") or not object_id:
        return "ignored"
    link = PaymentLink.objects.filter(acquirer_payment_id=object_id).first()
    if link is None:
        return "unknown_payment"
    try:
        payment = acquirer.get_payment(object_id)  # the notification itself is not trusted, the re-read is
    except (acquirer.AcquirerUnavailable, acquirer.AcquirerRefused) as exc:
        log.warning("could not re-read payment %s: %s", object_id, exc)
        return "reread_failed"
    return apply_payment_state(link.pk, payment)


def apply_payment_state(link_id: int, payment: acquirer.Payment) -> str:
    """Apply what the acquirer says of a link's payment; idempotent under the link's lock."""
    with transaction.atomic():
        link = PaymentLink.objects.select_for_update(no_key=True).get(pk=link_id)
        if link.state in (PaymentLink.State.PAID, PaymentLink.State.MISMATCH):
            return "already_applied"
        if payment.status == "canceled":
            link.state = PaymentLink.State.CANCELED
            link.save(update_fields=["state"])
            return "canceled"
        if payment.status != "succeeded":
            return "not_final"
        order = order_services.locked_order(link.order_id)
        if payment.amount != link.amount or payment.currency != "RUB":
            link.state = PaymentLink.State.MISMATCH
            link.flag = f"paid {payment.amount} {payment.currency}, the link asked {link.amount} RUB"
            link.save(update_fields=["state", "flag"])
            events.record(order, "payment.mismatch", SYSTEM, {"link_id": link.pk, "asked": str(link.amount),
                          "paid": str(payment.amount), "currency": payment.currency}, mail_customer=False)
            return "mismatch"
        method = PayMethod.SBP if link.method == PaymentLink.Method.SBP else PayMethod.ONLINE
        result = payments.record_online_payment(SYSTEM, order, amount=payment.amount, method=method,
                                                acquirer_payment_id=payment.id)
        link.state, link.paid_at, link.document = PaymentLink.State.PAID, timezone.now(), result.document
        link.save(update_fields=["state", "paid_at", "document"])
        return "paid"


def refund_online(actor: Actor, link_id: int, amount: Decimal, idempotency_key: str) -> payments.MoneyResult:
    """B4 for money paid online: back through the acquirer first (under the caller's key, so a
    retried call refunds once), then the refund document and its receipt."""
    actor.require(Permission.REFUNDS)
    link = PaymentLink.objects.filter(pk=link_id, state=PaymentLink.State.PAID).first()
    if link is None:
        raise NotFound(_("No paid payment link with this id."), code="payment_link_not_found")
    # The acquirer takes keys of at most 64 characters; a long caller's key is shortened the same way every time.
    if len(idempotency_key) > 32:
        idempotency_key = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    key = f"orderdesk-refund-{link.pk}-{idempotency_key}"
    if (replayed := payments.replay(key, link.order_id, amount)) is not None:
        return replayed
    refunded = sum((d.amount for d in link.order.documents.filter(
        kind="refund", state="posted", acquirer_payment_id=link.acquirer_payment_id)), Decimal("0.00"))
    # Never more than the link took, nor than the order still holds (money may have gone back at the
    # cash desk): the acquirer is asked only for a refund the books can record.
    refundable = min(link.amount - refunded, payments.fiscal_state(link.order).paid)
    if amount <= 0 or amount > refundable:
        raise Conflict(_("A refund is from 0.01 up to what was paid, %(paid)s.") % {"paid": refundable},
                       code="refund_exceeds_paid", paid=str(refundable))
    try:
        acquirer.create_refund(idempotence_key=key, payment_id=link.acquirer_payment_id, amount=amount)
    except (acquirer.AcquirerUnavailable, acquirer.AcquirerRefused) as exc:
        raise Conflict(_("The acquirer did not refund: %(error)s.") % {"error": exc}, code="acquirer_refused") from exc
    return payments.refund(actor, link.order_id, amount=amount, method=PayMethod(link.document.method),
                           idempotency_key=key, acquirer_payment_id=link.acquirer_payment_id)
