"""B6 across crashes: `orderdesk serve` runs as a real process tree on its own database while a
cashier streams payments over HTTP; at random moments a gunicorn worker, the background worker or
the whole process group is killed with SIGKILL, and serve is started again. The calls that got no
answer are re-sent with their idempotency keys. In the end every acknowledged payment is there,
none is doubled, and every receipt owed is registered exactly once in the emulator's fiscal memory."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from contextlib import closing
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.conftest import free_port, order_body
from tests.processes import children

ORDERDESK = Path(sys.executable).parent / "orderdesk"
PASSWORD = "correct-horse-battery"
STREAM_SECONDS = 15
SHARE = Decimal("10.00")




def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Installation:
    """A fresh database (a SQLite file, or a database of its own on the suite's PostgreSQL server)."""

    def __init__(self, root: Path):
        self.root = root
        suite_url = os.environ.get("DATABASE_URL", "")
        self.postgres = suite_url.startswith("postgres")
        if self.postgres:
            import psycopg

            self.name = f"orderdesk_crash_{uuid.uuid4().hex[:8]}"
            parts = urlsplit(suite_url)
            self.admin_url = suite_url
            with psycopg.connect(suite_url, autocommit=True) as connection:
                connection.execute(f'CREATE DATABASE "{self.name}"')
            self.url = urlunsplit(parts._replace(path=f"/{self.name}"))
        else:
            self.url = f"sqlite:///{root / 'crash.sqlite3'}"
        var = root / "var"
        var.mkdir()
        self.emulator_memory = var / "fiscal-emulator.sqlite3"  # FISCAL_EMULATOR_PATH's default
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "EMAIL_", "FISCAL_"))}
        self.env.update(DATABASE_URL=self.url, ORDERDESK_VAR_DIR=str(var), LOG_LEVEL="ERROR",
                        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
                        YOOKASSA_API_URL=f"http://127.0.0.1:{free_port()}/v3")

    def run(self, *args: str) -> str:
        done = subprocess.run([str(ORDERDESK), *args], env=self.env, cwd=self.root, text=True,
                              capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def query(self, sql: str) -> list[tuple]:
        if self.postgres:
            import psycopg

            with psycopg.connect(self.url) as connection:
                return connection.execute(sql).fetchall()
        with closing(sqlite3.connect(self.url.removeprefix("sqlite:///"))) as connection:
            return connection.execute(sql).fetchall()

    def emulator_journal(self) -> Counter:
        """How many times the emulator's fiscal memory holds each uuid."""
        with closing(sqlite3.connect(self.emulator_memory)) as connection:
            return Counter(uuid_ for (uuid_,) in connection.execute("SELECT uuid FROM document"))

    def drop(self) -> None:
        if self.postgres:
            import psycopg

            with psycopg.connect(self.admin_url, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Server:
    """`orderdesk serve` in a process group of its own."""

    def __init__(self, installation: Installation):
        self.installation = installation
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log = open(installation.root / "serve.log", "a")

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(ORDERDESK), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "2",
             "--threads", "2"], env=self.installation.env, cwd=self.installation.root,
            stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/api/v1/openapi.json", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("serve did not answer within 30 s")

    def down(self) -> bool:
        return self.process is None or self.process.poll() is not None

    def processes(self) -> dict[str, list[int]]:
        found = {"web_worker": [], "worker": []}
        for child in children(self.process.pid):
            line = _cmdline(child)
            if "gunicorn" in line:
                found["web_worker"] += children(child)
            elif "orderdesk.cli worker" in line:
                found["worker"].append(child)
        return found

    def kill(self, what: str, rng: random.Random) -> None:
        if what == "all":
            os.killpg(self.process.pid, signal.SIGKILL)
        else:
            victims = self.processes()[what]
            if victims:
                os.kill(rng.choice(victims), signal.SIGKILL)
        if what != "web_worker":
            self.process.wait(timeout=30)  # serve stops the rest when its worker dies
            self.start()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def _large_order(external_id: str) -> dict:
    """An order no stream of SHARE payments settles, however fast the machine: a payment that would
    settle it is R8's question, not a payment."""
    body = order_body(external_id)
    body["items"][0]["price"] = "100000.00"
    return body


@pytest.fixture
def installation(tmp_path):
    installation = Installation(tmp_path)
    yield installation
    installation.drop()


def test_b06_payments_acknowledged_before_kill_9_survive_once_and_their_receipts_are_registered_once(installation):
    rng = random.Random(int(os.environ.get("CRASH_SEED", "20261123")))
    installation.run("migrate", "--verbosity", "0")
    installation.run("create-user", "--role", "cashier", "--email", "till@shop.example", "--password", PASSWORD)
    site_key = installation.run("create-api-key", "--role", "site").strip().splitlines()[-1].strip()
    register_id = int(installation.run("manage", "shell", "-c", (
        "from orderdesk.fiscal.models import Register, Shift; "
        "r = Register.objects.create(name='Касса 1', company_inn='7707083893', company_email='shop@example.com', "
        "payment_address='Москва'); Shift.objects.create(register=r, number=1, opened_by='test'); print(r.pk)"
    )).strip().splitlines()[-1])
    server = Server(installation)
    server.start()
    try:
        site = httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {site_key}"}, timeout=10)
        orders = [site.post("/api/v1/orders", json=_large_order(f"crash-{n}")).json()["id"] for n in range(3)]
        cashier = httpx.Client(base_url=server.base, timeout=5)
        signed_in = cashier.post("/api/v1/auth/login", json={"email": "till@shop.example", "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        cashier.headers["X-CSRFToken"] = signed_in.json()["csrf_token"]

        calls: dict[str, dict] = {}
        acknowledged: set[str] = set()

        def pay(key: str) -> bool:
            call = calls[key]
            try:
                response = cashier.post(f"/api/v1/orders/{call['order']}/payments", json={
                    "register_id": register_id, "amount": str(SHARE), "method": "cash", "idempotency_key": key})
            except httpx.HTTPError:
                return False
            if response.status_code == 201:
                acknowledged.add(key)
                return True
            assert response.status_code >= 500, response.text  # refusals would be a bug here, not a crash
            return False

        kills: list[str] = []
        started = time.monotonic()
        next_kill = started + rng.uniform(0.5, 2)
        n = 0
        # at least STREAM_SECONDS and three kills, whatever the machine's load; never beyond 45 s
        while ((time.monotonic() < started + STREAM_SECONDS or len(kills) < 3)
               and time.monotonic() < started + 45):
            key = f"till-1-{n:05d}"
            calls[key] = {"order": orders[n % len(orders)]}
            n += 1
            pay(key)
            if time.monotonic() >= next_kill:
                what = rng.choice(["web_worker", "worker", "all"])
                kills.append(what)
                server.kill(what, rng)
                next_kill = time.monotonic() + rng.uniform(0.5, 2)
            if server.down():
                server.start()

        # the cash desk repeats what got no answer, with the same keys
        for key in sorted(set(calls) - acknowledged):
            for _attempt in range(5):
                if pay(key):
                    break
                if server.down():
                    server.start()
                time.sleep(0.2)
        assert acknowledged == set(calls)
        assert len(kills) >= 3 and len(acknowledged) >= 30, (kills, len(acknowledged))

        # the worker registers what is owed
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and installation.query(
                "SELECT COUNT(*) FROM fiscal_receipt WHERE state <> 'registered'")[0][0]:
            time.sleep(0.3)
    finally:
        server.stop()
    # a receipt claimed by a worker that was killed waits for its claim to expire: that time passes
    # here, and the register's receipts are registered once more
    installation.run("manage", "shell", "-c", (
        "from datetime import timedelta; from django.utils import timezone; "
        "from orderdesk.fiscal.models import Receipt; from orderdesk.fiscal.services import register_pending; "
        "past = timezone.now() - timedelta(minutes=10); "
        "Receipt.objects.exclude(state='registered').update(claimed_until=past, next_attempt_at=past); "
        f"register_pending({register_id})"))

    documents = installation.query("SELECT idempotency_key, order_id, amount FROM payments_document")
    assert sorted(d[0] for d in documents) == sorted(calls)  # every acknowledged payment, none doubled
    entries = installation.query("SELECT document_id, order_id, amount FROM payments_paymententry")
    assert len(entries) == len(documents) == len({e[0] for e in entries})
    for order_id, paid in installation.query("SELECT id, paid_amount FROM orders_order"):
        assert Decimal(str(paid)) == sum((Decimal(str(e[2])) for e in entries if e[1] == order_id), Decimal("0.00"))
    receipts = installation.query("SELECT entry_id, state, uuid FROM fiscal_receipt")
    assert len(receipts) == len(entries) == len({r[0] for r in receipts})  # one receipt per payment
    assert {r[1] for r in receipts} == {"registered"}
    assert installation.emulator_journal() == {r[2]: 1 for r in receipts}  # registered exactly once


def test_b06_a_worker_stopped_mid_batch_leaves_no_receipt_claimed_and_the_next_one_registers_each_once(installation):
    installation.run("migrate", "--verbosity", "0")
    installation.run("demo-data")  # its payments owe receipts that no worker has registered yet
    owed = installation.query("SELECT COUNT(*) FROM fiscal_receipt")[0][0]
    assert owed > 2 * 20  # more than two of the relay's batches

    log = open(installation.root / "worker.log", "a")
    worker = subprocess.Popen([str(ORDERDESK), "worker"], env=installation.env, cwd=installation.root,
                              stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while not installation.query("SELECT COUNT(*) FROM fiscal_receipt WHERE state = 'registered'")[0][0]:
            assert time.monotonic() < deadline, "the worker registered nothing within 60 s"
            time.sleep(0.01)
        worker.send_signal(signal.SIGTERM)  # as serve stops it: mid-batch, most likely
        assert worker.wait(timeout=15) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        log.close()

    states = dict(installation.query("SELECT state, COUNT(*) FROM fiscal_receipt GROUP BY state"))
    assert "registering" not in states  # nothing waits out a claim after a stop
    assert installation.query("SELECT COUNT(*) FROM fiscal_receipt WHERE state = 'pending' AND attempts > 0") == [(0,)]

    installation.run("manage", "shell", "-c", (  # the next worker: what was handed back is due at once
        "from orderdesk.fiscal.services import register_pending, registers_with_due_receipts; "
        "[register_pending(register_id) for register_id in registers_with_due_receipts()]"))
    assert installation.query("SELECT COUNT(*) FROM fiscal_receipt WHERE state <> 'registered'") == [(0,)]
    receipts = installation.query("SELECT uuid FROM fiscal_receipt")
    assert installation.emulator_journal() == {r[0]: 1 for r in receipts}  # each registered once
