"""Prometheus probes: the value of a PromQL expression, and the alerts firing.

Both read a Prometheus over its HTTP API, from ``url`` or the configuration's ``prometheus_url``,
with the credentials of the secrets scope the provider names (``"secrets": ["prometheus"]``:
``username``/``password``, ``token``, ``client_cert``/``client_key``, ``ca_bundle``,
``verify_tls``). A bad expression fails with Prometheus's own error; refused credentials, an
unreachable server and a timeout fail with a message naming the address.
"""

from __future__ import annotations

import logging
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosali.core.errors import InvalidArgument
from chaosali.monitoring.prometheus import client

__all__ = ["query", "alerts_firing"]

logger = logging.getLogger("chaostoolkit")


def query(expression: str, url: str = None, timeout: float = 5.0, configuration: Configuration = None,
          secrets: Secrets = None) -> Any:
    """
    Evaluate the PromQL `expression` now (an instant query) and return its
    value: a number for a scalar or a single sample, None for an empty
    result, and a list of {"labels": {...}, "value": number} for several
    samples. A tolerance can then check it, e.g. a range [0, 0.5].
    """
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidArgument('expression must be a PromQL expression, e.g. "up{job=\\"node\\"}"')
    data = client(url, timeout, configuration, secrets).query(expression)
    kind, result = data["resultType"], data["result"]
    if kind in ("scalar", "string"):
        return _number(result[1])
    if kind == "matrix":
        raise InvalidArgument(f"{expression!r} is a range vector: give an instant expression, e.g. rate(...[1m])")
    samples = [{"labels": sample.get("metric") or {}, "value": _number(sample["value"][1])} for sample in result]
    if not samples:
        return None
    return samples[0]["value"] if len(samples) == 1 else samples


def alerts_firing(names: list = None, labels: dict = None, include_pending: bool = False, url: str = None,
                  timeout: float = 5.0, configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """
    The alerts firing now (and pending ones with `include_pending`), those
    named in `names` and carrying every label of `labels` (exact values):
    {"count": n, "alerts": [{"alert", "state", "labels", "active_at"}]}.
    Annotations are left out: they may quote secrets. A steady state of
    "no critical alert" is then labels {"severity": "critical"} with a
    jsonpath tolerance on $.count expecting 0.
    """
    wanted = _names(names)
    labels = _labels(labels)
    states = ("firing", "pending") if include_pending else ("firing",)
    alerts = [{"alert": alert["labels"].get("alertname"), "state": alert["state"],
               "labels": alert["labels"], "active_at": alert["activeAt"]}
              for alert in client(url, timeout, configuration, secrets).alerts() if alert["state"] in states]
    chosen = [alert for alert in alerts if (not wanted or alert["alert"] in wanted)
              and all(alert["labels"].get(key) == value for key, value in labels.items())]
    return {"count": len(chosen), "alerts": chosen}


def _names(names: Any) -> set[str]:
    listed = [names] if isinstance(names, str) else names
    if listed is None:
        return set()
    if not isinstance(listed, list) or not all(isinstance(name, str) and name for name in listed):
        raise InvalidArgument('names must be alert names, e.g. ["KubeAPIDown"]')
    return set(listed)


def _labels(labels: Any) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise InvalidArgument('labels must map label names to values, e.g. {"severity": "critical"}')
    return labels


def _number(text: Any) -> Any:
    try:
        return float(text)
    except (TypeError, ValueError):
        return text
