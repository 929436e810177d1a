"""chaosali's one HTTP layer: a request and its expectation, one attempt and its verdict, a
capped body reader, one wording of failures.

``attempt`` never raises on a failed check or an unreachable service: it returns why it failed.
Every request has one wall-clock deadline, its ``timeout``: connect, TLS, headers, body and
redirects together, however slowly a server trickles. Request header values, bodies and URL
credentials or query strings never reach a log, a reason or a repr: they can hold tokens.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from chaosali.core import args
from chaosali.core.args import DEFAULT_STATUS, cause, display_url, origin
from chaosali.core.errors import InvalidArgument

# A health answer is small; reading at most this much keeps a wrong URL (a large file) from
# turning a probe into a download.
MAX_BODY = 4 * 1024 * 1024
_CHUNK = 64 * 1024
_MAX_REDIRECTS = 5
# Member checks must reach the member itself: these override any HTTP(S)_PROXY/ALL_PROXY from
# the environment (requests drops proxy keys whose value is None).
NO_PROXY: dict[str, Any] = {"http": None, "https": None, "all": None}
# Request headers that carry credentials by their name (Authorization, Cookie, X-Api-Key,
# X-Auth-Token...): never sent on past a redirect to another origin. requests itself drops only
# Authorization, and only when the host changes, not the port.
_CREDENTIAL_HEADER = re.compile(r".*(auth|cookie|token|key|secret|passw|session|signature).*", re.IGNORECASE)


class _NoQueryString(logging.Filter):
    """urllib3 logs each request's URL at DEBUG (and a redirect's target), query string included,
    which can carry a token: shown as ``?…``, as :func:`display_url` shows a URL."""

    _QUERY = re.compile(r"\?[^\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self._QUERY.sub("?…", record.getMessage()), None
        return True


for _logger in ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry"):
    logging.getLogger(_logger).addFilter(_NoQueryString())


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    timeout: float
    verify: bool | str = True
    # Values may be credentials: kept out of repr, so out of tracebacks and logs.
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    body: str | None = field(default=None, repr=False)
    json: Any = field(default=None, repr=False)
    auth: tuple[str, str] | None = field(default=None, repr=False)  # basic auth: user, password
    cert: tuple[str, str] | None = None  # a client certificate: the paths of its PEM file and key
    follow_redirects: bool = False
    direct: bool = False  # bypass environment proxies
    # more headers that carry credentials (lower case), dropped as _CREDENTIAL_HEADER's are
    credential_headers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Expectation:
    status: Collection[int] = DEFAULT_STATUS
    contains: str | None = None
    pattern: re.Pattern | None = None
    json_path: str | None = None
    json_value: Any = None  # None: the path only has to exist

    @property
    def reads_body(self) -> bool:
        return self.contains is not None or self.pattern is not None or self.json_path is not None


def check(
    url: Any,
    method: Any = "GET",
    headers: Any = None,
    body: Any = None,
    json: Any = None,
    status: Any = None,
    contains: Any = None,
    pattern: Any = None,
    json_path: Any = None,
    json_value: Any = None,
    timeout: Any = 5.0,
    verify_tls: Any = True,
    ca_bundle: Any = None,
    follow_redirects: Any = False,
    credential_headers: Any = None,
) -> tuple[Request, Expectation]:
    """An HTTP check as ``service_available`` takes it (and the impact recorder's HTTP targets):
    the request to send and what its answer must show, every argument checked."""
    if body is not None and json is not None:
        raise InvalidArgument("give either body (text) or json (an object), not both")
    request = Request(
        method=args.http_method(method),
        url=args.http_url(url),
        timeout=args.seconds(timeout, "timeout"),
        verify=args.tls_verify(verify_tls, ca_bundle),
        headers=args.http_headers(headers),
        body=_text(body, "body"),
        json=json,
        follow_redirects=args.boolean(follow_redirects, "follow_redirects"),
        credential_headers=args.header_names(credential_headers, "credential_headers"),
    )
    expect = Expectation(
        status=args.http_status(status),
        contains=_text(contains, "contains"),
        pattern=args.pattern(pattern),
        json_path=args.json_path(json_path),
        json_value=json_value,
    )
    return request, expect


def _text(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidArgument(f"{name} must be text")
    return value


def attempt(request: Request, expect: Expectation) -> tuple[int | None, str | None]:
    """Send ``request`` once: (HTTP status or None, why the check failed or None if it passed)."""
    try:
        with _response(request) as response:
            return response.status_code, _verdict(response, expect)
    except requests.RequestException as error:
        return None, why(error, request.timeout)


def fetch(request: Request, what: str) -> tuple[int, str]:
    """The status and body of one answer to ``request``, the body as served: asked for unencoded
    (``Accept-Encoding: identity``), refused if encoded all the same (a small gzip answer can
    decode into gigabytes) or larger than ``MAX_BODY``. ``LookupError`` naming ``what`` and why."""
    try:
        with _response(replace(request, headers={**request.headers, "Accept-Encoding": "identity"})) as response:
            encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise LookupError(f"{what}: the answer is encoded ({encoding[:40]}) although the request asked for it "
                                  "as it is (Accept-Encoding: identity); refused, a decoded body can be far larger "
                                  "than what was sent")
            body = _capped(response.raw.stream(_CHUNK, decode_content=False), MAX_BODY)
    except requests.RequestException as error:
        raise LookupError(f"{what}: {why(error, request.timeout, request.url)}") from None
    if len(body) > MAX_BODY:
        raise LookupError(f"{what}: the answer is larger than {MAX_BODY // 2**20} MiB; refused")
    return response.status_code, body.decode(response.encoding or "utf-8", errors="replace")


def get_json(request: Request, what: str) -> Any:
    """The JSON document a 2xx answer to ``request`` carries; ``LookupError`` saying why if none."""
    status, text = fetch(request, what)
    if not 200 <= status < 300:
        raise LookupError(f"{what}: HTTP {status}, expected 200-299")
    try:
        return json.loads(text)
    except ValueError:
        raise LookupError(f"{what}: the body is not JSON") from None


def dig(document: Any, path: str) -> Any:
    """The value at a dotted path (``status.ready``, ``items.0.name``; a leading ``$.`` is allowed)."""
    value = document
    for key in args.path_keys(path):
        if isinstance(value, list):
            # ASCII digits only: int() would also take "-1" (the last item), " 1" and "١"
            if not (key.isascii() and key.isdigit() and int(key) < len(value)):
                raise LookupError(f"no item {key!r} in a list of {len(value)}")
            value = value[int(key)]
        elif isinstance(value, dict):
            if key not in value:
                raise LookupError(f"no key {key!r}")
            value = value[key]
        else:
            raise LookupError(f"{key!r} is below a {type(value).__name__}, not an object or a list")
    return value


# -- one request ------------------------------------------------------------------------------


@contextmanager
def _response(request: Request) -> Iterator[requests.Response]:
    # A fresh session per attempt: a new connection each time, so that a retry or a VIP attempt
    # is never answered over a kept-alive connection to the server that answered before.
    with _Deadline(request.timeout) as deadline, _watched(_Session(request.credential_headers), deadline) as session:
        try:
            response = session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                json=request.json,
                auth=request.auth,
                cert=request.cert,
                timeout=request.timeout,
                verify=request.verify,
                allow_redirects=request.follow_redirects,
                proxies=dict(NO_PROXY) if request.direct else None,
                stream=True,  # the body is read only if a check needs it, and at most MAX_BODY
            )
            try:
                yield response
            finally:
                response.close()
        finally:
            # the watchdog cut the connection: say so, not how it broke (a cut body may even end as if complete)
            if deadline.expired:
                raise DeadlinePassed(deadline.connected) from None


class DeadlinePassed(requests.exceptions.Timeout):
    """A request's deadline passed before its answer was complete (``connected``: after a
    connection was made)."""

    def __init__(self, connected: bool) -> None:
        super().__init__()
        self.connected = connected


class _Session(requests.Session):
    """A session that, on a redirect to another origin (scheme, host or port, as urllib3 reads
    them), drops every header that carries credentials: by its name, or marked by the user."""

    def __init__(self, marked: frozenset[str]) -> None:
        super().__init__()
        self._marked = marked

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        super().rebuild_auth(prepared_request, response)
        try:
            moved = origin(prepared_request.url or "")[:3] != origin(response.request.url or "")[:3]
        except ValueError:
            moved = True
        if moved:
            for header in [h for h in prepared_request.headers
                           if h.lower() in self._marked or _CREDENTIAL_HEADER.fullmatch(h)]:
                del prepared_request.headers[header]


def _verdict(response: requests.Response, expect: Expectation) -> str | None:
    code = response.status_code
    if code not in expect.status:
        return f"HTTP {code}, expected {_describe_status(expect.status)}"
    if not expect.reads_body:
        return None
    text = _read_text(response)
    if expect.contains is not None and expect.contains not in text:
        return f"HTTP {code}, but the body does not contain {expect.contains!r}"
    if expect.pattern is not None and not expect.pattern.search(text):
        return f"HTTP {code}, but the body does not match the pattern {expect.pattern.pattern!r}"
    if expect.json_path is not None:
        try:
            document = json.loads(text)
        except ValueError:
            return f"HTTP {code}, but the body is not JSON"
        try:
            found = dig(document, expect.json_path)
        except LookupError as error:
            return f"HTTP {code}, but JSON path {expect.json_path!r} is missing: {error}"
        if expect.json_value is not None and not _same(found, expect.json_value):
            shown, wanted = _short(found), _short(expect.json_value)
            return f"HTTP {code}, but JSON path {expect.json_path!r} is {shown}, expected {wanted}"
    return None


def _read_text(response: requests.Response) -> str:
    return _capped(response.iter_content(_CHUNK), MAX_BODY)[:MAX_BODY].decode(response.encoding or "utf-8",
                                                                             errors="replace")


def _capped(chunks: Iterable[bytes], limit: int) -> bytes:
    """At most ``limit`` + 1 bytes of a body: one more than the cap tells that it was larger."""
    data = bytearray()
    for chunk in chunks:
        data += chunk
        if len(data) > limit:
            break
    return bytes(data[:limit + 1])


def _same(found: Any, expected: Any) -> bool:
    # In Python True == 1: a JSON true must not pass for an expected 1, nor the other way round.
    if isinstance(found, bool) or isinstance(expected, bool):
        return isinstance(found, bool) and isinstance(expected, bool) and found == expected
    return found == expected


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _describe_status(status: Collection[int]) -> str:
    if isinstance(status, range):
        return f"{status.start}-{status.stop - 1}"
    return ", ".join(str(code) for code in sorted(status))


def why(error: requests.RequestException, timeout: float, url: str | None = None) -> str:
    """Why a request failed, worded from the exception's type and innermost cause: requests' own
    messages repeat the URL, query string included, which can carry a token (and a cause that
    quotes ``url`` anyway, as too many redirects do, has its query and password masked)."""
    said = cause(error)
    parts = urlsplit(url or "")
    for secret in (parts.query, parts.password):
        if secret:
            said = said.replace(secret, "***")
    if isinstance(error, requests.exceptions.InvalidHeader):  # its message quotes the value
        return "a header name or value is not valid HTTP (values are not shown)"
    if isinstance(error, DeadlinePassed):
        return f"no {'complete answer' if error.connected else 'connection'} within {timeout:g} s"
    if isinstance(error, requests.exceptions.SSLError):
        return f"TLS failed: {said}"
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return f"no connection within {timeout:g} s"
    if isinstance(error, requests.exceptions.ReadTimeout):
        return f"no answer within {timeout:g} s"
    if isinstance(error, requests.exceptions.ConnectionError):
        return f"connection failed: {said}"
    return f"{type(error).__name__}: {said}"


# -- a download under one deadline ------------------------------------------------------------


def download(request: Request, max_bytes: int, what: str, error: type[Exception] = LookupError) -> bytes:
    """The body of a GET of ``request.url`` as served (asked and checked unencoded, never
    decoded), at most ``max_bytes``. ``request.timeout`` bounds all of it (connect, TLS, headers,
    body, every redirect) however slowly the server trickles: a watchdog shuts the download's
    sockets at the deadline. Redirects are followed only within the same host and port (or from
    http to https on the same host), never from https to http: its headers may carry a token.
    Raises ``error`` naming ``what`` and the URL as :func:`display_url` shows it."""
    where = display_url(request.url)
    try:
        with _Deadline(request.timeout) as deadline, _watched(requests.Session(), deadline) as session:
            try:
                return _follow(session, request, max_bytes, what, deadline, error)
            finally:
                # the watchdog cut the connection: say why, not how it broke (a cut body may
                # even end as if it were complete)
                if deadline.expired:
                    raise error(f"fetching {what} from {where} took more than {request.timeout:g} s") from None
    except requests.RequestException as failed:
        hint = ("; give its CA certificate as ca_bundle, or, knowingly, set verify_tls to false"
                if isinstance(failed, requests.exceptions.SSLError) else "")
        raise error(f"cannot fetch {what} from {where}: {why(failed, request.timeout, request.url)}{hint}") from None


def _follow(session: requests.Session, request: Request, max_bytes: int, what: str, deadline: _Deadline,
            error: type[Exception]) -> bytes:
    # identity encoding: the bytes as served, nothing decompressed (an encoded answer is refused)
    headers = {**request.headers, "Accept-Encoding": "identity"}
    url = request.url
    for _ in range(_MAX_REDIRECTS + 1):
        with session.get(url, headers=headers, stream=True, timeout=max(0.001, deadline.remaining),
                         verify=request.verify, allow_redirects=False) as response:
            if not response.is_redirect:
                return _served(response, max_bytes, what, display_url(request.url), error)
            url = _redirect(url, response.headers["Location"], what, error)
    raise error(f"cannot fetch {what} from {display_url(request.url)}: more than {_MAX_REDIRECTS} redirects")


def _redirect(url: str, location: str, what: str, error: type[Exception] = LookupError) -> str:
    """The URL a redirect leads to, once it proves to stay on the same host and port as the HTTP
    library itself reads both (https on the same host, from http, too), never from https to
    http. A Location with a backslash or userinfo is refused outright: parsers disagree on where
    such a URL goes (``http://a:1\\@b:2/``: urlsplit says b, urllib3 connects to a)."""
    where, target = display_url(url), urljoin(url, location)
    before: tuple[str, str, int, bool] | None
    after: tuple[str, str, int, bool] | None
    try:
        before, after = origin(url), origin(target)
    except ValueError:
        before = after = None
    if "\\" in location or before is None or after is None or after[3]:
        raise error(
            f"the URL of {what}, {where}, redirects to a Location with a backslash, userinfo or no valid host, "
            "which HTTP clients read differently; refused, so that its headers reach no one else: give the final URL"
        )
    if before[0] == "https" and after[0] == "http":
        raise error(
            f"the URL of {what}, {where}, redirects from https to plain http ({display_url(target)}); refused: "
            f"{what} and the request's headers would cross the network unencrypted"
        )
    upgrade = before[:3] == ("http", after[1], 80) and (after[0], after[2]) == ("https", 443)
    if after[0] not in ("http", "https") or (before[1:3] != after[1:3] and not upgrade):
        raise error(
            f"the URL of {what}, {where}, redirects to another server ({display_url(target)}); redirects are "
            "followed only within the same host and port, so that its headers reach no one else: give the "
            "final URL"
        )
    return target


def _served(response: requests.Response, max_bytes: int, what: str, where: str, error: type[Exception]) -> bytes:
    if response.status_code != 200:
        raise error(f"cannot fetch {what} from {where}: HTTP {response.status_code} {response.reason}")
    too_large = error(f"the body at {where} is larger than max_bytes ({max_bytes} bytes), too large for {what}; "
                      "check the URL (or raise max_bytes)")
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise error(
            f"the server at {where} sent {what} encoded ({encoding[:40]}) although the request asked for "
            "it as it is (Accept-Encoding: identity); refused: a digest is of the bytes as served, and a "
            "decoded body could be far larger than what was sent. Serve it without Content-Encoding"
        )
    declared = response.headers.get("Content-Length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    body = _capped(response.raw.stream(_CHUNK, decode_content=False), max_bytes)  # as served, never decoded
    if len(body) > max_bytes:
        raise too_large
    return body


def _watched(session: requests.Session, deadline: _Deadline) -> requests.Session:
    """``session``, its sockets shut by ``deadline`` when it passes."""
    for scheme in ("http://", "https://"):
        session.mount(scheme, _DeadlineAdapter(deadline))
    return session


class _Deadline:
    """A watchdog for one request or download: when ``seconds`` have passed it shuts down every socket the
    download opened, so a blocked read returns at once. Per-read timeouts alone let a server
    that sends one byte every half second (in its headers or its body) go on for ever."""

    def __init__(self, seconds: float) -> None:
        self._ends = time.monotonic() + seconds
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.expired = False

    @property
    def remaining(self) -> float:
        return self._ends - time.monotonic()

    @property
    def connected(self) -> bool:
        with self._lock:
            return bool(self._sockets)

    def watch(self, sock: socket.socket) -> None:
        # a duplicate: TLS detaches the socket it wraps, but a shutdown through any of its
        # duplicates still ends the connection
        duplicate = sock.dup()
        with self._lock:
            self._sockets.append(duplicate)
            if self.expired:
                _shut(duplicate)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed by the other end
        pass


class _DeadlineAdapter(HTTPAdapter):
    """An adapter whose connections (direct or through a proxy) hand their sockets to a
    :class:`_Deadline` as soon as they exist."""

    def __init__(self, deadline: _Deadline) -> None:
        self._deadline = deadline  # before HTTPAdapter.__init__, which makes the pool manager
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self._watch(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        fresh = proxy not in self.proxy_manager
        manager = super().proxy_manager_for(proxy, **kwargs)
        if fresh:
            self._watch(manager)
        return manager

    def _watch(self, manager: Any) -> None:
        deadline = self._deadline

        def watched(pool: type) -> type:
            class Connection(pool.ConnectionCls):  # type: ignore[name-defined,misc]
                def _new_conn(self) -> socket.socket:  # urllib3's one place that opens the socket
                    sock = super()._new_conn()
                    deadline.watch(sock)
                    return sock

            return type(pool.__name__, (pool,), {"ConnectionCls": Connection})

        manager.pool_classes_by_scheme = {scheme: watched(pool) for scheme, pool in manager.pool_classes_by_scheme.items()}
