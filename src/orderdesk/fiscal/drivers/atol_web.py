"""ATOL driver 10 web server: JSON tasks over HTTP (fiscal.md §4.2).

One fiscal task per request: `POST {base_url}/api/v2/requests` with `{"uuid", "request": [task]}`,
then `GET {base_url}/api/v2/requests/{uuid}` until the task's status is final.

Exactly once. The task uuid is the idempotency key: the web server refuses a second POST with the
same uuid (HTTP 409) and keeps finished tasks for their retention period. The first task of a
receipt carries `doc.uuid` itself. `state["atol_web"]` remembers which task uuid is in flight and
whether it was surely received, so a later call polls instead of sending; when the state was lost
(a crash before the caller saved it) the POST gets 409 and the driver polls just the same.

A task that ends in `error` registered nothing, and its uuid is spent (a new POST with it would be
409 forever), so the next attempt of the same receipt goes out as a new task whose uuid is derived
from `doc.uuid` and the attempt number (uuid5, deterministic: after a lost state the driver walks
the same chain and finds the tasks it already sent). `wait`, `inProgress` and `blocked` (connection
to the register dropped mid-document, outcome unknown) are never re-sent: they are polled until
final, and past `poll_deadline` the call raises RegistrationPending.
"""

from __future__ import annotations

import json
import time
import uuid as uuidlib
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import httpx

from orderdesk.fiscal.codes import PaymentForm, PaymentMethod, Settlement, Subject, Taxation, Vat
from orderdesk.fiscal.drivers.atol import VAT_NAMES
from orderdesk.fiscal.drivers.base import (
    LineDoc,
    ReceiptDoc,
    ReceiptRejected,
    RegisterUnavailable,
    Registration,
    RegistrationPending,
    ShiftReport,
)

STATE_KEY = "atol_web"
_TASK_NAMESPACE = uuidlib.uuid5(uuidlib.NAMESPACE_URL, "https://orderdesk/fiscal/atol-web/task")

KOPECK = Decimal("0.01")
QUANTITY_STEP = Decimal("0.001")

SETTLEMENT_TYPES = {Settlement.INCOME: "sell", Settlement.INCOME_REFUND: "sellReturn"}

TAXATION_TYPES = {
    Taxation.OSN: "osn",
    Taxation.USN_INCOME: "usnIncome",
    Taxation.USN_INCOME_OUTCOME: "usnIncomeOutcome",
    Taxation.ESN: "esn",
    Taxation.PATENT: "patent",
}

PAYMENT_METHODS = {
    PaymentMethod.FULL_PREPAYMENT: "fullPrepayment",
    PaymentMethod.PREPAYMENT: "prepayment",
    PaymentMethod.ADVANCE: "advance",
    PaymentMethod.FULL_PAYMENT: "fullPayment",
    PaymentMethod.PARTIAL_PAYMENT_AND_CREDIT: "partialPayment",
    PaymentMethod.CREDIT_TRANSFER: "credit",
    PaymentMethod.CREDIT_PAYMENT: "creditPayment",
}

PAYMENT_OBJECTS = {
    Subject.GOODS: "commodity",
    Subject.WORK: "job",
    Subject.SERVICE: "service",
    Subject.PAYMENT: "payment",
}

# In the order the receipt lists them.
PAYMENT_TYPES = {
    PaymentForm.CASH: "cash",
    PaymentForm.ELECTRONIC: "electronically",
    PaymentForm.PREPAYMENT: "prepaid",
    PaymentForm.CREDIT: "credit",
}

# Driver error codes (ATOL driver 10, LIBFPTR_ERROR_*) that say nothing about the document: the
# register is unreachable, busy, out of paper, its shift is over 24 h, its fiscal drive or clock
# needs attention. The same document will go through once a person or time fixes the register.
# Every other code is taken as a refusal of the document itself (16 price/sum, 17 quantity, 52
# non-cash above the total, 66 not fully paid, 501 a field of the wrong type, …).
UNAVAILABLE_CODES = frozenset(
    {
        1,  # connection not established
        2,  # no connection
        3,  # port busy
        4,  # port unavailable
        5,  # garbage from the device
        10,  # driver not configured
        35,  # check date and time
        36,  # date/time before the last fiscal document
        44,  # no paper
        45,  # cover open
        46,  # no connection to the printer
        47,  # printer mechanics
        55,  # previous operation not finished
        68,  # shift over 24 hours: needs closeShift (not done automatically)
        72,  # electronic journal busy
        73,  # shift closed (and not opened automatically)
        82,  # a receipt is open in the register
        104,  # exchange with the fiscal module
        107,  # no device
        108,  # no connection to an external device
        114,  # print head overheated
        115,  # exchange with the fiscal drive (I2C)
        117,  # fiscal drive in a wrong state
        120,  # fiscal drive expired
        121,  # fiscal drive archive full
        122,  # wrong date/time sent to the fiscal drive
        132,  # low battery
        135,  # no transport connection of the fiscal drive
        139,  # fiscal drive holds unsent documents (OFD)
        140,  # OFD waiting time exhausted
        141,  # fiscal drive shift over 24 hours
        150,  # cutter
        179,  # clock failure
        188,  # register needs a reboot
        198,  # date and time not synchronised
        200,  # a document is open
        203,  # a document must be cancelled first
        214,  # network interface down
        221,  # network interface busy
        226,  # firmware update in progress
        241,  # connection to the register lost
        601,  # device busy with another client
        603,  # exchange with the remote driver server
    }
)

# Any other status (`wait`, `inProgress`, `blocked`, or one this driver does not know) is polled.
# `interrupted` (an earlier sub-task failed) and `canceled` (removed from the queue) registered
# nothing, like `error`.
FAILED_STATUSES = frozenset({"error", "interrupted", "canceled"})


class _Number:
    """A JSON number written from exact decimal digits."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def money(value: Decimal) -> _Number:
    """Money as a JSON number with exactly two decimals."""
    return _Number(format(_finite(value).quantize(KOPECK), "f"))


def quantity(value: Decimal) -> _Number:
    """Quantity as a JSON number with up to three decimals (1, 1.5, 0.125)."""
    text = format(_finite(value).quantize(QUANTITY_STEP), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return _Number(text)


def _finite(value: Decimal) -> Decimal:
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {value}")
    return value


def dumps(value) -> str:
    """JSON text of dicts, lists, strings, ints, bools, None and _Number; never a float."""
    parts: list[str] = []
    _dump(value, parts)
    return "".join(parts)


def _dump(value, out: list[str]) -> None:
    if isinstance(value, _Number):
        out.append(value.text)
    elif value is None or isinstance(value, (bool, str)):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(", ")
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(": ")
            _dump(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(", ")
            _dump(item, out)
        out.append("]")
    else:
        # Decimal, float and anything else must be wrapped on purpose (money() / quantity()).
        raise TypeError(f"cannot write {type(value).__name__} into a task: wrap it with money() or quantity()")


def sell_task(doc: ReceiptDoc, operator_name: str | None = None) -> dict:
    """The `sell` / `sellReturn` task of a receipt document."""
    task: dict = {
        "type": SETTLEMENT_TYPES[doc.settlement],
        "taxationType": TAXATION_TYPES[Taxation(doc.taxation)],
        "electronically": bool(doc.electronically),
    }
    name = doc.cashier or operator_name
    if name:
        task["operator"] = {"name": name}
    client: dict = {}
    if doc.buyer_contact:
        client["emailOrPhone"] = doc.buyer_contact
    if doc.buyer_name:
        client["name"] = doc.buyer_name
    if doc.buyer_inn:
        client["vatin"] = doc.buyer_inn
    if client:
        task["clientInfo"] = client
    if doc.payment_address:
        task["paymentsAddress"] = doc.payment_address
    task["items"] = [_position(line) for line in doc.lines]
    task["payments"] = [
        {"type": kind, "sum": money(doc.payments[form])}
        for form, kind in PAYMENT_TYPES.items()
        if doc.payments.get(form)
    ]
    task["total"] = money(doc.total)
    return task


def _position(line: LineDoc) -> dict:
    return {
        "type": "position",
        "name": line.name,
        "price": money(line.price),
        "quantity": quantity(line.quantity),
        "amount": money(line.amount),
        "measurementUnit": int(line.measure),
        "paymentMethod": PAYMENT_METHODS[PaymentMethod(line.payment_method)],
        "paymentObject": PAYMENT_OBJECTS[Subject(line.subject)],
        "tax": {"type": VAT_NAMES[Vat(line.vat)]},
    }


def task_uuid(doc_uuid: str, attempt: int) -> str:
    """The uuid of the receipt's `attempt`-th task: the document's own uuid first, then derived."""
    if attempt <= 1:
        return doc_uuid
    return str(uuidlib.uuid5(_TASK_NAMESPACE, f"{doc_uuid}#{attempt}"))


class _TaskFailed(Exception):
    def __init__(self, status: str, code: int, description: str):
        super().__init__(f"{status} {code}: {description}")
        self.status = status
        self.code = code
        self.description = description

    @property
    def register_unavailable(self) -> bool:
        return self.status == "canceled" or self.code in UNAVAILABLE_CODES

    def message(self, what: str) -> str:
        text = f"ATOL web server: {what} ended with {self.status}, error {self.code}"
        if self.description:
            text += f" «{self.description}»"
        if self.code == 68 or self.code == 141:
            text += " — the shift is over 24 hours: close the shift, then retry"
        return text


class _NotFound(Exception):
    pass


class AtolWebServerDriver:
    """A fiscal register behind ATOL driver 10's web server (default port 16732)."""

    def __init__(
        self,
        base_url: str,
        timeout: float = 10,
        poll_interval: float = 0.5,
        poll_deadline: float = 30,
        operator_name: str | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.poll_deadline = poll_deadline
        self.operator_name = operator_name
        self._http: httpx.Client | None = None

    # ---- receipts

    def register(self, doc: ReceiptDoc, state: dict) -> Registration:
        try:
            body_task = sell_task(doc, self.operator_name)
        except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
            raise ReceiptRejected(f"receipt {doc.uuid} cannot be written as an ATOL task: {exc!r}") from exc
        mine = state.setdefault(STATE_KEY, {})
        mine.setdefault("attempt", 1)
        mine.setdefault("submitted", False)
        client = self._client()
        # Bounded: each turn either returns, raises, or moves to the next attempt after
        # finding an earlier attempt's failure the lost state had forgotten.
        for _ in range(100):
            current = task_uuid(doc.uuid, mine["attempt"])
            mine["task_uuid"] = current
            collided = False
            if not mine["submitted"]:
                collided = self._submit(client, current, body_task)
                mine["submitted"] = True
            try:
                result = self._poll(client, current, f"receipt {doc.uuid}")
            except _NotFound:
                mine["submitted"] = False
                raise RegisterUnavailable(
                    f"ATOL web server does not know task {current} of receipt {doc.uuid}: it was never "
                    "received (or has outlived the retention period); it will be sent again"
                ) from None
            except _TaskFailed as failed:
                # Nothing was registered and this task uuid is spent: the next try is a new task.
                mine["attempt"] += 1
                mine["submitted"] = False
                mine["last_error"] = {"code": failed.code, "description": failed.description}
                if collided:
                    continue  # an old failure found after a lost state: try again now
                if failed.register_unavailable:
                    raise RegisterUnavailable(failed.message(f"receipt {doc.uuid}")) from None
                raise ReceiptRejected(failed.message(f"receipt {doc.uuid}")) from None
            mine.pop("last_error", None)
            return _registration(result, current)
        raise RegisterUnavailable(f"ATOL web server: receipt {doc.uuid} failed too many times in a row")

    # ---- shifts

    def open_shift(self, cashier: str) -> ShiftReport:
        return self._shift_task("openShift", cashier)

    def x_report(self) -> ShiftReport:
        return self._shift_task("reportX", None)

    def close_shift(self, cashier: str) -> ShiftReport:
        return self._shift_task("closeShift", cashier)

    def _shift_task(self, kind: str, cashier: str | None) -> ShiftReport:
        task: dict = {"type": kind}
        name = cashier or self.operator_name
        if name:
            task["operator"] = {"name": name}
        current = str(uuidlib.uuid4())
        client = self._client()
        self._submit(client, current, task)
        try:
            result = self._poll(client, current, kind)
        except _NotFound:
            raise RegisterUnavailable(f"ATOL web server lost task {current} ({kind})") from None
        except _TaskFailed as failed:
            if failed.register_unavailable:
                raise RegisterUnavailable(failed.message(kind)) from None
            raise ReceiptRejected(failed.message(kind)) from None
        return _shift_report(result)

    # ---- HTTP

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(base_url=self.base_url, timeout=self.timeout)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _submit(self, client: httpx.Client, current: str, task: dict) -> bool:
        """POST the task. Returns True when the server already had this uuid (409)."""
        body = dumps({"uuid": current, "request": [task]}).encode()
        try:
            response = client.post(
                "/api/v2/requests", content=body, headers={"Content-Type": "application/json; charset=utf-8"}
            )
        except httpx.TransportError as exc:
            # Refused, timed out, or the answer was lost. If the server did take the task, the next
            # attempt's POST gets 409 and polls it.
            raise RegisterUnavailable(f"ATOL web server at {self.base_url} is unreachable: {exc!r}") from exc
        if response.status_code == 201 or response.status_code == 200:
            return False
        if response.status_code == 409:
            return True
        if response.status_code == 400:
            raise ReceiptRejected(f"ATOL web server refused task {current}: HTTP 400 {_short(response.text)}")
        raise RegisterUnavailable(
            f"ATOL web server answered HTTP {response.status_code} to task {current}: {_short(response.text)}"
        )

    def _poll(self, client: httpx.Client, current: str, what: str) -> dict:
        """GET until the task is final. Returns its `result`; raises _TaskFailed, _NotFound or
        RegistrationPending."""
        deadline = time.monotonic() + self.poll_deadline
        status = "unknown"
        while True:
            try:
                response = client.get(f"/api/v2/requests/{current}")
            except httpx.TransportError as exc:
                raise RegistrationPending(
                    f"ATOL web server at {self.base_url} became unreachable while {what} (task {current}) "
                    f"was in flight: {exc!r}; it will be polled, not re-sent"
                ) from exc
            if response.status_code == 404:
                raise _NotFound(current)
            if response.status_code != 200:
                raise RegistrationPending(
                    f"ATOL web server answered HTTP {response.status_code} about task {current} ({what}); "
                    "it will be polled again"
                )
            try:
                payload = json.loads(response.content, parse_float=Decimal)
                entry = payload["results"][0]
                status = entry["status"]
            except (ValueError, KeyError, IndexError, TypeError):
                raise RegistrationPending(
                    f"ATOL web server gave an unreadable answer about task {current} ({what}): {_short(response.text)}"
                ) from None
            if status == "ready":
                return entry.get("result") or {}
            if status in FAILED_STATUSES:
                error = entry.get("error") or {}
                raise _TaskFailed(status, _int(error.get("code")), str(error.get("description") or ""))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RegistrationPending(
                    f"ATOL web server: {what} (task {current}) is still {status} after {self.poll_deadline:g} s; "
                    "it will be polled, never re-sent"
                )
            time.sleep(min(self.poll_interval, remaining))


def _registration(result: dict, current: str) -> Registration:
    params = result.get("fiscalParams") or {}
    raw_time = params.get("fiscalDocumentDateTime")
    registered_at = _datetime(raw_time)
    extra = {
        "task_uuid": current,
        "fns_url": str(params.get("fnsUrl") or ""),
        "registration_number": str(params.get("registrationNumber") or ""),
    }
    if params.get("total") is not None:
        extra["total"] = str(params["total"])
    if result.get("warnings"):
        extra["warnings"] = _plain(result["warnings"])
    if registered_at is None:
        extra["fiscal_document_datetime"] = str(raw_time)
        registered_at = datetime.now(UTC)
    receipt_number = params.get("fiscalReceiptNumber")
    return Registration(
        fn_number=str(params.get("fnNumber") or ""),
        fd_number=_int(params.get("fiscalDocumentNumber")),
        fiscal_sign=str(params.get("fiscalDocumentSign") or ""),
        shift_number=_int(params.get("shiftNumber")),
        registered_at=registered_at,
        receipt_number=None if receipt_number is None else _int(receipt_number),
        extra=extra,
    )


def _shift_report(result: dict) -> ShiftReport:
    params = result.get("fiscalParams") or {}
    totals = result.get("shiftTotals") or {}
    receipts = totals.get("receipts") or {}
    sell = receipts.get("sell") or {}
    sell_return = receipts.get("sellReturn") or {}
    shift_number = params.get("shiftNumber", totals.get("shiftNumber", result.get("shiftNumber")))
    count = params.get("receiptsCount")
    if count is None and (sell or sell_return):
        count = _int(sell.get("count")) + _int(sell_return.get("count"))
    extra = {}
    for key in ("fiscalDocumentNumber", "fiscalDocumentSign", "fiscalDocumentDateTime", "fnNumber"):
        if params.get(key) is not None:
            extra[key] = str(params[key])
    if result.get("warnings"):
        extra["warnings"] = _plain(result["warnings"])
    return ShiftReport(
        shift_number=_int(shift_number),
        receipts=_int(count),
        income=_decimal(sell.get("sum")),
        refunds=_decimal(sell_return.get("sum")),
        extra=extra,
    )


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, InvalidOperation):
        return 0


def _decimal(value) -> Decimal:
    try:
        return Decimal(str(value)).quantize(KOPECK) if value is not None else Decimal("0.00")
    except InvalidOperation:
        return Decimal("0.00")


def _datetime(value) -> datetime | None:
    if not value:
        return None
    text = str(value)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for pattern in ("%d.%m.%Y %H:%M:%S", "%Y.%m.%d %H:%M:%S", "%d.%m.%Y %H:%M"):
        try:
            return datetime.strptime(text, pattern)
        except ValueError:
            continue
    return None


def _plain(value):
    """Decimals (from parse_float) back to strings so the value can be stored as JSON."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
