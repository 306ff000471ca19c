"""Money for orders: the cash desk (R1–R9, B8), documents «based on» an order (S7, S8), refunds
(B4), hand-over with its receipts (R3, R5, R6, B3) and auto-close (R10).

Each use case is one transaction: lock the order, decide by the rules, write the document, the
ledger entry, the receipts it owes and the events — all or nothing.
"""

import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from orderdesk.acquiring.base import AcquirerPayment
from orderdesk.acquiring.sandbox import acquirer
from orderdesk.core.actors import SYSTEM, Actor
from orderdesk.core.errors import ConfirmationRequired, Conflict, InvalidInput, NotFound
from orderdesk.core import counters, rows
from orderdesk.core.rights import Permission
from orderdesk.fiscal import rules as fiscal
from orderdesk.fiscal import services as receipts
from orderdesk.fiscal.models import Receipt, Register, Shift
from orderdesk.fiscal.rules import PayerKind, PayMethod
from orderdesk.orders import events
from orderdesk.orders import services as orders
from orderdesk.orders.models import Order, ShopSettings
from orderdesk.orders.rules import Line, PaymentStatus, StatusCode, order_totals, payment_status
from orderdesk.payments import rules
from orderdesk.payments.models import Document, PaymentEntry

CASH_DESK_METHODS = frozenset({PayMethod.CASH, PayMethod.CARD, PayMethod.SBP})


# ---- reading the order's money ----

_LEDGER = rows.Prepared(lambda order_id: PaymentEntry.objects.filter(order_id=order_id)
                        .values_list("is_refund", "amount", "receipt_owed"), order_id=int)
_LAST_ADVANCE_AT = rows.Prepared(lambda order_id: Receipt.objects.filter(order_id=order_id, purpose=fiscal.Purpose.ADVANCE)
                                 .order_by("-id").values_list("created_at")[:1], order_id=int)
_CASH_DESK = rows.Prepared(lambda register_id: Register.objects.filter(pk=register_id, active=True, is_online=False),
                           register_id=int)
_OPEN_DESK_SHIFT = rows.Prepared(
    lambda register_id: Shift.objects.select_related("register").filter(
        register_id=register_id, register__active=True, register__is_online=False, closed_at__isnull=True),
    register_id=int)


def _ledger(order: Order) -> tuple[Decimal, Decimal, Decimal]:
    """(money in, money back, of the net: money that owed no receipt). Summed here, not in SQL,
    because SQLite adds decimals as floats."""
    paid_in = paid_out = exempt = Decimal("0.00")
    for is_refund, amount, owed in _LEDGER.values(order_id=order.pk):
        if is_refund:
            paid_out += amount
        else:
            paid_in += amount
        if not owed:
            exempt += -amount if is_refund else amount
    return paid_in, paid_out, exempt


def handed_over(order: Order) -> bool:
    return order.handed_over_at is not None


# Delivery is a service at the general rate, which "22" stands for whatever the date.
DELIVERY_VAT_RATE = "22"


def fiscal_state(order: Order) -> fiscal.OrderState:
    paid_in, paid_out, exempt = _ledger(order)
    items = tuple(
        fiscal.Item(name=i.name, quantity=i.quantity, price=i.price, amount=i.amount, vat_rate=i.vat_rate,
                    kind=i.kind, unit=i.unit)
        for i in orders.items_of(order)
    )
    if order.delivery_price > 0:
        # Delivery is part of what the buyer pays for, so it is a line of the receipt.
        delivery = f"Доставка ({order.delivery_method})" if order.delivery_method else "Доставка"
        items += (fiscal.Item(name=delivery[:128], quantity=Decimal("1"), price=order.delivery_price,
                              amount=order.delivery_price, vat_rate=DELIVERY_VAT_RATE, kind="service", unit="усл"),)
    last_advance = _LAST_ADVANCE_AT.scalar(order_id=order.pk)
    return fiscal.OrderState(
        number=order.number, items=items, total=order.total, paid=paid_in - paid_out,
        paid_without_receipt=exempt, handed_over=handed_over(order), payer=PayerKind(order.customer.kind),
        advance_day=timezone.localdate(last_advance) if last_advance else None,
        handed_over_day=timezone.localdate(order.handed_over_at) if order.handed_over_at else None,
    )


def refresh_payment_status(order: Order) -> tuple[str, str]:
    """S7: recompute from the ledger; returns (before, after)."""
    before = order.payment_status
    paid_in, paid_out, _exempt = _ledger(order)
    order.payment_status = payment_status(order.total, paid_in, paid_out)
    order.paid_amount = paid_in - paid_out
    orders.touch(order, ["payment_status", "paid_amount"])
    return before, order.payment_status


def settings_for(register: Register | None, shop: ShopSettings) -> fiscal.Settings:
    return fiscal.Settings(itemized_final=register.itemized_final if register else True,
                           prepayment_style=fiscal.PrepaymentStyle(shop.prepayment_style))


# ---- registers and shifts (B8) ----


def cash_desk(register_id: int) -> tuple[Register, Shift]:
    """A cash desk takes money only while its shift is open. The open shift is read with its desk,
    one query; when there is none, a second tells a closed shift from a desk that is not one."""
    if (shift := _OPEN_DESK_SHIFT.first(register_id=register_id)) is not None:
        return shift.register, shift
    register = _CASH_DESK.first(register_id=register_id)
    if register is None:
        raise NotFound(_("No such cash desk."), code="register_not_found")
    shift = receipts.open_shift_of(register)
    if shift is None:
        raise Conflict(
            _("The shift of «%(name)s» is closed: open a shift before taking payments.") % {"name": register.name},
            code="shift_closed", register_id=register.pk,
        )
    return register, shift


def _register_for(register_id: int | None, desk: tuple[Register, Shift] | None = None) -> tuple[Register, Shift, bool]:
    """A cash desk prints on paper in its open shift; with none named, the online register sends
    an e-receipt (its shift opens itself). Returns (register, shift, online). `desk`: the cash desk
    and shift the caller already checked, so they are not read again."""
    if register_id is not None:
        register, shift = desk if desk and desk[0].pk == register_id else cash_desk(register_id)
        return register, shift, False
    register = receipts.online_register()
    return register, receipts.ensure_online_shift(register), True


def _write_owed(actor: Actor, order: Order, state: fiscal.OrderState, change: fiscal.Change,
                register_id: int | None, *, entry: PaymentEntry | None = None,
                desk: tuple[Register, Shift] | None = None) -> list[Receipt]:
    """Compose what the change owes and write it on the cash desk named (or the online register).
    A register is looked for only when a receipt is owed: a shop that takes only companies' bank
    transfers (B5) needs none."""
    today, shop = timezone.localdate(), ShopSettings.current()
    if not fiscal.receipts_owed(state, change, today, settings_for(None, shop)):
        return []
    register, shift, online = _register_for(register_id, desk)
    drafts = fiscal.receipts_owed(state, change, today, settings_for(register, shop))
    sbp = isinstance(change, fiscal.Payment | fiscal.Refund | fiscal.QuickSale) and change.method == PayMethod.SBP
    return receipts.write_receipts(
        order, drafts, register=register, shift=shift, entry=entry, cashier=actor.label,
        buyer=receipts.buyer_of(order, fallback_email=register.company_email), electronically=online or sbp,
    )


@transaction.atomic
def open_shift(actor: Actor, register_id: int) -> Shift:
    actor.require(Permission.SHIFTS)
    register = Register.objects.select_for_update(no_key=True).filter(pk=register_id, active=True).first()
    if register is None:
        raise NotFound(_("No such cash desk."), code="register_not_found")
    if receipts.open_shift_of(register):
        raise Conflict(_("The shift is already open."), code="shift_already_open")
    number = (register.shifts.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    shift = Shift.objects.create(register=register, number=number, opened_by=actor.label)
    receipts.driver_for(register).open_shift(actor.label)
    return shift


def shift_report(shift: Shift) -> dict:
    """X and Z reports: what the shift's receipts took and gave back, as our books see it."""
    rows = list(shift.receipts.values_list("settlement", "state", "cash", "electronic", "prepayment", "credit"))

    def total(settlement: int, column: int) -> Decimal:
        return sum((r[column] for r in rows if r[0] == settlement), Decimal("0.00"))

    income_cash, income_electronic = total(1, 2), total(1, 3)
    return {
        "register_id": shift.register_id, "shift_number": shift.number,
        "opened_at": shift.opened_at.isoformat(), "closed_at": shift.closed_at.isoformat() if shift.closed_at else None,
        "receipts": len(rows), "registered": sum(1 for r in rows if r[1] == Receipt.State.REGISTERED),
        "waiting": sum(1 for r in rows if r[1] in (Receipt.State.PENDING, Receipt.State.REGISTERING)),
        # money that moved in this shift; offsets of earlier advances and credit are not money
        "income_cash": str(income_cash), "income_electronic": str(income_electronic),
        "income_total": str(income_cash + income_electronic),
        "refunds_cash": str(total(2, 2)), "refunds_electronic": str(total(2, 3)),
        "refunds_total": str(total(2, 2) + total(2, 3)),
        "prepayment_offset": str(total(1, 4)), "credit": str(total(1, 5)),
    }


def x_report(actor: Actor, register_id: int) -> dict:
    actor.require(Permission.SHIFTS)
    _register, shift = cash_desk(register_id)
    return shift_report(shift)


@transaction.atomic
def close_shift(actor: Actor, register_id: int) -> dict:
    """Z report. Receipts still waiting for the register are reported, not lost: they keep their shift."""
    actor.require(Permission.SHIFTS)
    register, shift = cash_desk(register_id)
    shift = Shift.objects.select_for_update(no_key=True).get(pk=shift.pk)
    receipts.driver_for(register).close_shift(actor.label)
    shift.closed_at, shift.closed_by = timezone.now(), actor.label
    shift.z_report = shift_report(shift)
    shift.save(update_fields=["closed_at", "closed_by", "z_report"])
    return shift.z_report


# ---- taking money ----


@dataclass(frozen=True)
class MoneyResult:
    order: Order
    document: Document
    receipts: list[Receipt]


def _document_number() -> str:
    return f"Д-{counters.next_value('document_number'):06d}"


def _mark_posted(document: Document) -> None:
    document.state, document.posted_at = Document.State.POSTED, timezone.now()
    rows.update(Document, document.pk, state=document.state, posted_at=document.posted_at)


def _posted_document(actor: Actor, order: Order, amount: Decimal, method: PayMethod, **fields) -> Document:
    """S7: the document of money taken now, a cash receipt order for cash and a non-cash receipt for
    anything else, paid by the order's customer. Written posted (its entry and receipts follow in
    the same transaction): one INSERT, where a draft and its posting were two statements."""
    kind = Document.Kind.CASH_RECEIPT if method == PayMethod.CASH else Document.Kind.NONCASH_RECEIPT
    return rows.insert(Document, number=_document_number(), order=order, kind=kind, amount=amount, method=method,
                       payer_kind=order.customer.kind, created_by=actor.label, state=Document.State.POSTED,
                       posted_at=timezone.now(), **fields)


def _post_money(actor: Actor, order: Order, document: Document, *, register_id: int | None,
                settle_in_full: bool = False, mail_customer: bool = True, state: fiscal.OrderState | None = None,
                desk: tuple[Register, Shift] | None = None) -> MoneyResult:
    """The common path of every payment and refund: ledger entry, owed receipts, status, events.
    `state`: the order's money as the caller just read it under the lock, if it did."""
    method, payer = PayMethod(document.method), PayerKind(document.payer_kind)
    state = replace(state or fiscal_state(order), payer=payer)  # B5 asks who paid this money, not who ordered
    is_refund = document.kind == Document.Kind.REFUND
    entry = rows.insert(
        PaymentEntry, order=order, document=document, is_refund=is_refund, amount=document.amount, method=method,
        payer_kind=payer, receipt_owed=fiscal.receipt_required(method, payer),
    )
    change = (fiscal.Refund(document.amount, method) if is_refund
              else fiscal.Payment(document.amount, method, settle_in_full=settle_in_full))
    written = _write_owed(actor, order, state, change, register_id, entry=entry, desk=desk)
    if document.state == Document.State.DRAFT:
        _mark_posted(document)
    before, after = refresh_payment_status(order)
    events.record(order, "payment.refunded" if is_refund else "payment.received", actor, {
        "amount": str(document.amount), "method": method, "document": document.number,
        "payment_status": [before, after], "receipts": [r.purpose for r in written],
    }, mail_customer=mail_customer)
    return MoneyResult(order, document, written)


def replay(idempotency_key: str | None, order_id: int, amount: Decimal) -> MoneyResult | None:
    """A repeated call with the same key answers with what the first one did (never a second payment)."""
    if not idempotency_key:
        return None
    document = Document.objects.filter(idempotency_key=idempotency_key).first()
    if document is None:
        return None
    if document.order_id != order_id or document.amount != amount:
        raise Conflict(_("This idempotency key was used for another payment."), code="idempotency_key_reused")
    return MoneyResult(document.order, document, list(Receipt.objects.filter(entry__document=document)))


def take_payment(actor: Actor, order_id: int, *, register_id: int, amount: Decimal, method: PayMethod,
                 settle: rules.SettleChoice | None = None, idempotency_key: str | None = None) -> MoneyResult:
    """R3–R5, R7–R9, B3 at the cash desk: every payment of a manager's or site order prints its receipt."""
    actor.require(Permission.PAYMENTS_TAKE)
    if (replayed := replay(idempotency_key, order_id, amount)) is not None:
        return replayed
    if method not in CASH_DESK_METHODS:
        raise InvalidInput({"method": [str(_("The cash desk takes cash, card or SBP."))]})
    sbp = None
    if method == PayMethod.SBP:
        # Every question and refusal comes before the buyer is charged, not after.
        cash_desk(register_id)
        _check_payment(orders.locked_order(order_id, lock=False), amount, settle)
        sbp = _charge_sbp(amount, idempotency_key, f"order {order_id}")
    try:
        with transaction.atomic():
            return _take_payment(actor, order_id, register_id, amount, method, settle, idempotency_key, sbp)
    except IntegrityError:
        if (replayed := replay(idempotency_key, order_id, amount)) is not None:
            return replayed
        raise


def _charge_sbp(amount: Decimal, idempotency_key: str | None, what: str) -> AcquirerPayment:
    """R2: SBP goes through the acquirer before anything is written, outside the order's lock.
    Until the buyer has paid, the cash desk is told so and repeats the call with the same key."""
    payment = acquirer().create_sbp_payment(idempotency_key=f"cash-desk:{idempotency_key or uuid.uuid4()}",
                                            amount=amount, description=what)
    if payment.status != "succeeded":
        raise Conflict(_("The SBP payment is not completed yet: show the QR code to the buyer."),
                       code="sbp_payment_pending", qr_payload=payment.qr_payload, acquirer_payment_id=payment.id)
    return payment


def _check_payment(order: Order, amount: Decimal,
                   settle: rules.SettleChoice | None) -> tuple[bool, fiscal.OrderState]:
    """The amount and R8's question (the caller checked the cash desk's shift, B8); returns whether
    the payment settles the order in full, and the order's money as read for the check."""
    if order.status.is_final:
        raise Conflict(_("The order is «%(status)s»: it takes no more payments.") % {"status": order.status.name()},
                       code="order_final", status=order.status_id)
    state = fiscal_state(order)
    if problem := rules.cash_desk_amount_problem(amount, state.debt):
        raise Conflict(
            _("The order owes %(debt)s; the cash desk takes from 0.01 up to that.") % {"debt": state.debt},
            code=problem, debt=str(state.debt),
        )
    settle_in_full = False
    if rules.settle_needs_question(order.payment_status, amount, state.debt, state.handed_over):
        if settle is None:
            raise ConfirmationRequired(
                _("This payment settles the order in full. Settle in full and issue the order now?"),
                question="settle_in_full", choices=[c.value for c in rules.SettleChoice],
            )
        settle_in_full = settle == rules.SettleChoice.YES
        if settle_in_full:
            orders.require_transition(order, StatusCode.ISSUED)
    return settle_in_full, state


def _take_payment(actor, order_id, register_id, amount, method, settle, idempotency_key, sbp) -> MoneyResult:
    register, shift = cash_desk(register_id)
    order = orders.locked_order(order_id)
    if (replayed := replay(idempotency_key, order_id, amount)) is not None:
        return replayed  # a twin call with the same key finished while this one waited for the lock
    settle_in_full, state = _check_payment(order, amount, settle)
    document = _posted_document(actor, order, amount, method, register=register, idempotency_key=idempotency_key,
                                acquirer_payment_id=sbp.id if sbp else "")
    result = _post_money(actor, order, document, register_id=register.pk, settle_in_full=settle_in_full, state=state,
                         desk=(register, shift))
    if settle_in_full:
        actor.require(Permission.ORDERS_SET_STATUS)
        orders.move_locked(actor, order, StatusCode.ISSUED)
    return result


def record_online_payment(actor: Actor, order: Order, *, amount: Decimal, method: PayMethod,
                          acquirer_payment_id: str) -> MoneyResult:
    """R11: money paid online becomes a posted non-cash receipt of the order, with the e-receipt the
    rules owe (an advance before hand-over, a credit payment after it). Runs in the caller's
    transaction, with the order locked by the caller."""
    document = _posted_document(actor, order, amount, method, acquirer_payment_id=acquirer_payment_id)
    return _post_money(actor, order, document, register_id=None)


@transaction.atomic
def refund(actor: Actor, order_id: int, *, amount: Decimal, method: PayMethod, register_id: int | None = None,
           idempotency_key: str | None = None, acquirer_payment_id: str = "") -> MoneyResult:
    """B4: money back to the customer with its «Возврат прихода», mirroring what is refunded."""
    actor.require(Permission.REFUNDS)
    if (replayed := replay(idempotency_key, order_id, amount)) is not None:
        return replayed
    if register_id is not None:
        cash_desk(register_id)
    order = orders.locked_order(order_id)
    if (replayed := replay(idempotency_key, order_id, amount)) is not None:
        return replayed  # a twin call with the same key finished while this one waited for the lock
    paid = fiscal_state(order).paid
    if amount <= 0 or amount > paid:
        raise Conflict(_("A refund is from 0.01 up to what was paid, %(paid)s.") % {"paid": paid},
                       code="refund_exceeds_paid", paid=str(paid))
    document = Document.objects.create(
        number=_document_number(), kind=Document.Kind.REFUND, order=order, amount=amount, method=method,
        register_id=register_id, payer_kind=order.customer.kind, idempotency_key=idempotency_key,
        created_by=actor.label, acquirer_payment_id=acquirer_payment_id,
    )
    return _post_money(actor, order, document, register_id=register_id)


# ---- hand-over and other status changes (R6, B3, B4) ----


@dataclass(frozen=True)
class StatusResult:
    order: Order
    changed: bool
    receipts: list[Receipt]
    next_step: str = ""  # "cash_desk" after R6 [Pay]


@transaction.atomic
def change_status(actor: Actor, order_id: int, status: str, *, choice: rules.IssueChoice | None = None,
                  register_id: int | None = None) -> StatusResult:
    """Set a status with what it owes: «Issued» prints «Полный расчёт» (R3, R5) or, with a debt and
    the user's consent, the credit receipts (R6, B3); «Closed» after «Cancelled» wants the money back (B4)."""
    actor.require(Permission.ORDERS_SET_STATUS)
    order = orders.locked_order(order_id)
    if status == order.status_id:
        return StatusResult(order, False, [])
    written: list[Receipt] = []
    if status == StatusCode.ISSUED and not handed_over(order):
        orders.require_transition(order, StatusCode.ISSUED)
        if rules.issue_needs_question(order.payment_status):
            if choice is None:
                raise ConfirmationRequired(
                    _("The order is not paid in full. Issue it anyway (the debt stays), pay first, or go back?"),
                    question="issue_unpaid", choices=[c.value for c in rules.IssueChoice],
                    payment_status=order.payment_status, debt=str(order.total - order.paid_amount),
                )
            if choice == rules.IssueChoice.BACK:
                return StatusResult(order, False, [])
            if choice == rules.IssueChoice.PAY:
                return StatusResult(order, False, [], next_step="cash_desk")
        written = _write_owed(actor, order, fiscal_state(order), fiscal.HandOver(), register_id)
    if status == StatusCode.CLOSED and order.status_id == StatusCode.CANCELLED and order.paid_amount > 0:
        raise Conflict(_("A cancelled order with money paid is closed only after the money is refunded."),
                       code="refund_required", paid=str(order.paid_amount))
    if status == StatusCode.CLOSED and order.payment_status == PaymentStatus.OVERPAID:
        raise Conflict(_("The order is overpaid: refund the surplus before closing it."), code="refund_required",
                       paid=str(order.paid_amount))
    order = orders.move_locked(actor, order, status)
    return StatusResult(order, True, written)


# ---- documents «based on» an order (S7, S8) ----


DOCUMENT_METHOD = {
    Document.Kind.CASH_RECEIPT: PayMethod.CASH,
    Document.Kind.NONCASH_RECEIPT: PayMethod.BANK_TRANSFER,
    Document.Kind.REFUND: PayMethod.BANK_TRANSFER,
}


@transaction.atomic
def create_document(actor: Actor, order_id: int, kind: str) -> Document:
    """«Create based on»: the document copies what remains — the debt for a receipt, what was paid
    for a refund, the order for a sale."""
    actor.require(Permission.DOCUMENTS)
    order = orders.locked_order(order_id)
    state = fiscal_state(order)
    amount = {Document.Kind.CASH_RECEIPT: state.debt, Document.Kind.NONCASH_RECEIPT: state.debt,
              Document.Kind.REFUND: state.paid, Document.Kind.SALE: order.total}[Document.Kind(kind)]
    document = Document.objects.create(
        number=_document_number(), kind=kind, order=order, amount=amount, method=DOCUMENT_METHOD.get(kind, ""),
        payer_kind=order.customer.kind, created_by=actor.label,
    )
    events.record(order, "document.created", actor, {"document": document.number, "kind": kind,
                                                      "amount": str(amount)}, mail_customer=False)
    return document


def _locked_document(document_id: int) -> Document:
    document = Document.objects.select_for_update(no_key=True).filter(pk=document_id).first()
    if document is None:
        raise NotFound(_("No such document."), code="document_not_found")
    return document


@transaction.atomic
def update_document(actor: Actor, document_id: int, **fields) -> Document:
    """A draft is edited freely; a posted document only by un-posting it first."""
    actor.require(Permission.DOCUMENTS)
    document = _locked_document(document_id)
    if document.state != Document.State.DRAFT:
        raise Conflict(_("Only a draft can be edited."), code="document_not_draft", state=document.state)
    if fields.get("register_id") is not None and not Register.objects.filter(pk=fields["register_id"]).exists():
        raise NotFound(_("No such cash desk."), code="register_not_found")  # not a 500 at commit
    for name, value in fields.items():
        if value is not None:
            setattr(document, "register_id" if name == "register_id" else name, value)
    document.save()
    return document


@transaction.atomic
def post_document(actor: Actor, document_id: int) -> MoneyResult | StatusResult:
    """«Post and close»: a receipt records the payment and its receipt (S7); a refund pays back
    (B4); a sale ships the order (S8)."""
    actor.require(Permission.DOCUMENTS)
    document = _locked_document(document_id)
    if document.state != Document.State.DRAFT:
        raise Conflict(_("The document is already posted."), code="document_not_draft", state=document.state)
    order = orders.locked_order(document.order_id)
    if document.kind == Document.Kind.SALE:
        order = orders.set_status(actor, order.pk, StatusCode.SHIPPED)
        _mark_posted(document)
        return StatusResult(order, True, [])
    if document.amount <= 0:
        raise InvalidInput({"amount": [str(_("The amount must be positive."))]})
    if not document.method:
        raise InvalidInput({"method": [str(_("Choose how the money was paid."))]})
    state = fiscal_state(order)
    if document.kind == Document.Kind.REFUND and document.amount > state.paid:
        raise Conflict(_("A refund is from 0.01 up to what was paid, %(paid)s.") % {"paid": state.paid},
                       code="refund_exceeds_paid", paid=str(state.paid))
    if document.kind == Document.Kind.CASH_RECEIPT and document.register_id is None:
        raise InvalidInput({"register_id": [str(_("Cash is taken at a cash desk: choose it."))]})
    if document.register_id is not None:
        cash_desk(document.register_id)
    return _post_money(actor, order, document, register_id=document.register_id)


@transaction.atomic
def unpost_document(actor: Actor, document_id: int) -> Document:
    """Cancel the posting: a payment is reversed by a refund entry (with its refund receipt where a
    receipt was printed, B4); a sale takes the order back to «Agreed»."""
    actor.require(Permission.DOCUMENTS)
    document = _locked_document(document_id)
    if document.state != Document.State.POSTED:
        raise Conflict(_("Only a posted document can be un-posted."), code="document_not_posted", state=document.state)
    if document.acquirer_payment_id:
        # The money is at the acquirer: it goes back through the acquirer, or the books would
        # count it back twice.
        raise Conflict(_("An online payment is refunded through the acquirer, not by un-posting its document."),
                       code="refund_through_acquirer")
    order = orders.locked_order(document.order_id)
    if document.kind == Document.Kind.SALE:
        if order.status_id == StatusCode.SHIPPED:
            orders.set_status(actor, order.pk, StatusCode.AGREED)
    else:
        _reverse_money(actor, order, document)
    document.state = Document.State.UNPOSTED
    document.save(update_fields=["state"])
    events.record(order, "document.unposted", actor, {"document": document.number, "kind": document.kind},
                  mail_customer=False)
    return document


def _desk_still_open(register: Register | None) -> int | None:
    """The reversal prints where the money was taken while that desk's shift is open; otherwise
    the online register sends the refund receipt."""
    if register is not None and not register.is_online and receipts.open_shift_of(register):
        return register.pk
    return None


def _reverse_money(actor: Actor, order: Order, document: Document) -> None:
    original = document.entries.get()
    state = replace(fiscal_state(order), payer=PayerKind(original.payer_kind))  # mirror the original's B5 decision
    method = PayMethod(original.method)
    entry = PaymentEntry.objects.create(order=order, document=document, is_refund=not original.is_refund,
                                        amount=original.amount, method=method, payer_kind=original.payer_kind,
                                        receipt_owed=original.receipt_owed)
    if original.receipts.exists():
        change = (fiscal.Payment(original.amount, method) if original.is_refund
                  else fiscal.Refund(original.amount, method))
        _write_owed(actor, order, state, change, _desk_still_open(document.register))
    before, after = refresh_payment_status(order)
    events.record(order, "payment.refunded" if entry.is_refund else "payment.received", actor, {
        "amount": str(entry.amount), "method": method, "document": document.number,
        "payment_status": [before, after], "reversal": True,
    })


# ---- quick sale (R1, R2) ----


def quick_sale(actor: Actor, *, register_id: int, items, method: PayMethod, customer=None,
               idempotency_key: str | None = None) -> MoneyResult:
    """R1: a cash-desk sale with no order — paid in full, one «Полный расчёт», a quick order made in
    «Closed» / «Paid». R2: paid by SBP, the e-receipt goes to the buyer's e-mail or the company's."""
    actor.require(Permission.PAYMENTS_TAKE)
    if method not in CASH_DESK_METHODS:
        raise InvalidInput({"method": [str(_("The cash desk takes cash, card or SBP."))]})
    total = order_totals(Line(i.quantity, i.price, i.discount) for i in items).total
    if idempotency_key and (document := Document.objects.filter(idempotency_key=idempotency_key).first()):
        if document.amount != total or not document.order.is_quick:
            raise Conflict(_("This idempotency key was used for another payment."), code="idempotency_key_reused")
        return MoneyResult(document.order, document, list(Receipt.objects.filter(entry__document=document)))
    sbp = _charge_sbp(total, idempotency_key, "quick sale") if method == PayMethod.SBP else None
    with transaction.atomic():
        return _quick_sale(actor, register_id, items, method, customer, idempotency_key, sbp)


def _quick_sale(actor, register_id, items, method, customer, idempotency_key, sbp) -> MoneyResult:
    register, _shift = cash_desk(register_id)
    order = orders.create_quick_order(actor, items, customer)
    document = _posted_document(actor, order, order.total, method, register=register, idempotency_key=idempotency_key,
                                acquirer_payment_id=sbp.id if sbp else "")
    entry = PaymentEntry.objects.create(order=order, document=document, amount=order.total, method=method,
                                        payer_kind=order.customer.kind)
    written = _write_owed(actor, order, fiscal_state(order), fiscal.QuickSale(method), register.pk, entry=entry)
    refresh_payment_status(order)
    # The buyer stands at the desk: the receipt (paper, or the e-receipt of R2) is all he is sent.
    events.record(order, "payment.received", actor, {
        "amount": str(order.total), "method": method, "document": document.number, "quick_sale": True,
        "payment_status": [PaymentStatus.NOT_PAID, order.payment_status], "receipts": [r.purpose for r in written],
    }, mail_customer=False)
    return MoneyResult(order, document, written)


# ---- auto-close (R10) ----


def auto_close(now=None) -> list[str]:
    """Close orders handed over N days ago — never one that is not paid in full (R10). Each order
    is re-checked under its lock, so several workers may run this at once."""
    shop = ShopSettings.current()
    if not shop.auto_close_enabled:
        return []
    now = now or timezone.now()
    due = Order.objects.filter(
        status_id__in=[StatusCode.ISSUED, StatusCode.SHIPPED], payment_status=PaymentStatus.PAID,
        status_changed_at__lte=now - timedelta(days=shop.auto_close_after_days),
    ).values_list("pk", flat=True)[:500]
    closed = []
    for order_id in due:
        with transaction.atomic():
            order = orders.locked_order(order_id)
            if order.payment_status != PaymentStatus.PAID or order.status_id not in (StatusCode.ISSUED, StatusCode.SHIPPED):
                continue
            orders.set_status(SYSTEM, order.pk, StatusCode.CLOSED)
            closed.append(order.number)
    return closed

