"""The one place chaosali talks HTTP to Prometheus: a client made from the run's configuration and
secrets, and the two API calls it needs (an instant query, the alerts).

Credentials (basic auth, a bearer token, a client certificate) come from secrets only and never
reach a message, a log or a repr. Every failure names the address, never the credentials.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import requests
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
        """The ``data`` of an instant query: ``resultType`` and ``result``."""
        return self._get("/api/v1/query", {"query": expression})

    def alerts(self) -> list[dict[str, Any]]:
        """The pending and firing alerts: labels, state and activeAt of each."""
        alerts = self._get("/api/v1/alerts", {}).get("alerts") or []
        return [{key: alert.get(key) for key in _KEPT} for alert in alerts if isinstance(alert, dict)]

    def _get(self, path: str, params: dict[str, str]) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = requests.get(self.url.rstrip("/") + path, params=params, headers=headers, auth=self.auth,
                                    cert=self.cert, verify=self.verify, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as error:
            raise ActivityFailed(f"{self.where}: {http.why(error, self.timeout, self.url)}") from None
        if response.status_code in (401, 403):
            raise ActivityFailed(f"{self.where}: HTTP {response.status_code}: the credentials were refused; check the "
                                 "username and password, token or client certificate in the secrets")
        try:
            answer = response.json()
        except ValueError:
            raise ActivityFailed(f"{self.where}: HTTP {response.status_code}, not a Prometheus API answer "
                                 f"(is {display_url(self.url)} a Prometheus?)") from None
        if not isinstance(answer, dict) or answer.get("status") != "success":
            said = answer.get("error") if isinstance(answer, dict) else None
            raise ActivityFailed(f"{self.where}: HTTP {response.status_code}: {said or 'not a Prometheus API answer'}")
        return answer.get("data") or {}


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
