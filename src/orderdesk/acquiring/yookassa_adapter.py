"""The YooKassa API through its official SDK (yookassa 3.x), pointed at the configured base URL:
the real API in production, the sandbox acquirer in `make demo` and the tests (fiscal.md §5.7–5.8)."""

import threading
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

_configure_lock = threading.Lock()
_configured: tuple | None = None


class AcquirerUnavailable(Exception):
    """The acquirer did not answer as it should; retry with the same Idempotence-Key."""


class AcquirerRefused(Exception):
    """The acquirer answered and refused (a 4xx): retrying the same request will not help."""


@dataclass(frozen=True)
class Payment:
    id: str
    status: str  # pending | waiting_for_capture | succeeded | canceled
    amount: Decimal
    currency: str
    confirmation_url: str = ""
    metadata: dict | None = None


class _DeadlineSession:
    """Wraps the SDK's requests session so every call has a socket timeout: the SDK sets none, and
    an acquirer that accepts a connection and never answers would hold the caller forever."""

    def __init__(self, session, timeout: float):
        self._session, self._timeout = session, timeout

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", self._timeout)
        return self._session.request(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._session, name)


def _with_deadline(get_session):
    def get_session_with_deadline(client):
        return _DeadlineSession(get_session(client), settings.ACQUIRER_TIMEOUT_SECONDS)

    get_session_with_deadline.wraps_sdk = True
    return get_session_with_deadline


def _configure() -> None:
    """The SDK's configuration is process-global and configure() without api_url silently points
    it back at the real API: set everything, every time the settings differ."""
    global _configured
    wanted = (settings.YOOKASSA_SHOP_ID, settings.YOOKASSA_SECRET_KEY, settings.YOOKASSA_API_URL)
    with _configure_lock:
        if _configured != wanted:
            from yookassa import Configuration
            from yookassa.client import ApiClient

            Configuration.configure(wanted[0], wanted[1], api_url=wanted[2], max_attempts=1)
            if not getattr(ApiClient.get_session, "wraps_sdk", False):
                ApiClient.get_session = _with_deadline(ApiClient.get_session)
            _configured = wanted


def _payment(raw) -> Payment:
    confirmation = getattr(raw, "confirmation", None)
    return Payment(
        id=raw.id, status=raw.status, amount=Decimal(str(raw.amount.value)).quantize(Decimal("0.01")),
        currency=raw.amount.currency, confirmation_url=getattr(confirmation, "confirmation_url", "") or "",
        metadata=dict(raw.metadata or {}),
    )


def _call(action):
    from yookassa.domain.exceptions import ApiError, BadRequestError, ForbiddenError, NotFoundError, UnauthorizedError

    _configure()
    try:
        return action()
    except (BadRequestError, ForbiddenError, NotFoundError, UnauthorizedError) as exc:
        raise AcquirerRefused(str(exc)) from exc
    except ApiError as exc:
        raise AcquirerUnavailable(str(exc)) from exc
    except AttributeError as exc:  # the SDK's way of saying the connection failed (fiscal.md §5.8)
        raise AcquirerUnavailable(f"no answer from the acquirer: {exc.__context__ or exc}") from exc
    except OSError as exc:  # requests' timeouts and connection errors are OSErrors
        raise AcquirerUnavailable(str(exc)) from exc


def create_payment(*, idempotence_key: str, amount: Decimal, description: str, method: str, return_url: str,
                   metadata: dict) -> Payment:
    from yookassa import Payment as SdkPayment

    body = {
        "amount": {"value": f"{amount:.2f}", "currency": "RUB"},
        "capture": True,
        "confirmation": {"type": "redirect", "return_url": return_url},
        "description": description[:128],
        "metadata": metadata,
    }
    if method == "sbp":
        body["payment_method_data"] = {"type": "sbp"}
    return _payment(_call(lambda: SdkPayment.create(body, idempotence_key)))


def get_payment(payment_id: str) -> Payment:
    from yookassa import Payment as SdkPayment

    return _payment(_call(lambda: SdkPayment.find_one(payment_id)))


def create_refund(*, idempotence_key: str, payment_id: str, amount: Decimal) -> str:
    from yookassa import Refund as SdkRefund

    refund = _call(lambda: SdkRefund.create(
        {"payment_id": payment_id, "amount": {"value": f"{amount:.2f}", "currency": "RUB"}}, idempotence_key))
    if refund.status == "canceled":
        raise AcquirerRefused(f"the acquirer cancelled the refund {refund.id}")
    return refund.id
