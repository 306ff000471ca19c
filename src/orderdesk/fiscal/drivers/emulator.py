"""The emulator register: the default for `make demo` and tests. It keeps a fiscal journal in the
database, numbers documents and shifts as a real fiscal drive does, and answers a repeated uuid
with the document it already made, as real protocols do. `connection["offline"]` makes it
unreachable, for trying what the product does when a register is down."""

import hashlib
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from orderdesk.core import rows
from orderdesk.fiscal.codes import Settlement
from orderdesk.fiscal.drivers.base import ReceiptDoc, Registration, RegisterUnavailable, ShiftReport
from orderdesk.fiscal.models import EmulatorJournal, Register, Shift

# The worker registers every receipt through these: prepared, not compiled per receipt.
_CONNECTION = rows.Prepared(lambda register_id: Register.objects.filter(pk=register_id).values_list("connection"),
                            register_id=int)
_DOCUMENT = rows.Prepared(lambda register_id, uuid: EmulatorJournal.objects.filter(register_id=register_id, uuid=uuid),
                          register_id=int, uuid=str)
_LAST_FD = rows.Prepared(lambda register_id: EmulatorJournal.objects.filter(register_id=register_id)
                         .order_by("-fd_number").values_list("fd_number")[:1], register_id=int)
_OPEN_SHIFT_NUMBER = rows.Prepared(lambda register_id: Shift.objects.filter(register_id=register_id, closed_at__isnull=True)
                                   .values_list("number"), register_id=int)


class EmulatorDriver:
    def __init__(self, register: Register):
        self.register_row = register

    @property
    def fn_number(self) -> str:
        return self.register_row.connection.get("fn_number") or f"99990789{self.register_row.pk:08d}"

    def _require_online(self) -> None:
        [(fresh,)] = _CONNECTION.values(register_id=self.register_row.pk)
        if fresh.get("offline"):
            raise RegisterUnavailable(f"register «{self.register_row.name}» does not answer")

    def _registration(self, row: EmulatorJournal) -> Registration:
        return Registration(fn_number=self.fn_number, fd_number=row.fd_number, fiscal_sign=row.fiscal_sign,
                            shift_number=row.shift_number, registered_at=row.registered_at)

    def _shift_number(self) -> int:
        if (number := _OPEN_SHIFT_NUMBER.scalar(register_id=self.register_row.pk)) is None:
            raise RegisterUnavailable(f"register «{self.register_row.name}» has no open shift")
        return number

    def register(self, doc: ReceiptDoc, state: dict) -> Registration:
        self._require_online()
        register_id = self.register_row.pk
        try:
            with transaction.atomic():
                fd_number = _LAST_FD.scalar(0, register_id=register_id) + 1
                sign = int(hashlib.sha256(f"{self.fn_number}:{fd_number}:{doc.uuid}".encode()).hexdigest(), 16) % 10**10
                row = rows.insert(
                    EmulatorJournal, register=self.register_row, uuid=doc.uuid, fd_number=fd_number, fiscal_sign=f"{sign:010d}",
                    shift_number=self._shift_number(), settlement=doc.settlement, total=doc.total,
                    registered_at=timezone.now(),
                )
        except (IntegrityError, RegisterUnavailable):
            # The uuid may be in the journal (a repeat, or a twin call just now): answered with its
            # document, as a real register does, even once the shift has closed.
            if (known := _DOCUMENT.first(register_id=register_id, uuid=doc.uuid)) is None:
                raise  # not a repeat: no shift, or another document took the number first
            return self._registration(known)
        state["fd_number"] = row.fd_number
        return self._registration(row)

    def _report(self, shift_number: int) -> ShiftReport:
        # Summed here, not in SQL: SQLite adds decimals as floats.
        rows = list(EmulatorJournal.objects.filter(register=self.register_row, shift_number=shift_number)
                    .values_list("settlement", "total"))
        income = sum((t for s, t in rows if s == Settlement.INCOME), Decimal("0.00"))
        refunds = sum((t for s, t in rows if s == Settlement.INCOME_REFUND), Decimal("0.00"))
        return ShiftReport(shift_number=shift_number, receipts=len(rows), income=income, refunds=refunds)

    def open_shift(self, cashier: str) -> ShiftReport:
        self._require_online()
        return self._report(self._shift_number())

    def x_report(self) -> ShiftReport:
        self._require_online()
        return self._report(self._shift_number())

    def close_shift(self, cashier: str) -> ShiftReport:
        self._require_online()
        return self._report(self._shift_number())
