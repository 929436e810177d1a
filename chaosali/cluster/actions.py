"""kubectl-like actions on any Kubernetes kind, custom resources included, in pure Python.

The cluster comes from the configuration (``kubeconfig_path``, ``kubernetes_context``...; see
``chaosali.cluster.api``). Each action returns what it changed, as plain JSON.
"""

from chaoslib.types import Configuration, Secrets

from chaosali.cluster import drain, kubeconfig, resources
from chaosali.core.args import boolean, seconds, whole
from chaosali.core.errors import InvalidArgument

__all__ = ["apply", "create", "delete", "patch", "fetch_kubeconfig", "drain_node", "uncordon_node"]

_CASCADES = {"background": "Background", "foreground": "Foreground", "orphan": "Orphan"}


def apply(
    path: str = None,
    manifest: dict = None,
    namespace: str = None,
    force: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> list:
    """
    Apply the objects of a manifest file (`path`) or of an inline `manifest`
    (an object; a list of objects, or JSON/YAML text with several documents,
    are taken too) with server-side apply, as field manager "chaosali". Applying the same
    manifest twice changes nothing. `namespace` is used for namespaced objects
    that name none (default "default"). `force` takes over fields owned by
    another manager instead of failing on the conflict.
    Returns the kind, apiVersion, namespace, name and resourceVersion of each.
    """
    documents, force = resources.load_documents(path, manifest), boolean(force, "force")
    with resources.connect(configuration, secrets) as dyn:
        return resources.apply(dyn, documents, namespace, force)


def create(
    path: str = None,
    manifest: dict = None,
    namespace: str = None,
    exist_ok: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> list:
    """
    Create the objects of a manifest file (`path`) or of an inline `manifest`
    (an object, a list of objects, or JSON/YAML text), as `kubectl create`
    does: an object that already exists is an error, unless `exist_ok` is
    true (the existing object is then left as it is).
    Returns the kind, apiVersion, namespace, name and resourceVersion of each.
    """
    documents, exist_ok = resources.load_documents(path, manifest), boolean(exist_ok, "exist_ok")
    with resources.connect(configuration, secrets) as dyn:
        return resources.create(dyn, documents, namespace, exist_ok)


def delete(
    kind: str = None,
    name: str = None,
    label_selector: str = None,
    field_selector: str = None,
    path: str = None,
    manifest: dict = None,
    namespace: str = None,
    api_version: str = None,
    grace_period_seconds: int = None,
    cascade: str = "background",
    ignore_not_found: bool = False,
    wait: bool = False,
    timeout: float = 60,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> list:
    """
    Delete objects: one `kind` (e.g. "Deployment", "deployments", or a custom
    kind with its `api_version`) by `name` or by `label_selector` /
    `field_selector` in `namespace` (default "default"), or the objects of a
    manifest file (`path`) or inline `manifest` (an object, a list of
    objects, or JSON/YAML text).
    `grace_period_seconds` overrides the objects' own; `cascade` is
    "background" (as kubectl), "foreground" or "orphan" for their dependents.
    A missing object is an error unless `ignore_not_found`. With `wait`, the
    action returns only once every deleted object is gone (finalizers done),
    and fails after `timeout` seconds naming those still there.
    Returns the kind, apiVersion, namespace, name and uid of each deleted object.
    """
    by_manifest = path is not None or manifest is not None
    by_kind = bool(kind or name or label_selector or field_selector or api_version)
    if by_manifest == by_kind or (by_kind and not kind):
        raise InvalidArgument("give either kind (with name or a selector) or path/manifest, not both or none")
    if kind and bool(name) == bool(label_selector or field_selector):
        raise InvalidArgument(f"delete {kind}: give either name or label_selector/field_selector, not both or none")
    policy = _CASCADES.get(str(cascade).lower())
    if not policy:
        raise InvalidArgument(f"cascade must be one of {', '.join(_CASCADES)}, not {cascade!r}")
    grace = None if grace_period_seconds is None else whole(grace_period_seconds, "grace_period_seconds", 0)
    wait_timeout = seconds(timeout, "timeout") if boolean(wait, "wait") else None
    ignore_not_found = boolean(ignore_not_found, "ignore_not_found")
    documents = resources.load_documents(path, manifest) if by_manifest else []
    with resources.connect(configuration, secrets) as dyn:
        if by_manifest:
            targets = [resources.target(dyn, document, namespace) for document in documents]
        else:
            where = resources.locate(dyn, str(kind), api_version, namespace, name)  # by kind: kind is given
            targets = [where] if name else resources.select(dyn, where, label_selector, field_selector)
        return resources.delete(dyn, targets, grace, policy, ignore_not_found, wait_timeout)


def patch(
    kind: str,
    name: str,
    patch: dict,
    patch_type: str = None,
    namespace: str = None,
    api_version: str = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Patch one object of `kind` named `name` in `namespace` (default "default").
    `patch_type` is "strategic" (the default for an object patch; custom
    resources, which have no strategic merge, get a merge patch as kubectl
    does), "merge" (JSON merge patch: lists are replaced, null removes a
    field) or "json" (JSON patch: a list of operations such as
    {"op": "replace", "path": "/spec/replicas", "value": 2}; the default for a list).
    `patch` is an object (a list of JSON patch operations, or either one as
    JSON/YAML text, are taken too).
    Returns the kind, apiVersion, namespace, name and new resourceVersion.
    """
    body, chosen = resources.patch_body(patch, patch_type)
    with resources.connect(configuration, secrets) as dyn:
        where = resources.locate(dyn, kind, api_version, namespace, name)
        return resources.patch(dyn, where, body, chosen)


def fetch_kubeconfig(
    url: str,
    md5: str,
    path: str,
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
    secrets: Secrets = None,
) -> dict:
    """
    Download a kubeconfig from `url`, check its `md5` (and `sha256` if
    given) and that it is a kubeconfig (with `kubernetes_context` if given),
    and write it to `path` (mode 0600). For an explicit step; the kubeconfig
    control (chaosali.cluster.controls) does the same before a run and points
    every activity at it. Fails naming the URL and both digests on a
    mismatch. `timeout` bounds the whole download; redirects are followed
    only within the same host and port, never from https to http; credential
    plugins (exec, auth-provider) are refused unless `allow_exec` is true,
    and references to files of this machine (tokenFile, client-certificate,
    client-key, certificate-authority) unless `allow_local_files` is true.
    The body is never logged nor returned.
    """
    source = kubeconfig.Source.of(url, md5, sha256, verify_tls, ca_bundle, max_bytes, timeout, headers, allow_exec,
                                  allow_local_files)
    return kubeconfig.fetch_to_path(path, source, kubernetes_context)


def drain_node(
    targets: dict,
    timeout: float = 120,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Migrate the pods off the nodes of a cluster query (`targets`:
    {"nodes": "label selector"}, {"masters": [components]} or {"pods":
    {"namespace", "label_selector"}}, optionally with "count" or "percent" and
    "seed"): cordon each node, then evict its pods through the Eviction API,
    which honours PodDisruptionBudgets, retrying refused evictions for up to
    `timeout` seconds. DaemonSet and mirror pods are skipped, as by `kubectl
    drain --ignore-daemonsets`. The output lists what was `evicted`, what a
    budget still `blocked` at the timeout (with its reason) and what was
    `skipped` (and why). `uncordon_node` is the rollback.
    """
    return drain.drain(targets, timeout, configuration, secrets)


def uncordon_node(
    targets: dict = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Make schedulable again the nodes `drain_node` cordoned: those of the
    cluster query `targets` (every node it may choose, unsampled), or every
    such node of the cluster when `targets` is not given. A node cordoned by
    someone else is left as it is. Safe to call twice, or with nothing drained.
    """
    return drain.uncordon(targets, configuration, secrets)
