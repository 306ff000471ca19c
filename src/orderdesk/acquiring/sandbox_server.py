"""The sandbox acquirer: the subset of the YooKassa API v3 the product uses, served over real HTTP.

It is the default acquirer of `make demo` and of the tests; the real YooKassa is a setting away
(`YOOKASSA_API_URL`). It answers the way the official SDK (`yookassa` 3.x) expects (fiscal.md §5.8):
only 200 is success, every error is a JSON object `{"type": "error", "id", "code", "description",
"parameter"}`, HTTP Basic auth with shop id and secret key, `Idempotence-Key` on every POST.

    POST /v3/payments            create (one-stage, redirect confirmation; SBP or bank card)
    GET  /v3/payments/{id}       read
    POST /v3/refunds             refund a succeeded payment, partly or in full
    GET  /v3/refunds/{id}        read
    GET  /sandbox/pay/{id}       the customer's page: the amount and two buttons
    POST /sandbox/pay/{id}       action=pay | action=cancel (a form POST: no browser needed)

Paying or cancelling POSTs the notification (`payment.succeeded`, `payment.canceled`,
`refund.succeeded`) to `webhook_url` from a background thread, retrying a few times.

Tests drive it programmatically too: `pay()`, `cancel()`, `tamper()`, `notify()` (a duplicate or
late notification), `fail_next()`, `notifications_sent`, and counters per Idempotence-Key.
Standard library only: the server runs in the product's own process or as
`orderdesk sandbox-acquirer`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hmac
import html
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger("orderdesk.acquiring.sandbox")

CENT = Decimal("0.01")
PAYMENT_METHODS = ("sbp", "bank_card")
MAX_IDEMPOTENCE_KEY = 64
MAX_DESCRIPTION = 128
MAX_METADATA_KEYS = 16
NOTIFY_BACKOFF = (0.2, 0.5, 1.0)  # seconds before the 2nd, 3rd and 4th (last) attempt
NOTIFY_TIMEOUT = 5.0
_AMOUNT_RE = re.compile(r"^\d{1,10}(\.\d{1,2})?$")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the receiver is ours, not the web's


class ApiFailure(Exception):
    """An answer of the API other than 200; its body is YooKassa's error object."""

    def __init__(self, status: int, code: str, description: str, parameter: str | None = None):
        super().__init__(description)
        self.status, self.code, self.description, self.parameter = status, code, description, parameter

    def body(self) -> dict:
        body = {"type": "error", "id": str(uuid.uuid4()), "code": self.code, "description": self.description}
        if self.parameter:
            body["parameter"] = self.parameter
        return body


def _bad(description: str, parameter: str | None = None) -> ApiFailure:
    return ApiFailure(400, "invalid_request", description, parameter)


def _now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _money(value: Decimal) -> str:
    return f"{value.quantize(CENT):.2f}"


@dataclass
class Notification:
    """One notification, recorded once its delivery is over (delivered, failed, or no webhook set)."""

    event: str
    body: dict
    url: str
    delivered: bool = False
    attempts: int = 0
    status: int | None = None  # the receiver's last HTTP status
    error: str = ""

    @property
    def object_id(self) -> str:
        return self.body["object"]["id"]


@dataclass
class _Stored:
    """What a POST with an Idempotence-Key answered: the same key and body get the same answer."""

    fingerprint: str
    response: dict


@dataclass
class _Failure:
    status: int
    after_processing: bool


@dataclass
class _State:
    payments: dict = field(default_factory=dict)  # id -> payment object (as served)
    refunds: dict = field(default_factory=dict)  # id -> refund object
    idempotence: dict = field(default_factory=dict)  # (path, key) -> _Stored
    failures: list = field(default_factory=list)  # _Failure, for the next API POSTs


class SandboxAcquirer:
    def __init__(self, shop_id: str, secret_key: str, webhook_url: str = "", host: str = "127.0.0.1", port: int = 0):
        self.shop_id = shop_id
        self.secret_key = secret_key
        self.webhook_url = webhook_url  # may be set after start(), e.g. once the product's server is up
        self.host = host
        self.port = port
        self.notify_backoff = NOTIFY_BACKOFF  # seconds between delivery attempts; tests make it short
        self._state = _State()
        self._lock = threading.RLock()
        self._notified = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._deliveries: list[threading.Thread] = []
        self.notifications_sent: list[Notification] = []
        # How many POSTs came with each Idempotence-Key, and how many objects each one created (at most 1).
        self.payment_requests_per_key: Counter = Counter()
        self.payments_created_per_key: Counter = Counter()
        self.refund_requests_per_key: Counter = Counter()
        self.refunds_created_per_key: Counter = Counter()

    # -- life cycle --------------------------------------------------------------------------------

    def start(self) -> str:
        if self._server is not None:
            raise RuntimeError("the sandbox acquirer is already running")
        self._server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"sandbox-acquirer:{self.port}", daemon=True)
        self._thread.start()
        logger.info("sandbox acquirer serving %s (notifications to %s)", self.base_url, self.webhook_url or "nowhere")
        return self.base_url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for delivery in list(self._deliveries):
            delivery.join(timeout=2)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What the SDK is configured with: `Configuration.configure(shop_id, key, api_url=base_url)`."""
        return f"{self.root_url}/v3"

    def page_url(self, payment_id: str) -> str:
        return f"{self.root_url}/sandbox/pay/{payment_id}"

    # -- controls for tests and scripts ------------------------------------------------------------

    def payment(self, payment_id: str) -> dict:
        """A copy of the payment as the API reports it."""
        with self._lock:
            return copy.deepcopy(self._payment(payment_id))

    def refund(self, refund_id: str) -> dict:
        with self._lock:
            if refund_id not in self._state.refunds:
                raise KeyError(refund_id)
            return copy.deepcopy(self._state.refunds[refund_id])

    @property
    def payments(self) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(p) for p in self._state.payments.values()]

    def pay(self, payment_id: str) -> dict:
        """The customer pays: the payment succeeds and `payment.succeeded` is sent. Paying a paid
        payment again changes nothing and sends nothing (use `notify()` for a duplicate)."""
        with self._lock:
            payment = self._payment(payment_id)
            if payment["status"] == "succeeded":
                return copy.deepcopy(payment)
            if payment["status"] != "pending":
                raise ValueError(f"payment {payment_id} is {payment['status']}; it cannot be paid")
            amount = payment["amount"]
            payment.update(status="succeeded", paid=True, refundable=True, captured_at=_now(),
                           income_amount=dict(amount))
            method = payment.setdefault("payment_method", {"type": "bank_card", "id": payment_id, "saved": False})
            if method["type"] == "sbp":
                method["sbp_operation_id"] = uuid.uuid4().hex.upper()
                method["payer_bank_details"] = {"bank_id": "100000000111", "bic": "044525225"}
            else:
                method.update(title="Bank card *4477", card={
                    "first6": "555555", "last4": "4477", "expiry_month": "12", "expiry_year": "2030",
                    "card_type": "MasterCard", "issuer_country": "RU"})
            if "receipt_registration" in payment:
                payment["receipt_registration"] = "succeeded"
            result = copy.deepcopy(payment)
        self._send("payment.succeeded", result)
        return result

    def cancel(self, payment_id: str) -> dict:
        """The customer walks away: the payment is canceled and `payment.canceled` is sent."""
        with self._lock:
            payment = self._payment(payment_id)
            if payment["status"] == "canceled":
                return copy.deepcopy(payment)
            if payment["status"] != "pending":
                raise ValueError(f"payment {payment_id} is {payment['status']}; it cannot be canceled")
            payment.update(status="canceled", paid=False, refundable=False,
                           cancellation_details={"party": "yoo_money", "reason": "expired_on_confirmation"})
            if "receipt_registration" in payment:
                payment["receipt_registration"] = "canceled"
            result = copy.deepcopy(payment)
        self._send("payment.canceled", result)
        return result

    def tamper(self, payment_id: str, amount=None, currency: str | None = None) -> dict:
        """Make the stored payment report another amount and/or currency (to test a mismatch)."""
        with self._lock:
            payment = self._payment(payment_id)
            for key in ("amount", "income_amount"):
                if key in payment:
                    if amount is not None:
                        payment[key]["value"] = _money(Decimal(str(amount)))
                    if currency is not None:
                        payment[key]["currency"] = currency
            return copy.deepcopy(payment)

    def notify(self, payment_id: str, event: str | None = None) -> dict:
        """Send the notification for the payment (or a refund, by its id) again, as it is now:
        a duplicate, or a late one. The event defaults to the object's status."""
        with self._lock:
            if payment_id in self._state.refunds:
                obj, kind = copy.deepcopy(self._state.refunds[payment_id]), "refund"
            else:
                obj, kind = copy.deepcopy(self._payment(payment_id)), "payment"
        event = event or f"{kind}.{obj['status']}"
        self._send(event, obj)
        return obj

    def fail_next(self, count: int = 1, status: int = 500, after_processing: bool = False) -> None:
        """The next `count` API POSTs answer `status`; with `after_processing` the request is carried
        out first and only its answer is lost (what an Idempotence-Key is for)."""
        with self._lock:
            self._state.failures.extend(_Failure(status, after_processing) for _ in range(count))

    def wait_for_notifications(self, count: int, timeout: float = 5.0) -> list[Notification]:
        """Block until `count` notifications are over (delivered or given up); return them all."""
        deadline = time.monotonic() + timeout
        with self._notified:
            while len(self.notifications_sent) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.notifications_sent)} of {count} notifications sent in {timeout} s")
                self._notified.wait(left)
            return list(self.notifications_sent)

    # -- the API -----------------------------------------------------------------------------------

    def _payment(self, payment_id: str) -> dict:
        try:
            return self._state.payments[payment_id]
        except KeyError:
            raise KeyError(payment_id) from None

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            shop_id, _, secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(shop_id.encode(), self.shop_id.encode()) and \
            hmac.compare_digest(secret.encode(), self.secret_key.encode())

    def _post(self, path: str, key: str | None, body: dict) -> dict:
        if path == "/payments":
            requests, created, create = self.payment_requests_per_key, self.payments_created_per_key, \
                self._create_payment
        elif path == "/refunds":
            requests, created, create = self.refund_requests_per_key, self.refunds_created_per_key, \
                self._create_refund
        else:
            raise ApiFailure(404, "not_found", f"No such API method: POST {path}")
        if not key:
            raise _bad("Idempotence-Key header is required", "Idempotence-Key")
        if len(key) > MAX_IDEMPOTENCE_KEY:
            raise _bad(f"Idempotence-Key is longer than {MAX_IDEMPOTENCE_KEY} characters", "Idempotence-Key")
        fingerprint = json.dumps(body, sort_keys=True, ensure_ascii=False)
        notify = None
        with self._lock:
            requests[key] += 1
            failure = self._state.failures.pop(0) if self._state.failures else None
            if failure and not failure.after_processing:
                raise ApiFailure(failure.status, "internal_server_error", "Sandbox: this request fails, as asked")
            stored = self._state.idempotence.get((path, key))
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    raise _bad("Idempotence key duplicated", "Idempotence-Key")
                response = copy.deepcopy(stored.response)
            else:
                response, notify = create(body)
                self._state.idempotence[(path, key)] = _Stored(fingerprint, copy.deepcopy(response))
                created[key] += 1
        if notify:
            self._send(*notify)
        if failure:
            raise ApiFailure(failure.status, "internal_server_error", "Sandbox: the answer is lost, as asked")
        return response

    def _create_payment(self, body: dict):
        amount = _amount(body.get("amount"), "amount")
        if body.get("capture") is not True:
            raise _bad("The sandbox makes one-stage payments only: send capture true", "capture")
        confirmation = body.get("confirmation")
        if not isinstance(confirmation, dict) or confirmation.get("type") != "redirect":
            raise _bad("confirmation.type must be redirect", "confirmation.type")
        return_url = confirmation.get("return_url")
        if return_url is not None and (not isinstance(return_url, str)
                                       or urlsplit(return_url).scheme not in ("http", "https")):
            raise _bad("confirmation.return_url must be an http(s) URL", "confirmation.return_url")
        description = body.get("description", "")
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise _bad(f"description must be a string of at most {MAX_DESCRIPTION} characters", "description")
        metadata = _metadata(body.get("metadata"))
        method_data = body.get("payment_method_data")
        if method_data is not None and (not isinstance(method_data, dict)
                                        or method_data.get("type") not in PAYMENT_METHODS):
            raise _bad(f"payment_method_data.type must be one of {', '.join(PAYMENT_METHODS)}",
                       "payment_method_data.type")
        receipt = body.get("receipt")
        if receipt is not None and not isinstance(receipt, dict):
            raise _bad("receipt must be an object", "receipt")
        for empty in ("transfers", "statements"):  # the SDK sends them empty
            if body.get(empty) not in (None, []):
                raise _bad(f"the sandbox does not support {empty}", empty)

        payment_id = str(uuid.uuid4())
        payment = {
            "id": payment_id,
            "status": "pending",
            "paid": False,
            "amount": {"value": _money(amount), "currency": "RUB"},
            "description": description,
            "recipient": {"account_id": self.shop_id, "gateway_id": "sandbox"},
            "created_at": _now(),
            "confirmation": {"type": "redirect", "confirmation_url": self.page_url(payment_id)},
            "test": True,
            "refundable": False,
            "metadata": metadata,
        }
        if return_url:
            payment["confirmation"]["return_url"] = return_url
        if method_data is not None:
            payment["payment_method"] = {"type": method_data["type"], "id": payment_id, "saved": False}
        if receipt is not None:
            payment["receipt_registration"] = "pending"
            payment["receipt"] = copy.deepcopy(receipt)  # not served by YooKassa; kept for tests
        self._state.payments[payment_id] = payment
        logger.info("payment %s created: %s RUB, %s", payment_id, _money(amount), description)
        return self._served(payment), None

    def _create_refund(self, body: dict):
        payment_id = body.get("payment_id")
        if not isinstance(payment_id, str) or payment_id not in self._state.payments:
            raise _bad("payment_id is not a payment of this shop", "payment_id")
        amount = _amount(body.get("amount"), "amount")
        payment = self._state.payments[payment_id]
        if payment["status"] != "succeeded":
            raise _bad(f"The payment is {payment['status']}: only a succeeded payment can be refunded", "payment_id")
        if body["amount"]["currency"] != payment["amount"]["currency"]:
            raise _bad("The refund's currency differs from the payment's", "amount.currency")
        refunded = Decimal(payment.get("refunded_amount", {}).get("value", "0"))
        paid = Decimal(payment["amount"]["value"])
        if refunded + amount > paid:
            raise _bad(f"The refund exceeds what is left of the payment ({_money(paid - refunded)})", "amount.value")
        if body.get("sources") not in (None, []):  # the SDK sends it empty
            raise _bad("the sandbox does not support sources", "sources")
        receipt = body.get("receipt")
        if receipt is not None and not isinstance(receipt, dict):
            raise _bad("receipt must be an object", "receipt")
        description = body.get("description")
        refund = {
            "id": str(uuid.uuid4()),
            "payment_id": payment_id,
            "status": "succeeded",
            "amount": {"value": _money(amount), "currency": payment["amount"]["currency"]},
            "created_at": _now(),
        }
        if isinstance(description, str) and description:
            refund["description"] = description
        if receipt is not None:
            refund["receipt_registration"] = "succeeded"
        self._state.refunds[refund["id"]] = refund
        payment["refunded_amount"] = {"value": _money(refunded + amount), "currency": payment["amount"]["currency"]}
        payment["refundable"] = refunded + amount < paid
        logger.info("refund %s of payment %s: %s", refund["id"], payment_id, _money(amount))
        return copy.deepcopy(refund), ("refund.succeeded", copy.deepcopy(refund))

    @staticmethod
    def _served(payment: dict) -> dict:
        served = copy.deepcopy(payment)
        served.pop("receipt", None)
        return served

    def _get(self, path: str) -> dict:
        parts = path.strip("/").split("/")
        with self._lock:
            if len(parts) == 2 and parts[0] == "payments":
                if parts[1] in self._state.payments:
                    return self._served(self._state.payments[parts[1]])
                raise ApiFailure(404, "not_found", "Payment not found", "payment_id")
            if len(parts) == 2 and parts[0] == "refunds":
                if parts[1] in self._state.refunds:
                    return copy.deepcopy(self._state.refunds[parts[1]])
                raise ApiFailure(404, "not_found", "Refund not found", "refund_id")
        raise ApiFailure(404, "not_found", f"No such API method: GET {path}")

    # -- notifications -----------------------------------------------------------------------------

    def _send(self, event: str, obj: dict) -> None:
        if event.startswith("payment."):
            obj = self._served(obj)
        body = {"type": "notification", "event": event, "object": obj}
        url = self.webhook_url
        if not url:
            self._record(Notification(event, body, url, error="no webhook_url set"))
            return
        thread = threading.Thread(target=self._deliver, args=(Notification(event, body, url),),
                                  name=f"sandbox-notify:{event}", daemon=True)
        with self._lock:
            self._deliveries = [t for t in self._deliveries if t.is_alive()] + [thread]
        thread.start()

    def _deliver(self, notification: Notification) -> None:
        data = json.dumps(notification.body, ensure_ascii=False).encode()
        for attempt in range(len(self.notify_backoff) + 1):
            if attempt:
                time.sleep(self.notify_backoff[attempt - 1])
            notification.attempts = attempt + 1
            request = urllib.request.Request(notification.url, data=data, method="POST",
                                             headers={"Content-Type": "application/json; charset=utf-8",
                                                      "User-Agent": "YooKassa sandbox"})
            try:
                with _NO_PROXY.open(request, timeout=NOTIFY_TIMEOUT) as response:
                    notification.status = response.status
                notification.delivered, notification.error = True, ""
                break
            except urllib.error.HTTPError as exc:
                notification.status, notification.error = exc.code, f"HTTP {exc.code}"
            except Exception as exc:  # noqa: BLE001 - a receiver that is down must not break the sandbox
                notification.error = f"{type(exc).__name__}: {exc}"
            logger.warning("notification %s for %s: attempt %d failed: %s", notification.event,
                           notification.object_id, notification.attempts, notification.error)
        if not notification.delivered:
            logger.error("notification %s for %s given up after %d attempts", notification.event,
                         notification.object_id, notification.attempts)
        self._record(notification)

    def _record(self, notification: Notification) -> None:
        with self._notified:
            self.notifications_sent.append(notification)
            self._notified.notify_all()

    # -- the customer's page -----------------------------------------------------------------------

    def _page(self, payment_id: str) -> tuple[int, str]:
        with self._lock:
            payment = copy.deepcopy(self._state.payments.get(payment_id))
        if payment is None:
            return 404, _html("Payment not found", "<p>There is no such payment.</p>")
        amount = html.escape(f"{payment['amount']['value']} {payment['amount']['currency']}")
        method = {"sbp": "SBP (Faster Payments System)", "bank_card": "Bank card"}.get(
            payment.get("payment_method", {}).get("type", ""), "Any method")
        head = (f"<p class=amount>{amount}</p><p>{html.escape(payment['description'])}</p>"
                f"<p>{method} &middot; test payment <code>{html.escape(payment_id)}</code></p>")
        if payment["status"] != "pending":
            return 200, _html(f"Payment {payment['status']}", head + f"<p>This payment is {payment['status']}.</p>")
        action = html.escape(f"/sandbox/pay/{payment_id}")
        buttons = (f'<form method=post action="{action}"><button name=action value=pay>Pay {amount}</button>'
                   f'</form><form method=post action="{action}"><button name=action value=cancel>Cancel</button></form>')
        return 200, _html("Sandbox payment", head + buttons)

    def _page_action(self, payment_id: str, action: str) -> tuple[int, str, str]:
        """-> (status, location, html)"""
        try:
            if action == "pay":
                payment = self.pay(payment_id)
            elif action == "cancel":
                payment = self.cancel(payment_id)
            else:
                return 400, "", _html("Unknown action", "<p>action must be pay or cancel.</p>")
        except KeyError:
            return 404, "", _html("Payment not found", "<p>There is no such payment.</p>")
        except ValueError as exc:
            return 409, "", _html("Not possible", f"<p>{html.escape(str(exc))}</p>")
        return_url = payment["confirmation"].get("return_url", "")
        if return_url:
            return 303, return_url, ""
        return 200, "", _html(f"Payment {payment['status']}", f"<p>The payment is {payment['status']}.</p>")


def _amount(value, parameter: str) -> Decimal:
    if not isinstance(value, dict):
        raise _bad(f"{parameter} must be an object with value and currency", parameter)
    raw = value.get("value")
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)) or not _AMOUNT_RE.match(str(raw)):
        raise _bad(f"{parameter}.value must be a positive number with at most two decimals", f"{parameter}.value")
    try:
        amount = Decimal(str(raw))
    except InvalidOperation:
        raise _bad(f"{parameter}.value is not a number", f"{parameter}.value") from None
    if amount <= 0:
        raise _bad(f"{parameter}.value must be greater than zero", f"{parameter}.value")
    if value.get("currency") != "RUB":
        raise _bad(f"{parameter}.currency must be RUB", f"{parameter}.currency")
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _metadata(value) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_METADATA_KEYS:
        raise _bad(f"metadata must be an object of at most {MAX_METADATA_KEYS} keys", "metadata")
    for key, item in value.items():
        if len(key) > 32 or isinstance(item, (dict, list)) or len(str(item)) > 512:
            raise _bad("metadata keys are at most 32 characters, values plain and at most 512", "metadata")
    return dict(value)


def _html(title: str, body: str) -> str:
    return (f'<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>'
            '<style>body{font:16px sans-serif;max-width:28em;margin:3em auto}.amount{font-size:2em}'
            'button{font-size:1.1em;margin:.3em 0;padding:.4em 1.2em}</style>'
            f'<h1>{html.escape(title)}</h1>{body}</html>')


def _handler_for(acquirer: SandboxAcquirer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # no 40 ms stalls between the headers and the body
        server_version = "YooKassaSandbox/1.0"

        def log_message(self, format, *args):
            logger.debug("%s %s", self.address_string(), format % args)

        def do_GET(self):
            self._dispatch("GET")

        def do_POST(self):
            self._dispatch("POST")

        def do_PUT(self):
            self._dispatch("PUT")

        def do_DELETE(self):
            self._dispatch("DELETE")

        def _dispatch(self, method: str) -> None:
            path = urlsplit(self.path).path
            try:
                body = self._read()
                if path.startswith("/v3/") or path == "/v3":
                    self._api(method, path[3:], body)
                elif path.startswith("/sandbox/pay/"):
                    self._customer(method, path[len("/sandbox/pay/"):], body)
                else:
                    self._json(404, ApiFailure(404, "not_found", f"Nothing here: {path}").body())
            except Exception:  # the answer is still a JSON error object
                logger.exception("sandbox acquirer: %s %s failed", method, path)
                self._json(500, ApiFailure(500, "internal_server_error", "Sandbox failure").body())

        def _read(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length > 0 else b""

        def _api(self, method: str, path: str, raw: bytes) -> None:
            try:
                if not acquirer._authorized(self.headers.get("Authorization")):
                    raise ApiFailure(401, "invalid_credentials",
                                     "Authentication error: the shop id or the secret key is wrong")
                if method == "GET":
                    answer = acquirer._get(path)
                elif method == "POST":
                    try:
                        body = json.loads(raw or b"{}")
                    except ValueError:
                        raise _bad("The request body is not valid JSON") from None
                    if not isinstance(body, dict):
                        raise _bad("The request body must be a JSON object")
                    answer = acquirer._post(path.rstrip("/"), self.headers.get("Idempotence-Key"), body)
                else:
                    raise ApiFailure(405, "invalid_request", f"Method {method} is not allowed here")
            except ApiFailure as failure:
                self._json(failure.status, failure.body())
                return
            self._json(200, answer)

        def _customer(self, method: str, payment_id: str, raw: bytes) -> None:
            payment_id = payment_id.strip("/")
            if method == "GET":
                status, page = acquirer._page(payment_id)
                self._send(status, "text/html; charset=utf-8", page.encode())
            elif method == "POST":
                form = parse_qs(raw.decode("utf-8", "replace"))
                status, location, page = acquirer._page_action(payment_id, (form.get("action") or [""])[0])
                self._send(status, "text/html; charset=utf-8", page.encode(), location=location)
            else:
                self._send(405, "text/html; charset=utf-8", _html("Not allowed", "").encode())

        def _json(self, status: int, body: dict) -> None:
            self._send(status, "application/json; charset=utf-8", json.dumps(body, ensure_ascii=False).encode())

        def _send(self, status: int, content_type: str, data: bytes, location: str = "") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            if location:
                self.send_header("Location", location)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def serve_forever(*, host: str, port: int, shop_id: str, secret_key: str, webhook_url: str,
                  stop_event: threading.Event) -> None:
    """The console command's body: serve until `stop_event` is set (by SIGTERM/SIGINT)."""
    acquirer = SandboxAcquirer(shop_id, secret_key, webhook_url=webhook_url, host=host, port=port)
    acquirer.start()
    try:
        print(f"sandbox acquirer: API {acquirer.base_url}, customer pages {acquirer.root_url}/sandbox/pay/<id>, "
              f"notifications to {webhook_url or 'nowhere'}", flush=True)
        stop_event.wait()
    finally:
        acquirer.stop()
