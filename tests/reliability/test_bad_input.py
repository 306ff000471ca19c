"""B9 against whatever a caller may send: schemathesis generates requests from the app's own
OpenAPI schema (/api/v1/openapi.json) and sends them in-process to the WSGI app, as a signed-in
administrator, as a signed-in customer and as the site's machine key. Every answer is a clear error
or a success — never a 5xx — and conforms to the schema the API publishes.

B10 against hostile files: XML bombs, external entities and DTDs, XInclude, ZIP bombs, deep
nesting and binary bodies posted to the 1C exchange are refused with `failure` (XInclude is read
as a plain element and resolves nothing) and change nothing, in the newer and the older protocol."""

import functools
import io
import json
import struct
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from orderdesk.core.models import ApiKey
from orderdesk.core.rights import Role
from orderdesk.exchange.models import OrderExchange, Upload
from orderdesk.fiscal.models import Register
from orderdesk.orders import services
from orderdesk.orders.models import Order
from orderdesk.orders.schemas import OrderIn
from tests.conftest import PASSWORD, JsonClient, order_body
from tests.exchange.one_c import OneC, status_update

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


@pytest.mark.parametrize("name, encoded", [
    ("Касса\x00 2", lambda body: json.dumps(body).encode()),
    ("Касса\x00 2", lambda body: json.dumps(body, ensure_ascii=False).replace("\\u0000", "\x00").encode()),
    ("Касса\x00 2", lambda body: json.dumps(body, ensure_ascii=False).encode("utf-16")),
    ("Касса 2", lambda body: json.dumps({**body, "\x00": 1}, ensure_ascii=False).encode()),  # in a key
], ids=["escaped", "raw in utf-8", "utf-16", "key"])
def test_b09_a_nul_character_in_a_json_body_is_a_malformed_body_not_a_500(client_as, registers, name, encoded):
    admin = client_as(Role.ADMINISTRATOR)
    body = {"name": name, "company_inn": "7707083893", "company_email": "shop@example.com",
            "payment_address": "Москва"}

    response = admin.post("/api/v1/registers", encoded(body), content_type="application/json")

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


# ---- B10: hostile files posted to the 1C exchange ----

PASSWD = Path("/etc/passwd").read_text().split("\n")[0]  # what a resolved external entity would leak
assert PASSWD.count(":") >= 6, PASSWD  # a real passwd line, so the «appears nowhere» checks can fail
FILE_XML = "documents___bad.xml"
FILE_ZIP = "v8_3B8F_3e.zip"
BOMB_BYTES = 200 * 1024 * 1024  # what the ZIP bomb's member expands to: beyond the exchange's 64 MB


def _file_for(order: Order, prolog: str = "", value: str = "ТД00-000731") -> bytes:
    """1C's status file for the order (posted, marked for deletion, 1C's number `value`): accepted,
    it would change the order; `prolog` goes between the XML declaration and the root."""
    data = status_update(order.number, Проведен="true", ПометкаУдаления="true", **{"Номер по 1С": value})
    declaration, rest = data.split(b"?>\n", 1)
    return declaration + b"?>\n" + prolog.encode("utf-8") + rest


def _billion_laughs(order: Order) -> bytes:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10))
    return _file_for(order, f"<!DOCTYPE КоммерческаяИнформация [{entities}]>\n", "&lol9;")


def _quadratic_blowup(order: Order) -> bytes:
    """One 100 KB entity used 2,000 times: 200 MB once expanded, 106 KB on the wire."""
    return _file_for(order, f'<!DOCTYPE КоммерческаяИнформация [<!ENTITY a "{"x" * 100_000}">]>\n', "&a;" * 2000)


def _external_entity(order: Order) -> bytes:
    return _file_for(order, '<!DOCTYPE КоммерческаяИнформация [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n',
                     "&xxe;")


def _external_dtd(order: Order) -> bytes:
    return _file_for(order, '<!DOCTYPE КоммерческаяИнформация SYSTEM "file:///etc/passwd">\n')


def _parameter_entity(order: Order) -> bytes:
    return _file_for(order, '<!DOCTYPE КоммерческаяИнформация [<!ENTITY % leak SYSTEM "file:///etc/passwd"> %leak;]>\n')


def _xinclude_as_number(order: Order) -> bytes:
    """The document's `Номер` is an XInclude of /etc/passwd: resolved, it would name no order of
    ours and the «not found» line of the answer would carry the file."""
    include = '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/>'
    return _file_for(order).replace(f"<Номер>{order.number}</Номер>".encode(), f"<Номер>{include}</Номер>".encode())


def _utf16_with_doctype(order: Order) -> bytes:
    text = _external_entity(order).decode("utf-8").lstrip("\ufeff").replace('encoding="UTF-8"', 'encoding="UTF-16"')
    return text.encode("utf-16")  # with its BOM; `<!DOCTYPE` is not in the bytes as ASCII


def _deep_nesting(order: Order) -> bytes:
    return _file_for(order).replace("<Валюта>".encode(), ("<Вложение>" * 1000 + "</Вложение>" * 1000).encode()
                                    + "<Валюта>".encode())


def _binary(order: Order) -> bytes:
    return bytes((n * 7919 + 13) % 256 for n in range(64 * 1024))


@functools.cache
def _zip_bomb() -> bytes:
    """An honest bomb: one deflated member that says it expands to 200 MB (of XML padding), ~200 KB on disk."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z, z.open("orders.xml", "w") as member:
        member.write('<?xml version="1.0" encoding="UTF-8"?>\n<КоммерческаяИнформация>'.encode())
        padding = b" " * (1024 * 1024)
        for _ in range(BOMB_BYTES // len(padding)):
            member.write(padding)
        member.write("</КоммерческаяИнформация>".encode())
    data = archive.getvalue()
    assert len(data) < 1024 * 1024 and zipfile.ZipFile(io.BytesIO(data)).infolist()[0].file_size > BOMB_BYTES
    return data


def _patched_zip(data: bytes, local: dict[int, tuple[str, int]], central: dict[int, tuple[str, int]]) -> bytes:
    """The archive with fields of its (one) local header and central directory entry overwritten:
    {offset in the header: (struct format, value)}."""
    patched = bytearray(data)
    for signature, fields in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        start = patched.index(signature)
        for offset, (fmt, value) in fields.items():
            struct.pack_into(fmt, patched, start + offset, value)
    return bytes(patched)


def _zip_bomb_honest(order: Order) -> bytes:
    return _zip_bomb()


def _zip_bomb_lying_about_its_size(order: Order) -> bytes:
    """The same stream declaring 1 KB uncompressed: the size checks pass, the expansion must not."""
    return _patched_zip(_zip_bomb(), {22: ("<I", 1024)}, {24: ("<I", 1024)})


def _small_zip(order: Order) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("orders.xml", _file_for(order))
    return archive.getvalue()


def _zip_encrypted(order: Order) -> bytes:
    """A member flagged as encrypted: we have no password to read it with."""
    return _patched_zip(_small_zip(order), {6: ("<H", 1)}, {8: ("<H", 1)})


def _zip_unknown_method(order: Order) -> bytes:
    """A member compressed with a method we cannot expand (99: WinZip's AES)."""
    return _patched_zip(_small_zip(order), {8: ("<H", 99)}, {10: ("<H", 99)})


HOSTILE_FILES = {
    "billion laughs": (FILE_XML, _billion_laughs),
    "quadratic blowup": (FILE_XML, _quadratic_blowup),
    "external entity": (FILE_XML, _external_entity),
    "external DTD": (FILE_XML, _external_dtd),
    "parameter entity": (FILE_XML, _parameter_entity),
    "UTF-16 with a DOCTYPE": (FILE_XML, _utf16_with_doctype),
    "1000 nested elements": (FILE_XML, _deep_nesting),
    "binary body": (FILE_XML, _binary),
    "ZIP bomb": (FILE_ZIP, _zip_bomb_honest),
    "ZIP bomb declaring a small size": (FILE_ZIP, _zip_bomb_lying_about_its_size),
    "ZIP with an encrypted member": (FILE_ZIP, _zip_encrypted),
    "ZIP with an unknown compression method": (FILE_ZIP, _zip_unknown_method),
}
PROTOCOLS = {"new protocol (file, then import)": "2.08", "old protocol (file imports)": None}


@pytest.fixture
def exchange_order(site_actor) -> Order:
    return services.place_order(site_actor, OrderIn(**order_body("hostile-1"))).order


@pytest.fixture
def one_c_run(db):
    def start(version: str | None) -> OneC:
        one_c = OneC(Client(), "1c", ApiKey.issue(name="1C", role=Role.INTEGRATION)[1])
        assert one_c.checkauth().first == "success"
        one_c.init(version=version)
        return one_c

    return start


def _send(one_c: OneC, version: str | None, filename: str, data: bytes):
    """The file as 1C sends it: in the newer protocol stored by `file` and applied by `import`; in
    the older one applied by `file` itself."""
    stored = one_c.upload(filename, data)
    if version is None:
        return stored
    assert (stored.status, stored.lines) == (200, ["success"]), stored.lines
    return one_c.import_file(filename)


def _order_state(order: Order) -> tuple:
    order = Order.objects.get(pk=order.pk)
    return order.version, order.status_id, order.deletion_mark, order.events.count()


def _everything_stored() -> str:
    from django.apps import apps

    return repr({m._meta.label: list(m.objects.values()) for m in apps.get_models()})


@pytest.mark.parametrize("protocol", PROTOCOLS.values(), ids=PROTOCOLS.keys())
@pytest.mark.parametrize("kind", HOSTILE_FILES, ids=HOSTILE_FILES.keys())
def test_b10_hostile_files_are_refused_with_failure_and_change_nothing(one_c_run, exchange_order, kind, protocol):
    filename, build = HOSTILE_FILES[kind]
    one_c = one_c_run(protocol)
    before = _order_state(exchange_order)
    assert _order_state(exchange_order) == (1, "pending_approval", False, 1)

    answer = _send(one_c, protocol, filename, build(exchange_order))

    assert (answer.status, answer.first) == (200, "failure"), (answer.status, answer.lines)
    assert len(answer.lines) >= 2 and answer.lines[1].strip(), answer.lines
    assert _order_state(exchange_order) == before
    assert not OrderExchange.objects.exists()
    assert Upload.objects.get().imported_at is None
    assert PASSWD not in answer.content.decode("cp1251") and PASSWD not in _everything_stored()


@pytest.mark.parametrize("protocol", PROTOCOLS.values(), ids=PROTOCOLS.keys())
def test_b10_an_xinclude_is_not_resolved_the_number_it_stands_for_is_no_order(one_c_run, exchange_order, protocol):
    one_c = one_c_run(protocol)
    before = _order_state(exchange_order)

    answer = _send(one_c, protocol, FILE_XML, _xinclude_as_number(exchange_order))

    assert (answer.status, answer.first) == (200, "success"), answer.lines
    assert len(answer.lines) == 2 and "№ " in answer.lines[1]  # «order № was not found»: an empty number
    assert PASSWD not in answer.content.decode("cp1251")
    assert "root:" not in answer.content.decode("cp1251")
    assert _order_state(exchange_order) == before
    assert not OrderExchange.objects.exists()
    assert PASSWD not in _everything_stored()


@pytest.mark.parametrize("protocol", PROTOCOLS.values(), ids=PROTOCOLS.keys())
def test_b10_an_xinclude_in_a_requisite_of_a_real_order_is_stored_as_nothing(one_c_run, exchange_order, protocol):
    """The document is applied (it is a real order's), but its included 1C number is no text of ours."""
    include = '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/>'
    one_c = one_c_run(protocol)

    answer = _send(one_c, protocol, FILE_XML, _file_for(exchange_order, value=include))

    assert (answer.status, answer.lines) == (200, ["success"])
    state = OrderExchange.objects.get(order=exchange_order)
    assert state.posted and state.one_c_number == ""
    assert PASSWD not in _everything_stored() and "root:x:" not in _everything_stored()
