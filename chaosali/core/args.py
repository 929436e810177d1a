"""The argument vocabulary: how every activity and control reads what an experiment gives it.

Experiments give JSON values, or the text a ``${var}`` substitution makes of them, so each reader
takes both. Every reader refuses with :class:`InvalidArgument`, naming the argument, the value and
what would be right. Numbers are strict: no booleans (``true`` is not 1 s), no NaN or infinity,
no digits other than ASCII ones, and a text must be a number as a whole, not begin with one.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import ssl
from collections.abc import Collection
from typing import Any, Callable, Iterable, TypeVar
from urllib.parse import urlsplit

from chaoslib.types import Configuration

from chaosali.core.errors import InvalidArgument

__all__ = [
    "number",
    "whole",
    "seconds",
    "duration",
    "percent",
    "port",
    "ports",
    "boolean",
    "flag",
    "choice",
    "setting",
    "address",
    "interface",
    "ipv4_networks",
    "dns_label",
    "host_path",
    "label_selector",
    "http_headers",
    "display_url",
    "origin",
    "cause",
    "MAX_DURATION",
]

T = TypeVar("T")

MAX_DURATION = 86400.0  # a fault that should outlive a day is a mistake, not a drill
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_INTEGER = re.compile(r"[+-]?\d+", re.ASCII)
_FLOAT_MAX = 1.7976931348623157e308
_ADDRESS = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*", re.ASCII)
# a network interface name (Linux: at most 15 characters); no leading "-": tc or ping would read
# it as an option. Linux itself allows "$(...)" in a name, so nothing wider is taken.
_INTERFACE = re.compile(r"[A-Za-z0-9_.@][A-Za-z0-9_.@-]{0,14}", re.ASCII)
_HOST_PATH = re.compile(r"/[A-Za-z0-9._/-]{0,255}", re.ASCII)
_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?", re.ASCII)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")  # an RFC 9110 token
# visible ASCII, inner spaces and tabs: no line break to smuggle a header, nothing that
# requests would refuse later with the value (a token) quoted in its message
_HEADER_VALUE = re.compile(r"(?:[\x21-\x7e](?:[\x20-\x7e\t]{0,8190}[\x21-\x7e])?)?")


def number(value: Any, name: str, low: float, high: float | None = None, *, above: bool = False) -> float:
    """A number from ``low`` (excluded when ``above``) to ``high`` (no upper bound if None)."""
    converted = _real(value)
    if converted is not None and _within(converted, low, high, above) and abs(converted) < _FLOAT_MAX:
        return float(converted)
    raise InvalidArgument(f"{name} {_shown(value)} must be a number {_span(low, high, above)}")


def whole(value: Any, name: str, low: int, high: int | None = None) -> int:
    """A whole number from ``low`` to ``high`` (no upper bound if None); ``2.0`` is 2."""
    converted = _real(value)
    if isinstance(converted, float):
        converted = int(converted) if converted.is_integer() else None
    if converted is None or not _within(converted, low, high, False):
        raise InvalidArgument(f"{name} {_shown(value)} must be a whole number {_span(low, high, False)}")
    return converted


def seconds(value: Any, name: str, high: float | None = MAX_DURATION, *, zero: bool = False) -> float:
    """A number of seconds above 0 (or 0 and above, with ``zero``), at most ``high``."""
    return number(value, f"{name} (seconds)", 0, high, above=not zero)


def duration(value: Any, name: str = "duration") -> float:
    """How long a fault lasts: above 0 s and at most a day."""
    return seconds(value, name)


def percent(value: Any, name: str = "percent", *, zero: bool = False) -> float:
    """A percentage above 0 (or 0 and above, with ``zero``) and at most 100."""
    return number(value, name, 0, 100, above=not zero)


def port(value: Any, name: str = "port") -> int:
    """A TCP or UDP port, 1 to 65535."""
    return whole(value, name, 1, 65535)


def ports(value: Any, name: str = "ports", most: int | None = None) -> list[int]:
    """One port or a list of them (None: none), at most ``most``."""
    if value is None:
        return []
    listed = [port(one, f"{name}: port") for one in (value if isinstance(value, list) else [value])]
    if most is not None and len(listed) > most:
        raise InvalidArgument(f"{name}: at most {most} ports, not {len(listed)}; split the fault in two")
    return listed


def boolean(value: Any, name: str) -> bool:
    """True or false, from a JSON boolean or the text a substitution gives."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise InvalidArgument(f"{name} must be true or false, not {value!r}")


def flag(configuration: Configuration, key: str) -> bool | None:
    """A true/false configuration value, or None when it is not set."""
    value = (configuration or {}).get(key)
    return None if value is None else boolean(value, f"configuration {key}")


def setting(configuration: Configuration, key: str, default: T, read: Callable[[Any, str], T]) -> T:
    """A configuration value read by ``read`` (one of these readers), or ``default`` when unset."""
    value = (configuration or {}).get(key)
    return default if value is None else read(value, f"configuration {key}")


def choice(value: Any, name: str, options: Iterable[str]) -> str:
    """One of ``options``, as written (case-insensitive)."""
    known = list(options)
    text = value.lower() if isinstance(value, str) else None
    if text not in known:
        raise InvalidArgument(f"{name} {value!r} must be one of {', '.join(known)}")
    return text


def address(value: Any, name: str) -> str:
    """A host name, an IPv4 address or an IPv6 address (brackets allowed), whose scope, if any
    (``fe80::1%eth0``), is an interface name: nothing that could carry anything else into a
    command line or a URL. Python's ``ipaddress`` takes any text as a scope, ``$(...)`` included."""
    text = value.strip("[]") if isinstance(value, str) else ""
    ip, percent, scope = text.partition("%")
    if _ADDRESS.fullmatch(text) or (":" in ip and _is_ipv6(ip) and (not percent or _INTERFACE.fullmatch(scope))):
        return text
    raise InvalidArgument(f"{name} {value!r} is not a host name or an IP address (an IPv6 scope, after '%', "
                          "is an interface name: letters, digits, '_.@-')")


def split_endpoint(text: str) -> tuple[str | None, str, str | None]:
    """``[user@]host[:port]`` in its parts, user and port None when absent (unchecked: the
    caller checks each). IPv6 is bare (``fe80::1``, no port then) or bracketed (``[fd00::5]:2222``)."""
    head, at, tail = text.partition("@")
    # an '@' after an IPv6 address is in its scope (fe80::1%veth0@if5), not after a user
    user, rest = (head, tail) if at and not set(head) & set(":[%") else (None, text)
    if rest.startswith("["):
        host, _, after = rest[1:].partition("]")
        return user, host, (after[1:] if after.startswith(":") else after) or None  # junk is refused as a port
    if rest.count(":") == 1:
        host, _, number = rest.partition(":")
        return user, host, number
    return user, rest, None


def interface(value: Any, name: str = "interface") -> str:
    """A network interface name: letters, digits and '_.@-', at most 15, not beginning with '-'."""
    if not (isinstance(value, str) and _INTERFACE.fullmatch(value)):
        raise InvalidArgument(
            f"{name} {value!r} is not a network interface name (letters, digits, '_.@-', at most 15, "
            "not beginning with '-')"
        )
    return value


def ipv4_networks(value: Any, name: str) -> list[str]:
    """IPv4 addresses or CIDRs (one or a list; None: none), normalised (``10.0.0.0/24``)."""
    if value is None:
        return []
    networks = []
    for one in value if isinstance(value, list) else [value]:
        try:
            network = ipaddress.ip_network(one if isinstance(one, str) else "", strict=False)
        except ValueError:
            network = None
        if network is None or not one.isascii():
            raise InvalidArgument(f"{name} {one!r} is not an IPv4 address or CIDR (e.g. '10.0.0.5' or '10.0.0.0/24')")
        if network.version != 4:
            raise InvalidArgument(f"{name} {one!r}: only IPv4 is supported (iptables, not ip6tables)")
        networks.append(str(network))
    return networks


def dns_label(value: Any, name: str) -> str:
    """A Kubernetes name that is a DNS label (Services, namespaces): lower-case letters, digits, '-'."""
    if not isinstance(value, str) or not _DNS_LABEL.fullmatch(value):
        raise InvalidArgument(f"{name} {value!r} is not a Kubernetes name (lower-case letters, digits, '-')")
    return value


def host_path(value: Any, name: str) -> str:
    """An absolute path on a host, of letters, digits and '._/-', without '..': it reaches a remote
    shell and must name the file it looks like."""
    if not isinstance(value, str) or not _HOST_PATH.fullmatch(value) or "/../" in f"{value}/":
        raise InvalidArgument(f"{name} {value!r} must be an absolute path of letters, digits and '._/-', "
                              "without '..'")
    return value


def label_selector(value: Any, name: str = "label selector") -> str:
    """A label selector as text (``app=web,tier!=db``), from text or a ``{"key": "value"}`` object."""
    if isinstance(value, dict):
        value = ",".join(f"{key}={val}" if val != "" else str(key) for key, val in value.items())
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument(f"{name} {value!r} must be a non-empty selector such as 'app=web'")
    return value


def http_headers(value: Any, name: str = "headers") -> dict[str, str]:
    """HTTP headers (None: none): names that are tokens, values of visible ASCII on one line
    without surrounding blanks (numbers become text). Values may be credentials: a refusal
    names the header, never its value."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f'{name} must be an object of header names to values, e.g. {{"Accept": "application/json"}}')
    checked = {}
    for position, (header, text) in enumerate(value.items(), 1):
        if not isinstance(header, str) or not _HEADER_NAME.fullmatch(header):
            raise InvalidArgument(f"{name}: header #{position} has no valid name (letters, digits and !#$%&'*+.^_`|~-)")
        if isinstance(text, (int, float)) and not isinstance(text, bool) and math.isfinite(text):
            text = str(text)
        if not isinstance(text, str) or not _HEADER_VALUE.fullmatch(text):
            raise InvalidArgument(
                f"{name}: the value of {header} must be text of visible ASCII characters on one line, without "
                "leading or trailing blanks (the value is not shown: it may be a credential)"
            )
        checked[header] = text
    return checked


def display_url(url: Any) -> str:
    """A URL as it may be shown: no userinfo, and no query string or fragment (they may hold
    credentials); a query is shown as ``?…`` so that the reader knows there was one."""
    text = str(url)
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port_ = parts.port
    except ValueError:  # a port that is not a number: show nothing we cannot vouch for
        return "<malformed URL>"
    if not parts.netloc:
        return "<malformed URL>" if "@" in text else text.partition("?")[0].partition("#")[0]
    if ":" in host:
        host = f"[{host}]"
    shown = f"{parts.scheme}://{host}{f':{port_}' if port_ else ''}{parts.path}"
    return shown + ("?…" if parts.query else "")


def origin(url: str) -> tuple[str, str, int, bool]:
    """Where a request for ``url`` really goes, read as requests and urllib3 read it when they
    connect (``urlsplit`` reads ``http://a:1\\@b:2/`` as host b, urllib3 connects to a): scheme,
    host, port (the scheme's default when none) and whether the URL carries userinfo. ValueError
    when they cannot read it."""
    import requests  # here: the report reads this vocabulary too, and needs no HTTP client
    from urllib3.util import parse_url

    try:
        parts = parse_url(requests.Request("GET", url).prepare().url or "")
    except (requests.RequestException, ValueError) as error:
        raise ValueError(f"not a URL requests can send: {type(error).__name__}") from None
    scheme = parts.scheme or ""
    return scheme, (parts.host or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme, 0), bool(parts.auth)


# ---- HTTP requests and what their answers must show ------------------------------------------

DEFAULT_STATUS = range(200, 400)
_METHOD = re.compile(r"[A-Za-z]{1,32}")


def http_url(url: Any, name: str = "url") -> str:
    """An http:// or https:// URL with a host (and a port from 1 to 65535, if any)."""
    parts = urlsplit(url if isinstance(url, str) else "")
    try:
        valid = isinstance(url, str) and parts.scheme in ("http", "https") and bool(parts.hostname)
        valid = valid and (parts.port is None or parts.port > 0)  # .port raises on a bad port
    except ValueError:
        valid = False
    if not valid:
        shown = display_url(url) if isinstance(url, str) else repr(url)
        raise InvalidArgument(
            f"{name} {shown!r} is not a valid http:// or https:// URL with a host (and a port from 1 to 65535)"
        )
    return url


def http_method(method: Any) -> str:
    """An HTTP method, upper-cased."""
    if not isinstance(method, str) or not _METHOD.fullmatch(method):
        raise InvalidArgument(f"method {method!r} is not an HTTP method such as GET, HEAD or POST")
    return method.upper()


def http_status(status: Any) -> Collection[int]:
    """The status codes that pass: one, a list, or None for 200-399."""
    if status is None:
        return DEFAULT_STATUS
    codes = [status] if isinstance(status, int) and not isinstance(status, bool) else status
    if not isinstance(codes, list) or not codes or not all(
        isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599 for code in codes
    ):
        raise InvalidArgument(f"status {status!r} must be an HTTP status code or a list of them, e.g. [200, 204]")
    return frozenset(codes)


def header_names(names: Any, name: str) -> frozenset[str]:
    """Header names (None: none), lower-cased for comparison."""
    listed = names if isinstance(names, list) else [] if names is None else None
    if listed is None or not all(isinstance(one, str) and one for one in listed):
        raise InvalidArgument(f'{name} must be a list of header names, e.g. ["X-Session"]')
    return frozenset(one.lower() for one in listed)


def pattern(value: Any) -> re.Pattern | None:
    """A regular expression (None: none)."""
    if value is None:
        return None
    try:
        return re.compile(value)
    except (re.error, TypeError) as error:
        raise InvalidArgument(f"pattern {value!r} is not a regular expression: {error}") from None


def url_path(path: Any, name: str) -> str:
    """A URL path, starting with '/'."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidArgument(f"{name} {path!r} must be a URL path starting with '/'")
    return path


def json_path(path: Any, name: str = "json_path") -> str | None:
    """A dotted JSON path (None: none), as :func:`path_keys` splits it."""
    if path is None:
        return None
    if not isinstance(path, str) or "" in path_keys(path):
        raise InvalidArgument(f"{name} {path!r} must be a dotted path such as 'status.ready' or 'items.0.name'")
    return path


def path_keys(path: str) -> list[str]:
    """The keys of a dotted JSON path (``status.ready``, ``$.items.0.name``)."""
    path = path.strip()
    if path.startswith("$"):
        path = path[1:].lstrip(".")
    return path.split(".") if path else []


def tls_verify(verify_tls: Any, ca_bundle: Any) -> bool | str:
    """What an HTTP client's ``verify`` gets: the path of a CA bundle, or whether to check
    certificates at all. A CA bundle with verify_tls false is a contradiction, refused."""
    verify_tls = boolean(verify_tls, "verify_tls")
    if ca_bundle is None:
        return verify_tls
    if not verify_tls:
        raise InvalidArgument("ca_bundle and verify_tls false contradict each other: give one of them")
    path = os.path.expanduser(str(ca_bundle))
    if not os.path.isfile(path):
        raise InvalidArgument(f"ca_bundle {ca_bundle!r} is not a file: give the path of a PEM CA bundle")
    return path


def cause(error: BaseException) -> str:
    """The innermost cause of an error, in a few words: urllib3 and requests wrap the real cause
    (refused, timed out, certificate) in layers whose messages repeat URLs, queries included."""
    seen = set()
    while id(error) not in seen:
        seen.add(id(error))
        inner = getattr(error, "reason", None)  # urllib3's MaxRetryError
        if not isinstance(inner, BaseException):
            first = error.args[0] if error.args else None
            inner = first if isinstance(first, BaseException) else error.__cause__ or error.__context__
        if inner is None:
            break
        error = inner
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {error.verify_message}"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower() if error.strerror[:1].isupper() else error.strerror
    text = re.sub(r"^<[^>]*>: ", "", str(error))  # urllib3: "<...Connection object at 0x...>: "
    return text or type(error).__name__


def _real(value: Any) -> int | float | None:
    """The finite number a value stands for, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.fullmatch(text):
            return int(text)
        if _DECIMAL.fullmatch(text):
            converted = float(text)
            return converted if math.isfinite(converted) else None
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _within(value: int | float, low: float, high: float | None, above: bool) -> bool:
    # compared as they are: a huge int never becomes a float (10**400 would overflow)
    return (value > low if above else value >= low) and (high is None or value <= high)


def _span(low: float, high: float | None, above: bool) -> str:
    if high is None:
        return f"above {low:g}" if above else f"of {low:g} or more"
    return f"above {low:g} and at most {high:g}" if above else f"from {low:g} to {high:g}"


def _is_ipv6(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 6
    except ValueError:
        return False
