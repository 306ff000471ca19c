"""`make bench`: the real server (`orderdesk serve`: gunicorn gthread + the worker) on SQLite and
PostgreSQL, loaded over loopback from this process (the load generator is never the server's
process). Writes bench/RESULTS.md and bench/results.json.

    .venv/bin/python bench/run.py                 # N = 1,000,000 orders for the list
    BENCH_ORDERS=100000 .venv/bin/python bench/run.py

Environment: BENCH_ORDERS (orders in the list benchmark, default 1000000), BENCH_INTAKE_ORDERS (orders
per intake run, default 400), BENCH_LIFECYCLES (lifecycles per run, default 300), BENCH_RUNS (runs
per figure, default 3), BENCH_DATABASES (default "sqlite,postgres"), BENCH_OUT_DIR (default bench/).
`run.py --report-only` rewrites RESULTS.md from results.json (e.g. after editing bench/NOTES.md).
"""

import base64
import http.client
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = Path(os.environ.get("BENCH_OUT_DIR", BENCH))  # where RESULTS.md and results.json go
sys.path.insert(0, str(BENCH))

from lean_http import Connection  # noqa: E402
from plainsql import connect, write_order  # noqa: E402
from progress import progress  # noqa: E402

from orderdesk.cli import DEFAULT_WEB_THREADS, default_web_workers  # noqa: E402

PY = Path(sys.executable)
ORDERDESK = PY.parent / "orderdesk"
N_LIST = int(os.environ.get("BENCH_ORDERS", "1000000"))
N_INTAKE = int(os.environ.get("BENCH_INTAKE_ORDERS", "400"))
# A run ends when its last receipt is registered, which a relay that found nothing looks for again
# only after its pause (worker.RELAY_PAUSE_SECONDS): runs of some seconds keep that wait a small
# part of what is measured.
N_LIFECYCLES = int(os.environ.get("BENCH_LIFECYCLES", "300"))
N_EXPORT = int(os.environ.get("BENCH_EXPORT_ORDERS", "100000"))
RUNS = max(3, int(os.environ.get("BENCH_RUNS", "3")))
DATABASES = os.environ.get("BENCH_DATABASES", "sqlite,postgres").split(",")
WORKERS, THREADS = default_web_workers(), DEFAULT_WEB_THREADS  # `orderdesk serve`'s, used for the ceiling app too
CONCURRENCIES = (1, 8, 32)
PASSWORD = "bench-password-1"


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---- the machine ----


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    import django

    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gb": round(mem_kb / 1024 / 1024, 1),
            "python": platform.python_version(), "interpreter": interpreter(), "django": django.get_version(),
            "sqlite": sqlite3.sqlite_version, "postgresql": None, "kernel": platform.release()}


def interpreter() -> str:
    """Which build of Python ran the benchmark: the same code took 10–30% longer on a shared
    libpython built without profile-guided optimisation (pyenv's default) than on Debian's
    build (NOTES, stop 22), so a reader comparing two tables needs to know."""
    shared = any("libpython" in line for line in Path("/proc/self/maps").read_text().splitlines())
    return f"{os.path.realpath(sys.executable)}, libpython {'shared' if shared else 'linked into the executable'}"


# ---- HTTP load ----


def order_body(n: int, prefix: str) -> bytes:
    return json.dumps({
        "external_id": f"{prefix}-{n}",
        "customer": {"name": "Покупатель", "email": f"buyer{n % 500}@example.com", "phone": "+79161234567"},
        "items": [{"sku": f"S{i}", "name": f"Товар {i}", "quantity": "1", "price": "100.00", "vat_rate": "22"}
                  for i in range(5)],
        "delivery": {"method": "courier", "address": "Москва", "price": "300.00"},
    }).encode()


def wait_for(port: int, path: str = "/api/v1/openapi.json", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connection = Connection(port, timeout=5)
        try:
            connection.request("GET", path)
            return
        except OSError:
            time.sleep(0.1)
        finally:
            connection.close()
    raise SystemExit(f"nothing answers on port {port}")


def load(port: int, headers: dict, orders: int, concurrency: int, prefix: str) -> dict:
    """POST `orders` orders from `concurrency` keep-alive connections; orders/s, p50, p99 (ms)."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(orders))
    errors: list[str] = []

    def client():
        connection = Connection(port)
        mine = []
        while not errors:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            body = order_body(n, prefix)
            started = time.perf_counter()
            response = connection.request("POST", "/api/v1/orders", body, headers)
            if response.status != 201:
                errors.append(f"HTTP {response.status}: {response.body[:300]!r}")
                break
            mine.append(time.perf_counter() - started)
        connection.close()  # the server keeps no idle connection of ours while the other one is measured
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"load failed: {errors[0]}")
    return {"per_s": orders / elapsed, **percentiles(latencies)}


def percentiles(latencies: list[float]) -> dict:
    latencies = sorted(latencies)
    return {"p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000}


def median_of(runs: list[dict]) -> dict:
    return {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}


# ---- processes ----


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU the process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants_of(pid: int) -> list[int]:
    found = children_of(pid)
    return found + [grandchild for child in found for grandchild in descendants_of(child)]


def machine_ticks() -> tuple[int, int]:
    """(busy, all) CPU ticks of the whole machine so far."""
    ticks = list(map(int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]))
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def gunicorn_workers(serve_pid: int) -> list[int]:
    """The gunicorn workers under `orderdesk serve` (its child gunicorn master's children)."""
    workers = []
    for child in children_of(serve_pid):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"gunicorn" in cmdline:
            workers += children_of(child)
    return workers


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Database:
    def __init__(self, kind: str):
        self.kind = kind
        self.var = tempfile.mkdtemp(prefix=f"bench-{kind}-")
        self.pg_dir = None
        if kind == "sqlite":
            self.url = f"sqlite:///{self.var}/bench.sqlite3"
        else:
            out = subprocess.run([ROOT / "scripts/test-postgres.sh", "start"], check=True, capture_output=True,
                                 text=True).stdout
            values = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines()
                          if line.startswith("export "))
            self.url = values["DATABASE_URL"].strip("'\"")
            self.pg_dir = values["ORDERDESK_TEST_PG_DIR"].strip("'\"")
        self.env = {**os.environ, "ORDERDESK_VAR_DIR": self.var, "DATABASE_URL": self.url,
                    "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend"}
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.env.pop("FISCAL_EMULATOR_PATH", None)  # each database's emulator keeps its memory beside it

    def close(self):
        if self.pg_dir:
            subprocess.run([ROOT / "scripts/test-postgres.sh", "stop", self.pg_dir], check=False)

    def cli(self, *args) -> str:
        return subprocess.run([ORDERDESK, *args], env=self.env, check=True, capture_output=True, text=True).stdout

    def connect(self):
        return connect(self.url)

    def serve(self, port: int) -> subprocess.Popen:
        process = subprocess.Popen([ORDERDESK, "serve", "--port", str(port), "--workers", str(WORKERS),
                                    "--threads", str(THREADS)], env=self.env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(port)
        return process

    def ceiling(self, port: int) -> subprocess.Popen:
        process = subprocess.Popen(
            [PY, "-m", "gunicorn", "ceiling_app:application", "--chdir", str(BENCH), "--bind", f"127.0.0.1:{port}",
             "--workers", str(WORKERS), "--threads", str(THREADS), "--worker-class", "gthread",
             "--graceful-timeout", "10", "--no-control-socket"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(port, "/")
        return process

    def version(self) -> str | None:
        if self.kind != "postgres":
            return None
        conn = self.connect()
        try:
            return conn.execute("SHOW server_version").fetchone()[0]
        finally:
            conn.close()

    def scalar(self, sql: str, params=()):
        conn = self.connect()
        try:
            if self.kind == "sqlite":
                sql = sql.replace("%s", "?")
            return conn.execute(sql, params).fetchone()[0]
        finally:
            conn.close()


# ---- 1. intake, the HTTP ceiling, the storage limit ----

CEILING_HEADERS = {"Content-Type": "application/json"}
OUTBOX_DRAIN_SECONDS = 120


def wait_for_outbox(db: Database) -> None:
    """Until the product's worker has sent every e-mail owed so far: its sending must not run into
    the next timed run, above all not into the ceiling's."""
    deadline = time.monotonic() + OUTBOX_DRAIN_SECONDS
    while owed := db.scalar("SELECT count(*) FROM core_outboxmessage WHERE state IN ('pending', 'sending')"):
        if time.monotonic() > deadline:
            raise SystemExit(f"intake: the worker left {owed} e-mails unsent for {OUTBOX_DRAIN_SECONDS} s")
        time.sleep(0.05)


def settle(db: Database) -> None:
    """Before a timed run: every e-mail owed sent, and on SQLite the WAL copied into the database
    (the product checkpoints every hundred commits of a connection, the ceiling and the storage
    run at SQLite's thousand pages), so no run pays for the pages another left in the WAL."""
    wait_for_outbox(db)
    if db.kind == "sqlite":
        conn = db.connect()
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            conn.close()


def storage_run(conn, prefix: str) -> dict:
    """The ceiling's transactions written from this process on one connection: no HTTP, no server."""
    bodies = [order_body(n, prefix) for n in range(N_INTAKE)]
    latencies = []
    started = time.perf_counter()
    for body in bodies:
        t = time.perf_counter()
        write_order(conn, body)
        latencies.append(time.perf_counter() - t)
    return {"per_s": N_INTAKE / (time.perf_counter() - started), **percentiles(latencies)}


class ServerCPU:
    """The CPU a server's processes spend from now on, in seconds: its web processes (gunicorn's
    workers) apart from the others (the product's worker and sandbox acquirer)."""

    def __init__(self, server: subprocess.Popen):
        self.web = set(gunicorn_workers(server.pid)) or set(children_of(server.pid))  # the ceiling is gunicorn itself
        self.others = [pid for pid in descendants_of(server.pid) if pid not in self.web]
        self.before = {pid: cpu_seconds(pid) for pid in [*self.web, *self.others]}

    def spent(self) -> tuple[float, float]:
        """(web processes, other processes) since this was made."""
        used = {pid: cpu_seconds(pid) - before for pid, before in self.before.items()}
        return sum(used[pid] for pid in self.web), sum(used[pid] for pid in self.others)


def accounted_load(db: Database, server: subprocess.Popen, port: int, headers: dict, concurrency: int,
                   prefix: str) -> dict:
    """`load`, with the CPU each order cost, in ms: the server's web processes (gunicorn's workers),
    its other processes (the product's worker, sending the run's e-mails; counted until it has sent
    them all) and this load generator; and how busy the whole machine was during the load."""
    server_cpu = ServerCPU(server)
    own_before, machine_before = time.process_time(), machine_ticks()
    measured = load(port, headers, N_INTAKE, concurrency, prefix)
    machine_after = machine_ticks()
    wait_for_outbox(db)
    own = time.process_time() - own_before
    web, others = server_cpu.spent()
    per_order = 1000 / N_INTAKE
    return {**measured,
            "web_cpu_ms": web * per_order,
            "other_cpu_ms": others * per_order,
            "load_cpu_ms": own * per_order,
            "machine_busy": (machine_after[0] - machine_before[0]) / max(1, machine_after[1] - machine_before[1])}


def intake_rounds(db: Database, servers: dict[str, tuple[subprocess.Popen, int, dict]]) -> dict[str, list[dict]]:
    """Per concurrency, RUNS rounds: a pair (the product's run and the ceiling's, back to back), then a
    storage run. This VM's speed drifts by up to ±40% from minute to minute; the halves of a pair share
    the moment, so their ratio is taken at one speed. The half that goes first alternates from pair to
    pair, so whatever going second brings (a machine warmed or slowed by the first) falls on both."""
    for name, (_server, port, headers) in servers.items():
        load(port, headers, 100, 8, f"{name}-warm")
    rounds = {}
    product_first = True
    conn = db.connect()
    try:
        for concurrency in CONCURRENCIES:
            rounds[str(concurrency)] = []
            for r in range(RUNS):
                tag = f"c{concurrency}-r{r}"
                order = ["product", "ceiling"] if product_first else ["ceiling", "product"]
                product_first = not product_first
                measured = {"first": order[0]}
                for name in order:
                    settle(db)
                    server, port, headers = servers[name]
                    measured[name] = accounted_load(db, server, port, headers, concurrency, f"{name}-{tag}")
                settle(db)
                measured["storage"] = storage_run(conn, f"storage-{tag}")
                product = measured["product"]["per_s"]
                measured["ratio"] = round(product / measured["ceiling"]["per_s"], 3)
                measured["storage_ratio"] = round(product / measured["storage"]["per_s"], 3)
                rounds[str(concurrency)].append(measured)
                log(f"  c={concurrency} run {r + 1} ({order[0]} first): product {product:.0f}/s, ceiling "
                    f"{measured['ceiling']['per_s']:.0f}/s, intake/ceiling {measured['ratio']:.3f}, storage "
                    f"{measured['storage']['per_s']:.0f}/s")
    finally:
        conn.close()
    return rounds


def bench_intake(db: Database, port: int) -> dict:
    """The product (`orderdesk serve` on `port`) and the HTTP ceiling (on `port` + 1) run side by side
    for the whole intake; each is idle while the other is measured."""
    key = db.cli("create-api-key", "--role", "site").strip().splitlines()[-1]
    with ExitStack() as running:
        product_server = db.serve(port)
        running.callback(stop, product_server)
        ceiling_server = db.ceiling(port + 1)
        running.callback(stop, ceiling_server)
        servers = {"product": (product_server, port,
                               {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}),
                   "ceiling": (ceiling_server, port + 1, CEILING_HEADERS)}
        rounds = intake_rounds(db, servers)
        rss = {str(pid): round(rss_mb(pid), 1) for pid in gunicorn_workers(product_server.pid)}
    return {"intake": {c: median_of([r["product"] for r in rs]) for c, rs in rounds.items()},
            "ceiling": {c: median_of([r["ceiling"] for r in rs]) for c, rs in rounds.items()},
            "storage": median_of([r["storage"] for rs in rounds.values() for r in rs]),
            "pair_ratio": {c: round(statistics.median(r["ratio"] for r in rs), 3) for c, rs in rounds.items()},
            "pair_storage_ratio": {c: round(statistics.median(r["storage_ratio"] for r in rs), 3)
                                   for c, rs in rounds.items()},
            "intake_rounds": rounds, "intake_rss_mb": rss}


# ---- 2. the lifecycle ----


class Session:
    """A signed-in person: the session and CSRF cookies, X-CSRFToken and a Referer on every call."""

    def __init__(self, port: int, email: str):
        self.port = port
        self.connection = Connection(port)
        self.cookies = {}
        self.csrf = None
        me = self.call("POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD}, expect=200)
        self.csrf = me["csrf_token"]

    def call(self, method: str, path: str, body=None, expect=(200, 201)):
        headers = {"Content-Type": "application/json", "Referer": f"http://127.0.0.1:{self.port}/",
                   "Origin": f"http://127.0.0.1:{self.port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.csrf:
            headers["X-CSRFToken"] = self.csrf
        data = json.dumps(body).encode() if body is not None else None
        response = self.connection.request(method, path, data, headers)
        content = response.body
        for header, value in response.headers:
            if header == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        expected = (expect,) if isinstance(expect, int) else expect
        if response.status not in expected:
            raise SystemExit(f"{method} {path}: HTTP {response.status}: {content[:400]!r}")
        return json.loads(content) if content else None


def lifecycle(session: Session, desk: int, n: int) -> int:
    body = json.loads(order_body(n, "lc"))
    del body["external_id"]
    order = session.call("POST", "/api/v1/orders", body, expect=201)
    path = f"/api/v1/orders/{order['id']}"
    session.call("POST", f"{path}/status", {"status": "agreed"}, expect=200)
    session.call("POST", f"{path}/payments", {"register_id": desk, "amount": "300.00", "method": "cash"}, expect=201)
    session.call("POST", f"{path}/payments", {"register_id": desk, "amount": "500.00", "method": "cash",
                                              "settle": "no"}, expect=201)
    session.call("POST", f"{path}/status", {"status": "issued", "register_id": desk}, expect=200)
    session.call("POST", f"{path}/status", {"status": "closed"}, expect=200)
    return order["id"]


FLOOR_CALLS = 600


def share_among(sessions: list[Session], jobs, work) -> list:
    """`work(session, job)` for every job, each session on its own thread taking the next job as it
    becomes free; the results, in the order they came."""
    jobs, lock, results = iter(jobs), threading.Lock(), []

    def client(session):
        while True:
            with lock:
                job = next(jobs, None)
            if job is None:
                return
            result = work(session, job)
            with lock:
                results.append(result)

    threads = [threading.Thread(target=client, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def framework_floor(sessions: list[Session]) -> dict:
    """The same sessions calling `GET /api/v1/auth/me` (authenticate, read the person, answer: no
    order, no transaction): what Django, ninja and gunicorn cost per call before any work. A
    lifecycle is six calls, so this rate / 6 bounds it from above on this server."""
    started = time.perf_counter()
    share_among(sessions, range(FLOOR_CALLS), lambda session, _: session.call("GET", "/api/v1/auth/me", expect=200))
    per_s = FLOOR_CALLS / (time.perf_counter() - started)
    return {"calls_per_s": per_s, "lifecycles_per_s": per_s / 6}


LIFECYCLE_ADMIN = "admin@bench.example"
LIFECYCLE_CLIENTS = 8


def open_cash_desk(db: Database, port: int) -> int:
    """An administrator for the lifecycle's sessions, the shop's two registers (a cash desk and an
    online one) and an open shift at the desk, on a served database; -> the desk's id."""
    db.cli("create-user", "--role", "administrator", "--email", LIFECYCLE_ADMIN, "--password", PASSWORD)
    admin = Session(port, LIFECYCLE_ADMIN)
    company = {"company_inn": "7707083893", "company_email": "shop@example.com",
               "payment_address": "г. Москва, ул. Примерная, 1"}
    desk = admin.call("POST", "/api/v1/registers", {"name": "Касса 1", **company}, expect=201)["id"]
    admin.call("POST", "/api/v1/registers", {"name": "Интернет-касса", "is_online": True, **company}, expect=201)
    admin.call("POST", f"/api/v1/registers/{desk}/shift/open", expect=201)
    return desk


def lifecycles_with_receipts(db: Database, sessions: list[Session], desk: int, numbers: range) -> float:
    """Run a lifecycle for each number and wait until all their receipts are registered; -> the
    seconds the API calls took (the whole run is the caller's clock)."""
    started = time.perf_counter()
    ids = share_among(sessions, numbers, lambda session, n: lifecycle(session, desk, n))
    api_seconds = time.perf_counter() - started
    if len(ids) != len(numbers):
        raise SystemExit("lifecycle: a client failed")
    low, high = min(ids), max(ids)
    expected = 3 * len(numbers)  # two «Аванс» receipts and one «Полный расчёт» each
    deadline = time.monotonic() + 300
    while True:
        registered = db.scalar("SELECT count(*) FROM fiscal_receipt WHERE order_id BETWEEN %s AND %s "
                               "AND state = 'registered'", (low, high))
        if registered >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.005)  # a run lasts a few seconds: a long look would overstate its end
    if registered < expected:
        raise SystemExit(f"lifecycle: only {registered} of {expected} receipts registered")
    return api_seconds


def bench_lifecycle(db: Database, port: int) -> dict:
    server = db.serve(port)
    try:
        desk = open_cash_desk(db, port)
        sessions = [Session(port, LIFECYCLE_ADMIN) for _ in range(LIFECYCLE_CLIENTS)]
        runs = []
        for r in range(RUNS + 1):  # the first run warms up
            started = time.perf_counter()
            api_done = lifecycles_with_receipts(db, sessions, desk, range(r * 1_000_000, r * 1_000_000 + N_LIFECYCLES))
            elapsed = time.perf_counter() - started
            if r:
                floor = framework_floor(sessions)
                runs.append({"per_s": N_LIFECYCLES / elapsed, "api_only_per_s": N_LIFECYCLES / api_done,
                             "floor_calls_per_s": floor["calls_per_s"], "floor_per_s": floor["lifecycles_per_s"]})
                log(f"  lifecycle run {r}: {runs[-1]}")
        rss = {str(pid): round(rss_mb(pid), 1) for pid in gunicorn_workers(server.pid)}
    finally:
        stop(server)
    return {"lifecycle": median_of(runs), "lifecycle_rss_mb": rss}


# ---- 3. the order list at N orders ----

STATUSES = ["pending_approval", "agreed", "shipped", "issued", "closed", "cancelled"]
SPAN_DAYS = 365


def bulk_load(db: Database, n: int) -> tuple[datetime, int]:
    """N orders (no items: the list reads orders only), created over the last year, oldest first.
    SQLite: executemany in batches; PostgreSQL: COPY. Progress lines on stderr."""
    conn = db.connect()
    is_sqlite = db.kind == "sqlite"
    cur = conn.cursor()
    cur.execute("SELECT id FROM orders_counterparty ORDER BY id LIMIT 1")
    customer_id = cur.fetchone()[0]
    cur.execute("SELECT coalesce(max(id), 0) FROM orders_order")
    first_id = cur.fetchone()[0] + 1
    end = datetime.now(timezone.utc) - timedelta(days=1)
    start = end - timedelta(days=SPAN_DAYS)
    step = (end - start) / n
    rnd = random.Random(5)
    columns = ("id", "number", "source", "intake_fingerprint", "customer_name", "customer_email", "customer_phone",
               "search_text", "status_changed_at", "payment_status", "currency", "items_total", "delivery_price",
               "total", "paid_amount", "delivery_method", "delivery_address", "comment", "deletion_mark", "is_quick",
               "created_at", "updated_at", "version", "customer_id", "status_id")

    # Buyers' names as a shop has them, for the text search: each first name is on 1/16 of the
    # orders, each surname on 1/20, and one buyer on one order in 50,000.
    first_names = ("Иван", "Мария", "Алексей", "Ольга", "Дмитрий", "Елена", "Сергей", "Анна", "Андрей", "Татьяна",
                   "Михаил", "Наталья", "Николай", "Ирина", "Павел", "Светлана")  # a man, then a woman
    surnames = ("Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков", "Фёдоров",
                "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов",
                "Николаев", "Орлов")

    def row(i: int):
        moment = start + step * i
        stamp = moment.replace(tzinfo=None).isoformat(" ") if is_sqlite else moment
        number = f"L{i:08d}"
        email = f"buyer{i % 5000}@example.com"
        phone = f"+79{i * 7919 % 10**9:09d}"
        first = i % len(first_names)
        name = (f"{first_names[first]} {surnames[i // len(first_names) % len(surnames)]}{'а' * (first % 2)}"
                if i % 50_000 != 7 else "Евдокия Шереметьева")
        return (first_id + i, number, "manager", "", name, email, phone,
                f"{number} {name} {email} {phone}".casefold(), stamp, "not_paid", "RUB", "500.00", "300.00", "800.00",
                "0.00", "courier", "Москва", "", False, False, stamp, stamp, 1, customer_id, rnd.choice(STATUSES))

    batch = max(20_000, n // 20)  # about 20 progress lines
    started = time.perf_counter()
    if is_sqlite:
        sql = f"INSERT INTO orders_order ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        for low in range(0, n, batch):
            cur.execute("BEGIN")
            cur.executemany(sql, [row(i) for i in range(low, min(n, low + batch))])
            cur.execute("COMMIT")
            progress(min(n, low + batch), n, started)
        cur.execute("ANALYZE")
    else:
        with cur.copy(f"COPY orders_order ({', '.join(columns)}) FROM STDIN") as copy:
            for i in range(n):
                copy.write_row(row(i))
                if (i + 1) % batch == 0 or i + 1 == n:
                    progress(i + 1, n, started)
        cur.execute("SELECT setval(pg_get_serial_sequence('orders_order', 'id'), (SELECT max(id) FROM orders_order))")
        # A shop's table has been vacuumed: without it the visibility map is empty, the first reads
        # write hint bits, and autovacuum starts on the million new rows in the middle of the timing.
        cur.execute("VACUUM (ANALYZE) orders_order")
    conn.close()
    return start, first_id


def timed_gets(port: int, headers: dict, path: str, requests: int) -> dict:
    connection = Connection(port)
    latencies = []
    rows = None
    for _ in range(requests):
        started = time.perf_counter()
        response = connection.request("GET", path, headers=headers)
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            raise SystemExit(f"GET {path}: HTTP {response.status}: {response.body[:300]!r}")
        rows = len(json.loads(response.body)["results"])
    return {**percentiles(latencies), "rows": rows}


def bench_list(db: Database, port: int) -> dict:
    from urllib.parse import urlencode

    key = db.cli("create-api-key", "--role", "integration").strip().splitlines()[-1]
    log(f"  loading {N_LIST:,} orders")
    load_started = time.perf_counter()
    start, first_id = bulk_load(db, N_LIST)
    load_s = time.perf_counter() - load_started
    headers = {"Authorization": f"Bearer {key}"}
    # A 30-day window in the middle of the year; the deep page starts in the middle of the window.
    window_from = start + timedelta(days=150)
    window_to = window_from + timedelta(days=30)
    step = timedelta(days=SPAN_DAYS) / N_LIST
    def cursor_at(i: int) -> str:  # the cursor the list gives out after row i: creation (µs) and id
        return f"{(start + step * i - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)}_{first_id + i}"

    deep_cursor = cursor_at(int((window_from + timedelta(days=15) - start) / step))
    filters = {"status": "agreed", "created_from": window_from.isoformat(), "created_to": window_to.isoformat(),
               "limit": 50}
    queries = {
        "first_page": {"limit": 50},
        "filtered_first_page": filters,
        "filtered_deep_page": {**filters, "cursor": deep_cursor},
        "deep_page": {"limit": 50, "cursor": cursor_at(N_LIST // 10)},
        "search_rare_name": {"q": "Шереметьев", "limit": 50},  # one order in 50,000
        "search_common_name": {"q": "Иван", "limit": 50},  # one in 16: a full first page
        "search_number": {"q": f"L{N_LIST // 2:08d}", "limit": 50},  # its 8 digits are looked for in phones too
        "filtered_search": {**filters, "q": "Петров"},  # one in 20 of the window's agreed orders
    }
    server = db.serve(port)
    try:
        figures = {}
        for name, query in queries.items():
            path = f"/api/v1/orders?{urlencode(query)}"
            timed_gets(port, headers, path, 20)  # warm-up
            runs = [timed_gets(port, headers, path, 100) for _ in range(RUNS)]
            figures[name] = median_of(runs)
            log(f"  list {name}: {figures[name]}")
    finally:
        stop(server)
    return {"list": figures, "list_orders": N_LIST, "list_load_s": round(load_s, 1)}


# ---- 4. the CommerceML export ----

DOCUMENT_END = "</Документ>".encode("cp1251")


def one_c_call(port: int, mode: str, headers: dict) -> bytes:
    connection = Connection(port, timeout=600)
    try:
        response = connection.request("GET", f"/exchange/1c?type=sale&mode={mode}", headers=headers)
    finally:
        connection.close()
    content = response.body
    if response.status != 200 or content.startswith(b"failure"):
        raise SystemExit(f"1C exchange {mode}: HTTP {response.status}: {content[:300]!r}")
    return content


def timed_query(port: int, headers: dict) -> dict:
    """1C's `query`, read as 1C reads it, in blocks (http.client's streamed body): seconds, bytes and
    orders of the answer."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    connection.request("GET", "/exchange/1c?type=sale&mode=query", headers=headers)
    response = connection.getresponse()
    size, documents, tail = 0, 0, b""
    while block := response.read(1 << 20):
        size += len(block)
        documents += (tail + block).count(DOCUMENT_END)
        tail = block[-len(DOCUMENT_END) + 1:]
    seconds = time.perf_counter() - started
    if response.status != 200:
        raise SystemExit(f"1C exchange query: HTTP {response.status}")
    return {"s": seconds, "mb": size / 1e6, "orders": documents}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_export(kind: str, port: int) -> dict:
    """1C's `query` for N_EXPORT orders of five items each through the real server, repeated without
    `success` (so each run hands out the same orders), then the `success` that confirms them. The
    orders are in a database of their own: the list's million have no items. Peak memory is the
    high-water mark of the gunicorn worker that served the query."""
    db = Database(kind)
    try:
        db.cli("migrate", "--verbosity", "0")
        key = db.cli("create-api-key", "--role", "integration").strip().splitlines()[-1]
        log(f"  loading {N_EXPORT:,} orders of five items for the export")
        started = time.perf_counter()
        subprocess.run([PY, BENCH / "load_orders.py", str(N_EXPORT)], env=db.env, check=True)
        load_s = time.perf_counter() - started
        db.env["EXCHANGE_1C_ORDERS_PER_QUERY"] = str(N_EXPORT)
        server = db.serve(port)
        try:
            basic = base64.b64encode(f"1c:{key}".encode()).decode()
            cookie = one_c_call(port, "checkauth", {"Authorization": f"Basic {basic}"}).decode().split("\n")
            headers = {"Cookie": f"{cookie[1]}={cookie[2]}"}
            one_c_call(port, "init&version=2.08", headers)
            baseline = max(rss_mb(pid) for pid in gunicorn_workers(server.pid))
            runs = []
            for r in range(RUNS):
                runs.append(timed_query(port, headers))
                log(f"  export run {r}: {runs[-1]}")
            if any(run["orders"] != N_EXPORT for run in runs):
                raise SystemExit(f"export: expected {N_EXPORT} orders each run, got {[r['orders'] for r in runs]}")
            peak = max(peak_rss_mb(pid) for pid in gunicorn_workers(server.pid))
            confirm_started = time.perf_counter()
            one_c_call(port, "success", headers)
            confirm_s = time.perf_counter() - confirm_started
            after = timed_query(port, headers)  # nothing is due once 1C has confirmed
        finally:
            stop(server)
    finally:
        db.close()
    return {"export": {"orders": N_EXPORT, **median_of(runs), "peak_rss_mb": round(peak, 1),
                       "baseline_rss_mb": round(baseline, 1), "success_s": round(confirm_s, 2),
                       "empty_query_s": round(after["s"], 3), "load_s": round(load_s, 1)}}


# ---- the report ----


def summarize(raw: dict, info: dict) -> dict:
    fastest = max(raw["intake"], key=lambda c: raw["intake"][c]["per_s"])  # the product's best concurrency
    fastest_pair_ratios = [r["ratio"] for r in raw["intake_rounds"][fastest]]
    rss = {**raw["intake_rss_mb"], **raw["lifecycle_rss_mb"]}
    return {
        "intake_orders_per_s": round(raw["intake"][fastest]["per_s"], 1),
        "intake_ceiling_per_s": round(max(v["per_s"] for v in raw["ceiling"].values()), 1),
        "storage_limit_per_s": round(raw["storage"]["per_s"], 1),
        "intake_ratio": raw["pair_ratio"][fastest],
        "intake_storage_ratio": raw["pair_storage_ratio"][fastest],
        "intake_ratio_concurrency": int(fastest),
        "intake_ratio_pair_range": [min(fastest_pair_ratios), max(fastest_pair_ratios)],
        "intake_c32_orders_per_s": round(raw["intake"]["32"]["per_s"], 1),
        "lifecycle_orders_per_s": raw["lifecycle"]["per_s"],
        "lifecycle_floor_per_s": raw["lifecycle"].get("floor_per_s"),
        "list_p99_ms_1m": max(raw["list"][q]["p99_ms"] for q in ("filtered_first_page", "filtered_deep_page")),
        "list_orders": raw["list_orders"],
        "export_100k_s": raw["export"]["s"],
        "export_100k_peak_mb": raw["export"]["peak_rss_mb"],
        "export_orders": raw["export"]["orders"],
        "server_rss_mb": max(rss.values()) if rss else None,
        "server_rss_mb_note": "max VmRSS of one gunicorn worker after the intake and after the lifecycle load",
        "detail": raw,
    }


def lifecycle_floor_lines(lifecycle: dict) -> list[str]:
    if "floor_calls_per_s" not in lifecycle:
        return []
    return [f"- The framework's floor, measured after each run with the same 8 sessions: "
            f"`GET /api/v1/auth/me` (sign-in check and answer, no order, no transaction) at "
            f"{lifecycle['floor_calls_per_s']:.0f} calls/s, so six calls that did nothing would allow "
            f"{lifecycle['floor_per_s']:.1f} lifecycles/s (`lifecycle_floor_per_s`)."]


def intake_section(r: dict) -> list[str]:
    """Section 1 of a database's report. A results.json from before the runs were paired (read by
    --report-only) has no rounds: its ratios are those of the medians of two separate series."""
    d = r["detail"]
    rounds = d.get("intake_rounds")
    out = ["### 1. Intake (`POST /api/v1/orders`, 5 items)", ""]
    if rounds:
        out += [f"Measured in pairs. `orderdesk serve` and the ceiling app run side by side on two ports for the "
                f"whole intake, each idle while the other is measured. For each concurrency and each of {RUNS} runs "
                "the runner measures the product and at once the ceiling, or the ceiling first: the order alternates "
                "from pair to pair. Then the storage limit. This VM's speed drifts by up to ±40% from minute to "
                "minute, so each ratio is taken within a pair, and the table gives the median of the products, the "
                "median of the ceilings and the median of the pairs' ratios, with their range.", "",
                "Before each timed run the runner waits until the product's worker has sent every e-mail owed (no "
                "outbox message pending or sending) and, on SQLite, copies the WAL into the database (a TRUNCATE "
                "checkpoint), so no run pays for the pages another left. The product's figure includes its worker's "
                "e-mail work, done "
                "while the orders come in (one e-mail per order); the ceiling writes its outbox row as done and "
                "leaves the worker nothing to do.", ""]
    out += ["| concurrency | product orders/s | p50 ms | p99 ms | ceiling orders/s | p50 ms | p99 ms | "
            "intake/ceiling | range of the pairs | intake/storage |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in map(str, CONCURRENCIES):
        p, ce = d["intake"][c], d["ceiling"][c]
        if rounds:
            ratios = [pair["ratio"] for pair in rounds[c]]
            ratio, storage_ratio = d["pair_ratio"][c], d["pair_storage_ratio"][c]
            spread = f"{min(ratios):.2f}–{max(ratios):.2f}"
        else:
            ratio, spread, storage_ratio = p["per_s"] / ce["per_s"], "—", p["per_s"] / d["storage"]["per_s"]
        out.append(f"| {c} | {p['per_s']:.0f} | {p['p50_ms']:.1f} | {p['p99_ms']:.1f} | {ce['per_s']:.0f} | "
                   f"{ce['p50_ms']:.1f} | {ce['p99_ms']:.1f} | {ratio:.2f} | {spread} | {storage_ratio:.2f} |")
    out += cpu_table(d)
    s = d["storage"]
    storage_runs = f", the median of {sum(map(len, rounds.values()))} runs, one after each pair" if rounds else ""
    out += ["", f"Storage limit (the same transactions, plain SQL, in-process, one connection): "
            f"{s['per_s']:.0f} orders/s, p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms{storage_runs}.", ""]
    if rounds:
        out += ["Every round in the order measured:", "",
                "| concurrency | run | first | product orders/s | ceiling orders/s | intake/ceiling | "
                "storage orders/s | intake/storage |", "|---|---|---|---|---|---|---|---|"]
        for c, pairs in rounds.items():
            out += [f"| {c} | {run} | {pair['first']} | {pair['product']['per_s']:.0f} | "
                    f"{pair['ceiling']['per_s']:.0f} | {pair['ratio']:.3f} | {pair['storage']['per_s']:.0f} | "
                    f"{pair['storage_ratio']:.3f} |" for run, pair in enumerate(pairs, 1)]
        out.append("")
    where = (f"at c={r['intake_ratio_concurrency']}, where the product is fastest; medians of its {RUNS} pairs"
             if rounds else "best concurrency")
    return out + [f"Ratios ({where}): intake/ceiling **{r['intake_ratio']}**, "
                  f"intake/storage **{r['intake_storage_ratio']}**.", ""]


def cpu_table(d: dict) -> list[str]:
    """Where an order's CPU went, product beside ceiling (results from before this was measured
    have none)."""
    if "web_cpu_ms" not in d["intake"][str(CONCURRENCIES[0])]:
        return []
    out = ["", "CPU per order, in ms (medians of the runs): the server's web processes, its worker (the product's "
           "e-mails, counted until all are sent), the load generator; and how busy the 2 cores were during the "
           "load. On PostgreSQL the database server's own CPU is in the busy share only.", "",
           "| concurrency | product web | product worker | load | machine busy | ceiling web | load | machine busy |",
           "|---|---|---|---|---|---|---|---|"]
    for c in map(str, CONCURRENCIES):
        p, ce = d["intake"][c], d["ceiling"][c]
        out.append(f"| {c} | {p['web_cpu_ms']:.2f} | {p['other_cpu_ms']:.2f} | {p['load_cpu_ms']:.2f} | "
                   f"{p['machine_busy']:.0%} | {ce['web_cpu_ms']:.2f} | {ce['load_cpu_ms']:.2f} | "
                   f"{ce['machine_busy']:.0%} |")
    return out


def export_section(d: dict) -> list[str]:
    e = d.get("export")
    if e is None:  # results of a run before the exchange existed
        return ["### 4. CommerceML export", "", "Not measured in this run.", ""]
    return ["### 4. CommerceML export", "",
            f"1C's `query` for {e['orders']:,} orders of five items each (plus the delivery line), CommerceML 2.08 "
            "in windows-1251, through `orderdesk serve`, read in 1 MB blocks; repeated without `success`, so "
            f"every run hands out the same orders. Loaded in {e['load_s']} s.", "",
            "| figure | value |", "|---|---|",
            f"| seconds to the last byte (median) | {e['s']:.1f} |",
            f"| answer size | {e['mb']:.0f} MB ({e['mb'] * 1e6 / e['orders']:,.0f} bytes an order) |",
            f"| peak RSS of the serving worker (VmHWM) | {e['peak_rss_mb']} MB (idle workers: {e['baseline_rss_mb']} MB) |",
            f"| `success` confirming them | {e['success_s']} s |",
            f"| the next `query`, nothing due | {e['empty_query_s'] * 1000:.0f} ms |", ""]


def markdown(results: dict) -> str:
    m = results["machine"]
    out = ["# orderdesk benchmarks", "",
           f"Written by `make bench` (`bench/run.py`) on {results['date']}. Medians of {RUNS} runs. "
           f"The list was measured with **N = {N_LIST:,} orders** (BENCH_ORDERS); "
           f"intake runs of {N_INTAKE} orders, lifecycle runs of {N_LIFECYCLES} orders.", "",
           "## Machine", "",
           f"- CPU: {m['cpu']}, {m['cores']} cores; RAM {m['ram_gb']} GB; Linux {m['kernel']}",
           f"- Python {m['python']}" + (f" ({m['interpreter']})" if "interpreter" in m else "")
           + f", Django {m['django']}, SQLite {m['sqlite']}, PostgreSQL {m['postgresql']}",
           f"- Server: `orderdesk serve` (gunicorn gthread, {WORKERS} workers × {THREADS} threads, plus the worker "
           "process); load from the runner's threads over loopback with keep-alive connections (a lean HTTP "
           "client, `bench/lean_http.py`), in a separate process from the server.", ""]
    out += ["## Summary", "", "| figure | " + " | ".join(results["databases"]) + " | target |", "|---|" +
            "---|" * len(results["databases"]) + "---|"]
    # key: (target text, test of a value, databases the target is for)
    targets = {"intake_orders_per_s": ("", None, ()), "intake_ceiling_per_s": ("", None, ()),
               "storage_limit_per_s": ("", None, ()), "intake_ratio": ("≥ 0.55", lambda v: v >= 0.55, ("sqlite", "postgres")),
               "intake_storage_ratio": ("", None, ()),
               "lifecycle_orders_per_s": ("≥ 100 (SQLite)", lambda v: v >= 100, ("sqlite",)),
               "lifecycle_floor_per_s": ("", None, ()),
               "list_p99_ms_1m": ("< 25", lambda v: v < 25, ("sqlite", "postgres")),
               "server_rss_mb": ("< 200", lambda v: v < 200, ("sqlite", "postgres")),
               "export_100k_s": ("", None, ()), "export_100k_peak_mb": ("", None, ())}
    missed = []
    for key, (target, test, applies) in targets.items():
        cells = []
        for db in results["databases"]:
            value = results["databases"][db].get(key)
            cell = "n/a" if value is None else f"{value}"
            if test and value is not None and db in applies:
                ok = test(value)
                cell += " ✓" if ok else " ✗"
                if not ok:
                    missed.append(f"`{key}` on {db}: {value} (target {target})")
            cells.append(cell)
        out.append(f"| `{key}` | " + " | ".join(cells) + f" | {target} |")
    if missed:
        out += ["", "**Targets missed in this run:** " + "; ".join(missed) + "."]
    paired = all("intake_rounds" in r["detail"] for r in results["databases"].values())
    pairs_note = ("`intake_ratio` and `intake_storage_ratio` are the medians of the pairs' ratios at the "
                  "concurrency where the product is fastest (" +
                  ", ".join(f"{db}: c={r['intake_ratio_concurrency']}" for db, r in results["databases"].items()) +
                  "); " if paired else "")
    out += ["", "`intake_orders_per_s` and `intake_ceiling_per_s` are the best of concurrency 1, 8, 32; " + pairs_note +
            "`list_p99_ms_1m` is the worse p99 of the filtered first and deep pages at N orders "
            f"(N = {N_LIST:,} in this run).", ""]
    for db, r in results["databases"].items():
        d = r["detail"]
        out += [f"## {db}", "", *intake_section(r),
                "### 2. Lifecycle", "",
                "Create (administrator session), agree, 300.00 and 500.00 in cash at the cash desk (two «Аванс» "
                "receipts), issue (one «Полный расчёт»), close; 8 concurrent sessions; counted once all 3 receipts "
                "of every order are registered by the worker with the emulator.", "",
                f"- {d['lifecycle']['per_s']:.1f} lifecycles/s (API calls alone: "
                f"{d['lifecycle']['api_only_per_s']:.1f}/s)", *lifecycle_floor_lines(d['lifecycle']), "",
                f"### 3. Order list at {d['list_orders']:,} orders (loaded in {d['list_load_s']} s)", "",
                "| query | p50 ms | p99 ms | rows |", "|---|---|---|---|"]
        for name, f in d["list"].items():
            out.append(f"| {name} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} | {f['rows']} |")
        out += ["", "Filtered: `status=agreed`, a 30-day `created_from`/`created_to` window; deep: a cursor "
                "into the middle of the window (filtered) or 90% down the list (unfiltered).", "",
                "### Server memory (VmRSS per gunicorn worker, MB)", "",
                f"- after intake: {d['intake_rss_mb']}", f"- after lifecycle: {d['lifecycle_rss_mb']}", ""]
        out += export_section(d)
    notes = BENCH / "NOTES.md"  # hand-written findings (profiles, before/after), kept across runs
    if notes.exists():
        out += [notes.read_text().rstrip(), ""]
    return "\n".join(out)


def main() -> None:
    if sys.argv[1:] == ["--report-only"]:  # rewrite RESULTS.md from results.json
        results = json.loads((OUT / "results.json").read_text())
        global N_LIST, N_INTAKE, N_LIFECYCLES, RUNS
        params = results["parameters"]
        N_LIST, N_INTAKE, N_LIFECYCLES, RUNS = (params["list_orders"], params["intake_orders_per_run"],
                                                params["lifecycles_per_run"], params["runs"])
        (OUT / "RESULTS.md").write_text(markdown(results))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    info = machine()
    results = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": info,
               "parameters": {"list_orders": N_LIST, "intake_orders_per_run": N_INTAKE,
                              "lifecycles_per_run": N_LIFECYCLES, "runs": RUNS, "concurrency": list(CONCURRENCIES),
                              "gunicorn": {"workers": WORKERS, "threads": THREADS, "worker_class": "gthread"}},
               "databases": {}}
    port = 8870
    for kind in DATABASES:
        log(f"== {kind} ==")
        db = Database(kind)
        try:
            if kind == "postgres":
                info["postgresql"] = db.version()
            db.cli("migrate", "--verbosity", "0")
            raw = bench_intake(db, port)
            raw.update(bench_lifecycle(db, port + 2))
            raw.update(bench_list(db, port + 3))
        finally:
            db.close()
        raw.update(bench_export(kind, port + 4))
        results["databases"][kind] = summarize(raw, info)
        port += 10
    (OUT / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    (OUT / "RESULTS.md").write_text(markdown(results))
    log(f"wrote {OUT / 'RESULTS.md'} and {OUT / 'results.json'}")
    for db, r in results["databases"].items():
        log(f"{db}: intake {r['intake_orders_per_s']}/s, ceiling {r['intake_ceiling_per_s']}/s, storage "
            f"{r['storage_limit_per_s']}/s, intake/ceiling {r['intake_ratio']}, intake/storage "
            f"{r['intake_storage_ratio']}, lifecycle {r['lifecycle_orders_per_s']}/s, list p99 {r['list_p99_ms_1m']} ms, "
            f"RSS {r['server_rss_mb']} MB")


if __name__ == "__main__":
    main()
