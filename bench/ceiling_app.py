"""The HTTP ceiling: a minimal WSGI app on the same gunicorn settings as `orderdesk serve` that
parses the same JSON and writes the same rows with plain SQL in one transaction (plainsql.py).

    DATABASE_URL=... gunicorn --chdir bench ceiling_app:application
"""

import json
import os

from plainsql import thread_connection, write_order

URL = os.environ["DATABASE_URL"]


def application(environ, start_response):
    if environ["REQUEST_METHOD"] != "POST":
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length)
    order_id = write_order(thread_connection(URL), raw)
    body = json.dumps({"id": order_id}).encode()
    start_response("201 Created", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
