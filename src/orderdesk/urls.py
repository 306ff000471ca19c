from django.contrib import admin
from django.http import JsonResponse
from django.urls import path
from django.utils.translation import gettext as _
from django.views.generic import RedirectView

from orderdesk.api import api
from orderdesk.exchange.views import exchange

urlpatterns = [
    path("api/v1/", api.urls),
    # The path is whatever the shop types into 1C; the second is the one 1C's forms suggest (Bitrix's).
    path("exchange/1c", exchange, name="exchange-1c"),
    path("bitrix/admin/1c_exchange.php", exchange),
    path("admin/", admin.site.urls),
    # The address `orderdesk serve` announces leads somewhere until the back office's pages take it.
    path("", RedirectView.as_view(url="/api/v1/docs")),
]


def _json_error(code: str, message: str, status: int):
    return JsonResponse({"code": code, "message": message}, status=status, json_dumps_params={"ensure_ascii": False})


def not_found(request, exception=None):
    return _json_error("not_found", _("Not found."), 404)


def server_error(request):
    return _json_error("internal_error", "Something went wrong on our side.", 500)


handler404 = not_found
handler500 = server_error
