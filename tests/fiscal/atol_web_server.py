"""A local stand-in for ATOL driver 10's web server (JSON tasks, `/api/v2/requests`), for tests.

It speaks the protocol as fiscal.md §4.2 documents it and keeps a fiscal journal of its own:

- `POST /api/v2/requests` `{"uuid", "request": [task, …]}`: exactly one fiscal sub-task, else 400;
  a uuid seen before → 409; otherwise 201 `{uuid, number, isBlocked: false}`. The task is checked
  when it runs, and a bad one ends in status `error`: a money or quantity field that is not a
  JSON number → 501, an unknown enum value → 501, quantity ≤ 0 → 17, a negative price, amount or
  sum → 16, payments below the total → 66, non-cash payments above the total → 52 (cash above the
  total is change). A receipt when no shift is open opens one first, with a warning in the result.
- `GET /api/v2/requests/{uuid}` → `{"results": [{"status", "error": {"code", "description"},
  "result"}]}`; 404 for a uuid it never took. Tasks run lazily: each GET moves a task one step
  (`inProgress` for `delay` polls, then `blocked` for `blocked` polls, then it runs).

What the shift tasks return is modelled (the protocol notes do not show it): `openShift` and
`closeShift` carry `fiscalParams` with `shiftNumber` (and `receiptsCount` on close); `closeShift`
and `reportX` carry `shiftTotals: {shiftNumber, receipts: {sell: {count, sum}, sellReturn: {…}}}`.

Controls for tests: `offline` (the port stops listening: connection refused), `delay`, `blocked`,
`device_error` (every task that runs fails with this driver error, e.g. 2 «Нет связи»),
`shift_expired` (receipts fail with 68 until closeShift), `drop_post_responses` (the next N POSTs
are taken but the connection closes before the answer), `forget(uuid)` (the queue lost a task
that had not run). Counters: `posts` (POSTs per uuid, 409s included), `polls` (GETs per uuid),
`registered` (fiscal receipts per task uuid, never above 1), and `journal` (every fiscal document
in FD order).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

MSK = timezone(timedelta(hours=3))

FISCAL_TASKS = frozenset(
    {
        "sell",
        "sellReturn",
        "buy",
        "buyReturn",
        "sellCorrection",
        "buyCorrection",
        "sellReturnCorrection",
        "buyReturnCorrection",
        "openShift",
        "closeShift",
        "reportX",
    }
)
RUNNABLE_TASKS = frozenset({"sell", "sellReturn", "openShift", "closeShift", "reportX"})

TAXATION_TYPES = {"osn", "usnIncome", "usnIncomeOutcome", "envd", "esn", "patent"}
PAYMENT_METHODS = {
    "fullPrepayment",
    "prepayment",
    "advance",
    "fullPayment",
    "partialPayment",
    "credit",
    "creditPayment",
}
PAYMENT_OBJECTS = {"commodity", "excise", "job", "service", "payment", "another"}
TAX_TYPES = {
    "none",
    "vat0",
    "vat10",
    "vat110",
    "vat20",
    "vat120",
    "vat5",
    "vat7",
    "vat105",
    "vat107",
    "vat22",
    "vat122",
}
PAYMENT_TYPES = {"cash", "electronically", "prepaid", "credit", "other"}

FINAL = frozenset({"ready", "error"})


class TaskError(Exception):
    def __init__(self, code: int, description: str):
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description


@dataclass
class Task:
    uuid: str
    number: int
    subtasks: list[dict]
    pending_polls: int
    blocked_polls: int
    status: str = "wait"
    error: tuple[int, str] = (0, "")
    result: dict | None = None


@dataclass
class Shift:
    number: int
    receipts: int = 0
    sell_count: int = 0
    sell_sum: Decimal = Decimal("0.00")
    return_count: int = 0
    return_sum: Decimal = Decimal("0.00")


@dataclass
class AtolWebServer:
    delay: int = 0
    blocked: int = 0
    device_error: int | None = None
    shift_expired: bool = False
    drop_post_responses: int = 0
    fn_number: str = "7380440800000001"
    registration_number: str = "0000000001012345"
    fns_url: str = "www.nalog.gov.ru"

    posts: Counter = field(default_factory=Counter)
    polls: Counter = field(default_factory=Counter)
    registered: Counter = field(default_factory=Counter)
    journal: list[dict] = field(default_factory=list)
    bodies: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self):
        self.lock = threading.RLock()
        self.tasks: dict[str, Task] = {}
        self.shift: Shift | None = None
        self.last_shift_number = 0
        self.fd_number = 0
        self.port = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- life cycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AtolWebServer:
        server = self

        class Handler(_Handler):
            atol = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None
            self._thread = None

    @property
    def offline(self) -> bool:
        return self._httpd is None

    @offline.setter
    def offline(self, value: bool) -> None:
        if value and not self.offline:
            self.stop()
        elif not value and self.offline:
            self.start()  # the same port: the journal and queue survive

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- views for tests

    @property
    def receipts(self) -> list[dict]:
        """Journal entries of sell / sellReturn receipts."""
        return [entry for entry in self.journal if entry["type"] in ("sell", "sellReturn")]

    def forget(self, uuid: str) -> None:
        """The web server lost a task that had not run (e.g. its queue was wiped)."""
        with self.lock:
            task = self.tasks[uuid]
            assert task.status not in FINAL, "only a task that has not run can be lost"
            del self.tasks[uuid]

    # ---- protocol

    def submit(self, raw: bytes) -> tuple[int, dict]:
        try:
            body = json.loads(raw, parse_float=Decimal)
        except ValueError:
            return 400, {"error": {"code": 400, "description": "Невалидный JSON"}}
        if not isinstance(body, dict) or not isinstance(body.get("uuid"), str) or not body["uuid"]:
            return 400, {"error": {"code": 400, "description": "Не указан uuid"}}
        request = body.get("request")
        if isinstance(request, dict):
            request = [request]
        if not isinstance(request, list) or not all(isinstance(t, dict) for t in request):
            return 400, {"error": {"code": 400, "description": "Неверный формат request"}}
        uuid = body["uuid"]
        with self.lock:
            self.posts[uuid] += 1
            if uuid in self.tasks:
                return 409, {"error": {"code": 409, "description": f"Задание с uuid {uuid} уже существует"}}
            fiscal = [t for t in request if t.get("type") in FISCAL_TASKS]
            if len(fiscal) > 1:
                return 400, {"error": {"code": 400, "description": "Too many fiscal sub-tasks"}}
            if not fiscal:
                return 400, {"error": {"code": 400, "description": "No fiscal sub-task"}}
            self.bodies[uuid] = raw
            task = Task(uuid, len(self.tasks) + 1, request, self.delay, self.blocked)
            self.tasks[uuid] = task
            return 201, {"uuid": uuid, "number": task.number, "isBlocked": False, "blockedUUID": ""}

    def state_of(self, uuid: str) -> tuple[int, dict]:
        with self.lock:
            task = self.tasks.get(uuid)
            if task is None:
                return 404, {"error": {"code": 404, "description": f"Задание {uuid} не найдено"}}
            self.polls[uuid] += 1
            self._step(task)
            code, description = task.error
            entry = {"status": task.status, "error": {"code": code, "description": description}, "result": task.result}
            results = [entry if t.get("type") in FISCAL_TASKS else _ready_empty() for t in task.subtasks]
            return 200, {"results": results}

    def _step(self, task: Task) -> None:
        if task.status in FINAL:
            return
        if task.pending_polls > 0:
            task.pending_polls -= 1
            task.status = "inProgress"
            return
        if task.blocked_polls > 0:
            task.blocked_polls -= 1
            task.status = "blocked"
            return
        fiscal = next(t for t in task.subtasks if t.get("type") in FISCAL_TASKS)
        try:
            if self.device_error is not None:
                raise TaskError(self.device_error, _DESCRIPTIONS.get(self.device_error, "Ошибка ККТ"))
            if fiscal["type"] not in RUNNABLE_TASKS:
                raise TaskError(501, f"Тип задания «{fiscal['type']}» не поддерживается")
            task.result = getattr(self, "_run_" + fiscal["type"])(task.uuid, fiscal)
            task.status = "ready"
        except TaskError as failed:
            task.status = "error"
            task.error = (failed.code, failed.description)
            task.result = None

    # ---- the register

    def _next_document(self, uuid: str) -> dict:
        self.fd_number += 1
        sign = int.from_bytes(hashlib.sha256(f"{self.fn_number}:{self.fd_number}:{uuid}".encode()).digest()[:4], "big")
        return {
            "fiscalDocumentNumber": self.fd_number,
            "fiscalDocumentSign": str(sign).zfill(10),
            "fiscalDocumentDateTime": datetime.now(MSK).isoformat(timespec="seconds"),
            "fnNumber": self.fn_number,
            "registrationNumber": self.registration_number,
            "fnsUrl": self.fns_url,
        }

    def _open(self, uuid: str) -> dict:
        self.last_shift_number += 1
        self.shift = Shift(self.last_shift_number)
        self.shift_expired = False
        params = self._next_document(uuid) | {"shiftNumber": self.shift.number}
        self.journal.append({"type": "openShift", "uuid": uuid, "shiftNumber": self.shift.number, **params})
        return params

    def _run_openShift(self, uuid: str, task: dict) -> dict:
        if self.shift is not None:
            raise TaskError(83, "Смена открыта - операция невозможна")
        return {"fiscalParams": self._open(uuid)}

    def _run_closeShift(self, uuid: str, task: dict) -> dict:
        if self.shift is None:
            raise TaskError(73, "Смена закрыта - операция невозможна")
        totals = self._totals()
        params = self._next_document(uuid) | {"shiftNumber": self.shift.number, "receiptsCount": self.shift.receipts}
        self.journal.append({"type": "closeShift", "uuid": uuid, **params})
        self.shift = None
        self.shift_expired = False
        return {"fiscalParams": params, "shiftTotals": totals}

    def _run_reportX(self, uuid: str, task: dict) -> dict:
        return {"shiftTotals": self._totals()}

    def _totals(self) -> dict:
        shift = self.shift or Shift(self.last_shift_number)
        return {
            "shiftNumber": shift.number,
            "receipts": {
                "sell": {"count": shift.sell_count, "sum": shift.sell_sum},
                "sellReturn": {"count": shift.return_count, "sum": shift.return_sum},
            },
        }

    def _run_sell(self, uuid: str, task: dict) -> dict:
        total, payments = _check_receipt(task)
        if self.shift_expired:
            raise TaskError(68, "Смена превысила 24 часа")
        warnings = {}
        if self.shift is None:
            self._open(uuid + ":openShift")
            warnings["shiftAutoOpened"] = True
            warnings["description"] = f"Смена {self.shift.number} открыта автоматически"
        shift = self.shift
        shift.receipts += 1
        if task["type"] == "sell":
            shift.sell_count += 1
            shift.sell_sum += total
        else:
            shift.return_count += 1
            shift.return_sum += total
        params = self._next_document(uuid) | {
            "shiftNumber": shift.number,
            "fiscalReceiptNumber": shift.receipts,
            "total": total,
        }
        self.registered[uuid] += 1
        self.journal.append(
            {
                "type": task["type"],
                "uuid": uuid,
                "items": task["items"],
                "payments": payments,
                "total": total,
                "clientInfo": task.get("clientInfo"),
                **params,
            }
        )
        result = {"fiscalParams": params}
        if warnings:
            result["warnings"] = warnings
        return result

    _run_sellReturn = _run_sell


def _ready_empty() -> dict:
    return {"status": "ready", "error": {"code": 0, "description": ""}, "result": {}}


def _number(value, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TaskError(501, f'Поле "{where}" имеет неверный тип')
    return Decimal(value)


def _one_of(value, allowed: set, where: str) -> None:
    if value not in allowed:
        raise TaskError(501, f'Поле "{where}" имеет неверное значение: {value!r}')


def _check_receipt(task: dict) -> tuple[Decimal, dict[str, Decimal]]:
    """The checks a register makes on a sell / sellReturn task; returns (total, payments by type)."""
    _one_of(task.get("taxationType", "osn"), TAXATION_TYPES, "taxationType")
    if "electronically" in task and not isinstance(task["electronically"], bool):
        raise TaskError(501, 'Поле "electronically" имеет неверный тип')
    items = task.get("items")
    if not isinstance(items, list) or not items:
        raise TaskError(501, 'Поле "items" не заполнено')
    items_total = Decimal(0)
    for i, item in enumerate(items):
        where = f"items[{i}]"
        if item.get("type") != "position":
            raise TaskError(501, f'Поле "{where}.type" имеет неверное значение')
        if not isinstance(item.get("name"), str) or not item["name"]:
            raise TaskError(501, f'Поле "{where}.name" не заполнено')
        price = _number(item.get("price"), f"{where}.price")
        quantity = _number(item.get("quantity"), f"{where}.quantity")
        amount = _number(item.get("amount"), f"{where}.amount")
        if "measurementUnit" in item:
            unit = item["measurementUnit"]
            if isinstance(unit, bool) or not isinstance(unit, (int, str)):
                raise TaskError(501, f'Поле "{where}.measurementUnit" имеет неверный тип')
        _one_of(item.get("paymentMethod", "fullPayment"), PAYMENT_METHODS, f"{where}.paymentMethod")
        _one_of(item.get("paymentObject", "commodity"), PAYMENT_OBJECTS, f"{where}.paymentObject")
        _one_of((item.get("tax") or {}).get("type"), TAX_TYPES, f"{where}.tax.type")
        if quantity <= 0:
            raise TaskError(17, "Неверное количество")
        if price < 0 or amount < 0:
            raise TaskError(16, "Неверная цена (сумма)")
        items_total += amount
    payments: dict[str, Decimal] = {}
    for i, payment in enumerate(task.get("payments") or []):
        _one_of(payment.get("type"), PAYMENT_TYPES, f"payments[{i}].type")
        amount = _number(payment.get("sum"), f"payments[{i}].sum")
        if amount < 0:
            raise TaskError(16, "Неверная цена (сумма)")
        payments[payment["type"]] = payments.get(payment["type"], Decimal(0)) + amount
    total = items_total
    if "total" in task:
        total = _number(task["total"], "total")
        if total != items_total:
            raise TaskError(227, "Неверный итог чека")
    if sum(payments.values(), Decimal(0)) < total:
        raise TaskError(66, "Чек оплачен не полностью")
    if sum((v for k, v in payments.items() if k != "cash"), Decimal(0)) > total:
        raise TaskError(52, "Сумма не наличных платежей превышает сумму чека")
    return total, payments


_DESCRIPTIONS = {
    2: "Нет связи",
    55: "Предыдущая операция не завершена",
    68: "Смена превысила 24 часа",
    241: "Соединение с ККТ потеряно",
}


class _Handler(BaseHTTPRequestHandler):
    atol: AtolWebServer
    prefix = "/api/v2/requests"

    def do_POST(self):
        if self.path.rstrip("/") != self.prefix:
            return self._send(404, {"error": {"code": 404, "description": "Not found"}})
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, payload = self.atol.submit(raw)
        with self.atol.lock:
            drop = status == 201 and self.atol.drop_post_responses > 0
            if drop:
                self.atol.drop_post_responses -= 1
        if drop:
            self.close_connection = True  # the task is taken; the answer is lost
            return
        self._send(status, payload)

    def do_GET(self):
        if not self.path.startswith(self.prefix + "/"):
            return self._send(404, {"error": {"code": 404, "description": "Not found"}})
        status, payload = self.atol.state_of(self.path[len(self.prefix) + 1 :])
        self._send(status, payload)

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload, ensure_ascii=False, default=_decimal_number).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # quiet
        pass


def _decimal_number(value):
    if isinstance(value, Decimal):
        return float(value)  # answers only: sums in the journal have two decimals
    raise TypeError(type(value).__name__)
