"""The background worker: runs queued jobs (django-tasks, database backend) and, beside them,
the outbox relay (e-mails) and the periodic work: sweeps that re-wake work whose job or sender
was lost to a crash, and auto-close (R10)."""

import logging
import threading

from django.core.management import call_command
from django.db import close_old_connections

from orderdesk.acquiring import services as acquiring
from orderdesk.core import outbox
from orderdesk.fiscal import services as fiscal
from orderdesk.payments import services as payments

log = logging.getLogger(__name__)

SWEEP_EVERY_SECONDS = 30
# How long an e-mail may wait for the relay's next look. The relay pauses after any batch that
# was not full, so under a steady stream each pass sends many messages, not one (its per-pass
# queries cost more than a message); only a backlog is worked through without pauses.
RELAY_PAUSE_SECONDS = 0.2


PERIODIC = [
    ("outbox sweep", outbox.sweep), ("receipt sweep", fiscal.sweep), ("auto-close", payments.auto_close),
    ("unsent payment links", acquiring.retry_unsent_links),
]


def _sweep_forever(stop: threading.Event) -> None:
    while not stop.wait(SWEEP_EVERY_SECONDS):
        for name, job in PERIODIC:
            try:
                if result := job():
                    log.info("%s: %s", name, result)
            except Exception:  # a failed run must not end the worker; the next one tries again
                log.exception("%s failed", name)
            finally:
                close_old_connections()


def _relay_forever(stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            delivered = outbox.deliver_due()
        except Exception:  # the database away for a moment: look again after a pause
            log.exception("outbox relay failed")
            delivered = 0
        finally:
            close_old_connections()
        if delivered < outbox.RELAY_BATCH:
            stop.wait(RELAY_PAUSE_SECONDS)


def run_worker(interval: float = 0.5) -> None:
    stop = threading.Event()
    for name, loop in (("periodic", _sweep_forever), ("outbox-relay", _relay_forever)):
        threading.Thread(target=loop, args=(stop,), name=name, daemon=True).start()
    try:
        call_command("db_worker", interval=interval, startup_delay=False, verbosity=0)
    finally:
        stop.set()
