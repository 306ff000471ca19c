"""A local ATOL Online v5 service (fiscal.md §4.1) for tests: real HTTP on loopback, the documented
shapes and error codes, and counters that tell how often each external_id was really registered.

    with AtolOnlineServer() as atol:
        driver = AtolOnlineDriver(atol.base_url, atol.login, atol.password, atol.group_code, ...)

Knobs (plain attributes, may change while running):
- `wait_polls`: how many report polls answer `wait` before the result;
- `answer34_polls`: of those first polls, how many answer error 34 (state not yet known) instead;
- `offline`: the result is a `fail` of type `timeout` (no register of the group online); the
  document is not registered and may be sent again under the same external_id;
- `error33_without_uuid`: a repeated external_id is refused with 33 but without the uuid;
- `timeout_keeps_external_id`: a resend after a timeout `fail` is refused with 33 too (naming the
  failed document) instead of being taken as a fresh document;
- `token_ttl`: seconds a token lives; `expire_tokens()` ends all of them now;
- `inn`: the group's INN; a receipt for another INN fails in the register (agent error 2009).

Where the real service is not documented in what we have (fiscal.md §7.6): whether 33 carries the
uuid (both are offered), and what a resend after a timeout `fail` gets (here: a fresh document).
"""

import hashlib
import json
import re
import secrets
import threading
import time
import uuid as uuidlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

MOSCOW = ZoneInfo("Europe/Moscow")
FORMAT = "%d.%m.%Y %H:%M:%S"
PREFIX = "/possystem/v5"

PAYMENT_METHODS = {"full_prepayment", "prepayment", "advance", "full_payment", "partial_payment", "credit",
                   "credit_payment"}
PAYMENT_OBJECTS = set(range(1, 28)) | {30, 31, 32, 33}  # tag 1212, FFD 1.2
VAT_TYPES = {"vat20", "vat10", "vat120", "vat110", "vat0", "none", "vat5", "vat7", "vat105", "vat107", "vat22",
             "vat122"}
MEASURES = {0, 10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 70, 71, 72, 73, 80, 81, 82, 83, 255}
SNO = {"osn", "usn_income", "usn_income_outcome", "envd", "esn", "patent"}
OPERATIONS = {"sell": 1, "sell_refund": 2}  # operation → tag 1054 (n= in the QR string)


@dataclass
class Document:
    uuid: str
    external_id: str
    operation: str
    body: dict
    raw: bytes
    polls: int = 0
    status: str = "wait"
    payload: dict | None = None
    error: dict | None = None


@dataclass
class AtolOnlineServer:
    login: str = "test-login"
    password: str = "test-pass"
    group_code: str = "test-group"
    inn: str = "7700000000"
    token_ttl: float = 24 * 3600.0
    wait_polls: int = 1
    answer34_polls: int = 0
    offline: bool = False
    error33_without_uuid: bool = False
    timeout_keeps_external_id: bool = False
    fn_number: str = "9999078900012345"
    shift_number: int = 17

    documents: dict[str, Document] = field(default_factory=dict)  # ATOL uuid → document
    registered: Counter = field(default_factory=Counter)  # external_id → times registered ("done")
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of every request
    token_requests: int = 0
    token_refusals: int = 0  # answers 10/11

    def __post_init__(self):
        self._lock = threading.RLock()
        self._tokens: dict[str, float] = {}  # token → expiry (monotonic)
        self._by_external_id: dict[str, str] = {}  # external_id → uuid of the live document
        self._next_fd = 1001
        self._receipts_in_shift = 0
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> "AtolOnlineServer":
        server = self

        class Handler(_Handler):
            atol = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{PREFIX}"

    # -- what tests look at ---------------------------------------------------------------------

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens = {token: 0.0 for token in self._tokens}

    def posts(self, external_id: str | None = None) -> list[Document]:
        """Every document POSTed (a refused duplicate is not one), oldest first."""
        return [d for d in self.documents.values() if external_id in (None, d.external_id)]

    def calls(self, method: str, part: str = "") -> int:
        return sum(1 for m, p in self.requests if m == method and part in p)

    # -- the protocol ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers, raw: bytes) -> tuple[int, dict]:
        with self._lock:
            self.requests.append((method, path))
            if path.startswith("/possystem/v4/"):
                return 401, _error(21, "Код группы не поддерживает данную версию протокола.")
            if not path.startswith(PREFIX + "/"):
                return 404, _error(40, "Некорректный запрос.")
            parts = path[len(PREFIX) + 1:].split("/")
            if method == "POST" and parts == ["getToken"]:
                return self._get_token(raw)
            token = headers.get("Token")
            if not token or token not in self._tokens:
                self.token_refusals += 1
                return 401, _error(10, "Не распознан токен запроса")
            if time.monotonic() >= self._tokens[token]:
                self.token_refusals += 1
                return 401, _error(11, "Переданный токен не активен")
            if parts[0] != self.group_code:
                return 401, _error(20, "Код группы, указанный в запросе, не соответствует токену.")
            if method == "POST" and len(parts) == 2:
                if parts[1] not in OPERATIONS:
                    return 400, _error(31, f'Операция "{parts[1]}" не поддерживается.')
                if not headers.get("Content-Type", "").startswith("application/json"):
                    return 415, _error(41, f"Некорректный Content-Type: {headers.get('Content-Type')}.")
                return self._register(parts[1], raw)
            if method == "GET" and len(parts) == 3 and parts[1] == "report":
                return self._report(parts[2])
            return 400, _error(40, "Некорректный запрос.")

    def _get_token(self, raw: bytes) -> tuple[int, dict]:
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, _error(40, "Некорректный запрос.")
        if not isinstance(body, dict) or body.get("login") != self.login or body.get("pass") != self.password:
            return 401, _error(12, "Неверный логин или пароль")
        self.token_requests += 1
        token = secrets.token_urlsafe(48)
        self._tokens[token] = time.monotonic() + self.token_ttl
        return 200, {"token": token, "error": None, "timestamp": _now()}

    def _register(self, operation: str, raw: bytes) -> tuple[int, dict]:
        try:
            body = json.loads(raw, parse_float=Decimal)
        except ValueError:
            return 400, _error(32, "Ошибка валидации входного чека. Ошибочные поля : JSON", status="fail")
        problems = validate(body)
        if problems:
            return 400, _error(32, "Ошибка валидации входного чека. Ошибочные поля : " + "; ".join(problems),
                               status="fail")
        external_id = body["external_id"]
        existing = self.documents.get(self._by_external_id.get(external_id, ""))
        timed_out = existing and existing.status == "fail" and existing.error.get("type") == "timeout"
        if existing and (not timed_out or self.timeout_keeps_external_id):
            answer = _error(33, f"В системе существует чек с external_id : {external_id} и group_code: "
                                f"{self.group_code}", status="wait")
            if not self.error33_without_uuid:
                answer["uuid"] = existing.uuid
            return 400, answer
        document = Document(str(uuidlib.uuid4()), external_id, operation, body, raw)
        self.documents[document.uuid] = document
        self._by_external_id[external_id] = document.uuid
        return 200, {"uuid": document.uuid, "status": "wait", "error": None, "timestamp": _now()}

    def _report(self, uuid: str) -> tuple[int, dict]:
        document = self.documents.get(uuid)
        if document is None:
            return 400, _error(30, f'Передан некорректный UUID : "{uuid}".', status="fail")
        if document.status == "wait":
            document.polls += 1
            if document.polls <= self.answer34_polls:
                return 200, _error(34, "Состояние чека не найдено. Попробуйте позднее.", status="wait")
            if document.polls > self.wait_polls:
                self._process(document)
        return 200, {
            "uuid": document.uuid,
            "status": document.status,
            "error": document.error,
            "payload": document.payload,
            "timestamp": _now(),
            "group_code": self.group_code,
            "daemon_code": "local-agent-1",
            "device_code": "KKT-LOCAL-1",
            "external_id": document.external_id,
            "callback_url": document.body.get("service", {}).get("callback_url", ""),
        }

    def _process(self, document: Document) -> None:
        """The register takes the document: registers it, or fails it."""
        receipt = document.body["receipt"]
        if self.offline:
            document.status = "fail"
            document.error = {"code": 1, "text": "Превышено время ожидания чека в очереди: нет кассы группы "
                                                 "на связи (timeout).", "type": "timeout"}
            return
        if receipt["company"]["inn"] != self.inn:
            document.status = "fail"
            document.error = {"code": 2009, "text": f"ИНН, указанный в чеке {receipt['company']['inn']}, не "
                                                    f"соответствует ИНН группы касс {self.inn}.", "type": "agent"}
            return
        fd = self._next_fd
        self._next_fd += 1
        self._receipts_in_shift += 1
        total = receipt["total"]
        moment = datetime.now(MOSCOW).replace(microsecond=0)
        fp = int.from_bytes(hashlib.sha256(f"{self.fn_number}:{fd}:{total}".encode()).digest()[:4]) % 10**10
        n = OPERATIONS[document.operation]
        document.status = "done"
        document.payload = {
            "total": total,
            "fns_site": "www.nalog.gov.ru",
            "fn_number": self.fn_number,
            "shift_number": self.shift_number,
            "receipt_datetime": moment.strftime(FORMAT),
            "fiscal_receipt_number": self._receipts_in_shift,
            "fiscal_document_number": fd,
            "ecr_registration_number": "0000000001012345",
            "fiscal_document_attribute": fp,
            "ofd_inn": "7704211201",
            "ofd_receipt_url": (f"https://ofd.example.org/rec?t={moment:%Y%m%dT%H%M}&s={total:.2f}"
                                f"&fn={self.fn_number}&i={fd}&fp={fp}&n={n}"),
        }
        self.registered[document.external_id] += 1


def validate(body) -> list[str]:
    """What the v5 schema and the service check; each problem names its field."""
    problems: list[str] = []
    if not isinstance(body, dict):
        return ["body"]
    external_id = body.get("external_id")
    if not isinstance(external_id, str) or not 0 < len(external_id) <= 128:
        problems.append("external_id")
    try:
        datetime.strptime(body.get("timestamp", ""), FORMAT)
    except (TypeError, ValueError):
        problems.append("timestamp")
    service = body.get("service", {})
    if not isinstance(service, dict) or not isinstance(service.get("callback_url", ""), str):
        problems.append("service.callback_url")
    receipt = body.get("receipt")
    if not isinstance(receipt, dict):
        return problems + ["receipt"]

    client = receipt.get("client")
    if not isinstance(client, dict) or not (client.get("email") or client.get("phone")):
        problems.append("receipt.client: email or phone")
    else:
        if "phone" in client and not re.fullmatch(r"[^\s\\]{0,17}|\+[^\s\\]{1,18}", str(client["phone"])):
            problems.append("receipt.client.phone")
        if "inn" in client and not re.fullmatch(r"\d{10}|\d{12}", str(client["inn"])):
            problems.append("receipt.client.inn")
    company = receipt.get("company")
    if not isinstance(company, dict):
        problems.append("receipt.company")
    else:
        if not re.fullmatch(r"\d{10}|\d{12}", str(company.get("inn", ""))):
            problems.append("receipt.company.inn")
        if company.get("sno") not in SNO:
            problems.append("receipt.company.sno")
        if not isinstance(company.get("payment_address"), str) or not company["payment_address"]:
            problems.append("receipt.company.payment_address")
        if not isinstance(company.get("email", ""), str):
            problems.append("receipt.company.email")

    items = receipt.get("items")
    items_sum = Decimal(0)
    if not isinstance(items, list) or not items:
        problems.append("receipt.items")
        items = []
    for i, item in enumerate(items):
        where = f"receipt.items[{i}]"
        if not isinstance(item, dict):
            problems.append(where)
            continue
        if not isinstance(item.get("name"), str) or not 0 < len(item["name"]) <= 128:
            problems.append(f"{where}.name")
        price, quantity, amount = (_number(item.get(k), places) for k, places in
                                   (("price", 2), ("quantity", 3), ("sum", 2)))
        for key, value in (("price", price), ("quantity", quantity), ("sum", amount)):
            if value is None:
                problems.append(f"{where}.{key}")
        if quantity is not None and quantity <= 0:
            problems.append(f"{where}.quantity")
        if None not in (price, quantity, amount):
            full = (price * quantity).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            if amount > full:
                problems.append(f"{where}.sum > price × quantity")
            items_sum += amount
        if not _is_int(item.get("measure")) or item["measure"] not in MEASURES:
            problems.append(f"{where}.measure")
        if item.get("payment_method") not in PAYMENT_METHODS:
            problems.append(f"{where}.payment_method")
        if not _is_int(item.get("payment_object")) or item["payment_object"] not in PAYMENT_OBJECTS:
            problems.append(f"{where}.payment_object")
        vat = item.get("vat")
        if not isinstance(vat, dict) or vat.get("type") not in VAT_TYPES:
            problems.append(f"{where}.vat.type")
        elif "sum" in vat and _number(vat["sum"], 2) is None:
            problems.append(f"{where}.vat.sum")

    payments = receipt.get("payments")
    payments_sum = Decimal(0)
    if not isinstance(payments, list) or not 0 < len(payments) <= 10:
        problems.append("receipt.payments")
        payments = []
    for i, payment in enumerate(payments):
        where = f"receipt.payments[{i}]"
        if not isinstance(payment, dict) or not _is_int(payment.get("type")) or payment["type"] not in range(10):
            problems.append(f"{where}.type")
            continue
        amount = _number(payment.get("sum"), 2)
        if amount is None:
            problems.append(f"{where}.sum")
        else:
            payments_sum += amount

    total = _number(receipt.get("total"), 2)
    if total is None:
        problems.append("receipt.total")
    else:
        if items and items_sum != total:
            problems.append(f"receipt.total {total} != sum of items {items_sum}")
        if payments and payments_sum != total:
            problems.append(f"receipt.total {total} != sum of payments {payments_sum}")
    if "cashier" in receipt and not isinstance(receipt["cashier"], str):
        problems.append("receipt.cashier")
    return problems


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value, places: int) -> Decimal | None:
    """A JSON number (parsed exactly) with at most `places` decimals, in 0..100 000 000; else None."""
    if _is_int(value):
        value = Decimal(value)
    if not isinstance(value, Decimal) or not value.is_finite():
        return None
    if value != value.quantize(Decimal(1).scaleb(-places)) or not 0 <= value <= 100_000_000:
        return None
    return value


def _error(code: int, text: str, status: str | None = None) -> dict:
    answer = {"error": {"error_id": str(uuidlib.uuid4()), "code": code, "text": text, "type": "system"},
              "timestamp": _now()}
    if status:
        answer["status"] = status
    return answer


def _now() -> str:
    return datetime.now(MOSCOW).strftime(FORMAT)


class _Handler(BaseHTTPRequestHandler):
    atol: AtolOnlineServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes; no 40 ms delayed-ACK stall

    def do_GET(self):
        self._answer("GET")

    def do_POST(self):
        self._answer("POST")

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, answer = self.atol.handle(method, self.path, self.headers, raw)
        data = json.dumps(answer, ensure_ascii=False, default=_decimal).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass


def _decimal(value):
    if isinstance(value, Decimal):
        return float(value)  # the answer's own totals; the driver never reads money from it
    raise TypeError(type(value))
