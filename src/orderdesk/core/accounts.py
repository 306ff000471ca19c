"""People who sign in: creating them with a checked e-mail, role and password."""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _

from orderdesk.core.errors import Conflict, InvalidInput
from orderdesk.core.models import User
from orderdesk.core.rights import Role


@transaction.atomic
def create_user(*, email: str, password: str, role: str, name: str = "", language: str = "ru") -> User:
    email = email.strip().lower()
    problems: dict[str, list[str]] = {}
    try:
        validate_email(email)
    except ValidationError:
        problems["email"] = [_("not a valid e-mail address")]
    if role not in {r.value for r in Role if r.is_person}:
        problems["role"] = [_("not a role a person can have")]
    try:
        validate_password(password)
    except ValidationError as exc:
        problems["password"] = list(exc.messages)
    if problems:
        raise InvalidInput(problems)
    if User.objects.filter(email=email).exists():
        raise Conflict(_("A user with this e-mail already exists."), code="user_exists")
    first, _sep, last = name.partition(" ")
    return User.objects.create_user(
        email=email, password=password, role=role, language=language, first_name=first, last_name=last,
        is_staff=role == Role.ADMINISTRATOR, is_superuser=role == Role.ADMINISTRATOR,
    )
