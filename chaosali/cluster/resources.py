"""kubectl-like operations on any kind, CRDs included, through the dynamic client (private).

Kinds are found through API discovery, cached per API server in the user's chaosali cache
(``$CHAOSALI_CACHE`` or ``~/.cache/chaosali``) for ten minutes, and refreshed at once when a kind
is missing (a CRD created a moment ago). Every API failure becomes an ``ActivityFailed`` through
:func:`chaosali.cluster.api.failing`, naming the object and the server's reason.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient, Resource, ResourceList
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError

from chaosali.cluster import api
from chaosali.core import yamltext
from chaosali.core.errors import InvalidArgument
from chaosali.core.markers import FIELD_MANAGER
from chaosali.core.waiting import wait_until

__all__ = [
    "Target",
    "connect",
    "load_documents",
    "api_resource",
    "locate",
    "target",
    "apply",
    "create",
    "select",
    "delete",
    "patch_body",
    "patch",
    "get",
]

logger = logging.getLogger("chaostoolkit")

DEFAULT_NAMESPACE = "default"
DISCOVERY_TTL = 600.0
PATCH_TYPES = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}


class _Client(DynamicClient):
    """A DynamicClient whose every request, discovery included, has the connection's timeout: a
    cut master must fail the activity, not hang it."""

    def __init__(self, cluster: api.Connection) -> None:
        self._timeout = cluster.timeout  # set first: the constructor already runs discovery requests
        super().__init__(cluster.client, cache_file=_cache_file(cluster.host))

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        params.setdefault("_request_timeout", self._timeout)
        return super().request(method, path, body, **params)


def _cache_file(host: str) -> str | None:
    """The discovery cache of ``host``, kept as kubectl keeps one: per user, private, and renewed
    when older than ``DISCOVERY_TTL`` (a kind missing from it renews it at once anyway)."""
    root = os.environ.get("CHAOSALI_CACHE") or Path.home() / ".cache" / "chaosali"  # as chaosali.lab.k8sbuild
    directory = Path(root).expanduser() / "discovery"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None  # e.g. a read-only home in a pod: the library's default, in the temp directory
    path = directory / (hashlib.sha256(host.encode()).hexdigest()[:16] + ".json")
    with contextlib.suppress(OSError):
        if time.time() - path.stat().st_mtime > DISCOVERY_TTL:
            path.unlink()
    return str(path)


@contextmanager
def connect(configuration: Configuration = None, secrets: Secrets = None) -> Iterator[DynamicClient]:
    """A dynamic client for one activity; its connections are closed on exit."""
    with api.connect(configuration, secrets) as cluster:
        with api.failing("discover the API", cluster.host):
            dyn = _Client(cluster)
        yield dyn


# ---- documents ------------------------------------------------------------------------------


def load_documents(path: str | None, manifest: Any) -> list[dict]:
    """The objects of a manifest file or of an inline manifest (a dict, a list of dicts, or
    JSON/YAML text with one or more documents); ``kind: List`` documents are flattened."""
    if (path is None) == (manifest is None):
        raise InvalidArgument("give either path (a manifest file) or manifest (the objects), not both or none")
    source = f"manifest file {path}" if path else "manifest"
    if path is not None:
        try:
            manifest = Path(path).expanduser().read_text()
        except OSError as error:
            raise InvalidArgument(f"cannot read manifest file {path}: {error.strerror}") from None
    if isinstance(manifest, str):
        manifest = parse(manifest, source, many=True)
    objects = list(_objects(manifest if isinstance(manifest, list) else [manifest], source))
    if not objects:
        raise InvalidArgument(f"{source} holds no object")
    return objects


def _objects(documents: list, source: str) -> Iterator[dict]:
    for number, document in enumerate(documents, 1):
        if document is None:  # an empty YAML document, e.g. after a trailing "---"
            continue
        if not isinstance(document, dict) or not document.get("apiVersion") or not document.get("kind"):
            raise InvalidArgument(f"{source}: document {number} is not a Kubernetes object (apiVersion and kind)")
        if str(document["kind"]).endswith("List") and isinstance(document.get("items"), list):
            yield from _objects(document["items"], source)
        else:
            yield document


def parse(text: str, source: str, many: bool = False) -> Any:
    """JSON or YAML text as data; with ``many``, YAML text gives the list of its documents."""
    try:
        return json.loads(text)  # JSON first: YAML refuses JSON indented with tabs
    except ValueError:
        pass
    return yamltext.load(text, f"{source} is neither JSON nor YAML", many=many)


# ---- kinds and targets ----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One object: its API resource, namespace (None when cluster-scoped) and name."""

    resource: Resource
    namespace: str | None
    name: str | None

    def __str__(self) -> str:
        where = f" in namespace {self.namespace!r}" if self.namespace else ""
        if self.resource.namespaced and not self.namespace:
            where = " in all namespaces"
        return f"{self.resource.kind} {self.name!r}{where}" if self.name else f"{self.resource.kind}{where}"

    def as_dict(self, **extra: Any) -> dict:
        return {
            "kind": self.resource.kind,
            "apiVersion": self.resource.group_version,
            "namespace": self.namespace,
            "name": self.name,
            **extra,
        }


def api_resource(dyn: DynamicClient, kind: str, api_version: str | None = None) -> Resource:
    """The API resource for ``kind``: "Deployment", "deployments", "deploy" or "deployments.apps",
    in ``api_version`` ("apps/v1") when given, else in the group's preferred version."""
    if not kind or not isinstance(kind, str):
        raise InvalidArgument("kind must be a kind such as 'Deployment' (or a resource such as 'deployments')")

    def matching(served: list[Resource]) -> list[Resource]:
        return [r for r in served if _names(r, kind) and (not api_version or r.group_version == api_version)]

    served = _served(dyn)
    found = matching(served)
    if not found:
        served = _served(dyn, fresh=True)  # the kind may be a CRD created since discovery was cached
        found = matching(served)
    if not found:
        elsewhere = sorted({r.group_version for r in served if _names(r, kind)})
        if elsewhere:
            raise ActivityFailed(f"kind {kind!r} is not served in {api_version}; it is in {', '.join(elsewhere)}")
        close = difflib.get_close_matches(kind, sorted({r.kind for r in served}), n=3)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        in_version = f" in {api_version}" if api_version else ""
        raise ActivityFailed(
            f"unknown kind {kind!r}{in_version}: the API server serves no such resource{hint}; for a custom "
            "resource, check that its CRD is installed and Established, and give api_version (e.g. 'example.com/v1')"
        )
    if not api_version:
        found = [r for r in found if r.preferred] or found
    if len({r.group for r in found}) > 1 and any(r.group == "" for r in found):
        found = [r for r in found if r.group == ""]  # as kubectl: the core group first ("events")
    if len(found) > 1:
        versions = ", ".join(sorted(f"{r.kind} in {r.group_version}" for r in found))
        raise ActivityFailed(f"kind {kind!r} is ambiguous ({versions}): give api_version")
    return found[0]


def _served(dyn: DynamicClient, fresh: bool = False) -> list[Resource]:
    with api.failing("discover the API", dyn.configuration.host):
        if fresh:
            dyn.resources.invalidate_cache()
        return [r for r in dyn.resources.search() if not isinstance(r, ResourceList)]


def _names(resource: Resource, kind: str) -> bool:
    wanted = kind.lower()
    return wanted in (
        resource.kind.lower(),
        resource.name,
        resource.singular_name,
        f"{resource.name}.{resource.group}",
        *(resource.short_names or ()),
    )


def locate(
    dyn: DynamicClient,
    kind: str,
    api_version: str | None,
    namespace: str | None,
    name: str | None = None,
    all_namespaces: bool = False,
) -> Target:
    """The object (or, without a name, the collection) a kind/name/namespace argument names."""
    resource = api_resource(dyn, kind, api_version)
    if all_namespaces:
        if name:
            raise InvalidArgument("name and all_namespaces exclude each other: give a namespace with a name")
        return Target(resource, None, None)
    return Target(resource, _namespace(resource, namespace), name)


def target(dyn: DynamicClient, document: dict, namespace: str | None, need_name: bool = True) -> Target:
    """Where a manifest document goes: its kind's resource, its namespace, its name."""
    metadata = document.get("metadata") or {}
    resource = api_resource(dyn, document["kind"], document["apiVersion"])
    if need_name and not metadata.get("name"):
        raise InvalidArgument(f"a {resource.kind} document has no metadata.name")
    return Target(resource, _namespace(resource, namespace, metadata.get("namespace")), metadata.get("name"))


def _namespace(resource: Resource, namespace: str | None, in_document: str | None = None) -> str | None:
    if not resource.namespaced:
        return None
    if namespace and in_document and namespace != in_document:
        raise InvalidArgument(
            f"a {resource.kind} document names namespace {in_document!r} but namespace {namespace!r} was given"
        )
    return in_document or namespace or DEFAULT_NAMESPACE


def _summary(obj: dict) -> dict:
    metadata = obj.get("metadata") or {}
    return {
        "kind": obj.get("kind"),
        "apiVersion": obj.get("apiVersion"),
        "namespace": metadata.get("namespace"),
        "name": metadata.get("name"),
        "resourceVersion": metadata.get("resourceVersion"),
    }


# ---- verbs ----------------------------------------------------------------------------------


def apply(dyn: DynamicClient, documents: list[dict], namespace: str | None, force: bool) -> list[dict]:
    """Server-side apply each document as field manager "chaosali"; idempotent."""
    applied = []
    for document in documents:
        where = target(dyn, document, namespace)
        with api.failing(f"apply {where}", dyn.configuration.host):
            obj = dyn.server_side_apply(
                where.resource,
                body=document,
                name=where.name,
                namespace=where.namespace,
                field_manager=FIELD_MANAGER,
                force_conflicts=force,
            )
        applied.append(_summary(obj.to_dict()))
        logger.info("chaosali: applied %s (resourceVersion %s)", where, applied[-1]["resourceVersion"])
    return applied


def create(dyn: DynamicClient, documents: list[dict], namespace: str | None, exist_ok: bool) -> list[dict]:
    """POST each document; an existing object is a conflict unless ``exist_ok``."""
    created = []
    for document in documents:
        where = target(dyn, document, namespace, need_name=False)
        with api.failing(f"create {where}", dyn.configuration.host):
            try:
                obj = dyn.create(
                    where.resource, body=document, namespace=where.namespace, field_manager=FIELD_MANAGER
                )
                logger.info("chaosali: created %s", where)
            except ConflictError:
                if not (exist_ok and where.name):
                    raise
                logger.info("chaosali: %s already exists, left as it is", where)
                obj = dyn.get(where.resource, name=where.name, namespace=where.namespace)
        created.append(_summary(obj.to_dict()))
    return created


def select(dyn: DynamicClient, where: Target, label_selector: str | None, field_selector: str | None) -> list[Target]:
    """The objects of ``where`` (a kind in a namespace, or in all) matching the selectors."""
    listing = get(dyn, where, label_selector, field_selector)
    return [
        Target(where.resource, item["metadata"].get("namespace"), item["metadata"]["name"])
        for item in listing["items"]
    ]


def delete(
    dyn: DynamicClient,
    targets: list[Target],
    grace_period_seconds: int | None,
    propagation_policy: str,
    ignore_not_found: bool,
    wait_timeout: float | None,
) -> list[dict]:
    """Delete each target; with ``wait_timeout``, return only once every one of them is gone."""
    deleted: list[tuple[Target, str | None]] = []
    for where in targets:
        with api.failing(f"delete {where}", dyn.configuration.host):
            try:
                response = dyn.delete(
                    where.resource,
                    name=where.name,
                    namespace=where.namespace,
                    grace_period_seconds=grace_period_seconds,
                    propagation_policy=propagation_policy,
                ).to_dict()
            except NotFoundError:
                if not ignore_not_found:
                    raise
                logger.info("chaosali: %s was already gone", where)
                continue
        # the server answers with the object (still finalizing) or with a Status naming its uid
        uid = (response.get("metadata") or {}).get("uid") or (response.get("details") or {}).get("uid")
        deleted.append((where, uid))
        logger.info("chaosali: deleted %s", where)
    if wait_timeout is not None:
        _wait_gone(dyn, deleted, wait_timeout)
    return [where.as_dict(uid=uid) for where, uid in deleted]


def _wait_gone(dyn: DynamicClient, deleted: list[tuple[Target, str | None]], timeout: float) -> None:
    pending = list(deleted)

    def still_there() -> list[tuple[Target, str | None, dict]]:
        nonlocal pending
        remaining = []
        for where, uid in pending:
            with api.failing(f"check that {where} is gone", dyn.configuration.host):
                try:
                    obj = dyn.get(where.resource, name=where.name, namespace=where.namespace).to_dict()
                except NotFoundError:
                    continue
            if uid is None or obj["metadata"].get("uid") == uid:  # another uid: gone, and re-created
                remaining.append((where, uid, obj))
        pending = [(where, uid) for where, uid, _ in remaining]
        return remaining

    gone, remaining = wait_until(still_there, time.monotonic() + timeout, 0.5, lambda left: not left)
    if not gone:
        still = "; ".join(
            f"{where} (finalizers: {', '.join(obj['metadata'].get('finalizers') or []) or 'none'})"
            for where, _, obj in remaining
        )
        raise ActivityFailed(f"deleted objects still exist after {timeout:g} s: {still}")


def patch_body(body: Any, patch_type: str | None) -> tuple[Any, str | None]:
    """The patch as data and its type ("json" for a list of operations; None: strategic, or merge
    where the kind has no strategic merge), checked before anything is sent."""
    if isinstance(body, str):
        body = parse(body, "patch")
    chosen = patch_type or ("json" if isinstance(body, list) else None)
    if chosen not in (None, *PATCH_TYPES):
        raise InvalidArgument(f"patch_type must be one of {', '.join(PATCH_TYPES)}, not {patch_type!r}")
    if not isinstance(body, list if chosen == "json" else dict):
        raise InvalidArgument("a JSON patch is a list of operations; a merge or strategic patch is an object")
    return body, chosen


def patch(dyn: DynamicClient, where: Target, body: Any, patch_type: str | None) -> dict:
    """Patch one object with a body checked by :func:`patch_body`."""

    def send(content: str) -> dict:
        return dyn.patch(
            where.resource,
            body=body,
            name=where.name,
            namespace=where.namespace,
            content_type=PATCH_TYPES[content],
            field_manager=FIELD_MANAGER,
        ).to_dict()

    used = patch_type or "strategic"
    with api.failing(f"patch {where}", dyn.configuration.host):
        try:
            obj = send(used)
        except ApiException as error:
            if patch_type or error.status != 415:
                raise
            used = "merge"  # custom resources know no strategic merge: kubectl merges them too
            obj = send(used)
    logger.info("chaosali: patched %s (%s patch)", where, used)
    return _summary(obj)


def get(
    dyn: DynamicClient, where: Target, label_selector: str | None = None, field_selector: str | None = None
) -> dict:
    """One object, or a ``kind: List`` of the matching ones, as ``kubectl get -o json`` prints them."""
    with api.failing(f"get {where}" if where.name else f"list {where}", dyn.configuration.host):
        result = dyn.get(
            where.resource,
            name=where.name,
            namespace=where.namespace,
            label_selector=label_selector,
            field_selector=field_selector,
        ).to_dict()
    items = [result] if where.name else result.get("items") or []
    for item in items:  # as kubectl (unless --show-managed-fields): bulky, and noise in a journal
        (item.get("metadata") or {}).pop("managedFields", None)
    if where.name:
        return result
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}
