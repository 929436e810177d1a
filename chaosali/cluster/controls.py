"""The ``kubeconfig`` control: fetch the run's kubeconfig by URL, check its md5, use it, remove it.

Declare it first among an experiment's controls, so that the controls after it (the
environment lock) and every activity use the kubeconfig it fetched::

    {"name": "kubeconfig", "provider": {"type": "python", "module": "chaosali.cluster.controls",
      "arguments": {"url": "https://ops.example/kubeconfig", "md5": "9e107d9d372bb6826bd81d3542a419d6"}}}

Before the experiment, the kubeconfig is downloaded (TLS verified unless ``verify_tls`` is
false; ``ca_bundle`` names a CA file), its md5 and, when given, sha256 checked, its context
loaded, and it is written to a private 0600 file. The run's configuration ``kubeconfig_path``
and ``kubernetes_context`` (read by chaosali) and the env ``KUBECONFIG`` and
``KUBERNETES_CONTEXT`` (read by chaostoolkit-kubernetes) then name it. After the experiment the
file is removed and all of these are restored.

Any failure stops the run before its first activity (journal status "interrupted"), with a
message naming the URL (never its credentials or query string) and, on a mismatch, the expected
and the actual digests. The kubeconfig's body is never logged nor returned.

A URL that carries credentials is best given from a secret or the environment
(``"url": "${kubeconfig_url}"``): the journal keeps a copy of the experiment as written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, MutableMapping
from typing import Any

import kubernetes.config
from chaoslib.types import Configuration, Control, Experiment
from kubernetes.config import kube_config

from chaosali.cluster import kubeconfig
from chaosali.core import memory
from chaosali.core.controls import check_arguments, fail_closed

__all__ = ["validate_control", "before_experiment_control", "after_experiment_control", "cleanup_control"]

logger = logging.getLogger("chaostoolkit")

_MISSING = object()
_MEMORY = "kubeconfig"  # the run memory's section: the undo of the hand-over


def validate_control(control: Control) -> None:
    """Check the control's arguments when the experiment is validated."""
    check_arguments(control, before_experiment_control, required=("url", "md5"))


@fail_closed("kubeconfig")
def before_experiment_control(
    context: Experiment,
    url: str = None,
    md5: str = None,
    sha256: str = None,
    kubernetes_context: str = None,
    verify_tls: bool = True,
    ca_bundle: str = None,
    max_bytes: int = kubeconfig.MAX_BYTES,
    timeout: float = kubeconfig.DEFAULT_TIMEOUT,
    headers: dict = None,
    allow_exec: bool = False,
    allow_local_files: bool = False,
    configuration: Configuration = None,
) -> None:
    """
    Fetch the kubeconfig at `url`, check its `md5` (and `sha256` when given),
    and make it the kubeconfig of the whole run; `kubernetes_context` picks a
    context other than its current-context. TLS is verified unless
    `verify_tls` is false; `ca_bundle` is a PEM file of CAs to trust.
    A body larger than `max_bytes` (default 1 MiB) or slower than `timeout`
    seconds in all is refused. `headers` are sent with the request (e.g. an
    Authorization header from a secret); redirects are followed only within
    the same host and port, never from https to http. A kubeconfig with
    credential plugins (exec, auth-provider), which run commands here, is
    refused unless `allow_exec` is true; one that names files of this
    machine (tokenFile, client-certificate, client-key,
    certificate-authority), which the client would read and send, unless
    `allow_local_files` is true. Any failure interrupts the run.
    """
    source = kubeconfig.Source.of(url, md5, sha256, verify_tls, ca_bundle, max_bytes, timeout, headers, allow_exec,
                                  allow_local_files)
    fetched = kubeconfig.fetch_private(source, kubernetes_context)
    _hand_back()  # declared twice: the second replaces the first, which must not leak
    undo = _hand_over(fetched, configuration)
    memory.section(_MEMORY)["undo"] = undo
    memory.on_forget(undo)  # the last resort: a run that never reached its controls' end


def after_experiment_control(context: Experiment, **arguments: Any) -> None:
    """Remove the fetched kubeconfig; restore the configuration and the environment."""
    _hand_back()  # ``arguments``: the same as before_experiment_control's, nothing to do with them


def cleanup_control() -> None:
    """Last resort when the run ended without its after-control: remove the file."""
    _hand_back()


def _hand_over(fetched: kubeconfig.Fetched, configuration: Configuration | None) -> Callable[[], None]:
    """Make the fetched kubeconfig the run's, for each of its three readers; return the undo,
    which also removes the file (it may be called more than once).

    - chaosali's activities, and the controls declared after this one, read configuration
      ``kubeconfig_path`` and ``kubernetes_context``: chaoslib hands each activity a copy of this
      very dict, made when the activity runs, so the change reaches every activity of the run;
    - chaostoolkit-kubernetes checks that env ``KUBECONFIG`` names a file (and reads
      ``KUBERNETES_CONTEXT``), then calls ``load_kube_config()`` without a path;
    - that reads the kubernetes package's default location, a global it took from ``KUBECONFIG``
      once, when it was imported (before this control ran); ``kubernetes.config.load_config``
      reads its own copy of it.
    """
    path, context = fetched.path, fetched.context
    changes: list[tuple[MutableMapping[str, Any], dict[str, str]]] = [
        (os.environ, {"KUBECONFIG": path, "KUBERNETES_CONTEXT": context}),
        (vars(kube_config), {"KUBE_CONFIG_DEFAULT_LOCATION": path}),
        (vars(kubernetes.config), {"KUBE_CONFIG_DEFAULT_LOCATION": path}),
    ]
    if configuration is not None:
        changes.append((configuration, {"kubeconfig_path": path, "kubernetes_context": context}))
    saved = [(place, key, place.get(key, _MISSING)) for place, values in changes for key in values]
    for place, values in changes:
        place.update(values)
    logger.info("chaosali: this run uses the kubeconfig fetched from %s (private file %s)", fetched.url, path)

    def undo() -> None:
        if not saved:
            return  # undone already
        for place, key, value in saved:
            if value is _MISSING:
                place.pop(key, None)
            else:
                place[key] = value
        saved.clear()
        kubeconfig.remove_private(fetched)
        logger.info("chaosali: removed the kubeconfig fetched from %s", fetched.url)

    return undo


def _hand_back() -> None:
    """Undo the hand-over of this run, if any."""
    undo = memory.section(_MEMORY).pop("undo", None)
    if undo:
        undo()
