"""Fixtures shared by the suite: people of every role, machine keys, a real local SMTP server,
and a way to run the background worker inside a test."""

import json
import socket
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from django.core.management import call_command
from django.test import Client

from orderdesk.core import outbox
from orderdesk.core.actors import Actor
from orderdesk.core.models import ApiKey, User
from orderdesk.core.rights import Role
from orderdesk.fiscal import services as fiscal

PASSWORD = "correct-horse-battery"
COMPANY = {"company_inn": "7707083893", "company_email": "shop@example.com",
           "payment_address": "г. Москва, ул. Примерная, 1"}


@pytest.fixture(autouse=True)
def emulator_memory_of_its_own(settings, tmp_path):
    """Each test's emulator registers start with an empty fiscal memory, as its database starts empty."""
    settings.FISCAL_EMULATOR_PATH = tmp_path / "fiscal-emulator.sqlite3"


@dataclass
class Mailbox:
    """What the local SMTP server received, parsed."""

    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in m["To"]]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # The production hasher costs ~0.5 s a user on this machine and the suite makes hundreds.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server on loopback; Django's SMTP backend is pointed at it."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    yield mailbox
    controller.stop()


@pytest.fixture
def smtp_down(settings):
    """SMTP pointed at a port where nobody listens."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()
    settings.EMAIL_TIMEOUT = 2


def run_worker() -> None:
    """Run every job that is due, register every due receipt and deliver every due outbox
    message, then return: the real worker loop in batch mode and the two relays until they find
    nothing due.

    The loop calls close_old_connections(), which drops a connection that is inside the test's
    transaction; here the test owns the connection, so that call is made a no-op. Tests of
    what happens across real commits use the `committed_db` marker instead."""
    from unittest import mock

    with mock.patch("django_tasks_db.management.commands.db_worker.close_old_connections"):
        call_command("db_worker", batch=True, interval=0, startup_delay=False, verbosity=0)
    while fiscal.register_due():
        pass
    while outbox.deliver_due():
        pass


# Real commits: the worker and other connections see only what was committed. Serialized
# rollback restores the reference data (statuses) that the flush after such a test removes.
committed_db = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def make_user(db):
    counter = iter(range(1, 10_000))

    def make(role: str = Role.MANAGER, email: str | None = None, language: str = "ru", **extra) -> User:
        email = email or f"{role}{next(counter)}@test.local"
        return User.objects.create_user(email=email, password=PASSWORD, role=role, language=language, **extra)

    return make


class JsonClient(Client):
    """Django's test client speaking JSON, as the API's callers do."""

    def _json(self, method, path, data=None, **extra):
        body = json.dumps(data) if data is not None else None
        return getattr(super(), method)(path, body, content_type="application/json", **extra)

    def post_json(self, path, data=None, **extra):
        return self._json("post", path, data, **extra)

    def put_json(self, path, data=None, **extra):
        return self._json("put", path, data, **extra)


@pytest.fixture
def client_as(make_user):
    """client_as("manager") → a client signed in as a new person of that role (or as the given user)."""

    def make(who, **client_kwargs) -> JsonClient:
        user = who if isinstance(who, User) else make_user(who)
        client = JsonClient(**client_kwargs)
        client.force_login(user)
        client.user = user
        return client

    return make


@pytest.fixture
def machine_client(db):
    """machine_client("site") → a client that sends a fresh API key of that role as a Bearer token."""

    def make(role: str = Role.SITE) -> JsonClient:
        key, secret = ApiKey.issue(name=f"test {role}", role=role)
        client = JsonClient(HTTP_AUTHORIZATION=f"Bearer {secret}")
        client.api_key = key
        return client

    return make


@pytest.fixture
def manager(client_as) -> JsonClient:
    return client_as("manager")


@pytest.fixture
def admin(client_as) -> JsonClient:
    return client_as("administrator")


@pytest.fixture
def site(machine_client) -> JsonClient:
    return machine_client("site")


@pytest.fixture
def actor_of(make_user):
    """actor_of("manager") → the Actor a service sees for a new person of that role."""

    def make(role: str = Role.MANAGER, **user_kwargs) -> Actor:
        return Actor.for_user(make_user(role, **user_kwargs))

    return make


@pytest.fixture
def site_actor(db) -> Actor:
    key, _secret = ApiKey.issue(name="site", role=Role.SITE)
    return Actor.for_api_key(key)


@pytest.fixture
def registers(db):
    """An emulator cash desk with its shift open, and an emulator online register for e-receipts."""
    from types import SimpleNamespace

    from orderdesk.fiscal.models import Register, Shift

    desk = Register.objects.create(name="Касса 1", **COMPANY)
    online = Register.objects.create(name="Интернет-касса", is_online=True, **COMPANY)
    Shift.objects.create(register=desk, number=1, opened_by="test")
    return SimpleNamespace(desk=desk, online=online)


@pytest.fixture
def sandbox_acquirer(settings):
    """The sandbox acquirer (YooKassa API v3 over real HTTP on loopback) with the product pointed at
    it. Its notifications go nowhere until a test sets `webhook_url`: tests of the API deliver
    them with the test client themselves."""
    from orderdesk.acquiring.sandbox_server import SandboxAcquirer

    sandbox = SandboxAcquirer("sandbox-shop", "sandbox-secret")
    sandbox.notify_backoff = (0.05, 0.1, 0.2)
    settings.YOOKASSA_API_URL = sandbox.start()
    settings.YOOKASSA_SHOP_ID, settings.YOOKASSA_SECRET_KEY = sandbox.shop_id, sandbox.secret_key
    yield sandbox
    sandbox.stop()


def order_body(external_id: str | None = "site-1", *, email: str = "buyer@example.com", items: int = 2, **overrides) -> dict:
    """A valid site order; tests change what they are about."""
    body = {
        "external_id": external_id,
        "customer": {"kind": "person", "name": "Иван Петров", "email": email, "phone": "+7 912 345-67-89"},
        "items": [
            {"sku": f"SKU-{n}", "name": f"Товар {n}", "unit": "шт", "quantity": "2", "price": "150.50",
             "discount": "1.00", "vat_rate": "22", "kind": "goods"}
            for n in range(1, items + 1)
        ],
        "delivery": {"method": "courier", "address": "Москва, ул. Тверская, 1", "price": "300.00"},
        "comment": "Позвонить за час",
    }
    if external_id is None:
        del body["external_id"]
    body.update(overrides)
    return body
