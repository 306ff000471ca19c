"""The load generator's HTTP/1.1 client: one keep-alive connection, a request written in one
`sendall`, the response read by Content-Length (or chunks) with its headers split by hand.

The load runs on the same two cores as the server it measures, so what the client spends is taken
from the server. `http.client` parses every response's headers with the `email` package and
reads the body through a buffered file: a third of a millisecond a call here, some 2 ms of every
lifecycle's six calls (bench/NOTES.md, stop 19)."""

import socket
from typing import NamedTuple

HOST = "127.0.0.1"


class Response(NamedTuple):
    status: int
    headers: list[tuple[str, str]]  # as sent, names in lower case
    body: bytes


class ConnectionLost(ConnectionError):
    """The server closed the connection before it answered."""


class Connection:
    def __init__(self, port: int, timeout: float = 60):
        self.port, self.timeout = port, timeout
        self.host_header = f"Host: {HOST}:{port}\r\n"
        self.sock: socket.socket | None = None
        self.pending = b""  # bytes read past the last response

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.pending = b""

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Response:
        """Send and read the answer. A keep-alive connection the server closed while it stood idle
        (gunicorn's keep-alive is 2 s) is opened again and the request sent once more: the server
        had not read it, since nothing came back."""
        head = [f"{method} {path} HTTP/1.1\r\n", self.host_header]
        head += [f"{name}: {value}\r\n" for name, value in (headers or {}).items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(body or b'')}\r\n")
        message = "".join(head).encode("latin-1") + b"\r\n" + (body or b"")
        reused = self.sock is not None
        try:
            return self._exchange(method, message)
        except (ConnectionLost, BrokenPipeError, ConnectionResetError):
            self.close()
            if not reused:
                raise
            return self._exchange(method, message)

    def _exchange(self, method: str, message: bytes) -> Response:
        if self.sock is None:
            self.sock = socket.create_connection((HOST, self.port), timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(message)
        end = self._fill_until(b"\r\n\r\n", nothing_yet=True)
        lines = self.pending[:end].decode("latin-1").split("\r\n")
        self.pending = self.pending[end + 4:]
        status = int(lines[0].split(" ", 2)[1])
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        fields = dict(headers)
        closing = fields.get("connection", "").lower() == "close"
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunks()
        elif "content-length" in fields:
            body = self._take(int(fields["content-length"]))
        else:  # the body runs to the end of the connection
            while chunk := self.sock.recv(1 << 16):
                self.pending += chunk
            body, self.pending, closing = self.pending, b"", True
        if closing:
            self.close()
        return Response(status, headers, body)

    def _fill_until(self, marker: bytes, nothing_yet: bool = False) -> int:
        while (found := self.pending.find(marker)) < 0:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                if nothing_yet and not self.pending:
                    raise ConnectionLost("the server closed the connection")
                raise ConnectionError("the server closed the connection in the middle of an answer")
            self.pending += chunk
        return found

    def _take(self, size: int) -> bytes:
        while len(self.pending) < size:
            chunk = self.sock.recv(max(size - len(self.pending), 1 << 16))
            if not chunk:
                raise ConnectionError("the server closed the connection in the middle of an answer")
            self.pending += chunk
        taken, self.pending = self.pending[:size], self.pending[size:]
        return taken

    def _read_chunks(self) -> bytes:
        parts = []
        while True:
            end = self._fill_until(b"\r\n")
            size = int(self.pending[:end].split(b";", 1)[0], 16)
            self.pending = self.pending[end + 2:]
            if size == 0:
                while self._take(self._fill_until(b"\r\n") + 2) != b"\r\n":  # trailer fields, to the empty line
                    pass
                return b"".join(parts)
            parts.append(self._take(size))
            self._take(2)
