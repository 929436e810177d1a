"""Where the real servers behind a VIP come from: a list, an HTTP endpoint, or a Kubernetes
Service's EndpointSlices. Each source gives members as ``{"address", "port"}`` dicts (plus
``"ready"`` from Kubernetes), in the order the source lists them, without duplicates."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosali.errors import InvalidArgument
from chaosali.service import _http

# Host names and IPv4 addresses; an address with a ':' must be IPv6. Nothing else may reach a URL.
_ADDRESS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Service and namespace names are DNS labels; checking them keeps the label selector exact.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def check_address(value: Any, name: str) -> str:
    address = value.strip("[]") if isinstance(value, str) else ""
    if not (_ADDRESS.match(address) or ":" in address and _is_ipv6(address)):
        raise InvalidArgument(f"{name} {value!r} is not a host name or an IP address")
    return address


def _is_ipv6(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.partition("%")[0]).version == 6
    except ValueError:
        return False


def check_port(value: Any, name: str) -> int:
    port = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and value.isdigit():
        port = int(value)
    if port is None or not 0 < port < 65536:
        raise InvalidArgument(f"{name}: port {value!r} must be a number from 1 to 65535")
    return port


def from_list(items: Any, default_port: int, where: str = "members") -> list[dict]:
    """Members from ``"address:port"`` strings or ``{"address", "port"}`` objects; a member
    without a port listens on ``default_port`` (the VIP's, as for an IPVS real server)."""
    if not isinstance(items, list):
        raise InvalidArgument(
            f"{where} must be a list of 'address:port' or {{'address', 'port'}}, not {type(items).__name__}"
        )
    return unique([_member(item, default_port, where) for item in items])


def from_url(url: str, path: str | None, timeout: float, verify: bool | str, default_port: int) -> list[dict]:
    """Members listed by the JSON document at ``url`` (at dotted ``path`` inside it, if given)."""
    where = f"the member list at {_http.display_url(url)}"
    request = _http.Request("GET", url, timeout, verify, headers={"Accept": "application/json"})
    try:
        document = _http.get_json(request, where)
        items = _http.dig(document, path) if path else document
    except LookupError as error:
        # The VIP cannot be judged without its members: this is the probe failing, not a finding.
        raise ActivityFailed(f"cannot read {where}: {error}") from None
    return from_list(items, default_port, where)


def from_service(
    service: str,
    namespace: str,
    default_port: int,
    timeout: float,
    configuration: Configuration,
    secrets: Secrets,
) -> list[dict]:
    """Every address x TCP port of the Service's EndpointSlices, ready or not (``"ready"`` says)."""
    for name, value in (("service", service), ("namespace", namespace)):
        if not isinstance(value, str) or not _DNS_LABEL.match(value):
            raise InvalidArgument(f"{name} {value!r} is not a Kubernetes name (lower-case letters, digits, '-')")
    # lazily: only this source needs the Kubernetes client, which is slow to import
    from kubernetes.client import DiscoveryV1Api
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from chaosali.cluster.client import new_api_client

    where = f"the EndpointSlices of service {namespace}/{service}"
    # retries=0: a probe answers within its timeout, not after urllib3's three retries
    api = new_api_client(configuration, secrets, retries=0)
    try:
        slices = DiscoveryV1Api(api).list_namespaced_endpoint_slice(
            namespace, label_selector=f"kubernetes.io/service-name={service}", _request_timeout=timeout
        ).items
    except ApiException as error:  # its text carries the response headers and body: not shown
        raise ActivityFailed(f"cannot list {where}: HTTP {error.status} {error.reason}") from None
    except (HTTPError, OSError) as error:
        raise ActivityFailed(f"cannot list {where}: the Kubernetes API is unreachable: {_http.cause(error)}") from None
    finally:
        api.close()

    members = []
    for endpoint_slice in slices:
        # The probe checks TCP; a port without a number means "all ports" and stands for the VIP's.
        if endpoint_slice.ports:
            ports = [p.port or default_port for p in endpoint_slice.ports if (p.protocol or "TCP") == "TCP"]
        else:
            ports = [default_port]
        for endpoint in endpoint_slice.endpoints or []:
            ready = endpoint.conditions.ready if endpoint.conditions else None
            for address in endpoint.addresses or []:
                for port in ports:
                    # The API says an unknown readiness (null) is to be taken as ready.
                    members.append({"address": address, "port": port, "ready": ready is not False})
    return unique(members)


def unique(members: list[dict]) -> list[dict]:
    """The members in order, each address:port once (a member moving between slices shows twice)."""
    seen: dict[tuple[str, int], dict] = {}
    for member in members:
        seen.setdefault((member["address"], member["port"]), member)
    return list(seen.values())


def _member(item: Any, default_port: int, where: str) -> dict:
    if isinstance(item, str):
        address, port = _split(item)
    elif isinstance(item, dict) and "address" in item:
        address, port = item["address"], item.get("port")
    else:
        raise InvalidArgument(
            f"{where}: {item!r} is not a member: give 'address:port' or {{'address': ..., 'port': ...}}"
        )
    return {
        "address": check_address(address, f"{where}: member {item!r}"),
        "port": default_port if port is None else check_port(port, f"{where}: member {item!r}"),
    }


def _split(text: str) -> tuple[str, str | None]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address."""
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        if not rest:
            return address, None
        return address, rest[1:] if rest.startswith(":") else rest  # the latter is refused as a port
    if text.count(":") == 1:
        address, _, port = text.partition(":")
        return address, port
    return text, None
