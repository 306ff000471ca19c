"""What the product needs of an acquiring bank (the cash desk's SBP for now; payment links next)."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class AcquirerPayment:
    id: str
    status: str  # pending | succeeded | canceled, as the acquirer says
    amount: Decimal
    qr_payload: str = ""  # what the SBP QR code encodes; shown to the buyer at the cash desk


class Acquirer(Protocol):
    def create_sbp_payment(self, *, idempotency_key: str, amount: Decimal, description: str) -> AcquirerPayment: ...
