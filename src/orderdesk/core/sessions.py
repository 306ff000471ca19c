"""How a signed-in person is found on every request: Django's database session and its user,
each read by a prepared query (the ORM compiled both reads anew on every call, about a quarter
of a status change's CPU). Sessions, expiry, logout and the password-change check stay Django's."""

import re

from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from orderdesk.core import rows
from orderdesk.core.models import User

_SESSION = rows.Prepared(lambda key: Session.objects.filter(session_key=key), key=str)
_USER = rows.Prepared(lambda user_id: User.objects.filter(pk=user_id), user_id=int)
_SESSION_KEY = re.compile(r"[a-z0-9]{8,40}")  # what Django's get_random_string gives out


class SessionStore(DatabaseSessionStore):
    def _get_session_from_db(self) -> Session | None:
        found = _SESSION.first(key=self.session_key) if _SESSION_KEY.fullmatch(self.session_key) else None
        if found is None or found.expire_date <= timezone.now():
            self._session_key = None
            return None
        return found


class PersonBackend(ModelBackend):
    """Passwords are checked as ModelBackend checks them; only the user of a session is read leaner."""

    def get_user(self, user_id) -> User | None:
        user = _USER.first(user_id=user_id)
        return user if user is not None and self.user_can_authenticate(user) else None
