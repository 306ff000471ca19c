"""Every answer under /api/ is JSON, also the errors Django itself produces before or after
the API's handlers run (a method not allowed, a CSRF refusal, a 404 from the URL resolver)."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

API_PREFIX = "/api/"


def _message(status: int) -> tuple[str, str]:
    match status:
        case 404:
            return "not_found", _("Not found.")
        case 405:
            return "method_not_allowed", _("This method is not allowed here.")
        case 403:
            return "forbidden", _("You do not have the right to do this.")
        case 413:
            return "body_too_large", _("The request body is too large.")
    if status >= 500:
        return "internal_error", _("Something went wrong on our side; the change was not saved.")
    return "bad_request", _("The request cannot be processed.")


class JsonApiErrors:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith(API_PREFIX)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            code, message = _message(response.status_code)
            json_response = JsonResponse(
                {"code": code, "message": message}, status=response.status_code, json_dumps_params={"ensure_ascii": False}
            )
            if allow := response.get("Allow"):
                json_response["Allow"] = allow
            return json_response
        return response
