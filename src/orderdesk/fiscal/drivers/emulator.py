"""The emulator register: the default for `make demo` and tests. It keeps a fiscal journal in the
database, numbers documents and shifts as a real fiscal drive does, and answers a repeated uuid
with the document it already made, as real protocols do. `connection["offline"]` makes it
unreachable, for trying what the product does when a register is down."""

import hashlib
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from orderdesk.fiscal.codes import Settlement
from orderdesk.fiscal.drivers.base import ReceiptDoc, Registration, RegisterUnavailable, ShiftReport
from orderdesk.fiscal.models import EmulatorJournal, Register


class EmulatorDriver:
    def __init__(self, register: Register):
        self.register_row = register

    @property
    def fn_number(self) -> str:
        return self.register_row.connection.get("fn_number") or f"99990789{self.register_row.pk:08d}"

    def _require_online(self) -> None:
        fresh = Register.objects.values_list("connection", flat=True).get(pk=self.register_row.pk)
        if fresh.get("offline"):
            raise RegisterUnavailable(f"register «{self.register_row.name}» does not answer")

    def _registration(self, row: EmulatorJournal) -> Registration:
        return Registration(fn_number=self.fn_number, fd_number=row.fd_number, fiscal_sign=row.fiscal_sign,
                            shift_number=row.shift_number, registered_at=row.registered_at)

    def _shift_number(self) -> int:
        shift = self.register_row.shifts.filter(closed_at__isnull=True).first()
        if shift is None:
            raise RegisterUnavailable(f"register «{self.register_row.name}» has no open shift")
        return shift.number

    def register(self, doc: ReceiptDoc, state: dict) -> Registration:
        self._require_online()
        journal = EmulatorJournal.objects.filter(register=self.register_row)
        if (known := journal.filter(uuid=doc.uuid).first()) is not None:
            return self._registration(known)
        try:
            with transaction.atomic():
                fd_number = (journal.aggregate(last=Max("fd_number"))["last"] or 0) + 1
                sign = int(hashlib.sha256(f"{self.fn_number}:{fd_number}:{doc.uuid}".encode()).hexdigest(), 16) % 10**10
                row = EmulatorJournal.objects.create(
                    register=self.register_row, uuid=doc.uuid, fd_number=fd_number, fiscal_sign=f"{sign:010d}",
                    shift_number=self._shift_number(), settlement=doc.settlement, total=doc.total,
                    registered_at=timezone.now(),
                )
        except IntegrityError:  # the same document registered by a twin call just now
            return self._registration(journal.get(uuid=doc.uuid))
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
