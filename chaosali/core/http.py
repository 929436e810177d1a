"""chaosali's one HTTP layer: a request and its expectation, one attempt and its verdict, a
capped body reader, one wording of failures.

``attempt`` never raises on a failed check or an unreachable service: it returns why it failed.
Request header values, bodies and URL credentials or query strings never reach a log, a reason or
a repr: they can hold tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests

from chaosali.core import args
from chaosali.core.args import DEFAULT_STATUS, cause, origin
from chaosali.core.errors import InvalidArgument

# A health answer is small; reading at most this much keeps a wrong URL (a large file) from
# turning a probe into a download.
MAX_BODY = 4 * 1024 * 1024
# Member checks must reach the member itself: these override any HTTP(S)_PROXY/ALL_PROXY from
# the environment (requests drops proxy keys whose value is None).
NO_PROXY = {"http": None, "https": None, "all": None}
# Request headers that carry credentials by their name (Authorization, Cookie, X-Api-Key,
# X-Auth-Token...): never sent on past a redirect to another origin. requests itself drops only
# Authorization, and only when the host changes, not the port.
_CREDENTIAL_HEADER = re.compile(r".*(auth|cookie|token|key|secret|passw|session|signature).*", re.IGNORECASE)


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
    follow_redirects: bool = False
    direct: bool = False  # bypass environment proxies
    # more headers that carry credentials (lower case), dropped as _CREDENTIAL_HEADER's are
    credential_headers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Expectation:
    status: Container[int] = DEFAULT_STATUS
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
        return None, _why(error, request.timeout)


def get_json(request: Request, what: str) -> Any:
    """The JSON document a 2xx answer to ``request`` carries; ``LookupError`` saying why if none."""
    try:
        with _response(request) as response:
            if not 200 <= response.status_code < 300:
                raise LookupError(f"{what}: HTTP {response.status_code}, expected 200-299")
            text = _read_text(response)
    except requests.RequestException as error:
        raise LookupError(f"{what}: {_why(error, request.timeout)}") from None
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
    with _Session(request.credential_headers) as session:
        response = session.request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.body,
            json=request.json,
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


class _Session(requests.Session):
    """A session that, on a redirect to another origin (scheme, host or port, as urllib3 reads
    them), drops every header that carries credentials: by its name, or marked by the user."""

    def __init__(self, marked: frozenset[str]) -> None:
        super().__init__()
        self._marked = marked

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        super().rebuild_auth(prepared_request, response)
        try:
            moved = origin(prepared_request.url)[:3] != origin(response.request.url)[:3]
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
    data = bytearray()
    for chunk in response.iter_content(64 * 1024):
        data += chunk
        if len(data) >= MAX_BODY:
            break
    return bytes(data[:MAX_BODY]).decode(response.encoding or "utf-8", errors="replace")


def _same(found: Any, expected: Any) -> bool:
    # In Python True == 1: a JSON true must not pass for an expected 1, nor the other way round.
    if isinstance(found, bool) or isinstance(expected, bool):
        return isinstance(found, bool) and isinstance(expected, bool) and found == expected
    return found == expected


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _describe_status(status: Container[int]) -> str:
    if isinstance(status, range):
        return f"{status.start}-{status.stop - 1}"
    return ", ".join(str(code) for code in sorted(status))


def _why(error: requests.RequestException, timeout: float) -> str:
    # Worded from the exception's type and innermost cause: requests' own messages repeat the
    # URL, query string included, which can carry a token.
    if isinstance(error, requests.exceptions.InvalidHeader):  # its message quotes the value
        return "a header name or value is not valid HTTP (values are not shown)"
    if isinstance(error, requests.exceptions.SSLError):
        return f"TLS failed: {cause(error)}"
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return f"no connection within {timeout:g} s"
    if isinstance(error, requests.exceptions.ReadTimeout):
        return f"no answer within {timeout:g} s"
    if isinstance(error, requests.exceptions.ConnectionError):
        return f"connection failed: {cause(error)}"
    return f"{type(error).__name__}: {cause(error)}"
