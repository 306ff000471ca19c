"""The emulator register: the default for `make demo` and tests. It keeps a fiscal journal in a
fiscal memory of its own (`emulator_memory`), numbers documents and shifts as a real fiscal drive
does, and answers a repeated uuid with the document it already made, as real protocols do.
`connection["offline"]` makes it unreachable, for trying what the product does when a register is
down."""

import hashlib
import sqlite3
from decimal import Decimal

from django.utils import timezone

from orderdesk.core import rows
from orderdesk.fiscal.codes import Settlement
from orderdesk.fiscal.drivers import emulator_memory
from orderdesk.fiscal.drivers.base import ReceiptDoc, Registration, RegisterUnavailable, ShiftReport
from orderdesk.fiscal.models import Register, Shift

# The worker registers every receipt through these: prepared, not compiled per receipt.
_CONNECTION = rows.Prepared(lambda register_id: Register.objects.filter(pk=register_id).values_list("connection"),
                            register_id=int)
_OPEN_SHIFT_NUMBER = rows.Prepared(lambda register_id: Shift.objects.filter(register_id=register_id, closed_at__isnull=True)
                                   .values_list("number"), register_id=int)


def fn_number(register_id: int, connection: dict) -> str:
    """The emulated fiscal drive's number: the register's own, or one made from its id."""
    return connection.get("fn_number") or f"99990789{register_id:08d}"


class EmulatorDriver:
    def __init__(self, register: Register):
        self.register_row = register

    @property
    def fn_number(self) -> str:
        return fn_number(self.register_row.pk, self.register_row.connection)

    def _require_online(self) -> None:
        [(fresh,)] = _CONNECTION.values(register_id=self.register_row.pk)
        if fresh.get("offline"):
            raise RegisterUnavailable(f"register «{self.register_row.name}» does not answer")

    def _registration(self, document: emulator_memory.Document) -> Registration:
        return Registration(fn_number=self.fn_number, fd_number=document.fd_number, fiscal_sign=document.fiscal_sign,
                            shift_number=document.shift_number, registered_at=document.registered_at)

    def _shift_number(self) -> int:
        if (number := _OPEN_SHIFT_NUMBER.scalar(register_id=self.register_row.pk)) is None:
            raise RegisterUnavailable(f"register «{self.register_row.name}» has no open shift")
        return number

    def register(self, doc: ReceiptDoc, state: dict) -> Registration:
        self._require_online()
        try:  # a repeated uuid is answered with its document, as a real register does
            document = emulator_memory.record(
                self.fn_number, doc.uuid, shift_number=self._shift_number, settlement=doc.settlement,
                total=doc.total, registered_at=timezone.now(),
                sign=lambda fd_number: self._fiscal_sign(fd_number, doc.uuid))
        except sqlite3.Error as exc:  # its fiscal memory failed: the receipt waits, as for a register away
            raise RegisterUnavailable(f"register «{self.register_row.name}»: its fiscal memory failed: {exc}") from exc
        state["fd_number"] = document.fd_number
        return self._registration(document)

    def _fiscal_sign(self, fd_number: int, uuid: str) -> str:
        sign = int(hashlib.sha256(f"{self.fn_number}:{fd_number}:{uuid}".encode()).hexdigest(), 16) % 10**10
        return f"{sign:010d}"

    def _report(self, shift_number: int) -> ShiftReport:
        documents = emulator_memory.shift_documents(self.fn_number, shift_number)
        income = sum((d.total for d in documents if d.settlement == Settlement.INCOME), Decimal("0.00"))
        refunds = sum((d.total for d in documents if d.settlement == Settlement.INCOME_REFUND), Decimal("0.00"))
        return ShiftReport(shift_number=shift_number, receipts=len(documents), income=income, refunds=refunds)

    def open_shift(self, cashier: str) -> ShiftReport:
        self._require_online()
        return self._report(self._shift_number())

    def x_report(self) -> ShiftReport:
        self._require_online()
        return self._report(self._shift_number())

    def close_shift(self, cashier: str) -> ShiftReport:
        self._require_online()
        return self._report(self._shift_number())
