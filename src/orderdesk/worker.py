"""The background worker: runs queued jobs (django-tasks, database backend) and, beside them,
the periodic work: sweeps that re-wake work whose job was lost to a crash, and auto-close (R10)."""

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


def run_worker(interval: float = 0.5) -> None:
    stop = threading.Event()
    sweeper = threading.Thread(target=_sweep_forever, args=(stop,), name="outbox-sweep", daemon=True)
    sweeper.start()
    try:
        call_command("db_worker", interval=interval, startup_delay=False, verbosity=0)
    finally:
        stop.set()
