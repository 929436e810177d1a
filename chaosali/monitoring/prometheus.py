"""The one place chaosali talks HTTP to Prometheus: a client made from the run's configuration and
secrets, and the two API calls it needs (an instant query, the alerts).

Credentials (basic auth, a bearer token, a client certificate) come from secrets only and never
reach a message, a log or a repr. Every failure names the address, never the credentials.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosali.core import http
from chaosali.core.args import display_url, http_url, seconds, tls_verify
from chaosali.core.errors import InvalidArgument

__all__ = ["Prometheus", "client"]

_SECRET_KEYS = ("username", "password", "token", "client_cert", "client_key", "ca_bundle", "verify_tls")
# an alert as recorded: never its annotations (they are free text that can quote secrets)
_KEPT = ("labels", "state", "activeAt")


@dataclass(frozen=True)
class Prometheus:
    url: str
    timeout: float
    verify: bool | str = True
    auth: tuple[str, str] | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    cert: tuple[str, str] | None = None

    @property
    def where(self) -> str:
        return f"Prometheus at {display_url(self.url)}"

    def query(self, expression: str) -> dict[str, Any]:
        """The ``data`` of an instant query: ``resultType`` and ``result``, of a shape checked."""
        data = self._get("/api/v1/query", {"query": expression})
        kind, result = data.get("resultType"), data.get("result")
        if not (kind in ("scalar", "string") and _is_sample(result) or kind == "matrix" and isinstance(result, list)
                or kind == "vector" and isinstance(result, list)
                and all(isinstance(item, dict) and _is_sample(item.get("value")) for item in result)):
            raise ActivityFailed(f"{self.where}: a malformed query answer: its data needs a resultType and a result "
                                 "of that type (is it a Prometheus?)")
        return data

    def alerts(self) -> list[dict[str, Any]]:
        """The pending and firing alerts: labels, state and activeAt of each."""
        alerts = self._get("/api/v1/alerts", {}).get("alerts")
        if not isinstance(alerts, list) or not all(isinstance(alert, dict) and isinstance(alert.get("labels"), dict)
                                                   and isinstance(alert.get("state"), str) for alert in alerts):
            raise ActivityFailed(f"{self.where}: a malformed alerts answer: its data needs a list of alerts, each with "
                                 "its labels and state (is it a Prometheus?)")
        return [{key: alert.get(key) for key in _KEPT} for alert in alerts]

    def _get(self, path: str, params: dict[str, str]) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        url = self.url.rstrip("/") + path + (f"?{urlencode(params)}" if params else "")
        request = http.Request("GET", url, self.timeout, self.verify, headers=headers, auth=self.auth, cert=self.cert)
        try:
            status, text = http.fetch(request, self.where)
        except LookupError as error:
            raise ActivityFailed(str(error)) from None
        if status in (401, 403):
            raise ActivityFailed(f"{self.where}: HTTP {status}: the credentials were refused; check the "
                                 "username and password, token or client certificate in the secrets")
        try:
            answer = json.loads(text)
        except ValueError:
            raise ActivityFailed(f"{self.where}: HTTP {status}, not a Prometheus API answer "
                                 f"(is {display_url(self.url)} a Prometheus?)") from None
        if not isinstance(answer, dict) or answer.get("status") != "success":
            said = answer.get("error") if isinstance(answer, dict) else None
            raise ActivityFailed(f"{self.where}: HTTP {status}: {said or 'not a Prometheus API answer'}")
        if not isinstance(answer.get("data"), dict):
            raise ActivityFailed(f"{self.where}: HTTP {status}: a Prometheus answer without its data")
        return answer["data"]


def _is_sample(value: Any) -> bool:
    """A sample as Prometheus writes it: [time, "value"]."""
    return isinstance(value, list) and len(value) == 2


def client(url: str | None, timeout: Any, configuration: Configuration, secrets: Secrets) -> Prometheus:
    """A client of ``url`` (else the configuration's ``prometheus_url``), authenticated by
    ``secrets``: ``username``/``password`` (basic auth), ``token`` (bearer), ``client_cert`` and
    ``client_key`` (files), ``ca_bundle`` (file) and ``verify_tls``."""
    url = url or (configuration or {}).get("prometheus_url")
    if not url:
        raise InvalidArgument("no Prometheus: give url, or prometheus_url in the configuration "
                              "(the lab's var file has it when the lab runs with --monitoring)")
    secrets = secrets or {}
    unknown = sorted(set(secrets) - set(_SECRET_KEYS))
    if unknown:
        raise InvalidArgument(f"unknown Prometheus secrets {', '.join(unknown)}: use {', '.join(_SECRET_KEYS)}")
    if bool(secrets.get("username")) != bool(secrets.get("password")):
        raise InvalidArgument("basic auth needs both username and password in the secrets")
    if secrets.get("token") and secrets.get("username"):
        raise InvalidArgument("give either a bearer token or a username and password, not both")
    return Prometheus(
        url=http_url(url, "prometheus url"),
        timeout=seconds(timeout, "timeout"),
        verify=tls_verify(secrets.get("verify_tls", True), secrets.get("ca_bundle")),
        auth=(secrets["username"], secrets["password"]) if secrets.get("username") else None,
        token=secrets.get("token") or None,
        cert=_client_cert(secrets.get("client_cert"), secrets.get("client_key")),
    )


def _client_cert(cert: Any, key: Any) -> tuple[str, str] | None:
    if cert is None and key is None:
        return None
    paths = (os.path.expanduser(str(cert or "")), os.path.expanduser(str(key or "")))
    if not all(os.path.isfile(path) for path in paths):
        raise InvalidArgument("a client certificate needs client_cert and client_key, each the path of a PEM file")
    return paths
