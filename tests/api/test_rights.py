"""B9: who may call what. One row per API operation, one column per kind of caller.

The operations come from the API's own OpenAPI schema, so an endpoint added without a row here
fails `test_b09_every_api_operation_has_a_row_in_the_rights_table`.
"""

import json
from dataclasses import dataclass, field
from typing import Callable

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from decimal import Decimal

from orderdesk.acquiring import services as acquiring
from orderdesk.acquiring.models import PaymentLink
from orderdesk.core.actors import Actor
from orderdesk.fiscal.models import Receipt, Register
from orderdesk.fiscal.rules import PayMethod
from orderdesk.payments import services as payments
from orderdesk.payments.models import Document
from orderdesk.core.models import ApiKey
from orderdesk.core.rights import Role
from orderdesk.orders import services
from orderdesk.orders.models import Order, OrderEvent, ShopSettings
from orderdesk.orders.rules import StatusCode
from orderdesk.orders.schemas import OrderIn
from tests.conftest import COMPANY, PASSWORD, JsonClient, order_body

pytestmark = pytest.mark.django_db

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}

CALLERS = [
    "anonymous", "customer", "cashier", "manager", "administrator",
    "site_key", "integration_key", "wrong_key", "revoked_key",
]
PEOPLE = {"customer", "cashier", "manager", "administrator"}
LOCKED_OUT = {"anonymous": 401, "wrong_key": 401, "revoked_key": 401}

ONE_ITEM = {"items": [{"name": "Чайник", "quantity": "1", "price": "1000.00", "vat_rate": "22"}]}


@dataclass
class World:
    """What every row acts on: an order of another customer, one marked for removal, a sign-in."""

    order: Order
    marked: Order
    login_email: str
    desk: Register
    document: Document
    receipt: Receipt
    pending_link: PaymentLink  # waiting for the customer, who has an e-mail
    paid_link: PaymentLink

    def path(self, template: str, **ids: int) -> str:
        return template.format(**{"order_id": self.order.pk, "document_id": self.document.pk,
                                  "receipt_id": self.receipt.pk, "register_id": self.desk.pk,
                                  "link_id": self.pending_link.pk, **ids})


@dataclass
class Row:
    body: Callable[[World], dict] | None = None
    # caller → status; callers not listed are LOCKED_OUT's or `default`
    expected: dict[str, int] = field(default_factory=dict)
    default: int = 200
    public: bool = False
    ids: Callable[[World], dict[str, int]] | None = None  # path ids other than the world's defaults

    def status_for(self, caller: str) -> int:
        if caller in self.expected:
            return self.expected[caller]
        if caller in LOCKED_OUT and not self.public:
            return LOCKED_OUT[caller]
        return self.default


def only(allowed: set[str], ok: int = 200, refused: int = 403) -> dict[str, int]:
    return {c: (ok if c in allowed else refused) for c in CALLERS if c not in LOCKED_OUT}


STAFF = {"cashier", "manager", "administrator"}
CASH_DESK = {"cashier", "administrator"}
BACK_OFFICE_MONEY = {"manager", "administrator"}
DOCUMENT_KEEPERS = {"manager", "administrator", "integration_key"}
REGISTER_CARD = {"name": "Касса 2", **COMPANY}
MACHINES = {"site_key", "integration_key"}
EDITORS = {"manager", "administrator", "integration_key"}
READERS = {*STAFF, *MACHINES}

RIGHTS: dict[tuple[str, str], Row] = {
    # signing in is open to anyone who knows a password
    ("POST", "/api/v1/auth/login"): Row(
        body=lambda w: {"email": w.login_email, "password": PASSWORD}, public=True),
    ("POST", "/api/v1/auth/logout"): Row(default=204),
    # who-am-I is about people; a machine is told so
    ("GET", "/api/v1/auth/me"): Row(expected=only(PEOPLE, refused=400)),
    ("POST", "/api/v1/orders"): Row(
        body=lambda w: order_body("rights-new"), expected=only({"manager", "administrator", *MACHINES}, ok=201)),
    ("GET", "/api/v1/orders"): Row(),  # a customer gets his own orders only; see below
    # another customer's order does not exist for a customer
    ("GET", "/api/v1/orders/{order_id}"): Row(expected={"customer": 404}),
    ("GET", "/api/v1/orders/{order_id}/history"): Row(expected={"customer": 404}),
    # B10: what 1C confirmed and reported is back-office knowledge
    ("GET", "/api/v1/orders/{order_id}/exchange-1c"): Row(expected=only({*STAFF, "integration_key"})),
    ("POST", "/api/v1/orders/{order_id}/status"): Row(
        body=lambda w: {"status": StatusCode.AGREED}, expected=only({*STAFF, "integration_key"})),
    ("PUT", "/api/v1/orders/{order_id}/items"): Row(body=lambda w: ONE_ITEM, expected=only(EDITORS)),
    ("PUT", "/api/v1/orders/{order_id}/delivery"): Row(
        body=lambda w: {"method": "pickup", "address": "", "price": "0.00"}, expected=only(EDITORS)),
    ("PUT", "/api/v1/orders/{order_id}/removal-mark"): Row(body=lambda w: {"marked": True}, expected=only(EDITORS)),
    ("POST", "/api/v1/orders/purge"): Row(
        body=lambda w: {"order_ids": [w.marked.pk]}, expected=only({"administrator"})),
    ("GET", "/api/v1/me/orders"): Row(expected=only({"customer"})),  # staff use the full list
    ("GET", "/api/v1/me/notifications"): Row(expected=only({"customer"})),
    ("POST", "/api/v1/me/notifications/read"): Row(body=lambda w: {}, expected=only({"customer"})),
    ("POST", "/api/v1/orders/{order_id}/payments"): Row(
        body=lambda w: {"register_id": w.desk.pk, "amount": "100.00", "method": "cash"}, expected=only(CASH_DESK, ok=201)),
    ("POST", "/api/v1/orders/{order_id}/refunds"): Row(
        body=lambda w: {"register_id": w.desk.pk, "amount": "1.00", "method": "cash"},
        expected=only(BACK_OFFICE_MONEY, ok=201)),
    ("GET", "/api/v1/orders/{order_id}/documents"): Row(expected=only(DOCUMENT_KEEPERS)),
    ("POST", "/api/v1/orders/{order_id}/documents"): Row(
        body=lambda w: {"kind": "cash_receipt"}, expected=only(DOCUMENT_KEEPERS, ok=201)),
    # another customer's receipts do not exist for a customer
    ("GET", "/api/v1/orders/{order_id}/receipts"): Row(expected={"customer": 404}),
    ("GET", "/api/v1/receipts/{receipt_id}"): Row(expected={"customer": 404}),
    ("PUT", "/api/v1/documents/{document_id}"): Row(body=lambda w: {"comment": "по счёту"}, expected=only(DOCUMENT_KEEPERS)),
    ("POST", "/api/v1/documents/{document_id}/post"): Row(body=lambda w: {}, expected=only(DOCUMENT_KEEPERS)),
    # the world's document is a draft: those allowed hear why it cannot be un-posted
    ("POST", "/api/v1/documents/{document_id}/unpost"): Row(body=lambda w: {}, expected=only(DOCUMENT_KEEPERS, ok=409)),
    ("POST", "/api/v1/cash-desk/quick-sales"): Row(
        body=lambda w: {"register_id": w.desk.pk, "method": "cash", **ONE_ITEM}, expected=only(CASH_DESK, ok=201)),
    ("GET", "/api/v1/registers"): Row(expected=only(READERS)),
    ("POST", "/api/v1/registers"): Row(body=lambda w: REGISTER_CARD, expected=only({"administrator"}, ok=201)),
    ("PUT", "/api/v1/registers/{register_id}"): Row(
        body=lambda w: {**REGISTER_CARD, "name": "Касса 1"}, expected=only({"administrator"})),
    # the world's cash desk has its shift open already
    ("POST", "/api/v1/registers/{register_id}/shift/open"): Row(body=lambda w: {}, expected=only(CASH_DESK, ok=409)),
    ("GET", "/api/v1/registers/{register_id}/shift/x-report"): Row(expected=only(CASH_DESK)),
    ("POST", "/api/v1/registers/{register_id}/shift/close"): Row(body=lambda w: {}, expected=only(CASH_DESK)),
    # R11: online payment links; the world's order owes 700.00
    ("POST", "/api/v1/orders/{order_id}/payment-links"): Row(
        body=lambda w: {"amount": "50.00"}, expected=only(DOCUMENT_KEEPERS, ok=201)),
    ("GET", "/api/v1/orders/{order_id}/payment-links"): Row(expected=only(DOCUMENT_KEEPERS)),
    ("POST", "/api/v1/payment-links/{link_id}/email"): Row(body=lambda w: {}, expected=only(DOCUMENT_KEEPERS)),
    ("POST", "/api/v1/payment-links/{link_id}/refunds"): Row(
        body=lambda w: {"amount": "1.00", "idempotency_key": "rights"}, ids=lambda w: {"link_id": w.paid_link.pk},
        expected=only(BACK_OFFICE_MONEY, ok=201)),
    # the acquirer's notifications come with no credentials; only the source network and the re-read count
    ("POST", "/api/v1/acquiring/yookassa"): Row(
        body=lambda w: {"type": "notification", "event": "payment.succeeded",
                        "object": {"id": w.paid_link.acquirer_payment_id, "status": "succeeded"}}, public=True),
    ("GET", "/api/v1/statuses"): Row(),
    ("GET", "/api/v1/settings"): Row(),
    ("PUT", "/api/v1/settings"): Row(
        body=lambda w: {"default_site_status": StatusCode.AGREED}, expected=only({"administrator"})),
}



ERROR_CODES = {401: "unauthorized", 403: "forbidden", 404: "order_not_found"}


def _operations_in_schema(client) -> set[tuple[str, str]]:
    schema = client.get("/api/v1/openapi.json").json()
    return {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops if m in HTTP_METHODS}


def test_b09_every_api_operation_has_a_row_in_the_rights_table():
    operations = _operations_in_schema(JsonClient())

    assert operations - RIGHTS.keys() == set(), "add these operations to RIGHTS in tests/api/test_rights.py"
    assert RIGHTS.keys() - operations == set(), "RIGHTS lists operations the API no longer has"


@pytest.fixture
def world(make_user, site_actor, registers, sandbox_acquirer) -> World:
    other = make_user(Role.CUSTOMER, email="other@example.com")
    services.link_customer_account(other)
    order = services.place_order(site_actor, OrderIn(**order_body("rights-1", email=other.email))).order
    marked = services.place_order(site_actor, OrderIn(**order_body("rights-2", email=other.email))).order
    manager = Actor.for_user(make_user(Role.MANAGER))
    services.set_removal_mark(manager, marked.pk, True)
    paid = payments.take_payment(Actor.for_user(make_user(Role.CASHIER)), order.pk, register_id=registers.desk.pk,
                                 amount=Decimal("100.00"), method=PayMethod.CASH)
    document = payments.create_document(manager, order.pk, "noncash_receipt")
    paid_link = acquiring.create_link(manager, order.pk, amount=Decimal("100.00"))
    sandbox_acquirer.pay(paid_link.acquirer_payment_id)
    notification = {"type": "notification", "event": "payment.succeeded",
                    "object": sandbox_acquirer.payment(paid_link.acquirer_payment_id)}
    assert acquiring.handle_notification("127.0.0.1", notification) == "paid"
    pending_link = acquiring.create_link(manager, order.pk, amount=Decimal("100.00"))
    return World(order=order, marked=marked, login_email=make_user(Role.MANAGER).email, desk=registers.desk,
                 document=document, receipt=paid.receipts[0], pending_link=pending_link,
                 paid_link=PaymentLink.objects.get(pk=paid_link.pk))


@pytest.fixture
def callers(make_user, client_as, machine_client) -> dict[str, JsonClient]:
    """A client for every kind of caller."""
    customer = make_user(Role.CUSTOMER, email="me@example.com")
    services.link_customer_account(customer)
    revoked = machine_client(Role.SITE)
    ApiKey.objects.filter(pk=revoked.api_key.pk).update(revoked_at=timezone.now())
    clients = {
        "anonymous": JsonClient(),
        "customer": client_as(customer),
        **{role: client_as(role) for role in ("cashier", "manager", "administrator")},
        "site_key": machine_client(Role.SITE),
        "integration_key": machine_client(Role.INTEGRATION),
        "wrong_key": JsonClient(HTTP_AUTHORIZATION="Bearer od_00000000_not-a-key-anyone-was-given"),
        "revoked_key": revoked,
    }
    assert list(clients) == CALLERS
    return clients


class _Undo(Exception):
    pass


def _call(client: JsonClient, method: str, path: str, body: dict | None):
    if method == "GET":
        return client.get(path)
    return getattr(client, f"{method.lower()}_json")(path, body)


def _call_and_undo(client: JsonClient, method: str, path: str, body: dict | None, check: Callable):
    """Make the call, check it, then roll its effects back so every caller meets the same world."""
    outcome = {}
    try:
        with transaction.atomic():
            response = _call(client, method, path, body)
            outcome["response"] = response
            outcome["problem"] = check(response)
            raise _Undo
    except _Undo:
        pass
    return outcome["response"], outcome["problem"]


@pytest.mark.parametrize("operation", sorted(RIGHTS), ids=lambda op: f"{op[0]} {op[1]}")
def test_b09_rights_table(operation, world, callers):
    method, template = operation
    row = RIGHTS[operation]
    path = world.path(template, **(row.ids(world) if row.ids else {}))
    events_before = OrderEvent.objects.count()

    def refusal_problem(response) -> str | None:
        if response.status_code < 400:
            return None
        if not response["Content-Type"].startswith("application/json"):
            return f"not JSON: {response.content[:100]!r}"
        body = response.json()
        expected_code = ERROR_CODES.get(response.status_code, body.get("code"))
        if response.status_code == 404 and str(body.get("code")).endswith("_not_found"):
            expected_code = body.get("code")  # a receipt or a document is not found as such
        if body.get("code") != expected_code or not body.get("message"):
            return f"unclear error: {body}"
        if OrderEvent.objects.count() != events_before or not Order.objects.filter(pk=world.marked.pk).exists():
            return "the refused call changed something"
        if ShopSettings.current().default_site_status_id != StatusCode.PENDING_APPROVAL:
            return "the refused call changed the settings"
        return None

    answered, problems = {}, {}
    for caller, client in callers.items():
        response, problem = _call_and_undo(client, method, path, row.body(world) if row.body else None, refusal_problem)
        answered[caller] = response.status_code
        if problem:
            problems[caller] = problem

    assert answered == {caller: row.status_for(caller) for caller in CALLERS}
    assert problems == {}


# ---- a customer and his own orders ----


@pytest.fixture
def customer(make_user):
    user = make_user(Role.CUSTOMER, email="anna@example.com")
    services.link_customer_account(user)
    return user


def test_b09_customer_reads_his_own_order_card_and_history(customer, client_as, site_actor):
    mine = services.place_order(site_actor, OrderIn(**order_body("own-1", email=customer.email))).order
    client = client_as(customer)

    card = client.get(f"/api/v1/orders/{mine.pk}")
    history = client.get(f"/api/v1/orders/{mine.pk}/history")

    assert card.status_code == 200
    assert card.json()["number"] == mine.number
    assert history.status_code == 200
    assert [e["code"] for e in history.json()] == ["order.created"]


def test_b09_customer_gets_404_for_another_customers_order_as_for_one_that_does_not_exist(
    customer, client_as, site_actor
):
    theirs = services.place_order(site_actor, OrderIn(**order_body("theirs-1", email="boris@example.com"))).order
    client = client_as(customer)

    for template in ("/api/v1/orders/{}", "/api/v1/orders/{}/history"):
        foreign = client.get(template.format(theirs.pk))
        missing = client.get(template.format(theirs.pk + 1000))
        assert foreign.status_code == missing.status_code == 404
        assert foreign.json() == missing.json()
        assert foreign.json()["code"] == "order_not_found"


def test_b09_customer_lists_only_his_own_orders(customer, client_as, site_actor, make_user):
    mine = [
        services.place_order(site_actor, OrderIn(**order_body(f"own-{n}", email=customer.email))).order
        for n in range(2)
    ]
    services.place_order(site_actor, OrderIn(**order_body("theirs-1", email="boris@example.com")))
    client = client_as(customer)

    for path in ("/api/v1/orders", "/api/v1/me/orders", f"/api/v1/orders?q={'boris@example.com'}"):
        response = client.get(path)
        assert response.status_code == 200
        numbers = {o["number"] for o in response.json()["results"]}
        assert numbers <= {o.number for o in mine}, path
    assert {o["number"] for o in client.get("/api/v1/me/orders").json()["results"]} == {o.number for o in mine}


def test_b09_customer_cannot_change_even_his_own_order(customer, client_as, site_actor):
    mine = services.place_order(site_actor, OrderIn(**order_body("own-1", email=customer.email))).order
    client = client_as(customer)

    refusals = [
        client.post_json(f"/api/v1/orders/{mine.pk}/status", {"status": StatusCode.CANCELLED}),
        client.put_json(f"/api/v1/orders/{mine.pk}/items", ONE_ITEM),
        client.put_json(f"/api/v1/orders/{mine.pk}/removal-mark", {"marked": True}),
        client.post_json("/api/v1/orders/purge", {"order_ids": [mine.pk]}),
        client.post_json("/api/v1/orders", order_body("from-customer", email=customer.email)),
    ]

    assert [r.status_code for r in refusals] == [403] * len(refusals)
    assert {r.json()["code"] for r in refusals} == {"forbidden"}
    mine.refresh_from_db()
    assert (mine.status_id, mine.version, mine.deletion_mark) == (StatusCode.PENDING_APPROVAL, 1, False)
    assert Order.objects.count() == 1


def test_b09_cashier_sets_status_but_cannot_edit_items_or_purge(client_as, site_actor):
    order = services.place_order(site_actor, OrderIn(**order_body("c-1"))).order
    client = client_as(Role.CASHIER)

    assert client.post_json(f"/api/v1/orders/{order.pk}/status", {"status": StatusCode.AGREED}).status_code == 200
    items = client.put_json(f"/api/v1/orders/{order.pk}/items", ONE_ITEM)
    purge = client.post_json("/api/v1/orders/purge", {})

    assert (items.status_code, purge.status_code) == (403, 403)
    assert items.json()["permission"] == "orders.edit"
    assert purge.json()["permission"] == "orders.purge"
    assert order.items.count() == 2


def test_b09_manager_cannot_purge_or_change_settings(client_as, site_actor):
    order = services.place_order(site_actor, OrderIn(**order_body("m-1"))).order
    client = client_as(Role.MANAGER)
    assert client.put_json(f"/api/v1/orders/{order.pk}/removal-mark", {"marked": True}).status_code == 200

    purge = client.post_json("/api/v1/orders/purge", {"order_ids": [order.pk]})
    settings = client.put_json("/api/v1/settings", {"default_site_status": StatusCode.AGREED})

    assert (purge.status_code, settings.status_code) == (403, 403)
    assert Order.objects.filter(pk=order.pk).exists()
    assert ShopSettings.current().default_site_status_id == StatusCode.PENDING_APPROVAL


def test_b09_site_key_places_and_reads_orders_but_cannot_set_status(machine_client):
    site = machine_client(Role.SITE)

    placed = site.post_json("/api/v1/orders", order_body("site-77"))
    order_id = placed.json()["id"]
    read = site.get(f"/api/v1/orders/{order_id}")
    status = site.post_json(f"/api/v1/orders/{order_id}/status", {"status": StatusCode.AGREED})

    assert placed.status_code == 201
    assert read.status_code == 200
    assert read.json()["external_id"] == "site-77"
    assert status.status_code == 403
    assert status.json()["code"] == "forbidden"
    assert Order.objects.get(pk=order_id).status_id == StatusCode.PENDING_APPROVAL


def test_b09_revoked_key_is_refused_from_the_moment_it_is_revoked(machine_client):
    site = machine_client(Role.SITE)
    assert site.get("/api/v1/orders").status_code == 200

    ApiKey.objects.filter(pk=site.api_key.pk).update(revoked_at=timezone.now())
    response = site.post_json("/api/v1/orders", order_body("after-revoke"))

    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert not Order.objects.exists()


def test_b09_anonymous_caller_gets_401_json_with_a_message():
    response = JsonClient().get("/api/v1/orders")

    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "unauthorized"
    assert "Bearer" in response.json()["message"]


# ---- CSRF: a person's session must carry the token on every change ----


def _signed_in_with_csrf_checks(client_as, role=Role.MANAGER) -> JsonClient:
    return client_as(role, enforce_csrf_checks=True)


def test_b09_session_change_without_csrf_token_is_refused_with_csrf_failed(client_as, site_actor):
    order = services.place_order(site_actor, OrderIn(**order_body("csrf-1"))).order
    client = _signed_in_with_csrf_checks(client_as)

    post = client.post_json(f"/api/v1/orders/{order.pk}/status", {"status": StatusCode.AGREED})
    put = client.put_json(f"/api/v1/orders/{order.pk}/removal-mark", {"marked": True})

    assert (post.status_code, put.status_code) == (403, 403)
    assert post.json()["code"] == put.json()["code"] == "csrf_failed"
    order.refresh_from_db()
    assert (order.status_id, order.deletion_mark) == (StatusCode.PENDING_APPROVAL, False)


def test_b09_session_change_with_the_csrf_token_from_auth_me_works(client_as, site_actor):
    order = services.place_order(site_actor, OrderIn(**order_body("csrf-2"))).order
    client = _signed_in_with_csrf_checks(client_as)

    me = client.get("/api/v1/auth/me")
    token = me.json()["csrf_token"]
    assert client.cookies["csrftoken"].value  # the cookie the token pairs with

    post = client.post_json(f"/api/v1/orders/{order.pk}/status", {"status": StatusCode.AGREED}, HTTP_X_CSRFTOKEN=token)
    wrong = client.put_json(f"/api/v1/orders/{order.pk}/removal-mark", {"marked": True}, HTTP_X_CSRFTOKEN="x" * 32)

    assert post.status_code == 200, post.content
    assert post.json()["status"] == StatusCode.AGREED
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "csrf_failed"


def test_b09_session_reads_need_no_csrf_token(client_as):
    client = _signed_in_with_csrf_checks(client_as)

    assert client.get("/api/v1/orders").status_code == 200


def test_b09_machine_key_needs_no_csrf_token():
    key, secret = ApiKey.issue(name="site", role=Role.SITE)
    client = JsonClient(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert client.post_json("/api/v1/orders", order_body("csrf-machine")).status_code == 201


def test_b09_wrong_key_with_a_post_hears_401_not_a_csrf_complaint():
    client = JsonClient(enforce_csrf_checks=True, HTTP_AUTHORIZATION="Bearer od_nope")

    response = client.post_json("/api/v1/orders", order_body("csrf-wrong"))

    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"



UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
UNSAFE_OPERATIONS = sorted(op for op in RIGHTS if op[0] in UNSAFE_METHODS)

# Unsafe operations a session without the CSRF token is NOT refused on, each with its reason.
CSRF_EXEMPT: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/auth/login"): "signing in comes before there is a session, and so before a token to send",
    ("POST", "/api/v1/acquiring/yookassa"): "the acquirer's machines call it with no credentials and no cookies; "
                                            "it trusts only the source network and re-reads the payment",
}


def _allowed_people(row: Row) -> list[str]:
    """Persons the row lets through: refused ones would not prove the refusal is about the token."""
    return [c for c in ("customer", "cashier", "manager", "administrator") if row.status_for(c) not in (401, 403, 404)]


def test_b09_the_csrf_exempt_operations_are_exactly_those_without_a_session_to_protect():
    """Exempt are the unsafe operations that take no credentials at all (no session to ride on)
    and those no person may call (machine keys only, which carry no cookies). Anything else must
    check the token, so a new operation cannot be left out of the CSRF test by accident."""
    schema = JsonClient().get("/api/v1/openapi.json").json()

    def takes_no_credentials(method: str, path: str) -> bool:
        return not schema["paths"][path][method.lower()].get("security")

    exempt = {op for op in UNSAFE_OPERATIONS if takes_no_credentials(*op) or not _allowed_people(RIGHTS[op])}

    assert set(CSRF_EXEMPT) == exempt
    assert all(reason for reason in CSRF_EXEMPT.values())


def _database_snapshot() -> dict[str, list[dict]]:
    """Every row of every table, sessions and the task queue included."""
    from django.apps import apps

    return {m._meta.label: list(m.objects.order_by("pk").values()) for m in apps.get_models()}


@pytest.mark.parametrize("operation", [op for op in UNSAFE_OPERATIONS if op not in CSRF_EXEMPT],
                         ids=lambda op: f"{op[0]} {op[1]}")
def test_b09_every_unsafe_operation_called_with_a_session_but_no_csrf_token_is_refused_with_csrf_failed(
    operation, world, callers, client_as, site_actor
):
    method, template = operation
    row = RIGHTS[operation]
    path = world.path(template, **(row.ids(world) if row.ids else {}))
    body = json.dumps(row.body(world)) if row.body else ""
    people = _allowed_people(row)
    assert people, f"no person may call {method} {template}: list it in CSRF_EXEMPT with the reason"
    # the signed-in customer has an unread notification, so marking it read would show
    services.place_order(site_actor, OrderIn(**order_body("csrf-mine", email=callers["customer"].user.email)))

    sessions = []
    for person in people:
        user = callers[person].user
        no_cookie = client_as(user, enforce_csrf_checks=True)
        cookie_no_header = client_as(user, enforce_csrf_checks=True)  # what a forged request from a browser has
        assert cookie_no_header.get("/api/v1/auth/me").status_code == 200
        assert cookie_no_header.cookies[django_settings.CSRF_COOKIE_NAME].value
        sessions += [(f"{person}, no CSRF cookie", no_cookie), (f"{person}, CSRF cookie but no header", cookie_no_header)]
    before = _database_snapshot()
    events_before = OrderEvent.objects.count()

    answers = {}
    for label, client in sessions:
        response = client.generic(method, path, body, content_type="application/json")
        is_json = response["Content-Type"].startswith("application/json")
        answers[label] = (response.status_code, response.json().get("code") if is_json else response.content[:100],
                          bool(is_json and response.json().get("message")))
        assert client.get("/api/v1/auth/me").status_code == 200, f"{label}: the refused call ended the session"

    assert answers == {label: (403, "csrf_failed", True) for label, _client in sessions}
    assert OrderEvent.objects.count() == events_before
    assert _database_snapshot() == before


# ---- signing in and out ----


def test_b09_sign_in_me_and_sign_out(make_user, site_actor):
    user = make_user(Role.MANAGER, email="olga@example.com")
    order = services.place_order(site_actor, OrderIn(**order_body("login-1"))).order
    client = JsonClient(enforce_csrf_checks=True)

    login = client.post_json("/api/v1/auth/login", {"email": "Olga@Example.com ", "password": PASSWORD})
    assert login.status_code == 200, login.content
    assert login.json()["email"] == user.email
    assert login.json()["role"] == Role.MANAGER
    token = login.json()["csrf_token"]

    me = client.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json()["email"] == user.email
    changed = client.post_json(f"/api/v1/orders/{order.pk}/status", {"status": StatusCode.AGREED},
                               HTTP_X_CSRFTOKEN=token)
    assert changed.status_code == 200, changed.content

    logout = client.post_json("/api/v1/auth/logout", HTTP_X_CSRFTOKEN=token)
    assert logout.status_code == 204
    after = client.get("/api/v1/auth/me")
    assert after.status_code == 401
    assert after.json()["code"] == "unauthorized"


@pytest.mark.parametrize(
    "email, password",
    [("olga@example.com", "wrong-password"), ("nobody@example.com", PASSWORD)],
    ids=["wrong password", "unknown e-mail"],
)
def test_b09_sign_in_with_wrong_credentials_is_401_wrong_credentials(make_user, email, password):
    make_user(Role.MANAGER, email="olga@example.com")
    client = JsonClient()

    response = client.post_json("/api/v1/auth/login", {"email": email, "password": password})

    assert response.status_code == 401
    assert response.json()["code"] == "wrong_credentials"
    assert response.json()["message"] == "Неверный e-mail или пароль."
    assert client.get("/api/v1/auth/me").status_code == 401


def test_b09_deactivated_person_cannot_sign_in_and_loses_the_open_session(make_user, client_as):
    user = make_user(Role.MANAGER, email="gone@example.com")
    session = client_as(user)
    user.is_active = False
    user.save()

    login = JsonClient().post_json("/api/v1/auth/login", {"email": user.email, "password": PASSWORD})

    assert login.status_code == 401
    assert login.json()["code"] == "wrong_credentials"
    assert session.get("/api/v1/orders").status_code == 401
