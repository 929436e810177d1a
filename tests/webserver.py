"""One HTTP(S) test server on 127.0.0.1, in the test's own process: answers by path (a body, a
redirect, an encoded body, a trickle), and the requests it saw. The kubeconfig download, its
hardening and the lock's fetched kubeconfig use it; the service probes' servers run in lab hosts."""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class Answer:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)  # Location, Content-Encoding...
    content_length: bool = True  # False: the body ends with the connection, its size unknown beforehand
    needs_header: tuple[str, str] | None = None  # else 401
    trickle: str | None = None  # "body" or "headers": one byte every half second, for ever (almost)


def body(data: bytes, **options) -> Answer:
    return Answer(data, **options)


def redirect(location: str) -> Answer:
    return Answer(status=302, headers={"Location": location}, content_length=False)


def encoded(encoding: str, data: bytes) -> Answer:
    """Sent with this Content-Encoding whatever the request's Accept-Encoding says."""
    return Answer(data, headers={"Content-Encoding": encoding})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.seen.append((self.path, dict(self.headers)))
        answer = self.server.routes.get(self.path) or self.server.routes.get(urlsplit(self.path).path)
        if answer is None:
            self.send_error(404)
        elif answer.needs_header and self.headers.get(answer.needs_header[0]) != answer.needs_header[1]:
            self.send_error(401)
        elif answer.trickle == "headers":
            self.wfile.write(b"HTTP/1.0 200 OK\r\n")
            self._trickle(b"X-Slow: " + b"y" * 100)
        else:
            self._send(answer)

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if answer.content_length and not answer.trickle:
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if answer.trickle == "body":
            self._trickle(b"x" * 100)
            return
        try:
            for start in range(0, len(answer.body), 65536):
                self.wfile.write(answer.body[start:start + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on a body too large: as it should

    def _trickle(self, data: bytes) -> None:
        try:
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass  # the client hung up: what a deadline does

    def log_message(self, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    routes: dict[str, Answer]
    seen: list[tuple[str, dict[str, str]]]


class LocalServer:
    """The server, HTTPS when given a certificate and its key."""

    def __init__(self, certificate: Path | None = None, key: Path | None = None) -> None:
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.routes, self.httpd.seen = {}, []
        self.scheme = "http"
        if certificate:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certificate, key)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def routes(self) -> dict[str, Answer]:
        return self.httpd.routes

    @property
    def seen(self) -> list[tuple[str, dict[str, str]]]:
        """Each request: its path (with the query) and headers."""
        return self.httpd.seen

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def serve(self, path: str, data: bytes, **options) -> str:
        """Answer ``data`` at ``path``; its URL."""
        self.routes[path] = Answer(data, **options)
        return self.url(path)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
