"""Which fiscal receipts a change to an order owes, and what they say (R1–R9, R12, B2–B5).

Pure: plain values in, receipt drafts out. `receipts_owed()` is the one decision; the composers
below it build each kind of receipt to FFD 1.2 (fiscal.md §1–§2). Money is Decimal in kopecks;
every draft's lines, payments and VAT add up to the kopeck.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from orderdesk.fiscal.codes import Measure, PaymentForm, PaymentMethod, Settlement, Subject, Vat

KOPECK = Decimal("0.01")
ZERO = Decimal("0.00")


# ---- VAT (B13: the rate in force on the settlement date; rates are data) ----

# The general rate by the date it took effect: 20 % from 2019, 22 % from 2026 (425-ФЗ).
GENERAL_RATE_SCHEDULE: tuple[tuple[date, int], ...] = ((date(2019, 1, 1), 20), (date(2026, 1, 1), 22))
GENERAL_RATE_CODES = frozenset({"20", "22"})

NORMAL_VAT = {None: Vat.NONE, 0: Vat.VAT0, 5: Vat.VAT5, 7: Vat.VAT7, 10: Vat.VAT10, 20: Vat.VAT20, 22: Vat.VAT22}
CALCULATED_VAT = {None: Vat.NONE, 0: Vat.VAT0, 5: Vat.VAT105, 7: Vat.VAT107, 10: Vat.VAT110, 20: Vat.VAT120, 22: Vat.VAT122}
VAT_PERCENT = {
    Vat.NONE: None, Vat.VAT0: 0, Vat.VAT5: 5, Vat.VAT7: 7, Vat.VAT10: 10, Vat.VAT20: 20, Vat.VAT22: 22,
    Vat.VAT105: 5, Vat.VAT107: 7, Vat.VAT110: 10, Vat.VAT120: 20, Vat.VAT122: 22,
}


def general_rate_on(day: date, schedule: Sequence[tuple[date, int]] = GENERAL_RATE_SCHEDULE) -> int:
    rate = schedule[0][1]
    for since, value in schedule:
        if day >= since:
            rate = value
    return rate


def percent_on(item_rate: str, day: date) -> int | None:
    """An item's rate as a percentage on a day: the general rate follows the schedule."""
    if item_rate == "none":
        return None
    if item_rate in GENERAL_RATE_CODES:
        return general_rate_on(day)
    return int(item_rate)


def vat_code(item_rate: str, day: date, *, calculated: bool) -> Vat:
    """Tag 1199: the normal rate for a settlement of goods, the calculated x/(100+x) for money
    taken before the goods are handed over (НК art. 164 p. 4)."""
    return (CALCULATED_VAT if calculated else NORMAL_VAT)[percent_on(item_rate, day)]


def vat_amount(amount: Decimal, vat: Vat) -> Decimal:
    """Tag 1200. Prices include VAT, so the register extracts it: sum × r / (100 + r), half up."""
    percent = VAT_PERCENT[vat]
    if not percent:
        return ZERO
    return (amount * percent / (100 + percent)).quantize(KOPECK, rounding=ROUND_HALF_UP)


# ---- the facts a decision needs ----


class PayMethod(StrEnum):
    CASH = "cash"
    CARD = "card"
    SBP = "sbp"
    BANK_TRANSFER = "bank_transfer"
    ONLINE = "online"


class PayerKind(StrEnum):
    PERSON = "person"
    COMPANY = "company"
    SOLE_TRADER = "sole_trader"


class Purpose(StrEnum):
    ADVANCE = "advance"  # 1214=3, or 1=/2= with items in the prepayment style (B2a)
    FINAL = "final"  # 1214=4 at hand-over, offsetting what was paid before
    CREDIT = "credit"  # 1214=5/6: handed over with a debt (B3)
    CREDIT_PAYMENT = "credit_payment"  # 1214=7: the debt paid later
    SALE = "sale"  # 1214=4: a cash-desk sale with no order (R1)
    ADVANCE_REFUND = "advance_refund"  # возврат прихода of money taken before hand-over
    SALE_REFUND = "sale_refund"  # возврат прихода after hand-over


class PrepaymentStyle(StrEnum):
    ADVANCE = "advance"  # «Аванс», one line «Оплата заказа №N» (the seeds; default)
    ITEMIZED = "itemized"  # «Предоплата 100%» / «Предоплата» with the real items (fiscal.md §0.5)


@dataclass(frozen=True)
class Item:
    name: str
    quantity: Decimal
    price: Decimal
    amount: Decimal
    vat_rate: str  # the order line's code: "none", "0", "5", "7", "10", "20", "22"
    kind: str = "goods"  # goods | service
    unit: str = "шт"


@dataclass(frozen=True)
class Settings:
    itemized_final: bool = True  # R12: itemized by default, aggregated by choice on the FR card
    prepayment_style: PrepaymentStyle = PrepaymentStyle.ADVANCE


@dataclass(frozen=True)
class OrderState:
    """The order as fiscal rules see it just before the change."""

    number: str
    items: tuple[Item, ...]
    total: Decimal
    paid: Decimal = ZERO  # money in minus money back, every channel
    paid_without_receipt: Decimal = ZERO  # of which, B5 bank transfers from companies
    handed_over: bool = False  # a final or credit receipt exists: the goods are out
    payer: PayerKind = PayerKind.PERSON
    # B13: money going back, or a debt paid later, keeps the VAT of the day it was first settled.
    advance_day: date | None = None  # the last advance received
    handed_over_day: date | None = None

    @property
    def debt(self) -> Decimal:
        return max(self.total - self.paid, ZERO)


@dataclass(frozen=True)
class Payment:
    amount: Decimal
    method: PayMethod
    settle_in_full: bool = False  # R8 [Yes]: this payment closes the order and hands it over


@dataclass(frozen=True)
class HandOver:
    """The order gets status «Issued» (R3, R5, R6 [Issue order])."""


@dataclass(frozen=True)
class Refund:
    amount: Decimal
    method: PayMethod


@dataclass(frozen=True)
class QuickSale:
    method: PayMethod


Change = Payment | HandOver | Refund | QuickSale


@dataclass(frozen=True)
class Line:
    name: str
    quantity: Decimal
    price: Decimal
    amount: Decimal
    payment_method: PaymentMethod
    subject: Subject
    vat: Vat
    vat_amount: Decimal
    measure: Measure = Measure.PIECE


@dataclass(frozen=True)
class Draft:
    purpose: Purpose
    settlement: Settlement
    lines: tuple[Line, ...]
    payments: dict[PaymentForm, Decimal] = field(default_factory=dict)

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


# ---- the decision ----


def receipt_required(method: PayMethod, payer: PayerKind) -> bool:
    """B5: a bank transfer from a company or sole trader is outside 54-ФЗ; from a person it is not."""
    return not (method == PayMethod.BANK_TRANSFER and payer != PayerKind.PERSON)


def payment_form(method: PayMethod) -> PaymentForm:
    return PaymentForm.CASH if method == PayMethod.CASH else PaymentForm.ELECTRONIC


def receipts_owed(state: OrderState, change: Change, day: date, settings: Settings = Settings()) -> list[Draft]:
    """The receipts one change owes, composed. Empty when the law wants none (B5)."""
    match change:
        case QuickSale(method=method):
            return [_final(state, settings, day, Purpose.SALE, {payment_form(method): state.total})]
        case Payment(amount=amount, method=method, settle_in_full=settle):
            if not receipt_required(method, state.payer):
                return []
            if state.handed_over:
                return [credit_payment_receipt(state, amount, method, state.handed_over_day or day)]
            if settle:
                return [_final(state, settings, day, Purpose.FINAL, {
                    PaymentForm.PREPAYMENT: min(state.paid, state.total), payment_form(method): amount})]
            return [prepayment_receipt(state, amount, method, day, settings.prepayment_style)]
        case HandOver():
            return hand_over_receipts(state, day, settings)
        case Refund(amount=amount, method=method):
            if not receipt_required(method, state.payer):
                return []
            return [refund_receipt(state, amount, method, day, settings.prepayment_style)]
    raise TypeError(f"not a change: {change!r}")


def hand_over_receipts(state: OrderState, day: date, settings: Settings) -> list[Draft]:
    """R3/R5: «Полный расчёт» offsetting what was paid; B3: with a debt, partial settlement and credit."""
    offset = min(state.paid, state.total)
    if state.paid_without_receipt >= state.total:
        return []  # B5: a deal settled wholly by a company's bank transfer owes no receipt
    if offset == state.total:
        return [_final(state, settings, day, Purpose.FINAL, {PaymentForm.PREPAYMENT: offset})]
    method = PaymentMethod.PARTIAL_PAYMENT_AND_CREDIT if offset > 0 else PaymentMethod.CREDIT_TRANSFER
    lines = tuple(_item_line(item, item.amount, method, day, calculated=False) for item in state.items)
    payments = {PaymentForm.PREPAYMENT: offset, PaymentForm.CREDIT: state.total - offset}
    return [_draft(Purpose.CREDIT, Settlement.INCOME, lines, payments)]


# ---- composers ----


def prepayment_receipt(state: OrderState, amount: Decimal, method: PayMethod, day: date,
                       style: PrepaymentStyle = PrepaymentStyle.ADVANCE) -> Draft:
    """R3/R4/R7/R9/R11: one receipt per advance. «Аванс»: one line «Оплата заказа №N» per VAT rate
    of the order, at the calculated rate. Itemized style: the items, their shares of the sum."""
    payments = {payment_form(method): amount}
    if style == PrepaymentStyle.ITEMIZED:
        whole = state.paid == 0 and amount == state.total
        item_method = PaymentMethod.FULL_PREPAYMENT if whole else PaymentMethod.PREPAYMENT
        lines = _item_share_lines(state, amount, item_method, day, calculated=True)
        return _draft(Purpose.ADVANCE, Settlement.INCOME, lines, payments)
    lines = _order_payment_lines(state, amount, f"Оплата заказа №{state.number}", PaymentMethod.ADVANCE, day,
                                 calculated=True)
    return _draft(Purpose.ADVANCE, Settlement.INCOME, lines, payments)


def credit_payment_receipt(state: OrderState, amount: Decimal, method: PayMethod, day: date) -> Draft:
    """B3: a payment of the debt of goods already handed over, whatever the channel."""
    lines = _order_payment_lines(state, amount, f"Оплата долга по заказу №{state.number}",
                                 PaymentMethod.CREDIT_PAYMENT, day, calculated=False)
    return _draft(Purpose.CREDIT_PAYMENT, Settlement.INCOME, lines, {payment_form(method): amount})


def refund_receipt(state: OrderState, amount: Decimal, method: PayMethod, day: date,
                   style: PrepaymentStyle = PrepaymentStyle.ADVANCE) -> Draft:
    """B4: возврат прихода mirroring what is refunded — the prepayment as it was printed before
    hand-over, the items (their shares of the sum) after it; at the VAT of the original settlement."""
    payments = {payment_form(method): amount}
    if not state.handed_over:
        vat_day = state.advance_day or day
        if style == PrepaymentStyle.ITEMIZED:
            whole = amount == state.paid == state.total
            item_method = PaymentMethod.FULL_PREPAYMENT if whole else PaymentMethod.PREPAYMENT
            lines = _item_share_lines(state, amount, item_method, vat_day, calculated=True)
        else:
            lines = _order_payment_lines(state, amount, f"Оплата заказа №{state.number}", PaymentMethod.ADVANCE,
                                         vat_day, calculated=True)
        return _draft(Purpose.ADVANCE_REFUND, Settlement.INCOME_REFUND, lines, payments)
    lines = _item_share_lines(state, amount, PaymentMethod.FULL_PAYMENT, state.handed_over_day or day,
                              calculated=False)
    return _draft(Purpose.SALE_REFUND, Settlement.INCOME_REFUND, lines, payments)


def _item_share_lines(state: OrderState, amount: Decimal, method: PaymentMethod, day: date, *,
                      calculated: bool) -> tuple[Line, ...]:
    """The order's items, each with its share of the sum (price and quantity as sold)."""
    shares = split(amount, [item.amount for item in state.items])
    return tuple(_item_line(item, share, method, day, calculated=calculated)
                 for item, share in zip(state.items, shares) if share)


def _final(state: OrderState, settings: Settings, day: date, purpose: Purpose,
           payments: dict[PaymentForm, Decimal]) -> Draft:
    if settings.itemized_final:
        lines = tuple(_item_line(item, item.amount, PaymentMethod.FULL_PAYMENT, day, calculated=False)
                      for item in state.items)
    else:
        lines = _aggregated_lines(state, day)
    return _draft(purpose, Settlement.INCOME, lines, payments)


def _aggregated_lines(state: OrderState, day: date) -> tuple[Line, ...]:
    """R12 aggregated: one line «Оплата заказа №N» per VAT rate and subject of the order."""
    groups: dict[tuple[Vat, Subject], Decimal] = {}
    for item in state.items:
        key = (vat_code(item.vat_rate, day, calculated=False), _subject(item))
        groups[key] = groups.get(key, ZERO) + item.amount
    name = f"Оплата заказа №{state.number}"
    return tuple(
        Line(name, Decimal("1"), amount, amount, PaymentMethod.FULL_PAYMENT, subject, vat, vat_amount(amount, vat))
        for (vat, subject), amount in groups.items()
    )


def _order_payment_lines(state: OrderState, amount: Decimal, name: str, method: PaymentMethod, day: date, *,
                         calculated: bool) -> tuple[Line, ...]:
    """One «payment» line (1212=10) per VAT rate of the order, the sum split by the rates' weight."""
    weights: dict[Vat, Decimal] = {}
    for item in state.items:
        vat = vat_code(item.vat_rate, day, calculated=calculated)
        weights[vat] = weights.get(vat, ZERO) + item.amount
    if not weights or sum(weights.values()) == 0:
        weights = {vat_code("22", day, calculated=calculated): Decimal("1")}
    shares = split(amount, list(weights.values()))
    return tuple(
        Line(name, Decimal("1"), share, share, method, Subject.PAYMENT, vat, vat_amount(share, vat))
        for vat, share in zip(weights, shares) if share
    )


MEASURES = {"шт": Measure.PIECE, "pcs": Measure.PIECE, "г": Measure.GRAM, "кг": Measure.KILOGRAM,
            "т": Measure.TON, "м": Measure.METER, "л": Measure.LITER, "мл": Measure.MILLILITER,
            "ч": Measure.HOUR, "час": Measure.HOUR, "сут": Measure.DAY}


def _subject(item: Item) -> Subject:
    return Subject.SERVICE if item.kind == "service" else Subject.GOODS


def _item_line(item: Item, amount: Decimal, method: PaymentMethod, day: date, *, calculated: bool) -> Line:
    vat = vat_code(item.vat_rate, day, calculated=calculated)
    return Line(item.name, item.quantity, item.price, amount, method, _subject(item), vat, vat_amount(amount, vat),
                MEASURES.get(item.unit.strip().lower().rstrip("."), Measure.PIECE))


def _draft(purpose: Purpose, settlement: Settlement, lines: tuple[Line, ...],
           payments: dict[PaymentForm, Decimal]) -> Draft:
    draft = Draft(purpose, settlement, lines, {form: s for form, s in payments.items() if s})
    if sum(draft.payments.values(), ZERO) != draft.total:
        raise ValueError(f"receipt payments {draft.payments} do not add up to its lines {draft.total}")
    return draft


def split(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split a sum into kopeck shares proportional to the weights; the shares add up exactly
    (largest remainder goes first)."""
    total_weight = sum(weights, ZERO)
    if total_weight <= 0:
        return [amount] + [ZERO] * (len(weights) - 1) if weights else []
    kopecks = int((amount / KOPECK).to_integral_value())
    exact = [Decimal(kopecks) * w / total_weight for w in weights]
    floors = [int(e) for e in exact]
    rest = kopecks - sum(floors)
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - floors[i], reverse=True)
    for i in by_remainder[:rest]:
        floors[i] += 1
    return [Decimal(k) * KOPECK for k in floors]
