from datetime import datetime

from orderdesk.core.schemas import Schema


class OrderExchangeOut(Schema):
    """What the order card shows of the 1C exchange: whether 1C has this version of the order,
    and what 1C reported about its copy."""

    order_id: int
    version: int
    confirmed_version: int
    confirmed: bool  # 1C holds the order as it is now
    one_c_id: str
    one_c_number: str
    one_c_date: datetime | None
    posted: bool
    one_c_status: str
    paid_at: datetime | None
    payment_number: str
    shipped_at: datetime | None
    shipment_number: str
