"""The one way chaosali reaches a Kubernetes API: an ApiClient from Chaos Toolkit settings.

Configuration (none of it secret):

- ``kubeconfig_path``: the kubeconfig to use; else the env ``KUBECONFIG`` (a ``:``-separated
  list, as kubectl reads it); else ``~/.kube/config``.
- ``kubernetes_context``: the context to use (also read as ``KUBERNETES_CONTEXT`` from the
  secrets, then the environment, as chaostoolkit-kubernetes does); default: the kubeconfig's
  current-context.
- ``kubernetes_in_cluster``: true to use the pod's service account. The env
  ``CHAOSTOOLKIT_IN_POD=true`` asks for it too, unless ``kubeconfig_path`` is given.
- ``kubernetes_verify_tls``: false turns TLS verification off (a warning is logged); true keeps
  it on even when the kubeconfig says ``insecure-skip-tls-verify``. Default: the kubeconfig's.
- ``kubernetes_request_timeout``: seconds per API request, default 30 (applied by the activities).

Every call builds a new client: nothing is shared between calls, and the kubernetes package's
global default ``Configuration`` is never read or written.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import yaml
from chaoslib.types import Configuration, Secrets
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from chaosali.config import flag
from chaosali.errors import InvalidArgument

__all__ = ["new_api_client"]

logger = logging.getLogger("chaostoolkit")

DEFAULT_KUBECONFIG = "~/.kube/config"


def new_api_client(
    configuration: Configuration = None, secrets: Secrets = None, *, retries: int | None = None
) -> client.ApiClient:
    """A new ApiClient for the cluster the settings name; close it (it is a context manager).

    ``retries`` overrides urllib3's default of 3 retries per request (0: fail on the first error,
    for probes that must answer within their timeout).
    """
    configuration, secrets = configuration or {}, secrets or {}
    settings = client.Configuration()  # a fresh instance: the package default stays untouched
    in_cluster = flag(configuration, "kubernetes_in_cluster")
    if in_cluster is None:
        in_cluster = os.environ.get("CHAOSTOOLKIT_IN_POD") == "true" and not configuration.get("kubeconfig_path")
    source = _load_in_cluster(settings) if in_cluster else _load_kubeconfig(settings, configuration, secrets)

    verify = flag(configuration, "kubernetes_verify_tls")
    if verify is not None:
        settings.verify_ssl = verify
    if not settings.verify_ssl:
        why = "configuration kubernetes_verify_tls is false" if verify is False else "the kubeconfig skips it"
        logger.warning("TLS verification of the Kubernetes API at %s is OFF (%s)", settings.host, why)
    if retries is not None:
        settings.retries = retries
    logger.debug("Kubernetes API %s from %s", settings.host, source)
    return client.ApiClient(settings)


def _load_in_cluster(settings: client.Configuration) -> str:
    try:
        config.load_incluster_config(client_configuration=settings)
    except ConfigException as error:
        raise InvalidArgument(
            f"in-cluster Kubernetes access was asked (configuration kubernetes_in_cluster or env "
            f"CHAOSTOOLKIT_IN_POD) but {error}: run inside a pod with a service account, or set "
            "configuration kubeconfig_path"
        ) from None
    return "the in-cluster service account"


def _load_kubeconfig(settings: client.Configuration, configuration: Configuration, secrets: Secrets) -> str:
    if configuration.get("kubeconfig_path"):
        raw, origin = str(configuration["kubeconfig_path"]), "configuration kubeconfig_path"
    elif os.environ.get("KUBECONFIG"):
        raw, origin = os.environ["KUBECONFIG"], "env KUBECONFIG"
    else:
        raw, origin = DEFAULT_KUBECONFIG, "the default location"
    paths = [os.path.expanduser(p) for p in raw.split(os.pathsep) if p]
    found = [p for p in paths if os.path.isfile(p)]
    if not found:
        raise InvalidArgument(
            f"no kubeconfig found: tried {', '.join(paths) or repr(raw)} ({origin}); set configuration "
            "kubeconfig_path to the path of a kubeconfig file (or the env KUBECONFIG)"
        )
    names, current = _contexts(found)
    asked = configuration.get("kubernetes_context") or secrets.get("KUBERNETES_CONTEXT") or os.environ.get(
        "KUBERNETES_CONTEXT"
    )
    context = asked or current
    known = ", ".join(names) or "none"
    if not context:
        raise InvalidArgument(
            f"kubeconfig {', '.join(found)} has no current-context: set configuration kubernetes_context "
            f"to one of its contexts ({known})"
        )
    if context not in names:
        what = "Kubernetes context" if asked else "the current-context"
        raise InvalidArgument(
            f"{what} {context!r} is not in kubeconfig {', '.join(found)}; its contexts: {known} "
            "(set configuration kubernetes_context)"
        )
    try:
        config.load_kube_config(
            config_file=os.pathsep.join(found),
            context=context,
            client_configuration=settings,
            persist_config=False,  # never rewrite the user's kubeconfig (token refreshes)
        )
    except (ConfigException, OSError, ValueError) as error:
        raise InvalidArgument(f"cannot use context {context!r} of kubeconfig {', '.join(found)}: {error}") from None
    return f"kubeconfig {', '.join(found)}, context {context!r}"


def _contexts(paths: list[str]) -> tuple[list[str], str | None]:
    """Context names and current-context, merged as the kubernetes loader merges several files."""
    names: list[str] = []
    current = None
    for path in paths:
        document = _read_yaml(path)
        for entry in document.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name") and entry["name"] not in names:
                names.append(str(entry["name"]))
        current = document.get("current-context") or current
    return names, current


def _read_yaml(path: str) -> dict[str, Any]:
    try:
        with open(path) as stream:
            document = yaml.safe_load(stream)
    except OSError as error:
        raise InvalidArgument(f"cannot read kubeconfig {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        # the position only: YAML's own message quotes the line, which may hold a token
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidArgument(f"kubeconfig {path} is not valid YAML{where}") from None
    if not isinstance(document, dict):
        raise InvalidArgument(f"kubeconfig {path} is not a kubeconfig (no mapping at its top)")
    return document
