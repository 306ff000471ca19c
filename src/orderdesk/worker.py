"""The background worker: runs queued jobs (django-tasks, database backend) and, beside them,
two relays that poll their tables (the outbox's e-mails, the receipts owed to the registers) and
the periodic work: the outbox's sweep of senders lost to a crash, auto-close (R10), unsent links."""

import logging
import threading
import time

from django.core.management import call_command
from django.db import close_old_connections

from orderdesk.acquiring import services as acquiring
from orderdesk.core import outbox
from orderdesk.fiscal import services as fiscal
from orderdesk.payments import services as payments

log = logging.getLogger(__name__)

SWEEP_EVERY_SECONDS = 30
# How long an e-mail or a receipt may wait for its relay's next look. The e-mail relay pauses
# after any batch that was not full, so under a steady stream each pass sends many messages, not
# one (its per-pass queries cost more than a message); only a backlog goes without pauses. The
# receipt relay pauses only when it found nothing to register: a buyer waits for the receipt.
RELAY_PAUSE_SECONDS = 0.2
STOP_SECONDS = 10  # how long a stopping worker waits for its relays


PERIODIC = [
    ("outbox sweep", outbox.sweep), ("auto-close", payments.auto_close),
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


def _relay_forever(stop: threading.Event, name: str, one_pass, pause_unless: int) -> None:
    """Run `one_pass` again and again; pause after a pass that did fewer than `pause_unless` things.
    Asked to stop, a pass hands back what it claimed and did not start."""
    while not stop.is_set():
        try:
            done = one_pass(keep_going=lambda: not stop.is_set())
        except Exception:  # the database away for a moment: look again after a pause
            log.exception("%s failed", name)
            done = 0
        finally:
            close_old_connections()
        if done < pause_unless:
            stop.wait(RELAY_PAUSE_SECONDS)


RELAYS = [
    ("outbox relay", outbox.deliver_due, outbox.RELAY_BATCH),
    ("receipt relay", fiscal.register_due, 1),
]


def run_worker(interval: float = 0.5) -> None:
    stop = threading.Event()
    threading.Thread(target=_sweep_forever, args=(stop,), name="periodic", daemon=True).start()
    relays = [threading.Thread(target=_relay_forever, args=(stop, name, one_pass, pause_unless), name=name,
                               daemon=True) for name, one_pass, pause_unless in RELAYS]
    for relay in relays:
        relay.start()
    try:
        call_command("db_worker", interval=interval, startup_delay=False, verbosity=0)
    finally:
        # SIGTERM ends db_worker; the relays finish the message or receipt in hand and hand back
        # the rest of their claims, so a restart leaves nothing to wait out a claim. `serve` waits
        # 15 s for the worker before it kills it: all relays share one deadline short of that.
        stop.set()
        deadline = time.monotonic() + STOP_SECONDS
        for relay in relays:
            relay.join(max(deadline - time.monotonic(), 0))
