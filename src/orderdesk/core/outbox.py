"""The outbox: work owed to the outside world (e-mails now; webhooks and 1C later).

`post()` is called inside the service's transaction, so the message exists exactly when the
change does. A django-tasks job wakes the worker after commit; the message row, not the job,
is the source of truth, so a lost or duplicated job never loses or doubles the work: the sweep
re-wakes anything overdue and delivery claims the row before it acts.
"""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from orderdesk.core.models import OutboxMessage

log = logging.getLogger(__name__)

Handler = Callable[[OutboxMessage], str | None]
_handlers: dict[str, Handler] = {}

# A sender that neither finished nor failed within this time is presumed dead (killed worker).
CLAIM_SECONDS = 120


class SkipDelivery(Exception):
    """The handler decided there is nothing to deliver (no address, say); not an error to retry."""


def handler(topic: str):
    def register(func: Handler) -> Handler:
        _handlers[topic] = func
        return func

    return register


def post(topic: str, payload: dict) -> OutboxMessage:
    from orderdesk.core.tasks import deliver_outbox_message

    message = OutboxMessage.objects.create(topic=topic, payload=payload)
    deliver_outbox_message.enqueue(message.pk)
    return message


def retry_delay(attempts: int) -> timedelta:
    base = settings.OUTBOX_RETRY_BASE_SECONDS
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), settings.OUTBOX_RETRY_MAX_SECONDS))


def _claim(message_id: int) -> OutboxMessage | None:
    now = timezone.now()
    with transaction.atomic():
        message = OutboxMessage.objects.select_for_update().filter(pk=message_id).first()
        if message is None or message.state != OutboxMessage.State.PENDING or message.next_attempt_at > now:
            return None
        message.state = OutboxMessage.State.SENDING
        message.attempts += 1
        message.claimed_until = now + timedelta(seconds=CLAIM_SECONDS)
        message.save(update_fields=["state", "attempts", "claimed_until"])
        return message


def deliver(message_id: int) -> str:
    """Deliver one message if it is due; returns what happened, for the worker's log."""
    from orderdesk.core.tasks import deliver_outbox_message

    message = _claim(message_id)
    if message is None:
        return "not due"
    try:
        _handlers[message.topic](message)
    except SkipDelivery as reason:
        OutboxMessage.objects.filter(pk=message.pk).update(
            state=OutboxMessage.State.SKIPPED, last_error=str(reason), done_at=timezone.now()
        )
        return "skipped"
    except Exception as exc:  # any failure of the far side is retried, whatever its type
        log.warning("outbox %s #%s attempt %s failed: %s", message.topic, message.pk, message.attempts, exc)
        next_at = timezone.now() + retry_delay(message.attempts)
        with transaction.atomic():
            OutboxMessage.objects.filter(pk=message.pk).update(
                state=OutboxMessage.State.PENDING,
                next_attempt_at=next_at,
                claimed_until=None,
                last_error=f"{type(exc).__name__}: {exc}"[:2000],
            )
            deliver_outbox_message.using(run_after=next_at).enqueue(message.pk)
        return "retry"
    OutboxMessage.objects.filter(pk=message.pk).update(
        state=OutboxMessage.State.DONE, done_at=timezone.now(), claimed_until=None, last_error=""
    )
    return "done"


def sweep(stale_after: timedelta = timedelta(minutes=2)) -> int:
    """Wake messages whose job was lost: senders killed mid-send, jobs killed mid-run."""
    from orderdesk.core.tasks import deliver_outbox_message

    now = timezone.now()
    with transaction.atomic():
        abandoned = Q(state=OutboxMessage.State.SENDING, claimed_until__lt=now)
        overdue = Q(state=OutboxMessage.State.PENDING, next_attempt_at__lt=now - stale_after)
        to_wake = list(OutboxMessage.objects.filter(abandoned | overdue).values_list("pk", flat=True)[:500])
        if to_wake:
            OutboxMessage.objects.filter(pk__in=to_wake).update(
                state=OutboxMessage.State.PENDING, claimed_until=None, next_attempt_at=now
            )
            for message_id in to_wake:
                deliver_outbox_message.enqueue(message_id)
    return len(to_wake)
