"""The one URL 1C calls (`?type=sale&mode=…`), answered as 1C expects (commerceml.md §1): plain
text lines, `success`, `progress` or `failure` first, in the exchange's charset; the orders
document for `query`. Every refusal is a `failure` line 1C shows in its log, with HTTP 200, never
an empty answer; only a call with no credentials at all is challenged with a 401.
"""

import base64
import binascii
import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import FileResponse, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from orderdesk.core.errors import DomainError
from orderdesk.exchange import rules, services
from orderdesk.exchange.commerceml import Incomplete, Refused
from orderdesk.exchange.models import ExchangeSession
from orderdesk.exchange.rules import Reply

log = logging.getLogger(__name__)


def _charset() -> str:
    return settings.EXCHANGE_1C_CHARSET


def _reply(first: Reply, *lines: str, status: int = 200) -> HttpResponse:
    charset = _charset()
    body = "\n".join([first.value, *lines]).encode(charset, errors="xmlcharrefreplace")
    return HttpResponse(body, status=status, content_type=f"text/plain; charset={charset}")


def _failure(message: str) -> HttpResponse:
    return _reply(Reply.FAILURE, message)


def _basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _sep, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    # 1C sends the credentials in UTF-8; older builds in windows-1251.
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        text = decoded.decode("cp1251")
    login, sep, password = text.partition(":")
    return (login, password) if sep else None


def _challenge() -> HttpResponse:
    response = _failure(_("Authorization required: the user name and the integration API key as the password."))
    response.status_code = 401
    response["WWW-Authenticate"] = 'Basic realm="orderdesk 1C exchange", charset="UTF-8"'
    return response


def _session(request: HttpRequest) -> ExchangeSession | None:
    """The session of the cookie checkauth gave; or, for a 1C that sends its Basic credentials on
    every call instead, the latest session of its key."""
    if token := request.COOKIES.get(services.COOKIE_NAME):
        if (session := services.session_for(token)) is not None:
            return session
    credentials = _basic_credentials(request)
    if credentials and (key := services.key_for_password(credentials[1])):
        return services.session_of_key(key, credentials[0])
    return None


@csrf_exempt
def exchange(request: HttpRequest) -> HttpResponse:
    kind, mode = request.GET.get("type", ""), request.GET.get("mode", "")
    if kind not in rules.SUPPORTED_TYPES:
        return _failure(_("Only the order exchange (type=sale) is supported, not «%(type)s».") % {"type": kind[:40]})
    if mode not in rules.SALE_MODES:
        return _failure(_("Unknown command «%(mode)s».") % {"mode": mode[:40]})
    try:
        if mode == "checkauth":
            return _checkauth(request)
        session = _session(request)
        if session is None:
            if _basic_credentials(request) is None and services.COOKIE_NAME not in request.COOKIES:
                return _challenge()
            return _failure(_("The exchange session is unknown or has expired, or the key is wrong; "
                              "start again with checkauth."))
        return MODES[mode](request, session)
    except Refused as exc:
        return _failure(str(exc))
    except DomainError as exc:
        return _failure(str(exc.message))
    # 1C shows the text of a `failure` in its log but only a code for an HTTP error, so even our
    # own faults are answered 200.
    except DatabaseError:
        log.exception("1C exchange: %s failed", mode)
        return _failure(_("The database is busy or unavailable; try again later."))
    except Exception:
        log.exception("1C exchange: %s failed", mode)
        return _failure(_("Something went wrong on our side; the change was not saved."))


def _checkauth(request: HttpRequest) -> HttpResponse:
    credentials = _basic_credentials(request)
    if credentials is None:
        return _challenge()
    key = services.key_for_password(credentials[1])
    if key is None:
        return _failure(_("Wrong user name or password (an integration API key is expected)."))
    token = services.open_session(key, credentials[0])
    return _reply(Reply.SUCCESS, services.COOKIE_NAME, token)


def _init(request: HttpRequest, session: ExchangeSession) -> HttpResponse:
    """`init`'s answer has no status line. zip=no spares 1C the archive (one is read all the same)."""
    services.start(session, request.GET.get("version", ""))
    lines = ["zip=no", f"file_limit={services.FILE_LIMIT}"]
    if session.version:
        lines.append(f"version={rules.schema_version(session.version)}")
    return HttpResponse("\n".join(lines).encode("ascii"), content_type=f"text/plain; charset={_charset()}")


def _query(request: HttpRequest, session: ExchangeSession) -> HttpResponse:
    result = services.export(session, limit=settings.EXCHANGE_1C_ORDERS_PER_QUERY, charset=_charset())
    log.info("1C exchange: %d orders handed out to session %s", result.orders, session.pk)
    return FileResponse(result.file, content_type=f"application/xml; charset={_charset()}")


def _success(request: HttpRequest, session: ExchangeSession) -> HttpResponse:
    confirmed = services.confirm(session)
    log.info("1C exchange: %d orders confirmed by session %s", confirmed, session.pk)
    return _reply(Reply.SUCCESS)


def _read_body(request: HttpRequest) -> bytes:
    body = request.read(services.FILE_LIMIT + 1)
    if len(body) > services.FILE_LIMIT:
        raise Refused(_("A chunk larger than file_limit (%(limit)s bytes) was sent.") % {"limit": services.FILE_LIMIT})
    return body


def _file(request: HttpRequest, session: ExchangeSession) -> HttpResponse:
    if request.method != "POST":
        return _failure(_("The file is sent with POST."))
    name = request.GET.get("filename", "")
    services.receive(session, name, _read_body(request))
    if session.version:  # the newer protocol: `import` applies the file
        return _reply(Reply.SUCCESS)
    try:
        return _imported(services.import_file(session, name))
    except Incomplete:  # the old protocol applies the file once its last chunk is in
        return _reply(Reply.SUCCESS)


def _import(request: HttpRequest, session: ExchangeSession) -> HttpResponse:
    """The newer protocol's `import`, in steps of EXCHANGE_1C_IMPORT_STEP_SECONDS: 1C calls again
    while the answer is `progress`, so a long file never runs into 1C's timeout."""
    return _imported(services.import_file(session, request.GET.get("filename", ""),
                                          seconds=settings.EXCHANGE_1C_IMPORT_STEP_SECONDS))


def _imported(imported: services.Imported) -> HttpResponse:
    if imported.done:
        return _reply(Reply.SUCCESS, *imported.report)
    if imported.total is None:
        return _reply(Reply.PROGRESS, _("The file is being applied (%(applied)s documents so far); ask again.")
                      % {"applied": imported.applied})
    return _reply(Reply.PROGRESS, _("%(applied)s of %(total)s documents applied")
                  % {"applied": imported.applied, "total": imported.total})


def _nothing_to_do(request: HttpRequest, session: ExchangeSession) -> HttpResponse:
    """Catalog-only commands some 1C builds also send with type=sale."""
    return _reply(Reply.SUCCESS)


MODES = {
    "init": _init, "query": _query, "success": _success, "file": _file, "import": _import,
    "deactivate": _nothing_to_do, "complete": _nothing_to_do,
}
