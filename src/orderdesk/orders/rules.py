"""Pure decisions about orders: statuses and their transitions, totals, customer data checks.

No Django and no I/O here: every function takes plain values and returns plain values, so the
rules of SPEC.md (S3, S5, S6, S9, B1) can be read and tested on their own.
"""

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

KOPECK = Decimal("0.01")
QUANTITY_STEP = Decimal("0.001")
# The largest sum a money column (14 digits, 2 after the point) holds.
MAX_SUM = Decimal("999999999999.99")


class LabeledEnum(StrEnum):
    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class StatusCode(LabeledEnum):
    PENDING_APPROVAL = "pending_approval"
    AGREED = "agreed"
    SHIPPED = "shipped"
    ISSUED = "issued"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class PaymentStatus(LabeledEnum):
    NOT_PAID = "not_paid"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    OVERPAID = "overpaid"  # more came in than the order costs: a person must refund the surplus
    REFUNDED = "refunded"  # money came in and all of it went back


def payment_status(total: Decimal, paid_in: Decimal, paid_out: Decimal) -> PaymentStatus:
    """S7: the payment status follows from the order total and its posted payments and refunds."""
    paid = paid_in - paid_out
    if paid_in > 0 and paid <= 0:
        return PaymentStatus.REFUNDED
    if paid <= 0:
        return PaymentStatus.NOT_PAID
    if paid < total:
        return PaymentStatus.PARTIALLY_PAID
    if paid == total:
        return PaymentStatus.PAID
    return PaymentStatus.OVERPAID


class OrderSource(LabeledEnum):
    SITE = "site"
    MANAGER = "manager"
    CASH_DESK = "cash_desk"
    ONE_C = "1c"


class ItemKind(LabeledEnum):
    GOODS = "goods"
    SERVICE = "service"


# The rates an order line may carry (FFD tag 1199 without the calculated ones, which only
# prepayment receipts use). 20 stays for orders agreed before 2026; 5 and 7 are the USN rates.
VAT_RATES: dict[str, Decimal | None] = {
    "none": None,
    "0": Decimal("0"),
    "5": Decimal("5"),
    "7": Decimal("7"),
    "10": Decimal("10"),
    "20": Decimal("20"),
    "22": Decimal("22"),
}
VAT_RATE_CHOICES = [(code, "без НДС" if rate is None else f"{code}%") for code, rate in VAT_RATES.items()]


# S3: placed → agreed → paid → shipped/issued → closed. Paid is a payment status, not a step.
# Shipped may step back to agreed when its shipment document is un-posted; a cancelled order may be
# restored to approval or closed (B4 adds: only once its advances are refunded).
TRANSITIONS: dict[StatusCode, frozenset[StatusCode]] = {
    StatusCode.PENDING_APPROVAL: frozenset({StatusCode.AGREED, StatusCode.CANCELLED}),
    StatusCode.AGREED: frozenset(
        {StatusCode.PENDING_APPROVAL, StatusCode.SHIPPED, StatusCode.ISSUED, StatusCode.CANCELLED}
    ),
    StatusCode.SHIPPED: frozenset({StatusCode.AGREED, StatusCode.ISSUED, StatusCode.CLOSED, StatusCode.CANCELLED}),
    StatusCode.ISSUED: frozenset({StatusCode.CLOSED}),
    StatusCode.CLOSED: frozenset(),
    StatusCode.CANCELLED: frozenset({StatusCode.PENDING_APPROVAL, StatusCode.CLOSED}),
}

# Statuses whose orders may no longer have their items changed: the goods are out or the order is over.
ITEMS_FROZEN_IN = frozenset({StatusCode.SHIPPED, StatusCode.ISSUED, StatusCode.CLOSED, StatusCode.CANCELLED})


def transition_allowed(current: str, target: str) -> bool:
    try:
        return StatusCode(target) in TRANSITIONS[StatusCode(current)]
    except ValueError:
        return False


def allowed_targets(current: str) -> list[str]:
    try:
        targets = TRANSITIONS[StatusCode(current)]
    except ValueError:
        return []
    return [code.value for code in StatusCode if code in targets]


def items_editable(status: str) -> bool:
    return status not in ITEMS_FROZEN_IN


@dataclass(frozen=True)
class Line:
    quantity: Decimal
    price: Decimal
    discount: Decimal = Decimal("0")


def line_amount(line: Line) -> Decimal:
    """quantity × price, rounded half up to the kopeck, less the line's discount."""
    return ((line.quantity * line.price).quantize(KOPECK, rounding=ROUND_HALF_UP) - line.discount).quantize(KOPECK)


def line_problem(line: Line) -> str | None:
    """Why a line cannot be accepted, or None. Schema checks catch signs; this catches sense."""
    if line.discount > (line.quantity * line.price).quantize(KOPECK, rounding=ROUND_HALF_UP):
        return "discount_exceeds_amount"
    return None


@dataclass(frozen=True)
class Totals:
    items_total: Decimal
    delivery_price: Decimal
    total: Decimal


def order_totals(lines: Iterable[Line], delivery_price: Decimal = Decimal("0")) -> Totals:
    items_total = sum((line_amount(line) for line in lines), Decimal("0.00"))
    delivery = delivery_price.quantize(KOPECK)
    return Totals(items_total=items_total, delivery_price=delivery, total=items_total + delivery)


def sum_fits(amount: Decimal) -> bool:
    return amount <= MAX_SUM


def intake_fingerprint(body: dict) -> str:
    """The same order sent twice gives the same fingerprint however its JSON was formatted."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def search_text(*parts: str) -> str:
    return " ".join(p for p in parts if p).casefold()


def search_needle(query: str) -> str:
    return query.strip().casefold()


_PHONE_NOISE = re.compile(r"[\s()\-.]")


def normalize_phone(raw: str) -> str | None:
    """+7 and ten digits for Russian numbers written any usual way; other countries in E.164; None if not a phone."""
    digits = _PHONE_NOISE.sub("", raw.strip())
    if not digits.isascii():  # str.isdigit() also accepts full-width and superscript digits
        return None
    if digits.startswith("+"):
        body = digits[1:]
        if body.startswith("7") and len(body) != 11:  # +7 numbers have ten digits after the code
            return None
        return digits if body.isdigit() and 10 <= len(body) <= 15 else None
    if not digits.isdigit():
        return None
    if len(digits) == 11 and digits[0] in "78":
        return "+7" + digits[1:]
    if len(digits) == 10 and digits[0] == "9":
        return "+7" + digits
    return None


_INN_10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN_12_WEIGHTS_1 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN_12_WEIGHTS_2 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def _inn_check_digit(digits: list[int], weights: tuple[int, ...]) -> int:
    return sum(d * w for d, w in zip(digits, weights)) % 11 % 10


def inn_valid(inn: str) -> bool:
    """INN check digits as the Federal Tax Service defines them: 10 digits for a company, 12 for a person."""
    if not (inn.isascii() and inn.isdigit()) or len(inn) not in (10, 12):
        return False
    digits = [int(c) for c in inn]
    if len(inn) == 10:
        return _inn_check_digit(digits, _INN_10_WEIGHTS) == digits[9]
    return (
        _inn_check_digit(digits, _INN_12_WEIGHTS_1) == digits[10]
        and _inn_check_digit(digits, _INN_12_WEIGHTS_2) == digits[11]
    )


def changes(before: dict, after: dict) -> dict[str, list]:
    """{field: [before, after]} for the fields that differ; what the history shows."""
    return {key: [before.get(key), after.get(key)] for key in sorted(before.keys() | after.keys()) if before.get(key) != after.get(key)}
