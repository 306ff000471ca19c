"""The outbox: work owed to the outside world (e-mails now; webhooks and 1C later).

`post()` is called inside the service's transaction, so the message exists exactly when the
change does. The worker's relay polls for due messages and delivers them in batches; the row is
the whole record of the work, so nothing else has to be queued with it, and delivery claims a
row before it acts, so two relays never send one message twice. A sender killed mid-send leaves
its claim to expire; the sweep then hands the message back to the relay.
"""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from orderdesk.core import rows
from orderdesk.core.models import OutboxMessage

log = logging.getLogger(__name__)

Handler = Callable[[OutboxMessage], str | None]
_handlers: dict[str, Handler] = {}

# A sender that neither finished nor failed within this time is presumed dead (killed worker).
CLAIM_SECONDS = 120
RELAY_BATCH = 50


class SkipDelivery(Exception):
    """The handler decided there is nothing to deliver (no address, say); not an error to retry."""


def handler(topic: str):
    def register(func: Handler) -> Handler:
        _handlers[topic] = func
        return func

    return register


def post(topic: str, payload: dict) -> OutboxMessage:
    return rows.insert(OutboxMessage(topic=topic, payload=payload))


def retry_delay(attempts: int) -> timedelta:
    base = settings.OUTBOX_RETRY_BASE_SECONDS
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), settings.OUTBOX_RETRY_MAX_SECONDS))


def _claim(due: list[int]) -> list[OutboxMessage]:
    """Take the messages among `due` that are still pending and due; the others went to another relay."""
    if not due:
        return []
    now = timezone.now()
    with transaction.atomic():
        pending = OutboxMessage.objects.filter(pk__in=due, state=OutboxMessage.State.PENDING, next_attempt_at__lte=now)
        if connection.features.has_select_for_update_skip_locked:
            pending = pending.select_for_update(skip_locked=True)
        messages = list(pending.order_by("pk"))
        OutboxMessage.objects.filter(pk__in=[m.pk for m in messages]).update(
            state=OutboxMessage.State.SENDING, attempts=F("attempts") + 1,
            claimed_until=now + timedelta(seconds=CLAIM_SECONDS),
        )
    for message in messages:
        message.state, message.attempts = OutboxMessage.State.SENDING, message.attempts + 1
    return messages


def _send(message: OutboxMessage) -> str:
    try:
        _handlers[message.topic](message)
    except SkipDelivery as reason:
        OutboxMessage.objects.filter(pk=message.pk).update(
            state=OutboxMessage.State.SKIPPED, last_error=str(reason), done_at=timezone.now(), claimed_until=None
        )
        return "skipped"
    except Exception as exc:  # any failure of the far side is retried, whatever its type
        log.warning("outbox %s #%s attempt %s failed: %s", message.topic, message.pk, message.attempts, exc)
        OutboxMessage.objects.filter(pk=message.pk).update(
            state=OutboxMessage.State.PENDING,
            next_attempt_at=timezone.now() + retry_delay(message.attempts),
            claimed_until=None,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        return "retry"
    OutboxMessage.objects.filter(pk=message.pk).update(
        state=OutboxMessage.State.DONE, done_at=timezone.now(), claimed_until=None, last_error=""
    )
    return "done"


def deliver(message_id: int) -> str:
    """Deliver one message if it is due; returns what happened."""
    claimed = _claim([message_id])
    return _send(claimed[0]) if claimed else "not due"


def deliver_due(limit: int = RELAY_BATCH) -> int:
    """One pass of the relay: deliver up to `limit` due messages, oldest first; how many were tried.
    Looking costs no write lock: the claim is taken only when something is due."""
    due = list(OutboxMessage.objects.filter(state=OutboxMessage.State.PENDING, next_attempt_at__lte=timezone.now())
               .order_by("pk").values_list("pk", flat=True)[:limit])
    claimed = _claim(due)
    for message in claimed:
        _send(message)
    return len(claimed)


def sweep() -> int:
    """Hand back messages whose sender was killed mid-send, once their claim has expired."""
    return OutboxMessage.objects.filter(state=OutboxMessage.State.SENDING, claimed_until__lt=timezone.now()).update(
        state=OutboxMessage.State.PENDING, claimed_until=None, next_attempt_at=timezone.now()
    )
