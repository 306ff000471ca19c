"""Sessions for people: sign in with e-mail and password, sign out, who am I."""

from django.contrib.auth import authenticate, login, logout
from django.middleware.csrf import get_token
from django.utils.translation import gettext as _
from ninja import Router, Status
from pydantic import StringConstraints
from typing import Annotated

from orderdesk.core.errors import DomainError
from orderdesk.core.schemas import Schema

router = Router(tags=["auth"])


class LoginIn(Schema):
    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class MeOut(Schema):
    email: str
    role: str
    language: str
    csrf_token: str


class WrongCredentials(DomainError):
    status = 401
    code = "wrong_credentials"


def _me(request) -> dict:
    user = request.user
    return {"email": user.email, "role": user.role, "language": user.language, "csrf_token": get_token(request)}


# Sign-in is exempt from CSRF: it takes JSON only, which a foreign page cannot send without a
# CORS preflight, and it gives out the CSRF token every later call must carry.
@router.post("/login", auth=None, response=MeOut)
def sign_in(request, credentials: LoginIn):
    user = authenticate(request, email=credentials.email.lower(), password=credentials.password)
    if user is None or not user.is_active:
        raise WrongCredentials(_("Wrong e-mail or password."))
    login(request, user)
    return _me(request)


@router.post("/logout", response={204: None})
def sign_out(request):
    logout(request)
    return Status(204, None)


@router.get("/me", response=MeOut)
def me(request):
    if not request.user.is_authenticated:
        raise DomainError(_("This call is for people signed in, not for API keys."), code="person_required")
    return _me(request)
