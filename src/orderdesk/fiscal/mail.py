"""The e-receipt (R2, R11): the registered receipt mailed to the buyer's e-mail, or the company's."""

from django.core.mail import EmailMultiAlternatives

from orderdesk.core import outbox
from orderdesk.core.models import OutboxMessage
from orderdesk.fiscal.models import Receipt
from orderdesk.fiscal.render import render_html, render_text
from orderdesk.fiscal.services import RECEIPT_EMAIL_TOPIC

SUBJECTS = {
    "advance": "Кассовый чек «Аванс»", "final": "Кассовый чек «Полный расчёт»", "sale": "Кассовый чек «Полный расчёт»",
    "credit": "Кассовый чек: передача в кредит", "credit_payment": "Кассовый чек «Оплата кредита»",
    "advance_refund": "Кассовый чек «Возврат прихода»", "sale_refund": "Кассовый чек «Возврат прихода»",
}


@outbox.handler(RECEIPT_EMAIL_TOPIC, load=outbox.rows_named_in_payload(
    Receipt.objects.select_related("order", "register").prefetch_related("lines"), "receipt_id"))
def send_receipt_email(message: OutboxMessage, receipt: Receipt | None) -> None:
    if receipt is None:
        raise outbox.SkipDelivery("the receipt is gone")
    subject = f"{SUBJECTS[receipt.purpose]} по заказу №{receipt.order.number}"
    mail = EmailMultiAlternatives(
        subject=subject, body=render_text(receipt), to=[receipt.buyer_contact],
        headers={"Message-ID": f"<receipt-{receipt.uuid}@orderdesk>", "Reply-To": receipt.register.company_email},
    )
    mail.attach_alternative(render_html(receipt), "text/html")
    mail.send()
