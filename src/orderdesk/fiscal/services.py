"""Receipts from the moment a change owes them to the moment the register has fiscalised them (B6).

`write_receipts()` runs inside the caller's transaction, so a payment and the receipt it owes are
committed together. The worker's receipt relay polls for receipts that are due (`register_due`)
and registers each register's receipts one at a time, oldest first; a register that is offline
makes them wait and retry, never print twice: the receipt's uuid is the idempotency key of every
driver, and a receipt is claimed before it is sent. The receipt row is the whole record of the
work (its state, next attempt and claim), so nothing else is queued with it, and a receipt left
claimed by a killed worker is due again once its claim runs out.
"""

import logging
import uuid as uuidlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import takewhile
from time import monotonic

from django.db import OperationalError, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from orderdesk.core import outbox, rows
from orderdesk.core.actors import SYSTEM, Actor
from orderdesk.core.errors import Conflict
from orderdesk.fiscal import rules
from orderdesk.fiscal.codes import Measure, PaymentForm, PaymentMethod, Settlement, Subject, Taxation, Vat
from orderdesk.fiscal.drivers.base import (
    LineDoc,
    ReceiptDoc,
    ReceiptRejected,
    RegisterUnavailable,
    Registration,
    RegistrationPending,
)
from orderdesk.fiscal.models import Receipt, ReceiptLine, Register, Shift
from orderdesk.orders import events
from orderdesk.orders.models import Order

log = logging.getLogger(__name__)

CLAIM_SECONDS = 300
# Receipts claimed in one go. A worker killed mid-batch leaves the untried ones to wait out the
# claim (CLAIM_SECONDS) like the one it was sending.
CLAIM_BATCH = 20
RECEIPT_EMAIL_TOPIC = "fiscal.receipt_email"


@dataclass(frozen=True)
class Buyer:
    contact: str = ""  # 1008: e-mail or phone
    name: str = ""
    inn: str = ""


def buyer_of(order: Order, *, fallback_email: str = "") -> Buyer:
    """Tag 1008 and, for companies, the buyer's name and INN. E-receipts go by e-mail (R2, R11):
    with no e-mail of the buyer, to the company's own e-mail."""
    contact = order.customer_email or fallback_email or order.customer_phone
    if order.customer.kind != "person":
        return Buyer(contact, order.customer.name, order.customer.inn)
    return Buyer(contact)


def online_register() -> Register:
    register = Register.objects.filter(is_online=True, active=True).order_by("id").first()
    if register is None:
        raise Conflict("No online fiscal register is set up (Cash → FR directory).", code="no_online_register")
    return register


_OPEN_SHIFT = rows.Prepared(lambda register_id: Shift.objects.filter(register_id=register_id, closed_at__isnull=True)
                            .order_by("pk")[:1], register_id=int)


_LINES_OF = rows.Prepared(lambda receipt_id: ReceiptLine.objects.filter(receipt_id=receipt_id), receipt_id=int)
_LINES_OF_RECEIPTS = rows.PreparedIn(lambda ids: ReceiptLine.objects.filter(receipt_id__in=ids))


def lines_of(receipt: Receipt) -> list[ReceiptLine]:
    return rows.related(receipt, "lines", _LINES_OF, receipt_id=receipt.pk)


def open_shift_of(register: Register) -> Shift | None:
    if (shift := _OPEN_SHIFT.first(register_id=register.pk)) is not None:
        shift.register = register
    return shift


def ensure_online_shift(register: Register, actor: Actor = SYSTEM) -> Shift:
    """An online register opens its shift itself on the first receipt, as cloud registers do."""
    shift = open_shift_of(register)
    if shift is None:
        number = (register.shifts.order_by("-number").values_list("number", flat=True).first() or 0) + 1
        shift = Shift.objects.create(register=register, number=number, opened_by=actor.label)
    return shift


def write_receipts(
    order: Order,
    drafts: list[rules.Draft],
    *,
    register: Register,
    shift: Shift | None,
    entry=None,
    buyer: Buyer = Buyer(),
    electronically: bool,
    cashier: str = "",
) -> list[Receipt]:
    """Persist what the rules composed, in the caller's transaction; the worker's relay finds them."""
    written = []
    for draft in drafts:
        receipt = rows.insert(
            Receipt, uuid=str(uuidlib.uuid4()), order=order, entry=entry, register=register, shift=shift,
            purpose=draft.purpose, settlement=draft.settlement, total=draft.total,
            cash=draft.payments.get(PaymentForm.CASH, rules.ZERO),
            electronic=draft.payments.get(PaymentForm.ELECTRONIC, rules.ZERO),
            prepayment=draft.payments.get(PaymentForm.PREPAYMENT, rules.ZERO),
            credit=draft.payments.get(PaymentForm.CREDIT, rules.ZERO),
            taxation=register.taxation, electronically=electronically,
            buyer_contact=buyer.contact if electronically else "", buyer_name=buyer.name, buyer_inn=buyer.inn,
            cashier=cashier,
        )
        rows.insert_many([
            rows.new(ReceiptLine, receipt=receipt, position=n, name=line.name, quantity=line.quantity,
                     price=line.price, amount=line.amount, payment_method=line.payment_method, subject=line.subject,
                     vat=line.vat, vat_amount=line.vat_amount, measure=line.measure)
            for n, line in enumerate(draft.lines, start=1)
        ])
        written.append(receipt)
    return written


# ---- the worker's side ----


def receipt_doc(receipt: Receipt) -> ReceiptDoc:
    register = receipt.register
    payments = {form: getattr(receipt, form.value) for form in PaymentForm if getattr(receipt, form.value)}
    return ReceiptDoc(
        uuid=receipt.uuid,
        settlement=Settlement(receipt.settlement),
        lines=tuple(
            LineDoc(name=line.name, quantity=line.quantity, price=line.price, amount=line.amount,
                    payment_method=PaymentMethod(line.payment_method), subject=Subject(line.subject),
                    vat=Vat(line.vat), vat_amount=line.vat_amount, measure=Measure(line.measure))
            for line in receipt.lines.all()
        ),
        payments=payments,
        total=receipt.total,
        taxation=Taxation(receipt.taxation),
        company_inn=register.company_inn,
        company_email=register.company_email,
        payment_address=register.payment_address,
        electronically=receipt.electronically,
        created_at=receipt.created_at,
        buyer_contact=receipt.buyer_contact,
        buyer_name=receipt.buyer_name,
        buyer_inn=receipt.buyer_inn,
        cashier=receipt.cashier,
        order_number=receipt.order.number,
    )


def driver_for(register: Register):
    connection = dict(register.connection)
    match register.driver:
        case Register.Driver.EMULATOR:
            from orderdesk.fiscal.drivers.emulator import EmulatorDriver

            return EmulatorDriver(register)
        case Register.Driver.ATOL_WEB:
            from orderdesk.fiscal.drivers.atol_web import AtolWebServerDriver

            return AtolWebServerDriver(**connection)
        case Register.Driver.ATOL_ONLINE:
            from orderdesk.fiscal.drivers.atol_online import AtolOnlineDriver

            return AtolOnlineDriver(**connection)
    raise ValueError(f"unknown driver {register.driver}")


def _claimable(receipt: Receipt, now) -> bool:
    if receipt.state == Receipt.State.REGISTERING:
        return receipt.claimed_until is None or receipt.claimed_until <= now  # its worker died
    return receipt.next_attempt_at <= now


_WAITING = rows.Prepared(
    lambda register_id: Receipt.objects.select_for_update(no_key=True, of=("self",)).select_related("register", "order")
    .filter(register_id=register_id, state__in=[Receipt.State.PENDING, Receipt.State.REGISTERING])
    .order_by("id")[:CLAIM_BATCH],
    register_id=int)


def _claim_due(register_id: int) -> list[Receipt]:
    """The register's oldest unregistered receipts, up to the first one that is not due or is held
    by another worker: later receipts wait behind it, so a register fiscalises in the order the
    money moved. Claimed in one transaction, at most CLAIM_BATCH, each with its register and
    order; then the batch's lines in one read. That is all registering them reads."""
    now = timezone.now()
    until = now + timedelta(seconds=CLAIM_SECONDS)
    with transaction.atomic():
        claimed = list(takewhile(lambda receipt: _claimable(receipt, now), _WAITING.all(register_id=register_id)))
        outbox.mark_claimed(claimed, Receipt.State.REGISTERING, until)
    lines = _LINES_OF_RECEIPTS.all([receipt.pk for receipt in claimed])  # never changed once written: read after
    for receipt in claimed:
        rows.attach(receipt, "lines", [line for line in lines if line.receipt_id == receipt.pk])
    return claimed


def _hand_back(receipts: list[Receipt]) -> None:
    """Claimed receipts not tried after all (the register went away before their turn, or the
    worker is stopping)."""
    if receipts:
        Receipt.objects.filter(pk__in=[r.pk for r in receipts]).update(
            state=Receipt.State.PENDING, attempts=F("attempts") - 1, claimed_until=None)


def register_pending(register_id: int, keep_going: outbox.KeepGoing = lambda: True) -> int:
    """Register the register's waiting receipts, oldest first; stop at the first that cannot be
    registered now, or once `keep_going` says no. Returns how many were registered."""
    done, more = 0, True
    while more:
        registered, more = _register_batch(register_id, keep_going)
        done += registered
    return done


def _register_batch(register_id: int, keep_going: outbox.KeepGoing) -> tuple[int, bool]:
    """Claim the register's due receipts and send them in order; how many were registered, and
    whether more may be done now (not when nothing was due, the register went away or the
    worker is stopping).
    Receipts claimed but not sent are handed back: those behind one the register did not take,
    those left when the worker stops, and those whose claim has run half its time while the ones
    before them were sent (a slow register), so no claim of ours runs out under another worker."""
    claimed, claimed_at = _claim_due(register_id), monotonic()
    if not claimed:
        return 0, False
    taken: list[Taken] = []  # registered, not yet written down
    done, last_answer_took = 0, 0.0
    try:
        for position, receipt in enumerate(claimed):
            if not keep_going():
                _hand_back(claimed[position:])
                return done, False
            if monotonic() - claimed_at > CLAIM_SECONDS / 2:
                _hand_back(claimed[position:])
                return done, True
            if taken and last_answer_took >= SLOW_ANSWER_SECONDS:
                _write_down(taken)  # what this register took is not left waiting on its next slow answer
            driver_state = dict(receipt.driver_state)
            asked_at = monotonic()
            try:
                registration = driver_for(receipt.register).register(receipt_doc(receipt), driver_state)
            except (RegisterUnavailable, RegistrationPending) as exc:
                next_at = timezone.now() + outbox.retry_delay(receipt.attempts)
                Receipt.objects.filter(pk=receipt.pk).update(
                    state=Receipt.State.PENDING, next_attempt_at=next_at, claimed_until=None,
                    last_error=f"{type(exc).__name__}: {exc}"[:2000], driver_state=driver_state,
                )
                _hand_back(claimed[position + 1:])
                log.warning("receipt %s waits for register %s: %s", receipt.uuid, register_id, exc)
                return done, False
            except ReceiptRejected as exc:
                _write_down(taken)  # the events keep the order the register answered in
                with transaction.atomic():
                    Receipt.objects.filter(pk=receipt.pk).update(
                        state=Receipt.State.FAILED, claimed_until=None, last_error=str(exc)[:2000],
                        driver_state=driver_state,
                    )
                    events.record(_fresh_order(receipt), "receipt.failed", SYSTEM,
                                  {"receipt_id": receipt.pk, "purpose": receipt.purpose, "error": str(exc)[:500]})
                continue
            last_answer_took = monotonic() - asked_at
            taken.append((receipt, registration, driver_state))
            done += 1
            if len(taken) >= WRITE_DOWN_EVERY:
                _write_down(taken)
        return done, True
    finally:
        _write_down(taken)


_ORDER_NOW = rows.Prepared(lambda order_id: Order.objects.filter(pk=order_id)
                           .values_list("status_id", "payment_status", "total", "paid_amount"), order_id=int)


def _fresh_order(receipt: Receipt) -> Order:
    """The receipt's order as it is now, for the event's snapshot: the one read with the claim may
    be as old as the register was slow."""
    order = receipt.order
    [(order.status_id, order.payment_status, order.total, order.paid_amount)] = _ORDER_NOW.values(order_id=order.pk)
    return order


# Registrations are written down together, this many in one transaction: one pass through the
# write lock instead of one per receipt. A register whose last answer took SLOW_ANSWER_SECONDS or
# more has what it took written down before it is asked again, so no receipt waits on a slow answer
# to show as registered. A receipt the register took but the worker did not write down (it was
# killed) is sent again once its claim runs out, and the register answers its uuid with the
# document it already made.
WRITE_DOWN_EVERY = 10
SLOW_ANSWER_SECONDS = 0.05
BOOKKEEPING_ATTEMPTS = 3

Taken = tuple[Receipt, Registration, dict]  # the receipt, what the register answered, the driver's state


def _write_down(taken: list[Taken]) -> None:
    """Write down what the register answered for these receipts, in one transaction, and empty the
    list. The register already holds them under their uuids, so a transient database failure here
    (a deadlock chose us as its victim) is simply written again rather than left claimed until the
    sweep, minutes later."""
    for attempt in range(1, BOOKKEEPING_ATTEMPTS + 1):
        if not taken:
            return
        try:
            with transaction.atomic():
                claims = {held.pk: held.claimed_until for held in _HELD.all([receipt.pk for receipt, *_ in taken])}
                for receipt, registration, driver_state in taken:
                    if claims.get(receipt.pk) == receipt.claimed_until:
                        _write_registration(receipt, registration, driver_state)
                    else:  # our claim ran out and another pass took the receipt: it writes it down
                        log.warning("receipt %s was taken over before its registration was written down", receipt.uuid)
            taken.clear()
            return
        except OperationalError:
            if attempt == BOOKKEEPING_ATTEMPTS:
                raise
            log.warning("writing down %s registered receipts failed (attempt %s); writing them again",
                        len(taken), attempt)


_HELD = rows.PreparedIn(lambda ids: Receipt.objects.select_for_update(no_key=True)
                        .filter(pk__in=ids, state=Receipt.State.REGISTERING))


def _write_registration(receipt: Receipt, registration: Registration, driver_state: dict) -> None:
    rows.update(
        Receipt, receipt.pk,
        state=Receipt.State.REGISTERED, claimed_until=None, last_error="", driver_state=driver_state,
        fn_number=registration.fn_number, fd_number=registration.fd_number,
        fiscal_sign=registration.fiscal_sign, shift_number=registration.shift_number,
        registered_at=registration.registered_at, ofd_url=registration.ofd_url,
    )
    events.record(_fresh_order(receipt), "receipt.registered", SYSTEM, {
        "receipt_id": receipt.pk, "purpose": receipt.purpose, "total": str(receipt.total),
        "fd_number": registration.fd_number,
    }, mail_customer=False)
    if receipt.electronically and "@" in receipt.buyer_contact:
        outbox.post(RECEIPT_EMAIL_TOPIC, {"receipt_id": receipt.pk})


def registers_with_due_receipts() -> list[int]:
    """Registers whose oldest unregistered receipt is to be registered now: waiting, its time
    come, or left claimed by a worker that died before its claim ran out. (Receipts behind a
    head that waits for an offline register wait with it, and do not wake the relay.)"""
    return sorted(register_id for (register_id,) in _DUE_REGISTERS.values(now=timezone.now()))


def _due_registers(now):
    heads = (Receipt.objects.filter(state__in=[Receipt.State.PENDING, Receipt.State.REGISTERING])
             .values("register_id").annotate(head=Min("id")).values("head"))
    return Receipt.objects.filter(pk__in=heads).filter(
        Q(state=Receipt.State.PENDING, next_attempt_at__lte=now)
        | Q(state=Receipt.State.REGISTERING, claimed_until__lt=now)
    ).values_list("register_id")


_DUE_REGISTERS = rows.Prepared(_due_registers, now=datetime)


def register_due(keep_going: outbox.KeepGoing = lambda: True) -> int:
    """One pass of the worker's receipt relay: one batch of every register with due receipts, so a
    busy register does not keep the others waiting; how many were registered."""
    return sum(_register_batch(register_id, keep_going)[0] for register_id in registers_with_due_receipts()
               if keep_going())
