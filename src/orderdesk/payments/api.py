"""HTTP face of the cash desk, documents, refunds, receipts and the FR directory."""

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Router, Status

from orderdesk.core.errors import NotFound
from orderdesk.core.rights import Permission
from orderdesk.fiscal import services as fiscal_services
from orderdesk.fiscal.models import Receipt, Register
from orderdesk.fiscal.render import render_html, render_text
from orderdesk.fiscal.rules import PayMethod
from orderdesk.orders import services as order_services
from orderdesk.orders.api import ERRORS, summary
from orderdesk.payments import rules, services
from orderdesk.payments.models import Document
from orderdesk.payments.schemas import (
    DocumentIn,
    DocumentOut,
    DocumentUpdateIn,
    MoneyOut,
    PaymentIn,
    QuickSaleIn,
    ReceiptOut,
    ReceiptTextOut,
    RefundIn,
    RegisterIn,
    RegisterOut,
    ShiftOut,
)

money_router = Router(tags=["payments"])
documents_router = Router(tags=["documents"])
cash_desk_router = Router(tags=["cash desk"])
receipts_router = Router(tags=["receipts"])
registers_router = Router(tags=["fiscal registers"])


def receipt_out(receipt: Receipt) -> dict:
    fields = {name: getattr(receipt, name) for name in ReceiptOut.model_fields if name not in ("lines",)}
    return {**fields, "lines": fiscal_services.lines_of(receipt)}


def money_out(request: HttpRequest, result: services.MoneyResult) -> dict:
    order = order_services.as_seen_by(request.auth, result.order)  # as committed, settled in full or not
    return {"order": summary(order), "document": result.document,
            "receipts": [receipt_out(r) for r in result.receipts]}


@money_router.post("/{int:order_id}/payments", response={201: MoneyOut, **ERRORS},
                   summary="Take a payment at the cash desk")
def take_payment(request: HttpRequest, order_id: int, body: PaymentIn):
    """R3–R9. A partly paid order paid its whole debt answers 409 `confirmation_required`
    (question `settle_in_full`, choices yes/no) until the call is repeated with `settle`."""
    result = services.take_payment(
        request.auth, order_id, register_id=body.register_id, amount=body.amount, method=PayMethod(body.method),
        settle=rules.SettleChoice(body.settle) if body.settle else None, idempotency_key=body.idempotency_key,
    )
    return Status(201, money_out(request, result))


@money_router.post("/{int:order_id}/refunds", response={201: MoneyOut, **ERRORS}, summary="Refund money")
def refund(request: HttpRequest, order_id: int, body: RefundIn):
    result = services.refund(request.auth, order_id, amount=body.amount, method=PayMethod(body.method),
                             register_id=body.register_id, idempotency_key=body.idempotency_key)
    return Status(201, money_out(request, result))


@money_router.get("/{int:order_id}/documents", response={200: list[DocumentOut], **ERRORS},
                  summary="Documents based on the order")
def order_documents(request: HttpRequest, order_id: int):
    request.auth.require(Permission.DOCUMENTS)
    return list(order_services.get_order(request.auth, order_id).documents.all())


@money_router.post("/{int:order_id}/documents", response={201: DocumentOut, **ERRORS},
                   summary="Create a document based on the order")
def create_document(request: HttpRequest, order_id: int, body: DocumentIn):
    return Status(201, services.create_document(request.auth, order_id, body.kind))


@money_router.get("/{int:order_id}/receipts", response={200: list[ReceiptOut], **ERRORS},
                  summary="The order's fiscal receipts")
def order_receipts(request: HttpRequest, order_id: int):
    order = order_services.get_order(request.auth, order_id)
    return [receipt_out(r) for r in order.receipts.prefetch_related("lines")]


@documents_router.put("/{int:document_id}", response={200: DocumentOut, **ERRORS}, summary="Edit a draft")
def update_document(request: HttpRequest, document_id: int, body: DocumentUpdateIn):
    return services.update_document(request.auth, document_id, **body.model_dump(exclude_unset=True))


@documents_router.post("/{int:document_id}/post", response={200: DocumentOut, **ERRORS}, summary="Post and close")
def post_document(request: HttpRequest, document_id: int):
    services.post_document(request.auth, document_id)
    return Document.objects.get(pk=document_id)


@documents_router.post("/{int:document_id}/unpost", response={200: DocumentOut, **ERRORS}, summary="Cancel posting")
def unpost_document(request: HttpRequest, document_id: int):
    return services.unpost_document(request.auth, document_id)


@cash_desk_router.post("/quick-sales", response={201: MoneyOut, **ERRORS}, summary="Sell with no order (R1, R2)")
def quick_sale(request: HttpRequest, body: QuickSaleIn):
    result = services.quick_sale(request.auth, register_id=body.register_id, items=body.items,
                                 method=PayMethod(body.method), customer=body.customer,
                                 idempotency_key=body.idempotency_key)
    return Status(201, money_out(request, result))


@receipts_router.get("/{int:receipt_id}", response={200: ReceiptTextOut, **ERRORS}, summary="A receipt as printed")
def get_receipt(request: HttpRequest, receipt_id: int):
    receipt = Receipt.objects.filter(pk=receipt_id).select_related("order", "register").first()
    if receipt is None or not order_services.visible_orders(request.auth).filter(pk=receipt.order_id).exists():
        raise NotFound(_("No such receipt."), code="receipt_not_found")
    return {**receipt_out(receipt), "text": render_text(receipt), "html": render_html(receipt)}


def register_out(register: Register) -> dict:
    return {**{name: getattr(register, name) for name in RegisterOut.model_fields if name != "shift_open"},
            "shift_open": fiscal_services.open_shift_of(register) is not None}


@registers_router.get("", response={200: list[RegisterOut], **ERRORS}, summary="FR directory")
def list_registers(request: HttpRequest):
    request.auth.require(Permission.ORDERS_READ_ALL)
    return [register_out(r) for r in Register.objects.order_by("id")]


@registers_router.post("", response={201: RegisterOut, **ERRORS}, summary="Add a register")
def create_register(request: HttpRequest, body: RegisterIn):
    request.auth.require(Permission.REGISTERS_MANAGE)
    return Status(201, register_out(Register.objects.create(**body.model_dump())))


@registers_router.put("/{int:register_id}", response={200: RegisterOut, **ERRORS}, summary="Edit a register card")
def update_register(request: HttpRequest, register_id: int, body: RegisterIn):
    request.auth.require(Permission.REGISTERS_MANAGE)
    with transaction.atomic():
        register = Register.objects.select_for_update(no_key=True).filter(pk=register_id).first()
        if register is None:
            raise NotFound(_("No such cash desk."), code="register_not_found")
        for name, value in body.model_dump().items():
            setattr(register, name, value)
        register.save()
    return register_out(register)


@registers_router.post("/{int:register_id}/shift/open", response={201: ShiftOut, **ERRORS}, summary="Open the shift")
def open_shift(request: HttpRequest, register_id: int):
    return Status(201, services.open_shift(request.auth, register_id))


@registers_router.get("/{int:register_id}/shift/x-report", response={200: dict, **ERRORS}, summary="X report")
def x_report(request: HttpRequest, register_id: int):
    return services.x_report(request.auth, register_id)


@registers_router.post("/{int:register_id}/shift/close", response={200: dict, **ERRORS},
                       summary="Close the shift (Z report)")
def close_shift(request: HttpRequest, register_id: int):
    return services.close_shift(request.auth, register_id)

