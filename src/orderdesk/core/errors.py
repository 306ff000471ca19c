"""Errors a service raises on purpose. The API renders each as JSON {code, message, ...}
with its HTTP status, in the caller's language; nothing here knows about HTTP requests."""

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message, *, code: str | None = None, **details):
        super().__init__(str(message))
        self.message = message
        if code:
            self.code = code
        self.details = details


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class InvalidInput(DomainError):
    """Field-level validation errors: {"field.path": ["message", ...]}."""

    status = 422
    code = "validation_error"

    def __init__(self, field_errors: dict[str, list[str]]):
        super().__init__(_("The request has invalid fields."), fields=field_errors)


class PermissionDenied(DomainError):
    status = 403
    code = "forbidden"

    def __init__(self, permission=None):
        super().__init__(_("You do not have the right to do this."), permission=str(permission or ""))


class ConfirmationRequired(Conflict):
    """A question for the person, not a failure (R6, R8): the client repeats the call with one of
    the choices."""

    code = "confirmation_required"

    def __init__(self, message, *, question: str, choices: list[str], **details):
        super().__init__(message, question=question, choices=choices, **details)
