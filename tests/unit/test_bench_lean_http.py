"""The benchmark's load client (bench/lean_http.py) reads HTTP/1.1 answers as the servers send them:
by Content-Length, in chunks, to the end of a closed connection; and it sends a request again only
when the server closed an idle keep-alive connection without answering."""

import socket
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from lean_http import Connection, ConnectionLost  # noqa: E402


class ThenClose(bytes):
    """A scripted answer after which the server closes the connection."""


class ScriptedServer:
    """Accepts connections one after another; for each, reads requests and answers each with the next
    scripted bytes (None: close the connection without answering)."""

    def __init__(self, answers: list[bytes | None]):
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_request(self, conn: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += conn.recv(65536)
        return head + b"\r\n\r\n" + body

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # the test is over
                return
            self.connections += 1
            with conn:
                while self.answers:
                    request = self._read_request(conn)
                    if request is None:
                        break
                    answer = self.answers.pop(0)
                    if answer is None:
                        break
                    self.requests.append(request)
                    conn.sendall(answer)
                    if isinstance(answer, ThenClose):
                        break

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def scripted():
    servers = []

    def make(*answers):
        server = ScriptedServer(list(answers))
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def test_answers_by_content_length_on_one_kept_connection(scripted):
    server = scripted(b'HTTP/1.1 201 Created\r\nContent-Length: 8\r\nSet-Cookie: a=1; Path=/\r\n\r\n{"id":1}',
                      b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    connection = Connection(server.port, timeout=5)
    first = connection.request("POST", "/api/v1/orders", b'{"x": 1}', {"Content-Type": "application/json"})
    second = connection.request("GET", "/api/v1/auth/me")
    assert (first.status, first.body) == (201, b'{"id":1}')
    assert ("set-cookie", "a=1; Path=/") in first.headers
    assert (second.status, second.body) == (200, b"{}")
    assert server.connections == 1
    assert server.requests[0].startswith(b"POST /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Content-Length: 8\r\n" in server.requests[0] and server.requests[0].endswith(b'\r\n\r\n{"x": 1}')


def test_reads_a_chunked_answer_with_trailers(scripted):
    server = scripted(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Sum: 1\r\n\r\n",
                      b"HTTP/1.1 204 No Content\r\n\r\n")
    connection = Connection(server.port, timeout=5)
    assert connection.request("GET", "/").body == b"Wikipedia in \r\n\r\nchunks."
    assert connection.request("GET", "/").status == 204  # the trailers were all read: the next answer is whole


def test_an_answer_without_length_runs_to_the_end_of_the_connection(scripted):
    server = scripted(ThenClose(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"),
                      b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz")
    connection = Connection(server.port, timeout=5)
    assert connection.request("GET", "/").body == b"all of it"
    assert connection.request("GET", "/").body == b"z"
    assert server.connections == 2


def test_an_idle_connection_the_server_closed_is_opened_again_and_the_request_sent_once_more(scripted):
    server = scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", None,
                      b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb")
    connection = Connection(server.port, timeout=5)
    assert connection.request("GET", "/first").body == b"a"
    assert connection.request("POST", "/second", b"{}").body == b"b"
    assert server.connections == 2
    assert [r.split(b" ")[1] for r in server.requests] == [b"/first", b"/second"]


def test_a_new_connection_closed_without_an_answer_is_an_error_not_a_second_send(scripted):
    server = scripted(None, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(ConnectionLost):
        Connection(server.port, timeout=5).request("POST", "/api/v1/orders", b"{}")
    assert server.requests == []


def test_an_answer_cut_short_is_an_error(scripted):
    server = scripted(ThenClose(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"))
    with pytest.raises(ConnectionError, match="middle of an answer"):
        Connection(server.port, timeout=5).request("GET", "/")
