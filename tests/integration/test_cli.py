"""The `orderdesk` console command, run as an administrator runs it: a real process on a fresh
SQLite file, configured only by environment variables. No pytest database is used here."""

import base64
import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import Mailbox, free_port, order_body
from tests.processes import alive, children as child_pids

ORDERDESK = Path(sys.executable).parent / "orderdesk"
PASSWORD = "correct-horse-battery"


class Instance:
    """One installation: its database file, its var directory and the environment naming them."""

    def __init__(self, root: Path, name: str = "x"):
        self.root = root
        self.db = root / f"{name}.sqlite3"
        self.var = root / f"var-{name}"
        self.var.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "EMAIL_"))}
        self.env.update(DATABASE_URL=f"sqlite:///{self.db}", ORDERDESK_VAR_DIR=str(self.var), LOG_LEVEL="WARNING")

    def start(self, *args: str, **env) -> subprocess.Popen:
        return subprocess.Popen(
            [str(ORDERDESK), *args], env={**self.env, **env}, cwd=self.root, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return finish(self.start(*args), timeout)

    def query(self, sql: str, *params) -> list[tuple]:
        with closing(sqlite3.connect(self.db)) as connection:
            return connection.execute(sql, params).fetchall()


def finish(process: subprocess.Popen, timeout: float = 60) -> subprocess.CompletedProcess:
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def instance(tmp_path_factory) -> Instance:
    instance = Instance(tmp_path_factory.mktemp("cli"))
    instance.migrated = instance.run("migrate", "--verbosity", "0")
    return instance


@pytest.fixture(scope="module", autouse=True)
def demo_run(instance, tmp_path_factory):
    """`demo-data` takes seconds (it makes people with real password hashes), so it runs in the
    background, on a copy of the freshly migrated database, while the other tests run."""
    demo = Instance(tmp_path_factory.mktemp("demo"), "demo")
    with closing(sqlite3.connect(instance.db)) as source, closing(sqlite3.connect(demo.db)) as target:
        source.backup(target)
    demo.process = demo.start("demo-data", "--orders", "6")
    yield demo
    if demo.process.poll() is None:
        demo.process.kill()
        demo.process.communicate()


def test_migrate_creates_the_tables_and_the_order_statuses(instance):
    assert instance.migrated.returncode == 0, instance.migrated.stderr
    statuses = [name for (name,) in instance.query("SELECT name_ru FROM orders_statusdefinition ORDER BY position")]
    assert statuses[:2] == ["На согласовании", "Согласован"]
    assert "Закрыт" in statuses

    again = instance.run("migrate", "--verbosity", "0")

    assert again.returncode == 0, again.stderr


def test_create_user_makes_a_person_with_a_hashed_password_and_refuses_the_same_email_twice(instance):
    created = instance.run("create-user", "--role", "manager", "--email", "Masha@Shop.Example", "--password", PASSWORD)
    again = instance.run("create-user", "--role", "cashier", "--email", "masha@shop.example", "--password", PASSWORD)

    assert created.returncode == 0, created.stderr
    assert "manager" in created.stdout and "masha@shop.example" in created.stdout
    [(role, password)] = instance.query("SELECT role, password FROM core_user WHERE email = ?", "masha@shop.example")
    assert role == "manager"
    assert password.startswith("pbkdf2_sha256$") and PASSWORD not in password
    assert again.returncode != 0
    assert "Пользователь с таким e-mail уже существует" in again.stderr
    assert "Traceback" not in again.stderr


def test_create_user_refuses_bad_input_with_a_clear_message_and_no_traceback(instance):
    cases = {
        "invalid choice: 'boss'": ["--role", "boss", "--email", "boss@shop.example", "--password", PASSWORD],
        "--email: некорректный адрес": ["--role", "manager", "--email", "not-an-email", "--password", PASSWORD],
        "--password: Введённый пароль слишком короткий": [
            "--role", "manager", "--email", "short@shop.example", "--password", "2short"],
    }
    running = {says: instance.start("create-user", *args) for says, args in cases.items()}  # side by side: faster

    for says, process in running.items():
        refused = finish(process)
        assert refused.returncode != 0, says
        assert says in refused.stderr
        assert "Traceback" not in refused.stderr
    assert instance.query("SELECT email FROM core_user WHERE email IN (?, ?, ?)",
                          "boss@shop.example", "not-an-email", "short@shop.example") == []


def test_create_api_key_prints_the_key_last_and_stores_only_its_hash(instance):
    created = instance.run("create-api-key", "--role", "site", "--name", "shop site")

    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("od_")
    assert "shown only now" in created.stderr
    [(role, name)] = instance.query(
        "SELECT role, name FROM core_apikey WHERE key_hash = ? AND revoked_at IS NULL", hashlib.sha256(key.encode()).hexdigest())
    assert (role, name) == ("site", "shop site")
    assert instance.query("SELECT COUNT(*) FROM core_apikey WHERE key_hash = ? OR prefix = ?", key, key) == [(0,)]
    # that such a key opens the API over HTTP is shown by the serve test below


def test_create_api_key_refuses_a_role_machines_do_not_have(instance):
    refused = instance.run("create-api-key", "--role", "administrator")

    assert refused.returncode != 0
    assert "invalid choice" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_demo_data_loads_people_orders_and_a_site_key(demo_run):
    result = finish(demo_run.process)

    assert result.returncode == 0, result.stderr
    assert "Demo data: 6 new orders" in result.stdout
    key = result.stdout.strip().splitlines()[-1].strip()
    assert demo_run.query("SELECT role FROM core_apikey WHERE key_hash = ? AND revoked_at IS NULL",
                          hashlib.sha256(key.encode()).hexdigest()) == [("site",)]
    roles = {role for (role,) in demo_run.query("SELECT role FROM core_user")}
    assert roles == {"administrator", "manager", "cashier", "customer"}
    statuses = {s for (s,) in demo_run.query("SELECT status_id FROM orders_order")}
    assert len(demo_run.query("SELECT id FROM orders_order")) == 6
    assert len(statuses) > 1


# ---- serve: the web server and the background worker, started and stopped together ----






def _wait_for_api(base: str, serve: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert serve.poll() is None, f"serve exited with {serve.returncode}: {finish(serve).stderr}"
        try:
            with urllib.request.urlopen(f"{base}/api/v1/openapi.json", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:  # refused while starting, or slow to answer its first request on a busy machine
            pass
        time.sleep(0.1)
    raise AssertionError(f"the API did not answer within {timeout} s")


def _post_json(url: str, body: dict, key: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def mailbox():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailbox.port = controller.port
    yield mailbox
    controller.stop()


def _wait_for_sandbox(root: str, serve: subprocess.Popen, timeout: float = 30) -> tuple[int, dict]:
    """GET an unknown payment from the sandbox acquirer as the SDK would (Basic auth): -> (status, body)."""
    auth = base64.b64encode(b"sandbox-shop:sandbox-secret").decode()
    request = urllib.request.Request(f"{root}/v3/payments/x", headers={"Authorization": f"Basic {auth}"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert serve.poll() is None, f"serve exited with {serve.returncode}: {finish(serve).stderr}"
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())
        except OSError:  # refused while starting, or slow on a busy machine
            time.sleep(0.1)
    raise AssertionError(f"the sandbox acquirer did not answer within {timeout} s")


def test_serve_runs_the_api_the_worker_and_the_sandbox_acquirer_and_stops_them_all_on_sigterm(instance, mailbox):
    making_key = instance.start("create-api-key", "--role", "site")
    port, acquirer_port = free_port(), free_port()
    base, acquirer_root = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{acquirer_port}"
    serve = instance.start("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--threads", "2",
                           EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(mailbox.port), EMAIL_TIMEOUT="5",
                           # on loopback, so serve runs the sandbox acquirer there (not on the default 8001)
                           YOOKASSA_API_URL=f"{acquirer_root}/v3", YOOKASSA_SHOP_ID="sandbox-shop",
                           YOOKASSA_SECRET_KEY="sandbox-secret")
    started: list[int] = []
    try:
        key = finish(making_key).stdout.strip().splitlines()[-1]
        _wait_for_api(base, serve)
        children = child_pids(serve.pid)
        started = children + [g for c in children for g in child_pids(c)]
        assert len(children) == 3, children  # the web server, the background worker, the sandbox acquirer
        status, answer = _wait_for_sandbox(acquirer_root, serve)
        assert (status, answer["type"], answer["code"]) == (404, "error", "not_found"), answer

        status, order = _post_json(f"{base}/api/v1/orders", order_body("serve-1", email="serve@example.com"), key)
        assert status == 201, order
        assert mailbox.wait_for(1, timeout=15), "the worker did not send the customer's e-mail"
        [mail] = mailbox.to("serve@example.com")
        assert f"№{order['number']}" in mail["Subject"]

        serve.send_signal(signal.SIGTERM)
        result = finish(serve, timeout=30)
    finally:
        if serve.poll() is None:
            for pid in started:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
            serve.kill()
            serve.communicate(timeout=30)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert [pid for pid in started if alive(pid)] == []


def test_serve_killed_with_sigkill_takes_its_children_with_it(instance):
    port, acquirer_port = free_port(), free_port()
    home = instance.root / "home-sigkill"
    serve = instance.start("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--threads", "1",
                           YOOKASSA_API_URL=f"http://127.0.0.1:{acquirer_port}/v3", HOME=str(home), XDG_RUNTIME_DIR="")
    children: list[int] = []
    try:
        _wait_for_api(f"http://127.0.0.1:{port}", serve)
        children = child_pids(serve.pid)
        assert len(children) == 3, children
        # no gunicorn control socket: at its one path per user a second instance would take it over
        assert not (home / ".gunicorn").exists()

        serve.kill()  # no chance to stop its children itself
        serve.wait(timeout=10)
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in children if alive(pid)] == []
    finally:
        for pid in [*children, serve.pid]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_serve_stops_with_a_clear_message_when_the_sandbox_acquirers_port_is_taken(instance):
    port = free_port()
    with socket.socket() as holder:  # as another orderdesk on this host would hold it
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        serve = instance.start("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                               "--threads", "1", YOOKASSA_API_URL=f"http://127.0.0.1:{taken}/v3")
        try:
            result = finish(serve, timeout=60)
        finally:
            if serve.poll() is None:
                serve.kill()
                serve.communicate(timeout=30)

    assert result.returncode != 0
    assert f"the sandbox acquirer cannot listen on 127.0.0.1:{taken}" in result.stderr, result.stderr
    assert "orderdesk: the sandbox acquirer exited with 2; stopping." in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(OSError):  # the web server went down with it
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=5)
