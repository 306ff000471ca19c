"""ATOL Online v5 (FFD 1.2), the cloud register (fiscal.md §4.1).

The protocol in one breath: `POST {base}/getToken` gives a token for 24 h, sent as the `Token:`
header; `POST {base}/{group}/sell|sell_refund` queues a receipt under our `external_id` and answers
ATOL's own uuid with status `wait`; `GET {base}/{group}/report/{uuid}` tells `wait`, `done` (with the
fiscal data) or `fail`.

Exactly once (B6) rests on two things. `external_id` is always `doc.uuid`, on every retry, so the
cloud itself refuses a second copy (error 33). And ATOL's uuid goes into `state["atol_uuid"]` the
moment it is known; the caller persists `state` after every call, so the next call only polls.
If we crashed before the uuid was saved, the resend is answered 33 and we poll the uuid it names.
"""

import json
import re
import threading
import time
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx

from orderdesk.fiscal.codes import PaymentForm, PaymentMethod, Settlement
from orderdesk.fiscal.drivers.atol import VAT_NAMES
from orderdesk.fiscal.drivers.base import (
    ReceiptDoc,
    ReceiptRejected,
    RegisterUnavailable,
    Registration,
    RegistrationPending,
    ShiftReport,
)

# ATOL reads and writes its "dd.mm.yyyy HH:MM:SS" timestamps in Moscow time.
ATOL_TZ = ZoneInfo("Europe/Moscow")
TIMESTAMP_FORMAT = "%d.%m.%Y %H:%M:%S"
TOKEN_LIFETIME = 24 * 3600.0  # seconds; ATOL may hand back an older token, error 11 covers that

OPERATIONS = {Settlement.INCOME: "sell", Settlement.INCOME_REFUND: "sell_refund"}

PAYMENT_METHODS = {
    PaymentMethod.FULL_PREPAYMENT: "full_prepayment",
    PaymentMethod.PREPAYMENT: "prepayment",
    PaymentMethod.ADVANCE: "advance",
    PaymentMethod.FULL_PAYMENT: "full_payment",
    PaymentMethod.PARTIAL_PAYMENT_AND_CREDIT: "partial_payment",
    PaymentMethod.CREDIT_TRANSFER: "credit",
    PaymentMethod.CREDIT_PAYMENT: "credit_payment",
}

# receipt.payments[].type, in the order they are listed on the receipt
PAYMENT_TYPES = {
    PaymentForm.CASH: 0,  # 1031
    PaymentForm.ELECTRONIC: 1,  # 1081
    PaymentForm.PREPAYMENT: 2,  # 1215, offset of advances
    PaymentForm.CREDIT: 3,  # 1216, postpayment
}

# ATOL error codes (fiscal.md §4.1)
MISSING_TOKEN, EXPIRED_TOKEN = 10, 11
WRONG_LOGIN, LOGIN_VALIDATION, USER_BLOCKED = 12, 13, 14
GROUP_MISMATCH, GROUP_PROTOCOL = 20, 21
UNKNOWN_UUID, UNSUPPORTED_OPERATION, VALIDATION = 30, 31, 32
EXTERNAL_ID_EXISTS, STATE_NOT_YET_KNOWN = 33, 34
BAD_REQUEST, BAD_MEDIA_TYPE = 40, 41
TOKEN_ERRORS = {MISSING_TOKEN, EXPIRED_TOKEN}
CONFIGURATION_ERRORS = {WRONG_LOGIN, LOGIN_VALIDATION, USER_BLOCKED, GROUP_MISMATCH, GROUP_PROTOCOL}
REQUEST_ERRORS = {UNSUPPORTED_OPERATION, VALIDATION, BAD_REQUEST, BAD_MEDIA_TYPE}


class AtolOnlineDriver:
    def __init__(
        self,
        base_url: str,
        login: str,
        password: str,
        group_code: str,
        callback_url: str = "",
        timeout: float = 10,
        poll_interval: float = 1,
        poll_deadline: float = 30,
    ):
        self.base_url = base_url.rstrip("/")
        self.login = login
        self.password = password
        self.group_code = group_code
        self.callback_url = callback_url
        self.poll_interval = poll_interval
        self.poll_deadline = poll_deadline
        self._http = httpx.Client(timeout=timeout)
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- receipts -------------------------------------------------------------------------------

    def register(self, doc: ReceiptDoc, state: dict) -> Registration:
        deadline = time.monotonic() + self.poll_deadline
        if not state.get("atol_uuid"):
            self._send(doc, state)
        try:
            return self._poll(state, deadline)
        except _UnknownUuid:
            # ATOL does not know the uuid we kept (another group, purged): ask again under the same
            # external_id; if ATOL does have the document after all, error 33 says so.
            state.pop("atol_uuid", None)
            self._send(doc, state)
        try:
            return self._poll(state, deadline)
        except _UnknownUuid as e:
            raise RegistrationPending(f"ATOL Online does not know yet the uuid {e} it gave; poll later") from e

    def _send(self, doc: ReceiptDoc, state: dict) -> None:
        """POST the receipt; on return `state["atol_uuid"]` names the document at ATOL."""
        path = f"/{self.group_code}/{OPERATIONS[doc.settlement]}"
        try:
            data = self._call("POST", path, receipt_body(doc, self.callback_url))
        except _Unreachable as e:
            # Whether it arrived is unknown; the resend carries the same external_id, so ATOL
            # answers 33 if it did.
            raise RegisterUnavailable(f"ATOL Online did not answer the receipt: {e}") from e
        code, text = _error(data)
        uuid = data.get("uuid")
        if code is None and uuid:
            state["atol_uuid"] = uuid
            return
        if code == EXTERNAL_ID_EXISTS:
            if uuid:
                if uuid in state.get("atol_failed_uuids", ()):
                    raise ReceiptRejected(
                        f"ATOL Online keeps external_id {doc.uuid} for document {uuid}, which failed "
                        "earlier (no register online), and will not take it again under that id; a "
                        "person must decide in the ATOL account whether to register it anew."
                    )
                state["atol_uuid"] = uuid
                return
            raise RegistrationPending(
                f"ATOL Online already has a receipt with external_id {doc.uuid} but did not say its "
                "uuid; a person must check the document in the ATOL Online account. Do not resend it "
                "under a new external_id."
            )
        if code == STATE_NOT_YET_KNOWN:
            if uuid:
                state["atol_uuid"] = uuid
            raise RegistrationPending(f"ATOL Online has the receipt {doc.uuid} but no state yet: {text}")
        if code in CONFIGURATION_ERRORS:
            raise ReceiptRejected(_configuration_message(code, text, self.group_code))
        if code in REQUEST_ERRORS:
            raise ReceiptRejected(f"ATOL Online refused receipt {doc.uuid} (error {code}): {text}")
        raise RegisterUnavailable(f"ATOL Online could not take receipt {doc.uuid} now (error {code}): {text}")

    def _poll(self, state: dict, deadline: float) -> Registration:
        uuid = state["atol_uuid"]
        path = f"/{self.group_code}/report/{uuid}"
        while True:
            try:
                data = self._call("GET", path)
            except _Unreachable as e:
                # The document is accepted; only its result is out of reach.
                raise RegistrationPending(f"ATOL Online did not answer the report of {uuid}: {e}") from e
            code, text = _error(data)
            status = data.get("status")
            if status == "done" and data.get("payload"):
                return _registration(data)
            if status == "fail":
                if code == UNKNOWN_UUID:
                    raise _UnknownUuid(uuid)
                if (data.get("error") or {}).get("type") == "timeout":
                    # Nothing was registered: no register of the group took it in time. The next
                    # call sends it again under the same external_id.
                    state.pop("atol_uuid", None)
                    state.setdefault("atol_failed_uuids", []).append(uuid)
                    raise RegisterUnavailable(f"ATOL Online had no register online for {uuid}: {text}")
                if code in CONFIGURATION_ERRORS:
                    raise ReceiptRejected(_configuration_message(code, text, self.group_code))
                raise ReceiptRejected(f"ATOL Online failed receipt {uuid} (error {code}): {text}")
            if code is not None and code != STATE_NOT_YET_KNOWN and status != "wait":
                if code in CONFIGURATION_ERRORS:
                    raise ReceiptRejected(_configuration_message(code, text, self.group_code))
                raise RegistrationPending(f"ATOL Online could not report {uuid} now (error {code}): {text}")
            # "wait", or 34: not processed yet. Poll again, never resend.
            if time.monotonic() + self.poll_interval > deadline:
                raise RegistrationPending(f"ATOL Online is still processing {uuid}; poll again later")
            time.sleep(self.poll_interval)

    # -- shifts ---------------------------------------------------------------------------------

    # ATOL Online opens and closes the shifts of its registers itself (a shift is closed and the
    # next one opened automatically, and its Z reports go to the OFD from the cloud); the protocol
    # has no shift or report operations for the client. So these only say who manages the shift.
    def open_shift(self, cashier: str) -> ShiftReport:
        return _managed_by_the_cloud()

    def x_report(self) -> ShiftReport:
        return _managed_by_the_cloud()

    def close_shift(self, cashier: str) -> ShiftReport:
        return _managed_by_the_cloud()

    # -- transport ------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        """One request with a token; a refused token is renewed once and the request repeated."""
        data: dict = {}
        for attempt in range(2):
            token = self._current_token(renew=attempt > 0)
            headers = {"Token": token}
            content = None
            if body is not None:
                headers["Content-Type"] = "application/json; charset=utf-8"
                content = dumps(body).encode()
            data = self._request(method, path, headers, content)
            code, _ = _error(data)
            if code not in TOKEN_ERRORS:
                return data
        raise _Unreachable(f"ATOL Online refused a fresh token too: {_error(data)[1]}")

    def _current_token(self, renew: bool) -> str:
        with self._token_lock:
            if renew or self._token is None or time.monotonic() >= self._token_expires:
                self._token = None
                body = {"login": self.login, "pass": self.password}
                headers = {"Content-Type": "application/json; charset=utf-8"}
                data = self._request("POST", "/getToken", headers, dumps(body).encode())
                code, text = _error(data)
                token = data.get("token")
                if code is not None or not token:
                    if code in CONFIGURATION_ERRORS:
                        raise ReceiptRejected(_configuration_message(code, text, self.group_code))
                    raise _Unreachable(f"no token (error {code}): {text}")
                self._token = token
                self._token_expires = time.monotonic() + TOKEN_LIFETIME
            return self._token

    def _request(self, method: str, path: str, headers: dict, content: bytes | None) -> dict:
        try:
            response = self._http.request(method, self.base_url + path, headers=headers, content=content)
        except httpx.HTTPError as e:
            raise _Unreachable(f"{type(e).__name__}: {e}") from e
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise _Unreachable(f"HTTP {response.status_code} without a JSON answer")
        return data


class _Unreachable(Exception):
    """No usable answer: connection, timeout, a proxy's HTML page, tokens refused."""


class _UnknownUuid(Exception):
    """The report does not know our uuid (error 30)."""


def _error(data: dict) -> tuple[int | None, str]:
    error = data.get("error")
    if not error:
        return None, ""
    code = error.get("code")
    return (int(code) if code is not None else 0), str(error.get("text") or "")


def _configuration_message(code: int, text: str, group_code: str) -> str:
    return (
        f"ATOL Online configuration problem (error {code}): {text}. Check the login, password, group "
        f"code ({group_code}) and that the group speaks protocol v5 (FFD 1.2); the receipt is not "
        "registered."
    )


def _managed_by_the_cloud() -> ShiftReport:
    return ShiftReport(shift_number=0, receipts=0, income=Decimal(0), refunds=Decimal(0),
                       extra={"managed_by": "atol_online"})


def _registration(data: dict) -> Registration:
    payload = data["payload"]
    registered_at = datetime.strptime(payload["receipt_datetime"], TIMESTAMP_FORMAT).replace(tzinfo=ATOL_TZ)
    receipt_number = payload.get("fiscal_receipt_number")
    extra = {"atol_uuid": data.get("uuid")}
    for key in ("ecr_registration_number", "fns_site", "ofd_inn", "device_code", "daemon_code"):
        value = payload.get(key, data.get(key))
        if value:
            extra[key] = value
    return Registration(
        fn_number=str(payload["fn_number"]),
        fd_number=int(payload["fiscal_document_number"]),
        fiscal_sign=str(payload["fiscal_document_attribute"]),
        shift_number=int(payload["shift_number"]),
        registered_at=registered_at,
        receipt_number=int(receipt_number) if receipt_number is not None else None,
        ofd_url=payload.get("ofd_receipt_url") or "",
        extra=extra,
    )


# -- the request body ---------------------------------------------------------------------------


def receipt_body(doc: ReceiptDoc, callback_url: str = "") -> dict:
    """The v5 `sell` / `sell_refund` body; money stays Decimal (see `dumps`)."""
    client: dict = {}
    contact = doc.buyer_contact.strip()
    if "@" in contact:
        client["email"] = contact
    elif contact:
        client["phone"] = _phone(contact)
    if doc.buyer_name:
        client["name"] = doc.buyer_name
    if doc.buyer_inn:
        client["inn"] = doc.buyer_inn
    receipt: dict = {
        "client": client,
        "company": {
            "email": doc.company_email,
            "sno": doc.taxation.value,
            "inn": doc.company_inn,
            "payment_address": doc.payment_address,
        },
        "items": [
            {
                "name": line.name,
                "price": _money(line.price),
                "quantity": _quantity(line.quantity),
                "sum": _money(line.amount),
                "measure": int(line.measure),
                "payment_method": PAYMENT_METHODS[line.payment_method],
                "payment_object": int(line.subject),
                "vat": {"type": VAT_NAMES[line.vat], "sum": _money(line.vat_amount)},
            }
            for line in doc.lines
        ],
        "payments": [
            {"type": kind, "sum": _money(doc.payments[form])}
            for form, kind in PAYMENT_TYPES.items()
            if doc.payments.get(form)
        ],
        "total": _money(doc.total),
    }
    if doc.cashier:
        receipt["cashier"] = doc.cashier
    timestamp = doc.created_at
    if timestamp.tzinfo is not None:
        timestamp = timestamp.astimezone(ATOL_TZ)
    body: dict = {"external_id": doc.uuid, "timestamp": timestamp.strftime(TIMESTAMP_FORMAT), "receipt": receipt}
    if callback_url:
        body["service"] = {"callback_url": callback_url}
    return body


def _phone(contact: str) -> str:
    """'+7 (900) 123-45-67' → '+79001234567': ATOL's phone pattern allows no spaces."""
    digits = re.sub(r"\D", "", contact)
    return ("+" + digits) if contact.startswith("+") else digits


def _money(amount: Decimal) -> Decimal:
    return Decimal(amount).quantize(Decimal("0.01"))


def _quantity(quantity: Decimal) -> Decimal:
    q = Decimal(quantity).quantize(Decimal("0.001"))
    return q.quantize(Decimal(1)) if q == q.to_integral_value() else q.normalize()


def dumps(value) -> str:
    """JSON with Decimals written as the exact numbers they are (`6000.00`, never `6000.0` or
    `0.30000000000000004`): the standard encoder only knows floats."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a JSON number: {value}")
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)}: {dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(dumps(v) for v in value) + "]"
    if isinstance(value, float):
        raise TypeError("money and quantities go as Decimal, never float")
    return json.dumps(value, ensure_ascii=False)
