"""The one way chaosali reaches a Kubernetes API: the client, its request timeout and retries, and
the words a user reads when a request fails.

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
- ``kubernetes_request_timeout``: seconds per API request (default ``DEFAULT_REQUEST_TIMEOUT``).

Every connection builds a new client: nothing is shared between calls, and the kubernetes
package's global default ``Configuration`` is never read or written.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

import urllib3
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import ConfigNode, KubeConfigLoader

from chaosali.core import private, yamltext
from chaosali.core.args import cause, display_url, flag, seconds, setting
from chaosali.core.errors import InvalidArgument

__all__ = [
    "DEFAULT_REQUEST_TIMEOUT",
    "RETRIES",
    "ApiFailed",
    "Connection",
    "connect",
    "new_api_client",
    "request_timeout",
    "failing",
    "load_kubeconfig",
]

logger = logging.getLogger("chaostoolkit")

# A healthy API server answers in well under a second; a cut master must fail the activity soon,
# not hang the drill. Discovery, lists and writes all get this per request.
DEFAULT_REQUEST_TIMEOUT = 10.0
# urllib3 retries per request: one more chance for a dropped connection. Probes that must answer
# within their own timeout, and callers that retry on their own schedule, ask for 0.
RETRIES = 1
DEFAULT_KUBECONFIG = "~/.kube/config"
_MERGED = ("clusters", "contexts", "users")
_STATUS_WORDS = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "not allowed",
    409: "conflict",
    410: "gone",
    415: "unsupported media type",
    422: "invalid",
    429: "too many requests",
    500: "server error",
    503: "unavailable",
    504: "server timeout",
}
T = TypeVar("T")


class ApiFailed(ActivityFailed):
    """A request the API server refused (``status``) or did not answer (``status`` None);
    ``reason`` says why, in words a user can act on."""

    def __init__(self, action: str, reason: str, status: int | None) -> None:
        super().__init__(f"cannot {action}: {reason}")
        self.reason, self.status = reason, status


class Connection:
    """A client for one activity (or one control's run) and the timeout of each of its requests.
    Close it, or use it as a context manager."""

    def __init__(self, api: client.ApiClient, timeout: float) -> None:
        self.client, self.timeout = api, timeout

    @property
    def host(self) -> str:
        """The API server's URL as it may be shown: without userinfo (``https://admin:PASS@…``)."""
        return display_url(self.client.configuration.host)

    def call(self, action: str, request: Callable[..., T], *args: Any, **params: Any) -> T:
        """``request(*args, **params)`` within the timeout; a failure is an :class:`ApiFailed`
        saying it could not ``action`` ("list nodes") and why."""
        with failing(action, self.host):
            return request(*args, _request_timeout=self.timeout, **params)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def request_timeout(configuration: Configuration) -> float:
    """Seconds per request: configuration ``kubernetes_request_timeout``, or the default."""
    return setting(configuration, "kubernetes_request_timeout", DEFAULT_REQUEST_TIMEOUT, seconds)


def connect(
    configuration: Configuration = None,
    secrets: Secrets = None,
    *,
    retries: int = RETRIES,
    timeout: float | None = None,
) -> Connection:
    """A connection to the cluster the settings name; ``timeout`` (default: the configured request
    timeout) bounds each request."""
    wait = request_timeout(configuration) if timeout is None else timeout  # refused before any client
    return Connection(new_api_client(configuration, secrets, retries=retries), wait)


def new_api_client(
    configuration: Configuration = None, secrets: Secrets = None, *, retries: int = RETRIES
) -> client.ApiClient:
    """A new ApiClient for the cluster the settings name; close it (it is a context manager).
    ``retries``: urllib3's retries per request."""
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
        logger.warning("TLS verification of the Kubernetes API at %s is OFF (%s)", display_url(settings.host), why)
    settings.retries = retries
    logger.debug("Kubernetes API %s from %s", display_url(settings.host), source)
    return client.ApiClient(settings)


@contextmanager
def failing(action: str, host: str) -> Iterator[None]:
    """Turn a failed request in the block into an :class:`ApiFailed` naming ``action``; ``host``
    is shown without userinfo."""
    try:
        yield
    except (ApiException, urllib3.exceptions.HTTPError) as error:
        status = error.status if isinstance(error, ApiException) and error.status else None
        raise ApiFailed(action, _explain(error, display_url(host)), status) from None
    except ValueError as error:
        if not str(error).startswith("Invalid header"):  # the client's own checks of a model: no credential
            raise
        # http.client's refusal quotes the header's value: a token, with its stray line break
        raise ApiFailed(action, "a request header holds a character HTTP does not allow (a line break or "
                        "another control character in the kubeconfig's token?); the value is not shown", None) from None


def _explain(error: Exception, host: str) -> str:
    """Why a request failed: the one place statuses and transport errors become messages."""
    if isinstance(error, ApiException) and error.status:
        body = _status_body(error.body)
        message = " ".join(str(body.get("message") or _text(error.body) or error.reason or "").split())
        # a 422 carries one cause per bad field; the message usually names them, add the ones it lacks
        causes = [
            f"{c.get('field') or ''}: {c['message']}".lstrip(": ")
            for c in (body.get("details") or {}).get("causes") or []
            if c.get("message") and (c.get("field") or c["message"]) not in message
        ]
        hint = ""
        if error.status == 401:
            hint = "the API refused the kubeconfig's credentials: renew its token or client certificate"
        elif error.status == 403 and 'User "' in message:  # RBAC (not admission, not a terminating namespace)
            hint = "that user lacks the RBAC permission: grant it, or use a kubeconfig that has it"
        elif error.status == 404 and not body:  # no Status object: the path itself is not served
            hint = "the API server serves no such resource (was its CRD removed?)"
        elif error.status == 409 and message.startswith("Apply failed"):
            hint = "another field manager owns these fields: apply with force to take them over"
        words = _STATUS_WORDS.get(error.status, "HTTP error")
        return "; ".join(p for p in (f"{words} ({error.status}): {message}", *causes, hint) if p)
    reason = getattr(error, "reason", None) or error  # urllib3 wraps the cause in MaxRetryError
    # the kubernetes client turns a bare urllib3 SSLError into an ApiException with status 0
    if isinstance(reason, urllib3.exceptions.SSLError) or isinstance(error, ApiException):
        return (
            f"TLS with the Kubernetes API at {host} failed ({cause(error)}); check the kubeconfig's "
            "certificate-authority (or, knowingly, set configuration kubernetes_verify_tls to false)"
        )
    return f"the Kubernetes API at {host} did not answer ({cause(error)})"


def _status_body(body: Any) -> dict:
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _text(body: Any) -> str:
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
    return text[:500]


# ---- where the client's settings come from ------------------------------------------------------


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
    files = [(path, _read_yaml(path)) for path in found]  # each file is parsed once, here
    contexts = [c for _, document in files for c in document.get("contexts") or [] if isinstance(c, dict)]
    names = list(dict.fromkeys(str(c["name"]) for c in contexts if c.get("name")))
    current = next((d["current-context"] for _, d in reversed(files) if d.get("current-context")), None)
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
    load_kubeconfig(settings, files, str(context))
    return f"kubeconfig {', '.join(found)}, context {context!r}"


def load_kubeconfig(settings: client.Configuration, files: list[tuple[str, dict]], context: str) -> None:
    """Fill ``settings`` from parsed kubeconfig files ``(path, document)`` merged as kubectl merges
    them (the first file to name a cluster, context or user wins), each entry's relative paths
    resolved against its own file. Nothing is sent to the API server and no kubeconfig is ever
    rewritten, but the kubernetes client runs the user's ``exec`` credential plugin (a command)
    and refreshes an ``auth-provider``'s token here, if the context's user has one."""
    first_path, first = files[0]
    merged = ConfigNode(first_path, {**first, **{item: [] for item in _MERGED}}, first_path)
    for path, document in files:
        for item in _MERGED:
            known = {entry.value.get("name") for entry in merged.value[item]}
            entries = [e for e in document.get(item) or [] if isinstance(e, dict) and e.get("name") not in known]
            merged.value[item] += [ConfigNode(path, entry, path) for entry in entries]
    where = ", ".join(path for path, _ in files)
    try:
        # the client writes the certificates and keys it decodes (client-key-data) to files: in a
        # private directory that `chaosali cleanup` finds should this process die unheard
        _Loader(merged, active_context=context, config_base_path=None,
                temp_file_path=private.process_directory()).load_and_set(settings)
    except (ConfigException, OSError, ValueError) as error:
        raise InvalidArgument(f"cannot use context {context!r} of kubeconfig {where}: {error}") from None


class _Loader(KubeConfigLoader):
    """The client's loader, with the user's token cleaned each time it is set (loaded, or
    refreshed by an exec plugin): surrounding blanks dropped, as kubectl drops a token file's
    final newline; any other control character refused. http.client would refuse the header
    later with the token quoted in its message."""

    def _set_config(self, client_configuration: client.Configuration) -> None:
        if "token" in self.__dict__:
            scheme, _, value = str(self.__dict__["token"]).partition(" ")
            value = value.strip(" \t\r\n")
            if not value or not all("\x21" <= char <= "\x7e" for char in value):
                raise InvalidArgument(
                    "the kubeconfig's token (token or tokenFile of the context's user) holds a character that "
                    "cannot go into an HTTP header (a control character, a blank inside it, non-ASCII) or is "
                    "empty; the token is not shown: fix it in the kubeconfig"
                )
            self.token = f"{scheme} {value}"
        super()._set_config(client_configuration)


def _read_yaml(path: str) -> dict[str, Any]:
    try:
        with open(path) as stream:
            document = yamltext.load(stream, f"kubeconfig {path} is not valid YAML")
    except OSError as error:
        raise InvalidArgument(f"cannot read kubeconfig {path}: {error.strerror}") from None
    if not isinstance(document, dict):
        raise InvalidArgument(f"kubeconfig {path} is not a kubeconfig (no mapping at its top)")
    return document
