"""What the API accepts and returns for orders. Shape and field checks only; decisions live in rules.py."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from ninja import Field
from pydantic import AfterValidator, StringConstraints, field_validator, model_validator

from orderdesk.core.schemas import Schema
from orderdesk.orders.rules import (
    KOPECK,
    MAX_SUM,
    QUANTITY_STEP,
    VAT_RATES,
    Line,
    inn_valid,
    line_problem,
    normalize_phone,
    order_totals,
    sum_fits,
)

MAX_ITEMS = 1000

Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
# Numbers are brought to one written form ("2" and "2.0" are both 2.000), so the same order
# sent twice has the same fingerprint however the site wrote its numbers.
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2), AfterValidator(lambda v: v.quantize(KOPECK))]
Quantity = Annotated[
    Decimal, Field(gt=0, le=1_000_000, max_digits=15, decimal_places=3), AfterValidator(lambda v: v.quantize(QUANTITY_STEP))
]
VatRate = Literal[tuple(VAT_RATES)]  # type: ignore[valid-type]


def _email(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip().lower()
    try:
        validate_email(value)
    except DjangoValidationError:
        raise ValueError("not a valid e-mail address") from None
    return value


def _phone(value: str | None) -> str | None:
    if not value:
        return None
    normalized = normalize_phone(value)
    if normalized is None:
        raise ValueError("not a valid phone number")
    return normalized


def _inn(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    if not inn_valid(value):
        raise ValueError("not a valid INN (10 digits for a company, 12 for a person, with check digits)")
    return value


Email = Annotated[str | None, StringConstraints(max_length=254), AfterValidator(_email)]
Phone = Annotated[str | None, StringConstraints(max_length=30), AfterValidator(_phone)]
Inn = Annotated[str | None, StringConstraints(max_length=12), AfterValidator(_inn)]


class CustomerIn(Schema):
    kind: Literal["person", "company", "sole_trader"] = "person"
    name: Name
    email: Email = None
    phone: Phone = None
    inn: Inn = None
    language: Literal["ru", "en"] = "ru"

    @model_validator(mode="after")
    def reachable(self):
        if not self.email and not self.phone:
            raise ValueError("give the customer's e-mail or phone")
        return self


class ItemIn(Schema):
    sku: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    name: Name
    unit: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)] = "шт"
    quantity: Quantity
    price: Money
    discount: Money = Decimal("0")
    vat_rate: VatRate
    kind: Literal["goods", "service"] = "goods"

    @model_validator(mode="after")
    def discount_within_amount(self):
        if line_problem(Line(self.quantity, self.price, self.discount)):
            raise ValueError("the discount is larger than quantity × price")
        if not sum_fits(self.quantity * self.price):
            raise ValueError(f"quantity × price is larger than {MAX_SUM}")
        return self


def _items_total_within_limit(items: list[ItemIn], delivery_price: Decimal = Decimal("0")) -> None:
    lines = (Line(i.quantity, i.price, i.discount) for i in items)
    if not sum_fits(order_totals(lines, delivery_price).total):
        raise ValueError(f"the order total is larger than {MAX_SUM}")


class DeliveryIn(Schema):
    method: Text = ""
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""
    price: Money = Decimal("0")


class OrderIn(Schema):
    external_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = None
    customer: CustomerIn
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=MAX_ITEMS)]
    delivery: DeliveryIn = DeliveryIn()
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""

    @model_validator(mode="after")
    def total_within_limit(self):
        _items_total_within_limit(self.items, self.delivery.price)
        return self


class ItemsIn(Schema):
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=MAX_ITEMS)]
    expected_version: int | None = None

    @model_validator(mode="after")
    def total_within_limit(self):
        _items_total_within_limit(self.items)
        return self


class StatusIn(Schema):
    status: Annotated[str, StringConstraints(max_length=30)]
    choice: Literal["back", "pay", "issue"] | None = None  # R6's answer, when asked
    register_id: int | None = None  # the cash desk that prints the hand-over receipt; none: an e-receipt


class RemovalMarkIn(Schema):
    marked: bool


# A row id as the database stores it (BIGINT): a larger number is refused as invalid input, not a 500.
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class PurgeIn(Schema):
    order_ids: Annotated[list[RowId], Field(max_length=10_000)] | None = None


class SettingsIn(Schema):
    default_site_status: Annotated[str, StringConstraints(max_length=30)] | None = None
    prepayment_style: Literal["advance", "itemized"] | None = None
    auto_close_enabled: bool | None = None
    auto_close_after_days: Annotated[int, Field(ge=1, le=365)] | None = None


class NotificationsReadIn(Schema):
    ids: Annotated[list[RowId], Field(max_length=10_000)] | None = None


class OrderListFilters(Schema):
    status: Annotated[str, StringConstraints(max_length=30)] | None = None
    payment_status: Literal["not_paid", "partially_paid", "paid", "overpaid", "refunded"] | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    marked: bool = False
    cursor: Annotated[str, StringConstraints(max_length=40)] | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50

    @field_validator("status", "q", "cursor")
    @classmethod
    def no_nul(cls, value: str | None):
        # PostgreSQL cannot compare with a text holding NUL: the caller hears 422, not a 500.
        if value is not None and "\x00" in value:
            raise ValueError("the NUL character is not allowed")
        return value

    @field_validator("created_from", "created_to")
    @classmethod
    def aware(cls, value: datetime | None):
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-11-23T00:00:00+03:00")
        return value


# ---- responses ----


class ErrorOut(Schema):
    code: str
    message: str


class StatusOut(Schema):
    code: str
    name_ru: str
    name_en: str
    position: int
    is_final: bool
    hands_over_goods: bool


class CustomerOut(Schema):
    id: int
    kind: str
    name: str
    email: str
    phone: str
    inn: str


class ItemOut(Schema):
    position: int
    sku: str
    name: str
    unit: str
    quantity: Decimal
    price: Decimal
    discount: Decimal
    amount: Decimal
    vat_rate: str
    kind: str


class OrderSummaryOut(Schema):
    id: int
    number: str
    source: str
    external_id: str | None
    status: str
    status_name: str
    payment_status: str
    customer_name: str
    customer_email: str
    customer_phone: str
    total: Decimal
    paid_amount: Decimal
    deletion_mark: bool
    is_quick: bool
    created_at: datetime


class OrderOut(OrderSummaryOut):
    customer: CustomerOut
    items: list[ItemOut]
    items_total: Decimal
    delivery_price: Decimal
    delivery_method: str
    delivery_address: str
    comment: str
    currency: str
    updated_at: datetime
    version: int
    allowed_statuses: list[str]


class OrderPageOut(Schema):
    results: list[OrderSummaryOut]
    next_cursor: str | None


class EventOut(Schema):
    id: int
    code: str
    text: str
    actor: str
    actor_role: str
    created_at: datetime
    payload: dict


class NotificationOut(Schema):
    id: int
    order_id: int
    order_number: str
    text: str
    created_at: datetime
    read: bool


class SettingsOut(Schema):
    default_site_status: str
    prepayment_style: str
    auto_close_enabled: bool
    auto_close_after_days: int
