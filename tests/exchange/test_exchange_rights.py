"""B9 for the 1C exchange (B10): who may call /exchange/1c. Only an integration API key (as the
Basic password, or the cookie of the session it opened) is 1C; anyone else hears `failure`, with
a 401 Basic challenge when no credentials came at all, and reads and changes nothing: no orders
XML, no file stored, no order confirmed or changed.

The exchange is exempt from CSRF by design: 1C is a machine with its own credentials, not a
browser. That is safe only because a person's session is never taken as 1C's, which the last
tests prove."""

import base64
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from orderdesk.core.models import ApiKey
from orderdesk.core.rights import Role
from orderdesk.exchange.models import ExchangeSession, OrderExchange, Upload
from orderdesk.orders import services as orders
from orderdesk.orders.models import Order
from orderdesk.orders.schemas import OrderIn
from tests.conftest import PASSWORD, order_body
from tests.exchange.one_c import OneC, status_update

pytestmark = pytest.mark.django_db

PATH = "/exchange/1c"
PEOPLE = [Role.ADMINISTRATOR, Role.MANAGER, Role.CASHIER, Role.CUSTOMER]
MODES_AFTER_CHECKAUTH = ["init", "query", "success", "file", "import", "deactivate", "complete"]


@pytest.fixture
def order(site_actor) -> Order:
    return orders.place_order(site_actor, OrderIn(**order_body("rights-1c"))).order


def _state(order: Order) -> tuple:
    order = Order.objects.get(pk=order.pk)
    return order.version, order.status_id, order.deletion_mark, order.events.count()


def _basic(login: str, password: str) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


def _call(client: Client, mode: str, order: Order, **headers):
    """One call of `mode` as 1C makes it; `file` posts a status file that would agree and mark the order."""
    query = f"{PATH}?type=sale&mode={mode}&filename=documents___x.xml&version=2.08"
    if mode == "file":
        body = status_update(order.number, Проведен="true", ПометкаУдаления="true")
        return client.post(query, body, content_type="application/octet-stream", **headers)
    return client.get(query, **headers)


def _assert_refused(response, status: int = 200) -> None:
    assert response.status_code == status, (response.status_code, response.content[:200])
    assert not response.streaming and not response.content.lstrip(b"\xef\xbb\xbf").startswith(b"<?xml")
    lines = response.content.decode("cp1251").split("\n")
    assert lines[0] == "failure" and len(lines) >= 2 and lines[1].strip(), lines


def _assert_nothing_read_or_changed(order: Order, before: tuple) -> None:
    assert _state(order) == before
    assert not Upload.objects.exists()
    assert not OrderExchange.objects.exists()  # no query noted as handed out, no document applied


# ---- no credentials at all: the challenge ----


@pytest.mark.parametrize("mode", ["checkauth", *MODES_AFTER_CHECKAUTH])
def test_b10_no_credentials_are_challenged_with_401_basic_and_a_failure_line(order, mode):
    before = _state(order)

    response = _call(Client(), mode, order)

    _assert_refused(response, status=401)
    assert response["WWW-Authenticate"].startswith("Basic realm=")
    _assert_nothing_read_or_changed(order, before)
    assert not ExchangeSession.objects.exists()


# ---- wrong credentials ----


def _wrong_passwords(make_user) -> dict[str, tuple[str, str]]:
    """(login, password) of every kind of caller that is not 1C."""
    revoked_key, revoked = ApiKey.issue(name="old 1C", role=Role.INTEGRATION)
    ApiKey.objects.filter(pk=revoked_key.pk).update(revoked_at=timezone.now())
    callers = {
        "site API key": ("site", ApiKey.issue(name="site", role=Role.SITE)[1]),
        "revoked integration key": ("1c", revoked),
        "made-up key": ("1c", "od_00000000_not-a-key-anyone-was-given"),
        "empty password": ("1c", ""),
    }
    for role in PEOPLE:
        person = make_user(role)
        callers[f"{role}'s e-mail and password"] = (person.email, PASSWORD)
    return callers


def test_b10_wrong_credentials_at_checkauth_answer_failure_and_open_no_session(order, make_user):
    callers = _wrong_passwords(make_user)

    answers = {name: _call(Client(), "checkauth", order, **_basic(*credentials))
               for name, credentials in callers.items()}

    for name, response in answers.items():
        _assert_refused(response)
        assert "orderdesk_1c" not in response.cookies and "orderdesk_1c" not in response.content.decode("cp1251"), name
    assert not ExchangeSession.objects.exists()
    assert len(callers) == 8


@pytest.mark.parametrize("mode", MODES_AFTER_CHECKAUTH)
def test_b10_wrong_credentials_on_any_call_answer_failure_and_read_or_change_nothing(order, make_user, mode):
    callers = _wrong_passwords(make_user)
    before = _state(order)

    for name, credentials in callers.items():
        _assert_refused(_call(Client(), mode, order, **_basic(*credentials)))

    _assert_nothing_read_or_changed(order, before)
    assert not ExchangeSession.objects.exists()


@pytest.mark.parametrize("mode", MODES_AFTER_CHECKAUTH)
def test_b10_a_made_up_cookie_answers_failure_and_reads_or_changes_nothing(order, mode):
    client = Client()
    client.cookies["orderdesk_1c"] = "Zm9yZ2VkLXNlc3Npb24tdG9rZW4tdGhhdC1uby1vbmUtZ2F2ZQ"
    before = _state(order)

    _assert_refused(_call(client, mode, order))

    _assert_nothing_read_or_changed(order, before)


def _started_run(order: Order) -> OneC:
    """A real 1C run: signed in, started in the newer protocol, a status file stored not yet imported."""
    one_c = OneC(Client(), "1c", ApiKey.issue(name="1C", role=Role.INTEGRATION)[1])
    assert one_c.checkauth().first == "success"
    one_c.init()
    assert one_c.upload("a.xml", status_update(order.number, Проведен="true")).lines == ["success"]
    return one_c


def _ended(how: str) -> None:
    if how == "expired":  # 13 hours of silence: past the 12-hour lifetime
        ExchangeSession.objects.update(last_seen_at=timezone.now() - timedelta(hours=13))
    else:
        ApiKey.objects.filter(role=Role.INTEGRATION).update(revoked_at=timezone.now())


@pytest.mark.parametrize("how", ["expired", "key revoked"])
@pytest.mark.parametrize("mode", MODES_AFTER_CHECKAUTH)
def test_b10_the_cookie_of_an_ended_session_answers_failure_and_reads_or_changes_nothing(order, mode, how):
    one_c = _started_run(order)
    before = _state(order)
    upload = Upload.objects.values().get()
    _ended(how)

    answer = one_c.call("file", method="post", body=status_update(order.number, Отменен="true"), filename="a.xml") \
        if mode == "file" else one_c.call(mode, filename="a.xml", version="2.08")

    assert (answer.status, answer.first) == (200, "failure"), answer.lines
    assert len(answer.lines) >= 2 and answer.lines[1].strip()
    assert _state(order) == before
    assert list(Upload.objects.values()) == [upload]  # neither replaced, nor imported, nor dropped by init
    assert not OrderExchange.objects.exists()


def test_b10_the_same_run_works_until_the_session_expires(order):
    """The check above can fail: before the 13 hours, the very same calls read and change."""
    one_c = _started_run(order)
    ExchangeSession.objects.update(last_seen_at=timezone.now() - timedelta(hours=11))

    assert one_c.import_file("a.xml").lines == ["success"]
    assert Order.objects.get(pk=order.pk).status_id == "agreed"


# ---- a person's browser session is not 1C: what makes the CSRF exemption safe ----


@pytest.mark.parametrize("role", PEOPLE)
@pytest.mark.parametrize("mode", ["checkauth", *MODES_AFTER_CHECKAUTH])
def test_b10_a_persons_session_cookie_without_exchange_credentials_is_not_taken_as_1c(order, client_as, role, mode):
    """What a forged cross-site request from a signed-in person's browser would carry: the
    session cookie (and the CSRF cookie), no Basic credentials, no exchange cookie."""
    person = client_as(role)
    assert person.get("/api/v1/auth/me").status_code == 200  # the session is real and has its CSRF cookie
    before = _state(order)

    response = _call(person, mode, order)

    _assert_refused(response, status=401)
    assert response["WWW-Authenticate"].startswith("Basic")
    _assert_nothing_read_or_changed(order, before)
    assert not ExchangeSession.objects.exists()
    assert person.get("/api/v1/auth/me").status_code == 200  # and the person's own session goes on


def test_b10_a_persons_session_cookie_with_a_made_up_exchange_cookie_is_not_1c_either(order, client_as):
    person = client_as(Role.ADMINISTRATOR)
    person.cookies["orderdesk_1c"] = "made-up"
    before = _state(order)

    for mode in MODES_AFTER_CHECKAUTH:
        _assert_refused(_call(person, mode, order))

    _assert_nothing_read_or_changed(order, before)


def test_b10_the_calls_refused_above_are_accepted_from_1c(order):
    """The other side of every refusal in this file: with the integration key the same calls read and change."""
    client = Client()
    credentials = _basic("1c", ApiKey.issue(name="1C", role=Role.INTEGRATION)[1])

    query = _call(client, "query", order, **credentials)
    stored = _call(client, "file", order, **credentials)

    assert query.status_code == 200 and b"".join(query.streaming_content).startswith(b"<?xml")
    assert stored.content.decode("cp1251") == "success"  # each call opened its own session: the older protocol
    assert Upload.objects.count() == 1
    assert _state(order)[1:3] == ("agreed", True)
