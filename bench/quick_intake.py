"""A quick figure for order intake: `orderdesk serve` on a fresh SQLite file, loaded from this
process over loopback with keep-alive connections. Prints orders/s, p50 and p99.

    .venv/bin/python bench/quick_intake.py --orders 2000 --concurrency 8

The full benchmark suite (ceilings, PostgreSQL, the lifecycle, the list at 1M orders) builds on it.
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ORDERDESK = Path(sys.executable).parent / "orderdesk"


def order(n: int) -> bytes:
    return json.dumps({
        "external_id": f"bench-{n}",
        "customer": {"name": "Покупатель", "email": f"buyer{n % 500}@example.com", "phone": "+79161234567"},
        "items": [{"sku": f"S{i}", "name": f"Товар {i}", "quantity": "1", "price": "100.00", "vat_rate": "22"}
                  for i in range(5)],
        "delivery": {"method": "courier", "address": "Москва", "price": "300.00"},
    }).encode()


def load(port: int, key: str, orders: int, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(orders))

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            started = time.perf_counter()
            connection.request("POST", "/api/v1/orders", order(n), headers)
            response = connection.getresponse()
            response.read()
            if response.status != 201:
                raise SystemExit(f"order {n}: HTTP {response.status}")
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as var:
        env = {**os.environ, "ORDERDESK_VAR_DIR": var, "DATABASE_URL": f"sqlite:///{var}/bench.sqlite3",
               "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend"}
        subprocess.run([ORDERDESK, "migrate", "--verbosity", "0"], env=env, check=True)
        key = subprocess.run([ORDERDESK, "create-api-key", "--role", "site"], env=env, check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
        server = subprocess.Popen([ORDERDESK, "serve", "--port", str(args.port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    http.client.HTTPConnection("127.0.0.1", args.port).request("GET", "/api/v1/openapi.json")
                    break
                except OSError:
                    time.sleep(0.1)
            elapsed, latencies = load(args.port, key, args.orders, args.concurrency)
        finally:
            server.terminate()
            server.wait(20)
    latencies.sort()
    print(f"{args.orders} orders, concurrency {args.concurrency}: {args.orders / elapsed:.0f} orders/s, "
          f"p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
