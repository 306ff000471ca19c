"""The payment link mailed to the customer (R11)."""

from django.core.mail import EmailMessage
from django.utils import translation
from django.utils.translation import gettext as _

from orderdesk.acquiring.models import PaymentLink
from orderdesk.acquiring.services import LINK_EMAIL_TOPIC
from orderdesk.core import outbox
from orderdesk.core.models import OutboxMessage
from orderdesk.orders.notifications import money_text


@outbox.handler(LINK_EMAIL_TOPIC, load=outbox.rows_named_in_payload(
    PaymentLink.objects.select_related("order", "order__customer"), "link_id"))
def send_link_email(message: OutboxMessage, link: PaymentLink | None) -> None:
    if link is None:
        raise outbox.SkipDelivery("the payment link is gone")
    order = link.order
    with translation.override(order.customer.language):
        subject = _("Payment of order №%(number)s") % {"number": order.number}
        body = _("To pay %(amount)s for order №%(number)s, follow the link:\n%(url)s") % {
            "amount": money_text(link.amount), "number": order.number, "url": link.confirmation_url}
    EmailMessage(subject=subject, body=body, to=[order.customer_email or order.customer.email],
                 headers={"Message-ID": f"<payment-link-{link.pk}-{message.pk}@orderdesk>"}).send()
