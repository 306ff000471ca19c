"""HTTP face of payment links (R11) and the acquirer's notifications webhook."""

import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import segno
from django.http import HttpRequest
from ninja import Field, Router, Status
from pydantic import AfterValidator, StringConstraints

from orderdesk.acquiring import services
from orderdesk.acquiring.models import PaymentLink
from orderdesk.core.rights import Permission
from orderdesk.core.schemas import Schema
from orderdesk.orders import services as order_services
from orderdesk.orders.api import ERRORS
from orderdesk.orders.rules import KOPECK
from orderdesk.payments.api import money_out
from orderdesk.payments.schemas import MoneyOut

links_router = Router(tags=["online payments"])
webhook_router = Router(tags=["online payments"])

PositiveMoney = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2), AfterValidator(lambda v: v.quantize(KOPECK))]


class LinkIn(Schema):
    amount: PositiveMoney | None = None  # none: the whole debt
    method: Literal["online", "sbp"] = "online"


class LinkOut(Schema):
    id: int
    order_id: int
    amount: Decimal
    method: str
    state: str
    confirmation_url: str
    qr_svg: str  # for SBP at the cash desk: the link as a QR code to scan
    flag: str
    created_at: datetime
    paid_at: datetime | None


class LinkRefundIn(Schema):
    amount: PositiveMoney
    idempotency_key: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]


def link_out(link: PaymentLink) -> dict:
    qr = segno.make(link.confirmation_url, error="m").svg_inline(scale=4) if link.confirmation_url else ""
    return {"id": link.pk, "order_id": link.order_id, "amount": link.amount, "method": link.method, "state": link.state,
            "confirmation_url": link.confirmation_url, "qr_svg": qr, "flag": link.flag, "created_at": link.created_at,
            "paid_at": link.paid_at}


@links_router.post("/orders/{int:order_id}/payment-links", response={201: LinkOut, **ERRORS},
                   summary="Create a payment link (Payment tab, «Online»)")
def create_link(request: HttpRequest, order_id: int, body: LinkIn):
    return Status(201, link_out(services.create_link(request.auth, order_id, amount=body.amount, method=body.method)))


@links_router.get("/orders/{int:order_id}/payment-links", response={200: list[LinkOut], **ERRORS},
                  summary="The order's payment links")
def order_links(request: HttpRequest, order_id: int):
    request.auth.require(Permission.DOCUMENTS)
    return [link_out(link) for link in order_services.get_order(request.auth, order_id).payment_links.all()]


@links_router.post("/payment-links/{int:link_id}/email", response={200: LinkOut, **ERRORS},
                   summary="E-mail the link to the customer")
def email_link(request: HttpRequest, link_id: int):
    return link_out(services.email_link(request.auth, link_id))


@links_router.post("/payment-links/{int:link_id}/refunds", response={201: MoneyOut, **ERRORS},
                   summary="Refund an online payment through the acquirer")
def refund_link(request: HttpRequest, link_id: int, body: LinkRefundIn):
    return Status(201, money_out(request, services.refund_online(request.auth, link_id, body.amount, body.idempotency_key)))


@webhook_router.post("/yookassa", auth=None, response={200: dict, 403: dict, 503: dict},
                     summary="Acquirer notifications")
def yookassa_notification(request: HttpRequest):
    """Accepted only from the configured networks; then only what re-reading the payment from the
    acquirer says is applied. Answers 200 to anything it took, so the acquirer stops resending; 503
    when the payment could not be re-read, so the acquirer sends the notification again."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = {}
    outcome = services.handle_notification(request.META.get("REMOTE_ADDR"), body)
    if outcome == "untrusted_source":
        return Status(403, {"code": "untrusted_source", "message": "Notifications are accepted from the acquirer only."})
    if outcome == "reread_failed":
        return Status(503, {"code": "reread_failed", "outcome": outcome,
                            "message": "The payment could not be re-read from the acquirer; send it again."})
    return {"outcome": outcome}
