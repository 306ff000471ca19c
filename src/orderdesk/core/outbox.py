"""The outbox: work owed to the outside world (e-mails now; webhooks and 1C later).

`post()` is called inside the service's transaction, so the message exists exactly when the
change does. The worker's relay polls for due messages and delivers them in batches; the row is
the whole record of the work, so nothing else has to be queued with it, and delivery claims a
row before it acts, so two relays never send one message twice. A sender killed mid-send leaves
its claim to expire; the sweep then hands the message back to the relay.

A topic's handler may bring a loader that reads what a whole batch of its messages needs in a
query or two: per message, the ORM's look-ups cost more than the sending itself.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from itertools import groupby
from time import monotonic
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from orderdesk.core import rows
from orderdesk.core.models import OutboxMessage

log = logging.getLogger(__name__)

Send = Callable[[OutboxMessage, Any], None]
Load = Callable[[list[OutboxMessage]], dict[int, Any]]
KeepGoing = Callable[[], bool]  # False once the worker is asked to stop


@dataclass(frozen=True)
class Handler:
    send: Send  # called with the message and what `load` read for it (None without a loader)
    load: Load | None  # message pk -> what its sending needs, for a batch of one topic


_handlers: dict[str, Handler] = {}

# A sender that neither finished nor failed within this time is presumed dead (killed worker).
CLAIM_SECONDS = 120
RELAY_BATCH = 50


class SkipDelivery(Exception):
    """The handler decided there is nothing to deliver (no address, say); not an error to retry."""


def handler(topic: str, load: Load | None = None):
    def register(send: Send) -> Send:
        _handlers[topic] = Handler(send, load)
        return send

    return register


def rows_named_in_payload(queryset: QuerySet, key: str) -> Load:
    """A loader for messages whose payload names one row by id under `key`: the batch's rows in
    one query (a message whose row is gone gets None)."""

    def load(messages: list[OutboxMessage]) -> dict[int, Any]:
        found = queryset.in_bulk([m.payload[key] for m in messages])
        return {m.pk: found.get(m.payload[key]) for m in messages}

    return load


def post(topic: str, payload: dict) -> OutboxMessage:
    return rows.insert(OutboxMessage, topic=topic, payload=payload)


def retry_delay(attempts: int) -> timedelta:
    base = settings.OUTBOX_RETRY_BASE_SECONDS
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), settings.OUTBOX_RETRY_MAX_SECONDS))


def _claimable(ids: list[int], now) -> QuerySet:
    pending = OutboxMessage.objects.filter(pk__in=ids, state=OutboxMessage.State.PENDING, next_attempt_at__lte=now)
    if connection.features.has_select_for_update_skip_locked:
        pending = pending.select_for_update(skip_locked=True)
    return pending.order_by("pk")


_CLAIMABLE = rows.PreparedIn(_claimable, now=datetime)


def _claim(due: list[int]) -> list[OutboxMessage]:
    """Take the messages among `due` that are still pending and due; the others went to another
    relay."""
    if not due:
        return []
    now = timezone.now()
    with transaction.atomic():
        messages = _CLAIMABLE.all(due, now=now)
        mark_claimed(messages, OutboxMessage.State.SENDING, now + timedelta(seconds=CLAIM_SECONDS))
    return messages


def mark_claimed(claimed: list, state: str, until) -> None:
    """Rows a relay just read under the lock (messages, receipts) become its own until `until`: their
    state and one attempt more, written by one lean UPDATE for them all and set on the instances
    (the rows are locked, so the attempts read are the ones counted up)."""
    for obj in claimed:
        obj.state, obj.attempts, obj.claimed_until = state, obj.attempts + 1, until
    if claimed:
        rows.update_rows(type(claimed[0]), [obj.pk for obj in claimed], count_up=("attempts",),
                         state=state, claimed_until=until)


# Outcomes are written together, those of this many seconds of sending in one transaction (and at
# the end of a pass): one pass through the write lock for a batch sent quickly, instead of one per
# message, at the price of sending again, after a crash, what was sent in those seconds (the outbox
# delivers at least once; Message-ID lets a mail client fold twins).
FINISH_EVERY_SECONDS = 1.0

Outcome = tuple[OutboxMessage, str, dict]  # the message, what happened, the row's new values


def _finish(outcomes: list[Outcome]) -> list[str]:
    """Write the outcomes in one transaction, the ones alike (every message sent) by one UPDATE;
    what happened to each, in order. A message is done (or skipped) when this writes it down."""
    if outcomes:
        now = timezone.now()
        alike: dict[tuple, list[int]] = {}
        for message, _, values in outcomes:
            ended = {"done_at": now} if values["state"] in _ENDED else {}
            alike.setdefault(tuple({**values, **ended}.items()), []).append(message.pk)
        with transaction.atomic():
            for values, pks in alike.items():
                rows.update_rows(OutboxMessage, pks, claimed_until=None, **dict(values))
    return [what for _, what, _ in outcomes]


_ENDED = (OutboxMessage.State.DONE, OutboxMessage.State.SKIPPED)


def _retry_later(message: OutboxMessage, exc: Exception) -> Outcome:
    log.warning("outbox %s #%s attempt %s failed: %s", message.topic, message.pk, message.attempts, exc)
    return message, "retry", {"state": OutboxMessage.State.PENDING, "last_error": f"{type(exc).__name__}: {exc}"[:2000],
                              "next_attempt_at": timezone.now() + retry_delay(message.attempts)}


def _send(message: OutboxMessage, loaded: Any = None) -> Outcome:
    try:
        _handlers[message.topic].send(message, loaded)
    except SkipDelivery as reason:
        return message, "skipped", {"state": OutboxMessage.State.SKIPPED, "last_error": str(reason)}
    except Exception as exc:  # any failure of the far side is retried, whatever its type
        return _retry_later(message, exc)
    return message, "done", {"state": OutboxMessage.State.DONE, "last_error": ""}


def _hand_back(messages: list[OutboxMessage]) -> None:
    """Claimed messages not tried after all (the worker is stopping): due again at once."""
    if messages:
        OutboxMessage.objects.filter(pk__in=[m.pk for m in messages]).update(
            state=OutboxMessage.State.PENDING, attempts=F("attempts") - 1, claimed_until=None)


def _load(load: Load, group: list[OutboxMessage]) -> dict[int, Any]:
    """What the group's messages need, read in one go. If that fails, each message is read alone,
    so one bad message holds up no other; a message whose own read fails gets its error."""
    try:
        return load(group)
    except Exception as exc:  # a failed read is retried later, whatever its type
        if len(group) == 1:
            return {group[0].pk: exc}
    loaded = {}
    for message in group:
        try:
            loaded.update(load([message]))
        except Exception as exc:
            loaded[message.pk] = exc
    return loaded


def _send_all(claimed: list[OutboxMessage], keep_going: KeepGoing = lambda: True) -> list[str]:
    """Send the claimed messages, their outcomes written every FINISH_EVERY_SECONDS and at the end.
    Once `keep_going` says no, or half the claim's time has gone (a slow mail server), the rest are
    handed back untried, so no claim of ours runs out while we still send under it."""
    written: list[str] = []
    pending: list[Outcome] = []
    claimed_at = last_written = monotonic()
    for topic, group in groupby(claimed, key=lambda message: message.topic):
        group = list(group)
        handler = _handlers.get(topic)
        if handler is None:
            pending += [_retry_later(message, LookupError(f"no handler for the topic {topic!r}")) for message in group]
            continue
        loaded = _load(handler.load, group) if handler.load else {}
        for message in group:
            if not keep_going() or monotonic() - claimed_at > CLAIM_SECONDS / 2:
                _hand_back(claimed[len(written) + len(pending):])
                return written + _finish(pending)
            item = loaded.get(message.pk)
            pending.append(_retry_later(message, item) if isinstance(item, Exception) else _send(message, item))
            if monotonic() - last_written >= FINISH_EVERY_SECONDS:
                written += _finish(pending)
                pending, last_written = [], monotonic()
    return written + _finish(pending)


def deliver(message_id: int) -> str:
    """Deliver one message if it is due; returns what happened."""
    claimed = _claim([message_id])
    return _send_all(claimed)[0] if claimed else "not due"


def deliver_due(limit: int = RELAY_BATCH, keep_going: KeepGoing = lambda: True) -> int:
    """One pass of the relay: deliver up to `limit` due messages, oldest first; how many were tried.
    Looking costs no write lock: the claim is taken only when something is due. Once `keep_going`
    says no, the messages claimed but not yet tried are handed back."""
    due = [pk for (pk,) in _due(limit).values(now=timezone.now())]
    return len(_send_all(_claim(due), keep_going))


@cache
def _due(limit: int) -> rows.Prepared:
    """The ids of the oldest due messages, up to `limit`."""
    return rows.Prepared(lambda now: OutboxMessage.objects.filter(state=OutboxMessage.State.PENDING, next_attempt_at__lte=now)
                         .order_by("pk").values_list("pk")[:limit], now=datetime)


def sweep() -> int:
    """Hand back messages whose sender was killed mid-send, once their claim has expired."""
    return OutboxMessage.objects.filter(state=OutboxMessage.State.SENDING, claimed_until__lt=timezone.now()).update(
        state=OutboxMessage.State.PENDING, claimed_until=None, next_attempt_at=timezone.now()
    )
