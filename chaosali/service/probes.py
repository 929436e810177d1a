"""Service probes for steady-state hypotheses: an HTTP(S) service answers as expected, and the real
servers behind a VIP answer.

Both return a small JSON object that a tolerance checks, and never raise because a service is
down or answers wrongly: that is a finding (``"ok": false`` with a reason), not a probe failure.
They raise ``chaosali.core.errors.InvalidArgument`` for a malformed argument, and
``ActivityFailed`` when ``vip_members`` cannot learn the members at all.

jsonpath tolerances need chaostoolkit-lib's ``jsonpath`` extra (the ``jsonpath2`` package);
``range`` tolerances work without it.
"""

import logging
import time
from collections.abc import Callable, Collection

from chaoslib.types import Configuration, Secrets

from chaosali.core import http
from chaosali.core.args import (
    address as read_address, choice, display_url, http_status, http_url, json_path, port as read_port, seconds,
    tls_verify, url_path, whole,
)
from chaosali.core.errors import EndpointError, InvalidArgument
from chaosali.core.fanout import Endpoint, connect_tcp, fan_out
from chaosali.service import _members

__all__ = ["service_available", "vip_members"]

logger = logging.getLogger("chaostoolkit")

_CHECKS = ("tcp", "http", "https")


def service_available(
    url: str,
    method: str = "GET",
    headers: dict = None,
    body: str = None,
    json: dict = None,
    status: list = None,
    contains: str = None,
    pattern: str = None,
    json_path: str = None,
    json_value: str = None,
    timeout: float = 5.0,
    retries: int = 0,
    retry_delay: float = 1.0,
    verify_tls: bool = True,
    ca_bundle: str = None,
    follow_redirects: bool = False,
    credential_headers: list = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Send an HTTP(S) request to `url` and check the answer.

    The request: `method` (default GET), `headers`, and a `body` (text) or
    `json` (an object, sent as JSON). `timeout` seconds to connect and to
    wait for data. TLS certificates are verified unless `verify_tls` is
    false; `ca_bundle` is the path of a PEM file of CAs to trust instead of
    the default ones (with verify_tls false it is refused: they contradict). Redirects are not followed unless `follow_redirects`;
    a redirect to another scheme, host or port gets no header that carries
    credentials: Authorization, Cookie, any whose name holds auth, token,
    key, secret, password, session or signature, and those named in
    `credential_headers` (a list).
    Proxies and CA bundle from the environment (HTTPS_PROXY,
    REQUESTS_CA_BUNDLE) apply as for any requests-based client.

    The checks, all of which must pass: the status is one of `status` (a
    code or a list of codes; default any of 200-399); the body contains the
    text `contains`; the body matches the regular expression `pattern`
    (re.search); the JSON body has a value at the dotted path `json_path`
    (`status.ready`, `items.0.name`), equal to `json_value` if given
    (compared as JSON: "UP" is a string; a number, true/false, an object
    or a list are taken too, and "1" does not equal 1).

    A failed check or an unreachable service is tried again up to `retries`
    times, `retry_delay` seconds apart. Returns
    {"ok": bool, "status": int or null, "elapsed": seconds, "attempts": n,
    "reason": str}: ok, status and reason of the last attempt (the reason
    says why it failed), elapsed seconds over all attempts.
    Header values are never logged nor returned.

    Tolerance: {"type": "jsonpath", "path": "$.ok", "expect": true}
    (needs chaostoolkit-lib[jsonpath]). A plain status tolerance such as
    200 or [200, 204] is compared with the "status" key, without the body
    checks.
    """
    request, expect = http.check(
        url, method, headers, body, json, status, contains, pattern, json_path, json_value, timeout,
        verify_tls, ca_bundle, follow_redirects, credential_headers,
    )
    tries = whole(retries, "retries", 0, 100) + 1
    delay = seconds(retry_delay, "retry_delay", zero=True)

    started = time.monotonic()
    for attempt in range(1, tries + 1):
        code, failure = http.attempt(request, expect)
        if failure is None or attempt == tries:
            break
        logger.debug("chaosali: %s %s: attempt %d failed: %s", request.method, display_url(url), attempt, failure)
        time.sleep(delay)
    result = {
        "ok": failure is None,
        "status": code,
        "elapsed": round(time.monotonic() - started, 3),
        "attempts": attempt,
        "reason": failure or f"HTTP {code}",
    }
    log = logger.info if result["ok"] else logger.warning
    log("chaosali: %s %s: %s after %d attempt(s)", request.method, display_url(url), result["reason"], attempt)
    return result


def vip_members(
    vip: str,
    port: int,
    members: list = None,
    members_url: str = None,
    members_path: str = None,
    service: str = None,
    namespace: str = "default",
    check: str = "tcp",
    path: str = "/",
    status: list = None,
    timeout: float = 2.0,
    vip_attempts: int = 3,
    verify_tls: bool = True,
    ca_bundle: str = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Tell how many real servers stand behind the VIP `vip`:`port` and how
    many of them answer, and whether the VIP itself answers.

    The members come from exactly one of: `members`, a list of
    "address:port" or {"address", "port"}; `members_url`, an HTTP(S) URL
    whose JSON answer lists them in the same forms (at the dotted path
    `members_path` inside it, if given); or `service`, a Kubernetes Service
    in `namespace` whose EndpointSlices give every endpoint address x TCP
    port, ready or not (each member then says "ready"; the kubeconfig is
    configuration "kubeconfig_path", default $KUBECONFIG or ~/.kube/config).
    A member without a port listens on the VIP's port.

    Every member, and the VIP, is checked in parallel by `check`: "tcp"
    (a TCP connection, the default), or "http"/"https" (a GET of `path`
    whose status is one of `status`, default 200-399; `verify_tls` and
    `ca_bundle` as in service_available, and for `members_url` too). Each check waits at most
    `timeout` seconds. Members are checked directly, never through a proxy.

    A load balancer sends each new connection to some member, so one dead
    member fails only some connections to the VIP: the VIP is tried
    `vip_attempts` times (default 3) and answers ("ok") if at least one
    attempt did; "answered" says how many did.

    Returns {"vip": {"address", "port", "ok", "attempts", "answered"},
    "members": [{"address", "port", "ok", "reason" (if not ok)}],
    "total": n, "answering": k}.

    Tolerance "at least 2 members answer":
    {"type": "range", "target": "answering", "range": [2, 1000000]}, or
    with chaostoolkit-lib[jsonpath]:
    {"type": "jsonpath", "path": "$[?(@.answering >= 2)]"}; all answer:
    {"type": "jsonpath", "path": "$[?(@.answering >= @.total)]"}; the VIP
    answers: {"type": "jsonpath", "path": "$.vip.ok", "expect": true}.
    """
    address = read_address(vip, "vip")
    port = read_port(port, "vip port")
    kind = choice(check, "check", _CHECKS)
    wait = seconds(timeout, "timeout")
    verify = tls_verify(verify_tls, ca_bundle)
    connect = (lambda endpoint: connect_tcp(endpoint.address, endpoint.port, wait)) if kind == "tcp" else _http_check(
        kind, url_path(path, "path"), http_status(status), wait, verify
    )
    tries = whole(vip_attempts, "vip_attempts", 1, 100)
    vip_tries = [Endpoint(address, port, name=f"VIP attempt {n}") for n in range(1, tries + 1)]

    if sum(source is not None for source in (members, members_url, service)) != 1:
        raise InvalidArgument("give the members in exactly one way: members, members_url or service")
    if members is not None:
        found = _members.from_list(members, port)
    elif members_url is not None:
        url = http_url(members_url, "members_url")
        found = _members.from_url(url, json_path(members_path, "members_path"), wait, verify, port)
    else:
        found = _members.from_service(str(service), namespace, port, wait, configuration, secrets)

    servers = [Endpoint(member["address"], member["port"]) for member in found]
    _, errors = fan_out(servers + vip_tries, connect)

    checked = []
    for member, server in zip(found, servers):
        entry = dict(member, ok=server not in errors)
        if server in errors:
            entry["reason"] = errors[server]
        checked.append(entry)
    answering = sum(entry["ok"] for entry in checked)
    answered = sum(attempt not in errors for attempt in vip_tries)
    logger.info(
        "chaosali: VIP %s:%d: %d of %d members answer; the VIP answered %d of %d attempts",
        address, port, answering, len(checked), answered, len(vip_tries),
    )
    return {
        "vip": {"address": address, "port": port, "ok": answered > 0, "attempts": len(vip_tries), "answered": answered},
        "members": checked,
        "total": len(checked),
        "answering": answering,
    }


def _http_check(
    scheme: str, path: str, status: Collection[int], timeout: float, verify: bool | str
) -> Callable[[Endpoint], bool]:
    expect = http.Expectation(status=status)

    def get(endpoint: Endpoint) -> bool:
        netloc = f"[{endpoint.address}]" if ":" in endpoint.address else endpoint.address
        request = http.Request("GET", f"{scheme}://{netloc}:{endpoint.port}{path}", timeout, verify, direct=True)
        _, failure = http.attempt(request, expect)
        if failure:
            raise EndpointError(failure)
        return True

    return get
