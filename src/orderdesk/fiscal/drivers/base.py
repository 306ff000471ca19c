"""What every fiscal register driver takes and returns.

A driver turns one receipt document into the register's protocol and back. It must be safe to
call again with the same document after any failure: `doc.uuid` is the idempotency key every
protocol offers (task uuid, external_id, the emulator's journal key), and `state` is a dict the
caller persists after every call — success or exception — so a driver can remember what the
far side told it (ATOL Online's own uuid) between attempts and across crashes.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from orderdesk.fiscal.codes import Measure, PaymentForm, PaymentMethod, Settlement, Subject, Taxation, Vat


@dataclass(frozen=True)
class LineDoc:
    name: str
    quantity: Decimal  # up to 3 decimals
    price: Decimal  # rubles with 2 decimals, as every amount here
    amount: Decimal  # tag 1043; may be below price × quantity by a discount, never above
    payment_method: PaymentMethod
    subject: Subject
    vat: Vat
    vat_amount: Decimal  # tag 1200
    measure: Measure = Measure.PIECE


@dataclass(frozen=True)
class ReceiptDoc:
    uuid: str
    settlement: Settlement
    lines: tuple[LineDoc, ...]
    payments: dict[PaymentForm, Decimal]  # only forms with a non-zero sum
    total: Decimal  # tag 1020 = sum of payments = sum of line amounts
    taxation: Taxation
    company_inn: str
    company_email: str
    payment_address: str
    electronically: bool  # True: sent to the buyer, not printed
    created_at: datetime
    buyer_contact: str = ""  # tag 1008: e-mail or +7… phone
    buyer_name: str = ""
    buyer_inn: str = ""
    cashier: str = ""
    order_number: str = ""


@dataclass(frozen=True)
class Registration:
    """The register's answer once the receipt is fiscalised."""

    fn_number: str  # 1041
    fd_number: int  # 1040
    fiscal_sign: str  # 1077
    shift_number: int
    registered_at: datetime
    receipt_number: int | None = None
    ofd_url: str = ""
    extra: dict = field(default_factory=dict)


class RegisterUnavailable(Exception):
    """The register could not be reached or is busy; nothing is known to be registered. Retry later
    with the same document."""


class RegistrationPending(Exception):
    """The register accepted the document but has no result yet. Poll later; never send a new one."""


class ReceiptRejected(Exception):
    """The register refused the document itself (a validation error): retrying the same document
    will not help; a person must look."""


@dataclass(frozen=True)
class ShiftReport:
    shift_number: int
    receipts: int
    income: Decimal
    refunds: Decimal
    extra: dict = field(default_factory=dict)


class FiscalDriver(Protocol):
    def register(self, doc: ReceiptDoc, state: dict) -> Registration: ...

    def open_shift(self, cashier: str) -> ShiftReport: ...

    def x_report(self) -> ShiftReport: ...

    def close_shift(self, cashier: str) -> ShiftReport: ...
