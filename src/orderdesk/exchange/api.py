"""The JSON face of the exchange for people: what 1C knows of an order. 1C itself talks the
CommerceML protocol at /exchange/1c (views.py)."""

from django.http import HttpRequest
from ninja import Router

from orderdesk.exchange import services
from orderdesk.exchange.schemas import OrderExchangeOut
from orderdesk.orders.api import ERRORS

router = Router(tags=["1C exchange"])


@router.get("/{int:order_id}/exchange-1c", response={200: OrderExchangeOut, **ERRORS},
            summary="The order in the 1C exchange")
def order_in_exchange(request: HttpRequest, order_id: int):
    return services.order_state(request.auth, order_id)
