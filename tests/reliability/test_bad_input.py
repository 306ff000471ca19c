"""B9 against whatever a caller may send: schemathesis generates requests from the app's own
OpenAPI schema (/api/v1/openapi.json) and sends them in-process to the WSGI app, as a signed-in
administrator, as a signed-in customer and as the site's machine key. Every answer is a clear error
or a success — never a 5xx — and conforms to the schema the API publishes."""

from contextlib import contextmanager

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from orderdesk.core.models import ApiKey
from orderdesk.core.rights import Role
from orderdesk.fiscal.models import Register
from orderdesk.orders import services
from tests.conftest import PASSWORD, JsonClient, order_body

pytestmark = pytest.mark.django_db

EXAMPLES = 6  # per operation: enough to find a 500, small enough to keep the file fast


EXAMPLES_OTHER_CALLERS = 4  # fewer than the administrator's: they mostly hear 403, and the fixtures take the time


def _signed_in(user) -> dict:
    """The session cookie and CSRF token of a person who signed in through the API."""
    client = JsonClient()
    response = client.post_json("/api/v1/auth/login", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 200, response.content
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    token = response.json()["csrf_token"]
    csrf_cookie = client.cookies[django_settings.CSRF_COOKIE_NAME].value
    return {"cookies": {django_settings.SESSION_COOKIE_NAME: session, django_settings.CSRF_COOKIE_NAME: csrf_cookie},
            "headers": {"X-CSRFToken": token}}


@pytest.fixture
def shop(sandbox_acquirer, registers, machine_client):
    """An order, a cash desk and the sandbox acquirer in place, so the generated calls reach more
    than 404s."""
    machine_client("site").post_json("/api/v1/orders", order_body("schema-1"))


@pytest.fixture
def as_admin(shop, make_user):
    """A signed-in administrator's session cookie and CSRF token."""
    return _signed_in(make_user(Role.ADMINISTRATOR))


@pytest.fixture
def as_customer(shop, make_user, machine_client):
    """A signed-in customer with an order of his own (and so a notification)."""
    customer = make_user(Role.CUSTOMER, email="schema-customer@example.com")
    services.link_customer_account(customer)
    machine_client("site").post_json("/api/v1/orders", order_body("schema-2", email=customer.email))
    return _signed_in(customer)


@pytest.fixture
def as_site_key(shop):
    """The site's machine key as a Bearer token, with no cookies."""
    _key, secret = ApiKey.issue(name="schema site", role=Role.SITE)
    return {"headers": {"Authorization": f"Bearer {secret}"}}


@contextmanager
def requests_keep_the_test_connection():
    """As Django's test client does: the test owns the connection and its transaction, so the end
    of an in-process request must not close it."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application()).exclude(
    path="/api/v1/auth/logout")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_b09_generated_requests_get_no_5xx_and_answers_that_conform_to_the_schema(case, as_admin):
    with requests_keep_the_test_connection():
        case.call_and_validate(**as_admin, checks=[not_a_server_error, response_schema_conformance])


def test_b09_the_generated_requests_are_made_as_the_signed_in_administrator(as_admin):
    with requests_keep_the_test_connection():
        response = schema["/api/v1/auth/me"]["GET"].Case().call(**as_admin)
        unsafe = schema["/api/v1/settings"]["PUT"].Case(body={"auto_close_enabled": True}).call(**as_admin)

    assert (response.status_code, response.json()["role"]) == (200, "administrator")
    assert unsafe.status_code == 200, unsafe.text  # the CSRF token goes with the session on unsafe calls


@schema.parametrize()
@settings(max_examples=EXAMPLES_OTHER_CALLERS, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_b09_generated_requests_as_a_customer_get_no_5xx_and_answers_that_conform_to_the_schema(case, as_customer):
    with requests_keep_the_test_connection():
        case.call_and_validate(**as_customer, checks=[not_a_server_error, response_schema_conformance])


@schema.parametrize()
@settings(max_examples=EXAMPLES_OTHER_CALLERS, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_b09_generated_requests_as_the_site_key_get_no_5xx_and_answers_that_conform_to_the_schema(case, as_site_key):
    with requests_keep_the_test_connection():
        case.call_and_validate(**as_site_key, checks=[not_a_server_error, response_schema_conformance])


def test_b09_the_generated_requests_are_made_as_the_signed_in_customer_and_as_the_site_key(as_customer, as_site_key):
    with requests_keep_the_test_connection():
        customer = schema["/api/v1/auth/me"]["GET"].Case().call(**as_customer)
        customer_unsafe = schema["/api/v1/me/notifications/read"]["POST"].Case(body={}).call(**as_customer)
        site = schema["/api/v1/registers"]["GET"].Case().call(**as_site_key)
        site_unsafe = schema["/api/v1/orders"]["POST"].Case(body=order_body("schema-3")).call(**as_site_key)

    assert (customer.status_code, customer.json()["role"]) == (200, "customer")
    assert (customer_unsafe.status_code, customer_unsafe.json()) == (200, {"marked": 1}), customer_unsafe.text
    assert site.status_code == 200, site.text  # not a person's session: a machine's key
    assert site_unsafe.status_code == 201, site_unsafe.text


# ---- what schemathesis found, pinned ----


def test_b09_a_nul_character_in_a_json_body_is_a_malformed_body_not_a_500(client_as, registers):
    admin = client_as(Role.ADMINISTRATOR)
    body = {"name": "Касса\x00 2", "company_inn": "7707083893", "company_email": "shop@example.com",
            "payment_address": "Москва"}

    response = admin.post_json("/api/v1/registers", body)

    assert (response.status_code, response.json()["code"]) == (400, "malformed_body")
    assert Register.objects.count() == 2  # the fixture's two, nothing more


def test_b09_a_multipart_body_without_a_boundary_is_a_malformed_body_not_a_500(client_as):
    cashier = client_as(Role.CASHIER, enforce_csrf_checks=True)  # the CSRF check reads the form first
    token = "a" * 32
    cashier.cookies[django_settings.CSRF_COOKIE_NAME] = token

    response = cashier.post("/api/v1/orders/1/payments", b"{}", content_type="multipart/form-data",
                            HTTP_X_CSRFTOKEN=token)

    assert (response.status_code, response.json()["code"]) == (400, "malformed_body")


def test_b09_an_order_id_beyond_the_database_integer_is_invalid_input_not_a_500(client_as):
    admin = client_as(Role.ADMINISTRATOR)

    response = admin.post_json("/api/v1/orders/purge", {"order_ids": [2**70]})

    assert (response.status_code, response.json()["code"]) == (422, "validation_error")
    assert "order_ids.0" in response.json()["fields"]
