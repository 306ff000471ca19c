"""The rows one site order writes, with plain SQL in one transaction (sqlite3 or psycopg): the
counterparty (found or made), the order number counter, the order, its items, the «order.created»
event (the customer's notification too) and the outbox message — the same tables and rows
`POST /api/v1/orders` writes. Used by the HTTP ceiling (ceiling_app.py) and the storage limit."""

import hashlib
import json
import sqlite3
import threading
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import urlsplit

_local = threading.local()


def connect(url: str):
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///"):], timeout=20, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=20000")
        return conn
    import psycopg

    parts = urlsplit(url)
    return psycopg.connect(host=parts.hostname, port=parts.port, user=parts.username, password=parts.password,
                           dbname=parts.path.lstrip("/"), autocommit=True)


def thread_connection(url: str):
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = connect(url)
    return conn


def _now(is_sqlite: bool):
    now = datetime.now(timezone.utc)
    return now.replace(tzinfo=None).isoformat(" ") if is_sqlite else now


def write_order(conn, raw: bytes) -> int:
    """Parse the JSON body and write its rows in one transaction; the new order's id."""
    data = json.loads(raw)
    is_sqlite = isinstance(conn, sqlite3.Connection)
    cur = conn.cursor()

    def q(sql):
        return sql.replace("%s", "?") if is_sqlite else sql

    items = data["items"]
    rows = []
    items_total = Decimal("0")
    for position, item in enumerate(items, 1):
        amount = Decimal(item["quantity"]) * Decimal(item["price"]) - Decimal(item.get("discount", "0"))
        items_total += amount
        rows.append((position, item["sku"], item["name"], item.get("unit", "шт"), item["quantity"], item["price"],
                     item.get("discount", "0"), str(amount), item["vat_rate"], item.get("kind", "goods")))
    delivery = data["delivery"]
    total = items_total + Decimal(delivery["price"])
    customer = data["customer"]
    fingerprint = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    now = _now(is_sqlite)
    cur.execute("BEGIN IMMEDIATE" if is_sqlite else "BEGIN")
    try:
        cur.execute(q("SELECT id FROM orders_counterparty WHERE email = %s AND phone = %s AND name = %s "
                      "ORDER BY id LIMIT 1"), (customer["email"], customer["phone"], customer["name"]))
        found = cur.fetchone()
        if found:
            customer_id = found[0]
        else:
            cur.execute(q("INSERT INTO orders_counterparty (kind, name, email, phone, inn, language, created_at) "
                          "VALUES (%s, %s, %s, %s, '', 'ru', %s) RETURNING id"),
                        ("person", customer["name"], customer["email"], customer["phone"], now))
            customer_id = cur.fetchone()[0]
        cur.execute(q("UPDATE core_counter SET value = value + 1 WHERE name = %s RETURNING value"), ("order_number",))
        number = f"{cur.fetchone()[0]:06d}"
        search = f"{number} {customer['name'].lower()} {customer['email']} {customer['phone']}"
        cur.execute(q(
            "INSERT INTO orders_order (number, source, external_id, intake_fingerprint, customer_name, customer_email, "
            "customer_phone, search_text, status_changed_at, payment_status, currency, items_total, delivery_price, "
            "total, paid_amount, delivery_method, delivery_address, comment, deletion_mark, is_quick, created_at, "
            "updated_at, version, customer_id, status_id) VALUES (%s, 'site', %s, %s, %s, %s, %s, %s, %s, 'not_paid', "
            "'RUB', %s, %s, %s, 0, %s, %s, %s, %s, %s, %s, %s, 1, %s, 'pending_approval') RETURNING id"),
            (number, data["external_id"], fingerprint, customer["name"], customer["email"], customer["phone"], search,
             now, str(items_total), delivery["price"], str(total), delivery["method"], delivery.get("address", ""),
             data.get("comment", ""), False, False, now, now, customer_id))
        order_id = cur.fetchone()[0]
        cur.executemany(q(
            "INSERT INTO orders_orderitem (position, sku, name, unit, quantity, price, discount, amount, vat_rate, "
            "kind, order_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"), [(*r, order_id) for r in rows])
        payload = json.dumps({"source": "site", "status": "pending_approval", "total": str(total), "items": len(items),
                              "state": {"status": "pending_approval", "payment_status": "not_paid",
                                        "total": str(total), "paid": "0.00"}})
        cur.execute(q("INSERT INTO orders_orderevent (order_number, code, actor_label, actor_role, payload, created_at, "
                      "order_id) VALUES (%s, 'order.created', 'site:bench', 'site', %s, %s, %s) RETURNING id"),
                    (number, payload, now, order_id))
        event_id = cur.fetchone()[0]
        # Written as already delivered, so the product's worker does not pick them up later.
        cur.execute(q("INSERT INTO core_outboxmessage (topic, payload, state, attempts, next_attempt_at, last_error, "
                      "created_at) VALUES ('orders.customer_email', %s, 'done', 0, %s, '', %s)"),
                    (json.dumps({"event_id": event_id}), now, now))
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    return order_id
