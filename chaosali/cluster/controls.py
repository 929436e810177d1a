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

import atexit
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from chaoslib.types import Configuration, Control, Experiment
import kubernetes.config
from kubernetes.config import kube_config

from chaosali.cluster import kubeconfig
from chaosali.controls import check_arguments, fail_closed

__all__ = ["validate_control", "before_experiment_control", "after_experiment_control", "cleanup_control"]

logger = logging.getLogger("chaostoolkit")

# ---- the kubeconfig control -------------------------------------------------------------------

_MISSING = object()
# chaostoolkit-kubernetes checks that env KUBECONFIG names a file, then calls load_kube_config()
# without a path: the kubernetes package then reads its default location, a global it took from
# KUBECONFIG once, when it was imported (before this control ran). load_config() reads the
# package's copy of it.
_DEFAULT_LOCATION_HOLDERS = (kube_config, kubernetes.config)


@dataclass
class _InUse:
    """The fetched kubeconfig and what it replaced, to put back after the run."""

    fetched: kubeconfig.Fetched
    configuration: Configuration | None
    saved_configuration: dict[str, Any] = field(default_factory=dict)
    saved_environ: dict[str, str | None] = field(default_factory=dict)
    saved_default_locations: list[str] = field(default_factory=list)


_in_use: _InUse | None = None


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
    configuration: Configuration = None,
) -> None:
    """
    Fetch the kubeconfig at `url`, check its `md5` (and `sha256` when given),
    and make it the kubeconfig of the whole run; `kubernetes_context` picks a
    context other than its current-context. TLS is verified unless
    `verify_tls` is false; `ca_bundle` is a PEM file of CAs to trust.
    A body larger than `max_bytes` (default 1 MiB) or slower than `timeout`
    seconds is refused. `headers` are sent with the request (e.g. an
    Authorization header from a secret). Any failure interrupts the run.
    """
    source = kubeconfig.Source.of(url, md5, sha256, verify_tls, ca_bundle, max_bytes, timeout, headers)
    fetched = kubeconfig.fetch_private(source, kubernetes_context)
    _restore()  # declared twice: the second replaces the first, which must not leak
    _use(fetched, configuration)


def after_experiment_control(context: Experiment, **arguments: Any) -> None:
    """Remove the fetched kubeconfig; restore the configuration and the environment."""
    _restore()  # ``arguments``: the same as before_experiment_control's, nothing to do with them


def cleanup_control() -> None:
    """Last resort when the run ended without its after-control: remove the file."""
    _restore()


def _use(fetched: kubeconfig.Fetched, configuration: Configuration | None) -> None:
    global _in_use
    settings = {"kubeconfig_path": fetched.path, "kubernetes_context": fetched.context}
    environ = {"KUBECONFIG": fetched.path, "KUBERNETES_CONTEXT": fetched.context}
    _in_use = _InUse(
        fetched,
        configuration,
        saved_configuration={k: configuration.get(k, _MISSING) for k in settings} if configuration is not None else {},
        saved_environ={k: os.environ.get(k) for k in environ},
        saved_default_locations=[m.KUBE_CONFIG_DEFAULT_LOCATION for m in _DEFAULT_LOCATION_HOLDERS],
    )
    # chaoslib hands activities a copy of this very dict, made when each one runs: the change
    # reaches every activity of the run, and the controls declared after this one
    if configuration is not None:
        configuration.update(settings)
    os.environ.update(environ)
    for module in _DEFAULT_LOCATION_HOLDERS:
        module.KUBE_CONFIG_DEFAULT_LOCATION = fetched.path
    logger.info("chaosali: this run uses the kubeconfig fetched from %s (private file %s)", fetched.url, fetched.path)


def _restore() -> None:
    global _in_use
    used, _in_use = _in_use, None
    if used is None:
        return
    kubeconfig.remove_private(used.fetched)
    if used.configuration is not None:
        for key, value in used.saved_configuration.items():
            if value is _MISSING:
                used.configuration.pop(key, None)
            else:
                used.configuration[key] = value
    for key, value in used.saved_environ.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    for module, location in zip(_DEFAULT_LOCATION_HOLDERS, used.saved_default_locations):
        module.KUBE_CONFIG_DEFAULT_LOCATION = location
    logger.info("chaosali: removed the kubeconfig fetched from %s", used.fetched.url)


atexit.register(_restore)  # when chaoslib is used as a library and the run never reached its controls' end
