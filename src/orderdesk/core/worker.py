"""The background worker: runs queued jobs (django-tasks, database backend) and, beside them,
the periodic sweeps that re-wake work whose job was lost to a crash."""

import logging
import threading

from django.core.management import call_command
from django.db import close_old_connections

from orderdesk.core import outbox

log = logging.getLogger(__name__)

SWEEP_EVERY_SECONDS = 30


def _sweep_forever(stop: threading.Event) -> None:
    while not stop.wait(SWEEP_EVERY_SECONDS):
        try:
            if woken := outbox.sweep():
                log.info("outbox sweep re-queued %s message(s)", woken)
        except Exception:  # a failed sweep must not end the worker; the next one tries again
            log.exception("outbox sweep failed")
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
