from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from ninja import Field
from pydantic import AfterValidator, StringConstraints

from orderdesk.core.schemas import Schema
from orderdesk.orders.rules import KOPECK
from orderdesk.orders.schemas import CustomerIn, ItemIn, Money, OrderSummaryOut

PositiveMoney = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2), AfterValidator(lambda v: v.quantize(KOPECK))]
Key = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
CashDeskMethod = Literal["cash", "card", "sbp"]
AnyMethod = Literal["cash", "card", "sbp", "bank_transfer", "online"]


class PaymentIn(Schema):
    register_id: int
    amount: PositiveMoney
    method: CashDeskMethod
    settle: Literal["yes", "no"] | None = None  # R8's answer, when asked
    idempotency_key: Key | None = None


class RefundIn(Schema):
    amount: PositiveMoney
    method: AnyMethod
    register_id: int | None = None  # none: the online register sends an e-receipt
    idempotency_key: Key | None = None


class QuickSaleIn(Schema):
    register_id: int
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=1000)]
    method: CashDeskMethod
    customer: CustomerIn | None = None
    idempotency_key: Key | None = None


class DocumentIn(Schema):
    kind: Literal["cash_receipt", "noncash_receipt", "refund", "sale"]


class DocumentUpdateIn(Schema):
    amount: Money | None = None
    method: AnyMethod | None = None
    payer_kind: Literal["person", "company", "sole_trader"] | None = None
    register_id: int | None = None
    comment: Annotated[str, StringConstraints(max_length=500)] | None = None


class DocumentOut(Schema):
    id: int
    number: str
    kind: str
    order_id: int
    state: str
    amount: Decimal
    method: str
    payer_kind: str
    register_id: int | None
    comment: str
    created_at: datetime
    created_by: str
    posted_at: datetime | None


class ReceiptLineOut(Schema):
    position: int
    name: str
    quantity: Decimal
    price: Decimal
    amount: Decimal
    payment_method: int
    subject: int
    vat: int
    vat_amount: Decimal
    measure: int


class ReceiptOut(Schema):
    id: int
    order_id: int
    purpose: str
    settlement: int
    total: Decimal
    cash: Decimal
    electronic: Decimal
    prepayment: Decimal
    credit: Decimal
    taxation: str
    electronically: bool
    buyer_contact: str
    state: str
    attempts: int
    last_error: str
    register_id: int
    fn_number: str
    fd_number: int | None
    fiscal_sign: str
    shift_number: int | None
    registered_at: datetime | None
    qr_string: str
    lines: list[ReceiptLineOut]


class ReceiptTextOut(ReceiptOut):
    text: str
    html: str


class MoneyOut(Schema):
    order: OrderSummaryOut
    document: DocumentOut
    receipts: list[ReceiptOut]


class RegisterIn(Schema):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    driver: Literal["emulator", "atol_web", "atol_online"] = "emulator"
    connection: dict = {}
    is_online: bool = False
    itemized_final: bool = True
    taxation: Literal["osn", "usn_income", "usn_income_outcome", "esn", "patent"] = "osn"
    company_inn: Annotated[str, StringConstraints(pattern=r"^(\d{10}|\d{12})$")]
    company_email: Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]
    payment_address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    active: bool = True


class RegisterOut(Schema):
    id: int
    name: str
    driver: str
    is_online: bool
    itemized_final: bool
    taxation: str
    company_inn: str
    company_email: str
    payment_address: str
    active: bool
    shift_open: bool


class ShiftOut(Schema):
    register_id: int
    number: int
    opened_at: datetime
    opened_by: str
