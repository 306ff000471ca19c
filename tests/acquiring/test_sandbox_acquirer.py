"""The sandbox acquirer under R11 (online payment links), driven by the official YooKassa SDK over real
HTTP on loopback, as the product drives it; the customer pays with the page's form, without a browser.
No database is used here."""

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from yookassa import Configuration, Payment, Refund
from yookassa.domain.exceptions import BadRequestError, InternalServerError, NotFoundError, UnauthorizedError

from orderdesk.acquiring.sandbox_server import SandboxAcquirer
from tests.conftest import free_port

SHOP_ID, SECRET = "506751", "test_sandbox_secret"
RETURN_URL = "https://shop.example.org/orders/123"
_CONFIGURATION = ("api_url", "account_id", "secret_key", "auth_token", "timeout", "max_attempts", "verify", "logger")


class Receiver:
    """A tiny webhook endpoint: records every POSTed body; answers 500 to the first `fail_first`."""

    def __init__(self, fail_first: int = 0):
        self.bodies: list[dict] = []
        self.fail_first = fail_first
        self.hits = 0
        self.received = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.received:
                    receiver.hits += 1
                    failing = receiver.hits <= receiver.fail_first
                    if not failing:
                        receiver.bodies.append(body)
                    receiver.received.notify_all()
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/acquiring/yookassa"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        with self.received:
            assert self.received.wait_for(lambda: len(self.bodies) >= count, timeout), self.bodies
            return list(self.bodies)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def sandbox(receiver):
    """The sandbox with its notifications going to `receiver`, and the SDK (process-global) pointed at it."""
    saved = {name: getattr(Configuration, name) for name in _CONFIGURATION}
    acquirer = SandboxAcquirer(SHOP_ID, SECRET, webhook_url=receiver.url)
    acquirer.notify_backoff = (0.02, 0.05, 0.1)
    Configuration.configure(SHOP_ID, SECRET, api_url=acquirer.start(), max_attempts=1)
    yield acquirer
    acquirer.stop()
    for name, value in saved.items():
        setattr(Configuration, name, value)


def payment_body(value: str = "1500.00", **overrides) -> dict:
    body = {
        "amount": {"value": value, "currency": "RUB"},
        "capture": True,
        "confirmation": {"type": "redirect", "return_url": RETURN_URL},
        "description": "Заказ №123",
        "metadata": {"order_id": "123", "intent": "advance-1"},
        "receipt": {"customer": {"email": "buyer@example.org"}, "tax_system_code": 1,
                    "items": [{"description": "Оплата заказа №123", "quantity": "1.00",
                               "amount": {"value": value, "currency": "RUB"}, "vat_code": 12,
                               "payment_mode": "advance", "payment_subject": "payment"}]},
    }
    body.update(overrides)
    return body


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_browserless = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def http(method: str, url: str, *, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """-> (status, headers, body) without following redirects or raising on 4xx."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _browserless.open(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def press(sandbox: SandboxAcquirer, payment_id: str, action: str) -> tuple[int, dict, bytes]:
    """The customer presses a button on the payment page: the form POST a browser would send."""
    return http("POST", sandbox.page_url(payment_id), body=urllib.parse.urlencode({"action": action}).encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"})


def api_post(sandbox: SandboxAcquirer, path: str, body: dict, key: str | None = "raw-key") -> tuple[int, dict]:
    """What a client other than the SDK might send (the SDK itself refuses zero amounts, and rounds)."""
    headers = {"Content-Type": "application/json",
               "Authorization": "Basic " + base64.b64encode(f"{SHOP_ID}:{SECRET}".encode()).decode()}
    if key:
        headers["Idempotence-Key"] = key
    status, _, raw = http("POST", sandbox.base_url + path, body=json.dumps(body).encode(), headers=headers)
    return status, json.loads(raw)


# -- creating the link --------------------------------------------------------------------------------


def test_r11_a_payment_link_is_created_pending_with_the_sandbox_page_as_confirmation_url(sandbox):
    payment = Payment.create(payment_body("1500.00"), "pay-123-1")

    assert payment.status == "pending" and payment.paid is False and payment.refundable is False
    assert (payment.amount.value, payment.amount.currency) == (1500, "RUB")
    assert payment.confirmation.type == "redirect"
    assert payment.confirmation.confirmation_url == sandbox.page_url(payment.id)
    assert payment.confirmation.confirmation_url.startswith(sandbox.base_url.removesuffix("/v3") + "/sandbox/pay/")
    assert payment.metadata["order_id"] == "123" and payment.description == "Заказ №123"
    assert payment.test is True and payment.created_at.endswith("Z")
    assert sandbox.payment(payment.id)["receipt"]["items"][0]["payment_mode"] == "advance"
    status, headers, page = http("GET", payment.confirmation.confirmation_url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "1500.00 RUB" in page.decode() and "Заказ №123" in page.decode()
    assert 'value=pay' in page.decode() and 'value=cancel' in page.decode()


def test_r11_repeating_the_idempotence_key_returns_the_same_payment_and_creates_no_second(sandbox):
    first = Payment.create(payment_body(), "pay-123-1")
    again = Payment.create(payment_body(), "pay-123-1")
    other = Payment.create(payment_body(), "pay-123-2")

    assert again.id == first.id and again.confirmation.confirmation_url == first.confirmation.confirmation_url
    assert other.id != first.id
    assert sandbox.payment_requests_per_key["pay-123-1"] == 2
    assert sandbox.payments_created_per_key == {"pay-123-1": 1, "pay-123-2": 1}
    assert len(sandbox.payments) == 2


def test_r11_the_same_idempotence_key_with_another_body_is_refused(sandbox):
    Payment.create(payment_body("1500.00"), "pay-123-1")

    with pytest.raises(BadRequestError) as refused:
        Payment.create(payment_body("1400.00"), "pay-123-1")

    assert refused.value.content["code"] == "invalid_request"
    assert refused.value.content["description"] == "Idempotence key duplicated"
    assert refused.value.content["parameter"] == "Idempotence-Key"
    assert sandbox.payments_created_per_key["pay-123-1"] == 1 and len(sandbox.payments) == 1


def test_r11_an_answer_lost_after_the_payment_was_made_is_recovered_by_the_same_key(sandbox):
    sandbox.fail_next(status=500, after_processing=True)

    with pytest.raises(InternalServerError):
        Payment.create(payment_body(), "pay-123-1")
    retried = Payment.create(payment_body(), "pay-123-1")

    assert [p["id"] for p in sandbox.payments] == [retried.id]
    assert sandbox.payments_created_per_key["pay-123-1"] == 1


def test_r11_an_sbp_link_is_an_sbp_payment_and_gets_an_sbp_operation_when_paid(sandbox):
    payment = Payment.create(payment_body(payment_method_data={"type": "sbp"}), "pay-sbp")
    assert payment.payment_method.type == "sbp"

    press(sandbox, payment.id, "pay")

    paid = Payment.find_one(payment.id)
    assert paid.payment_method.type == "sbp" and paid.payment_method.sbp_operation_id


@pytest.mark.parametrize(("amount", "parameter"), [
    ({"value": "0.00", "currency": "RUB"}, "amount.value"),
    ({"value": "-5.00", "currency": "RUB"}, "amount.value"),
    ({"value": "100.001", "currency": "RUB"}, "amount.value"),
    ({"value": "сто", "currency": "RUB"}, "amount.value"),
    ({"value": "100.00", "currency": "USD"}, "amount.currency"),
])
def test_r11_an_amount_not_positive_with_two_decimals_in_rubles_is_refused(sandbox, amount, parameter):
    status, error = api_post(sandbox, "/payments", payment_body(amount=amount))

    assert status == 400
    assert (error["type"], error["code"], error["parameter"]) == ("error", "invalid_request", parameter)
    assert sandbox.payments == []


def test_r11_a_foreign_currency_is_refused_through_the_sdk_too(sandbox):
    with pytest.raises(BadRequestError) as refused:
        Payment.create(payment_body(amount={"value": "100.00", "currency": "USD"}), "pay-usd")
    assert refused.value.content["parameter"] == "amount.currency"


def test_r11_a_payment_without_idempotence_key_or_one_stage_capture_is_refused(sandbox):
    status, error = api_post(sandbox, "/payments", payment_body(), key=None)
    assert (status, error["code"], error["parameter"]) == (400, "invalid_request", "Idempotence-Key")
    status, error = api_post(sandbox, "/payments", payment_body(capture=False))
    assert (status, error["parameter"]) == (400, "capture")
    assert sandbox.payments == []


# -- reading ------------------------------------------------------------------------------------------


def test_r11_find_one_reports_the_payment_as_created(sandbox):
    created = Payment.create(payment_body("250.50"), "pay-123-1")

    found = Payment.find_one(created.id)

    assert (found.id, found.status, found.paid) == (created.id, "pending", False)
    assert str(found.amount.value) == "250.50" and found.metadata["intent"] == "advance-1"


def test_r11_an_unknown_payment_or_refund_is_not_found(sandbox):
    with pytest.raises(NotFoundError) as missing:
        Payment.find_one("2419a771-000f-5000-9000-1edaf29243f2")
    assert missing.value.content["code"] == "not_found"
    with pytest.raises(NotFoundError):
        Refund.find_one("2419a771-000f-5000-9000-1edaf29243f2")


def test_r11_wrong_credentials_are_refused_with_401(sandbox):
    Configuration.configure(SHOP_ID, "not-the-secret", api_url=sandbox.base_url, max_attempts=1)

    with pytest.raises(UnauthorizedError) as refused:
        Payment.create(payment_body(), "pay-123-1")

    assert refused.value.content["code"] == "invalid_credentials" and refused.value.content["type"] == "error"
    assert sandbox.payments == [] and sandbox.payment_requests_per_key == {}


def test_r11_errors_are_json_objects_even_for_paths_the_api_does_not_have(sandbox):
    status, headers, raw = http("GET", sandbox.base_url + "/nothing/here")

    assert status == 401 and headers["Content-Type"].startswith("application/json")
    assert json.loads(raw)["code"] == "invalid_credentials"
    status, headers, raw = http("GET", sandbox.root_url + "/favicon.ico")
    assert status == 404 and json.loads(raw)["code"] == "not_found"


# -- the customer pays or walks away ------------------------------------------------------------------


def test_r11_paying_through_the_page_form_succeeds_and_notifies_the_webhook(sandbox, receiver):
    created = Payment.create(payment_body("1500.00"), "pay-123-1")

    status, headers, _ = press(sandbox, created.id, "pay")

    assert (status, headers["Location"]) == (303, RETURN_URL)
    paid = Payment.find_one(created.id)
    assert (paid.status, paid.paid, paid.refundable) == ("succeeded", True, True)
    assert paid.captured_at.endswith("Z") and str(paid.income_amount.value) == "1500.00"
    [notification] = receiver.wait_for(1)
    assert (notification["type"], notification["event"]) == ("notification", "payment.succeeded")
    assert notification["object"]["id"] == created.id and notification["object"]["status"] == "succeeded"
    assert notification["object"]["amount"] == {"value": "1500.00", "currency": "RUB"}
    assert notification["object"]["metadata"]["order_id"] == "123"
    [sent] = sandbox.wait_for_notifications(1)
    assert sent.delivered and sent.attempts == 1 and sent.status == 200


def test_r11_paying_twice_on_the_page_notifies_once(sandbox, receiver):
    created = Payment.create(payment_body(), "pay-123-1")

    press(sandbox, created.id, "pay")
    status, headers, _ = press(sandbox, created.id, "pay")

    assert (status, headers["Location"]) == (303, RETURN_URL)
    sandbox.wait_for_notifications(1)
    assert [n.event for n in sandbox.notifications_sent] == ["payment.succeeded"]
    assert len(receiver.bodies) == 1


def test_r11_a_link_without_return_url_ends_on_a_plain_paid_page(sandbox):
    created = Payment.create(payment_body(confirmation={"type": "redirect"}), "pay-123-1")

    status, _, page = press(sandbox, created.id, "pay")

    assert status == 200 and "succeeded" in page.decode()


def test_r11_cancelling_on_the_page_cancels_and_notifies_and_the_link_cannot_be_paid_after(sandbox, receiver):
    created = Payment.create(payment_body(), "pay-123-1")

    status, headers, _ = press(sandbox, created.id, "cancel")

    assert (status, headers["Location"]) == (303, RETURN_URL)
    canceled = Payment.find_one(created.id)
    assert (canceled.status, canceled.paid) == ("canceled", False)
    assert canceled.cancellation_details.reason == "expired_on_confirmation"
    [notification] = receiver.wait_for(1)
    assert notification["event"] == "payment.canceled" and notification["object"]["status"] == "canceled"
    assert press(sandbox, created.id, "pay")[0] == 409
    assert Payment.find_one(created.id).status == "canceled"


def test_r11_a_duplicate_or_late_notification_can_be_sent_again(sandbox, receiver):
    created = Payment.create(payment_body(), "pay-123-1")
    sandbox.pay(created.id)
    receiver.wait_for(1)

    sandbox.notify(created.id)

    first, second = receiver.wait_for(2)
    assert first == second and second["event"] == "payment.succeeded"


def test_r11_a_failing_webhook_is_retried_and_one_that_is_down_is_given_up_without_harm(sandbox, receiver):
    receiver.fail_first = 2
    created = Payment.create(payment_body(), "pay-123-1")

    sandbox.pay(created.id)

    [notification] = receiver.wait_for(1)
    assert notification["event"] == "payment.succeeded"
    [sent] = sandbox.wait_for_notifications(1)
    assert (sent.delivered, sent.attempts) == (True, 3)

    sandbox.webhook_url = f"http://127.0.0.1:{free_port()}/nobody-listens"
    sandbox.notify(created.id)
    _, lost = sandbox.wait_for_notifications(2)
    assert (lost.delivered, lost.attempts) == (False, 4) and lost.error
    assert Payment.find_one(created.id).status == "succeeded"  # the sandbox still serves


# -- refunds ------------------------------------------------------------------------------------------


def test_r11_refunds_partial_then_the_rest_but_never_beyond_the_payment(sandbox, receiver):
    created = Payment.create(payment_body("1000.00"), "pay-123-1")
    press(sandbox, created.id, "pay")

    partial = Refund.create({"payment_id": created.id, "amount": {"value": "400.00", "currency": "RUB"}}, "refund-1")
    assert (partial.status, partial.payment_id, str(partial.amount.value)) == ("succeeded", created.id, "400.00")
    assert str(Payment.find_one(created.id).refunded_amount.value) == "400.00"
    with pytest.raises(BadRequestError) as too_much:
        Refund.create({"payment_id": created.id, "amount": {"value": "600.01", "currency": "RUB"}}, "refund-2")
    assert too_much.value.content["code"] == "invalid_request"

    rest = Refund.create({"payment_id": created.id, "amount": {"value": "600.00", "currency": "RUB"}}, "refund-3")

    after = Payment.find_one(created.id)
    assert str(after.refunded_amount.value) == "1000.00" and after.refundable is False
    assert Refund.find_one(rest.id).amount.value == 600
    with pytest.raises(BadRequestError):
        Refund.create({"payment_id": created.id, "amount": {"value": "0.01", "currency": "RUB"}}, "refund-4")
    events = [body["event"] for body in receiver.wait_for(3)]
    # each notification is delivered on its own, as YooKassa's are: in no promised order
    assert sorted(events) == ["payment.succeeded", "refund.succeeded", "refund.succeeded"]


def test_r11_a_repeated_refund_key_refunds_once(sandbox):
    created = Payment.create(payment_body("1000.00"), "pay-123-1")
    sandbox.pay(created.id)
    body = {"payment_id": created.id, "amount": {"value": "100.00", "currency": "RUB"}}

    first, again = Refund.create(body, "refund-1"), Refund.create(body, "refund-1")

    assert again.id == first.id and sandbox.refunds_created_per_key["refund-1"] == 1
    assert str(Payment.find_one(created.id).refunded_amount.value) == "100.00"


def test_r11_only_a_succeeded_payment_can_be_refunded(sandbox):
    pending = Payment.create(payment_body(), "pay-123-1")

    with pytest.raises(BadRequestError) as refused:
        Refund.create({"payment_id": pending.id, "amount": {"value": "1.00", "currency": "RUB"}}, "refund-1")

    assert refused.value.content["code"] == "invalid_request"
    assert sandbox.refunds_created_per_key == {}


# -- a mismatch, for the product's checks -------------------------------------------------------------


def test_r11_tamper_changes_what_find_one_reports(sandbox):
    created = Payment.create(payment_body("1500.00"), "pay-123-1")

    sandbox.tamper(created.id, amount="1.00", currency="USD")

    found = Payment.find_one(created.id)
    assert (str(found.amount.value), found.amount.currency) == ("1.00", "USD")
    sandbox.pay(created.id)
    [sent] = sandbox.wait_for_notifications(1)
    assert sent.body["object"]["amount"] == {"value": "1.00", "currency": "USD"}


# -- the console command ------------------------------------------------------------------------------


def test_r11_the_sandbox_acquirer_command_serves_until_sigterm(receiver):
    saved = {name: getattr(Configuration, name) for name in _CONFIGURATION}
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "orderdesk.cli", "sandbox-acquirer", "--port", str(port), "--shop-id", SHOP_ID,
         "--secret-key", SECRET, "--webhook-url", receiver.url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert f"http://127.0.0.1:{port}/v3" in process.stdout.readline()
        Configuration.configure(SHOP_ID, SECRET, api_url=f"http://127.0.0.1:{port}/v3", max_attempts=1)
        created = Payment.create(payment_body(), "pay-cli")
        http("POST", created.confirmation.confirmation_url, body=b"action=pay",
             headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert Payment.find_one(created.id).status == "succeeded"
        assert receiver.wait_for(1)[0]["object"]["id"] == created.id

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()
        for name, value in saved.items():
            setattr(Configuration, name, value)
