"""Where the real servers behind a VIP come from: a list, an HTTP endpoint, or a Kubernetes
Service's EndpointSlices. Each source gives members as ``{"address", "port"}`` dicts (plus
``"ready"`` from Kubernetes), in the order the source lists them, without duplicates."""

from __future__ import annotations

from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosali.core.args import address, display_url, dns_label, port, split_endpoint
from chaosali.core.errors import InvalidArgument
from chaosali.core import http


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
    where = f"the member list at {display_url(url)}"
    request = http.Request("GET", url, timeout, verify, headers={"Accept": "application/json"})
    try:
        document = http.get_json(request, where)
        items = http.dig(document, path) if path else document
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
    service, namespace = dns_label(service, "service"), dns_label(namespace, "namespace")
    # lazily: only this source needs the Kubernetes client, which is slow to import
    from kubernetes.client import DiscoveryV1Api

    from chaosali.cluster.api import connect

    # retries=0: a probe answers within its timeout, not after urllib3's retries
    with connect(configuration, secrets, retries=0, timeout=timeout) as cluster:
        slices = cluster.call(
            f"list the EndpointSlices of service {namespace}/{service}",
            DiscoveryV1Api(cluster.client).list_namespaced_endpoint_slice,
            namespace,
            label_selector=f"kubernetes.io/service-name={service}",
        ).items

    members = []
    for endpoint_slice in slices:
        # The probe checks TCP; a port without a number means "all ports" and stands for the VIP's.
        if endpoint_slice.ports:
            ports = [p.port or default_port for p in endpoint_slice.ports if (p.protocol or "TCP") == "TCP"]
        else:
            ports = [default_port]
        for endpoint in endpoint_slice.endpoints or []:
            ready = endpoint.conditions.ready if endpoint.conditions else None
            for ip in endpoint.addresses or []:
                for number in ports:
                    # The API says an unknown readiness (null) is to be taken as ready.
                    members.append({"address": ip, "port": number, "ready": ready is not False})
    return unique(members)


def unique(members: list[dict]) -> list[dict]:
    """The members in order, each address:port once (a member moving between slices shows twice)."""
    seen: dict[tuple[str, int], dict] = {}
    for member in members:
        seen.setdefault((member["address"], member["port"]), member)
    return list(seen.values())


def _member(item: Any, default_port: int, where: str) -> dict:
    if isinstance(item, str):
        user, host, number = split_endpoint(item)
        if user is not None:
            raise InvalidArgument(f"{where}: member {item!r} has a user; give 'address:port'")
    elif isinstance(item, dict) and "address" in item:
        host, number = item["address"], item.get("port")
    else:
        raise InvalidArgument(
            f"{where}: {item!r} is not a member: give 'address:port' or {{'address': ..., 'port': ...}}"
        )
    return {
        "address": address(host, f"{where}: member {item!r}"),
        "port": default_port if number is None else port(number, f"{where}: member {item!r} port"),
    }
