"""The sandbox acquirer of `make demo` and the tests at the cash desk: an SBP payment is paid the
moment it is made, as if the buyer's phone scanned the QR at once. Payments are derived from the
idempotency key, so a repeated call returns the same payment, as a real acquirer does."""

import hashlib
from decimal import Decimal

from orderdesk.acquiring.base import Acquirer, AcquirerPayment


class SandboxAcquirer:
    def _payment_id(self, idempotency_key: str) -> str:
        return "sbx-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]

    def create_sbp_payment(self, *, idempotency_key: str, amount: Decimal, description: str) -> AcquirerPayment:
        payment_id = self._payment_id(idempotency_key)
        kopecks = int(amount * 100)
        return AcquirerPayment(id=payment_id, status="succeeded", amount=amount,
                               qr_payload=f"https://qr.nspk.ru/sandbox/{payment_id}?type=02&sum={kopecks}&cur=RUB")

def acquirer() -> Acquirer:
    return SandboxAcquirer()
