"""B9: a person's session (orderdesk/core/sessions.py reads it and its user by prepared queries)
ends when it expires, when the person signs out elsewhere or changes the password, and a cookie
that is no session of ours is an anonymous caller, never a 500."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from orderdesk.core.rights import Role
from tests.conftest import PASSWORD, JsonClient


@pytest.fixture
def signed_in(make_user):
    user = make_user(Role.MANAGER, email="olga@example.com")
    client = JsonClient()
    assert client.post_json("/api/v1/auth/login", {"email": user.email, "password": PASSWORD}).status_code == 200
    assert client.get("/api/v1/auth/me").status_code == 200
    return user, client


def test_b09_an_expired_session_is_an_anonymous_caller(signed_in):
    _user, client = signed_in
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))

    assert client.get("/api/v1/auth/me").status_code == 401


def test_b09_a_changed_password_ends_the_sessions_opened_before(signed_in):
    user, client = signed_in
    user.set_password("another-password-2")
    user.save()

    assert client.get("/api/v1/auth/me").status_code == 401


def test_b09_a_deleted_session_row_is_an_anonymous_caller(signed_in):
    _user, client = signed_in
    Session.objects.all().delete()

    assert client.get("/api/v1/auth/me").status_code == 401


# A server hands WSGI the header's bytes as latin-1 text, so the Cyrillic cookie arrives like this.
@pytest.mark.parametrize("cookie", ["x" * 32, "abc\x00def12345", "ЖЖЖЖЖЖЖЖЖЖ".encode().decode("latin-1"), "a" * 4000,
                                    "'; DROP TABLE x; --"])
def test_b09_a_cookie_that_is_no_session_is_an_anonymous_caller(db, cookie):
    client = JsonClient()
    client.cookies["sessionid"] = cookie

    response = client.get("/api/v1/auth/me")

    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
