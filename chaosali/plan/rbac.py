"""The least privilege a drill needs from the Kubernetes API, derived from the experiment alone.

Each chaosali activity and control the experiment declares (its steady state, method, rollbacks,
controls, and the probes of its stop conditions) is looked up here: what it reads and changes,
with its arguments substituted as ``chaos run`` substitutes them. A host query in any argument
(``{"masters": ...}``, ``{"nodes": ...}``, ``{"pods": ...}``) adds what resolving it reads. The
safety control adds what its halt and verified revert read and change for the faults the method
injects. Nothing is asked of a cluster: ``chaosali plan --rbac`` prints it without one, and
``chaosali schedule`` grants it to the drill's ServiceAccount (:func:`role_documents`).

Rules are namespaced (a Role in that namespace) where the activity names its namespace, else
cluster-wide (a ClusterRole). An activity whose needs are unknown (another extension's, or a
manifest read from a file) is listed in ``unknown``, to be granted by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from chaoslib import substitute
from chaoslib.types import Configuration, Experiment, Secrets

from chaosali.lock import lease

__all__ = ["Need", "rbac", "role_documents", "host_queries", "KINDS"]

READ = ("get", "list", "watch")
RBAC_GROUP = "rbac.authorization.k8s.io"
SSA = ("get", "create", "patch")  # server-side apply: patch, and create where the object is new

# kind (as activities name it: kind, plural or short name, any case) -> (API group, resource, namespaced)
KINDS: dict[str, tuple[str, str, bool]] = {}
for _names, _group, _resource, _namespaced in (
    (("pod", "po"), "", "pods", True),
    (("node", "no"), "", "nodes", False),
    (("namespace", "ns"), "", "namespaces", False),
    (("service", "svc"), "", "services", True),
    (("endpoints", "ep"), "", "endpoints", True),
    (("configmap", "cm"), "", "configmaps", True),
    (("secret",), "", "secrets", True),
    (("serviceaccount", "sa"), "", "serviceaccounts", True),
    (("event", "ev"), "", "events", True),
    (("persistentvolumeclaim", "pvc"), "", "persistentvolumeclaims", True),
    (("deployment", "deploy"), "apps", "deployments", True),
    (("statefulset", "sts"), "apps", "statefulsets", True),
    (("daemonset", "ds"), "apps", "daemonsets", True),
    (("replicaset", "rs"), "apps", "replicasets", True),
    (("job",), "batch", "jobs", True),
    (("cronjob", "cj"), "batch", "cronjobs", True),
    (("poddisruptionbudget", "pdb"), "policy", "poddisruptionbudgets", True),
    (("lease",), "coordination.k8s.io", "leases", True),
    (("endpointslice",), "discovery.k8s.io", "endpointslices", True),
    (("ingress", "ing"), "networking.k8s.io", "ingresses", True),
    (("networkpolicy", "netpol"), "networking.k8s.io", "networkpolicies", True),
    (("role",), RBAC_GROUP, "roles", True),
    (("rolebinding",), RBAC_GROUP, "rolebindings", True),
    (("clusterrole",), RBAC_GROUP, "clusterroles", False),
    (("clusterrolebinding",), RBAC_GROUP, "clusterrolebindings", False),
):
    for _name in (*_names, _resource):
        KINDS[_name] = (_group, _resource, _namespaced)


@dataclass(frozen=True)
class Need:
    """One permission: ``verbs`` on ``resource`` of API ``group`` in ``namespace`` (None: in every
    namespace, or a cluster-scoped resource), only the objects ``names`` if given; ``why``: who needs it."""

    group: str
    resource: str
    verbs: tuple[str, ...]
    namespace: str | None
    why: str
    names: tuple[str, ...] = ()


class _Needs:
    """What the activities need, gathered; one per experiment."""

    def __init__(self, configuration: Configuration, secrets: Secrets) -> None:
        self.configuration, self.secrets = configuration or {}, secrets or {}
        self.needs: list[Need] = []
        self.unknown: list[str] = []

    def add(self, why: str, group: str, resource: str, verbs: tuple[str, ...], namespace: str | None = None,
            names: tuple[str, ...] = ()) -> None:
        self.needs.append(Need(group, resource, tuple(verbs), namespace, why, names))

    def kind(self, why: str, kind: Any, verbs: tuple[str, ...], namespace: Any, name: Any = None) -> None:
        """``verbs`` on the objects of ``kind`` (as an activity names it) in ``namespace`` (None: all)."""
        known = KINDS.get(str(kind).lower().rstrip("s")) or KINDS.get(str(kind).lower())
        if known is None:
            self.unknown.append(f"{why}: kind {kind!r} is not one chaosali knows: grant its verbs "
                                f"{', '.join(verbs)} by hand")
            return
        group, resource, namespaced = known
        where = str(namespace) if namespaced and namespace else None
        names = (str(name),) if name and set(verbs) <= {"get", "patch", "update", "delete"} else ()
        self.add(why, group, resource, verbs, where, names)


def rbac(experiment: Experiment, configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """The rules the experiment's chaosali activities and controls need: ``{"rules": [{"namespace"
    (None: cluster-wide), "apiGroups", "resources", "verbs", "resourceNames"?, "why"}], "unknown":
    [what must be granted by hand]}``, merged and sorted."""
    gathered = _Needs(configuration, secrets)
    for where, provider in _providers(experiment):
        arguments = _arguments(provider, gathered)
        for query in host_queries(arguments):
            _query(gathered, where, query)
        key = f"{provider.get('module')}.{provider.get('func')}" if provider.get("func") else provider.get("module")
        needs = _ACTIVITIES.get(str(key))
        if needs is not None:
            needs(gathered, where, arguments, experiment)
        elif str(key).startswith("chaosk8s") or (provider.get("type") == "python" and "kubernetes" in str(key)):
            gathered.unknown.append(f"{where}: {key} is not chaosali's: grant what it needs by hand")
    return {"rules": _merged(gathered.needs), "unknown": sorted(set(gathered.unknown))}


def _providers(experiment: Experiment) -> Iterator[tuple[str, dict]]:
    """Every python provider of the experiment, with where it is declared."""
    hypothesis = experiment.get("steady-state-hypothesis") or {}
    for phase, listed in (("steady state", hypothesis.get("probes")), ("method", experiment.get("method")),
                          ("rollback", experiment.get("rollbacks"))):
        for activity in listed or []:
            if isinstance(activity, dict) and (activity.get("provider") or {}).get("type") == "python":
                yield f"{phase} {activity.get('name')!r}", activity["provider"]
    for control in experiment.get("controls") or []:
        provider = control.get("provider") or {}
        if provider.get("type") == "python":
            yield f"control {control.get('name')!r}", provider


def _arguments(provider: dict, gathered: _Needs) -> dict:
    arguments = provider.get("arguments") or {}
    if not isinstance(arguments, dict):
        return {}
    return substitute(dict(arguments), gathered.configuration, gathered.secrets)


def host_queries(value: Any) -> Iterator[dict]:
    """The host queries anywhere in an activity's arguments (targets, peers, a random pool's)."""
    if isinstance(value, dict):
        if any(key in value for key in ("masters", "nodes", "pods")):
            yield value
        else:
            for item in value.values():
                yield from host_queries(item)
    elif isinstance(value, list):
        for item in value:
            yield from host_queries(item)


def _query(gathered: _Needs, why: str, query: dict) -> None:
    """What resolving a host query reads (``chaosali.cluster.nodes.select_hosts``)."""
    why = f"{why}: resolve its host query"
    if "masters" in query:
        _masters(gathered, why)
    elif "nodes" in query:
        gathered.add(why, "", "nodes", ("list",))
    elif isinstance(query.get("pods"), dict):
        gathered.add(why, "", "pods", ("list",), str(query["pods"].get("namespace") or "default"))
        gathered.add(why, "", "nodes", ("get",))


def _masters(gathered: _Needs, why: str) -> None:
    gathered.add(why, "", "nodes", ("get", "list"))
    gathered.add(why, "", "pods", ("list",), "kube-system")
    gathered.add(why, "", "endpoints", ("get",), "default", ("kubernetes",))


# -- each activity and control ------------------------------------------------------------------

_Rule = Callable[[_Needs, str, dict, Experiment], None]


def _nodes_read(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    gathered.add(why, "", "nodes", ("list",))


def _get(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    namespace = None if arguments.get("all_namespaces") else arguments.get("namespace") or "default"
    verbs = ("get",) if arguments.get("name") else ("list",)
    gathered.kind(why, arguments.get("kind"), verbs, namespace, arguments.get("name"))


def _manifests(verbs: tuple[str, ...]) -> _Rule:
    def needs(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
        manifest = arguments.get("manifest")
        documents = manifest if isinstance(manifest, list) else [manifest] if isinstance(manifest, dict) else []
        if arguments.get("path") or not documents:
            if arguments.get("kind"):  # delete by kind and name or selector
                gathered.kind(why, arguments["kind"], ("get", "list", "delete"), arguments.get("namespace") or "default")
            else:
                gathered.unknown.append(f"{why}: the manifest is read at run time from {arguments.get('path')!r}: "
                                        f"grant {', '.join(verbs)} on its kinds by hand")
            return
        for document in documents:
            metadata = document.get("metadata") or {}
            gathered.kind(why, document.get("kind"), verbs,
                          arguments.get("namespace") or metadata.get("namespace") or "default", metadata.get("name"))
    return needs


def _patch(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    gathered.kind(why, arguments.get("kind"), ("get", "patch"), arguments.get("namespace") or "default",
                  arguments.get("name"))


def _drain(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    gathered.add(why, "", "nodes", ("get", "list", "patch"))
    gathered.add(why, "", "pods", ("list",))
    gathered.add(why, "", "pods/eviction", ("create",))
    gathered.add(why, "", "namespaces", ("get",))


def _uncordon(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    gathered.add(why, "", "nodes", ("get", "list", "patch"))


def _lease(gathered: _Needs, why: str, arguments: dict, experiment: Experiment, verbs: tuple[str, ...]) -> None:
    name = str(arguments.get("name") or lease.DEFAULT_NAME)
    namespace = str(arguments.get("namespace") or lease.DEFAULT_NAMESPACE)
    named = tuple(verb for verb in verbs if verb != "create")
    gathered.add(f"{why}: the lock", "coordination.k8s.io", "leases", named, namespace, (name,))
    if "create" in verbs:  # a create cannot be limited to a name: the Lease does not exist yet
        gathered.add(f"{why}: the lock", "coordination.k8s.io", "leases", ("create",), namespace)


def _lock(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    _lease(gathered, why, arguments, experiment, ("get", "create", "update"))


def _lock_holder(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    _lease(gathered, why, arguments, experiment, ("get",))


def _unlock(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    _lease(gathered, why, arguments, experiment, ("get", "update"))


def _impact(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    """The recorder lists and watches nodes, and the pods, workloads and Warning events of each
    namespace it records (those given, else those the experiment names, as the control reads them)."""
    from chaosali.impact.controls import recorded_namespaces

    gathered.add(why, "", "nodes", ("list", "watch"))
    for namespace in recorded_namespaces(arguments.get("namespaces"), experiment, gathered.configuration,
                                         gathered.secrets):
        gathered.add(why, "", "pods", ("list", "watch"), namespace)
        gathered.add(why, "", "events", ("list", "watch"), namespace)
        for resource in ("deployments", "replicasets", "statefulsets", "daemonsets"):
            gathered.add(why, "apps", resource, ("list", "watch"), namespace)


def _spread(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    """The spread control reads the Deployment, its pods and the nodes, and restarts its rollout."""
    namespace = str(arguments.get("namespace") or "default")
    gathered.add(why, "apps", "deployments", ("get", "patch"), namespace, (str(arguments.get("name")),))
    gathered.add(why, "", "pods", ("list",), namespace)
    gathered.add(why, "", "nodes", ("list",))


def _safety(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    """A halt heals what the method injected, and the verified revert reads what is left of it (host
    faults over SSH; a drain's cordons, kube-monkey's objects and labels in the cluster); a stop
    condition's probe needs what that probe needs."""
    heals = {"chaosali.cluster.actions.drain_node": _uncordon,
             "chaosali.kubemonkey.actions.deploy_kube_monkey": _remove_kube_monkey,
             "chaosali.kubemonkey.actions.mark_victims": _victims(("get", "list", "patch"))}
    for activity in experiment.get("method") or []:
        provider = activity.get("provider") or {}
        heal = heals.get(f"{provider.get('module')}.{provider.get('func')}")
        if heal is not None:
            heal(gathered, f"{why}: halt and verified revert of {activity.get('name')!r}",
                 _arguments(provider, gathered), experiment)
    for condition in arguments.get("conditions") or []:
        probe = condition.get("probe") if isinstance(condition, dict) else None
        provider = (probe or {}).get("provider") or {}
        rule = _ACTIVITIES.get(f"{provider.get('module')}.{provider.get('func')}")
        if rule is not None:
            rule(gathered, f"{why}: stop condition {condition.get('name')!r}", _arguments(provider, gathered), experiment)


def _exposure(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    """The plan control reads the nodes, the pods on the targets, their workloads and budgets, and the lock."""
    gathered.add(why, "", "nodes", ("list",))
    gathered.add(why, "", "pods", ("list",))
    gathered.add(why, "policy", "poddisruptionbudgets", ("list",))
    for resource in ("deployments", "replicasets", "statefulsets", "daemonsets"):
        gathered.add(why, "apps", resource, ("get",))
    for control in experiment.get("controls") or []:
        provider = control.get("provider") or {}
        if provider.get("module") == "chaosali.lock.controls":
            _lock_holder(gathered, why, _arguments(provider, gathered), experiment)


def _kube_monkey_namespace(arguments: dict) -> str:
    return str(arguments.get("namespace") or "kube-monkey")


def _deploy_kube_monkey(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    from chaosali.kubemonkey import manifests as km

    namespace = _kube_monkey_namespace(arguments)
    gathered.add(why, "", "namespaces", ("get", "create"))
    for group, resource in (("", "configmaps"), ("", "serviceaccounts"), ("apps", "deployments")):
        gathered.add(why, group, resource, SSA + ("list",), namespace)
    for resource in ("clusterroles", "clusterrolebindings"):
        gathered.add(why, RBAC_GROUP, resource, SSA)
    gathered.add(why, "", "pods", ("list",), namespace)
    # the API server grants a ClusterRole's rules only to one who holds them (no escalation)
    for rule in km.RULES:
        for resource in rule["resources"]:
            gathered.add(f"{why}: kube-monkey's own ClusterRole", rule["apiGroups"][0], resource, tuple(rule["verbs"]))
    _victims(("list",))(gathered, why, {}, experiment)


def _remove_kube_monkey(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    namespace = _kube_monkey_namespace(arguments)
    gathered.add(why, "", "namespaces", ("get", "delete"), None, (namespace,))
    for group, resource in (("", "configmaps"), ("", "serviceaccounts"), ("apps", "deployments")):
        gathered.add(why, group, resource, ("get", "list", "delete"), namespace)
    for resource in ("clusterroles", "clusterrolebindings"):
        gathered.add(why, RBAC_GROUP, resource, ("get", "list", "delete"))


def _kube_monkey_running(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    gathered.add(why, "apps", "deployments", ("list",), _kube_monkey_namespace(arguments))


def _victims(verbs: tuple[str, ...]) -> _Rule:
    """The enrolled workloads (of one kind when the activity names it) and their pods."""
    def needs(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
        namespace = arguments.get("namespace")
        kinds = [arguments["kind"]] if arguments.get("kind") else ["deployments", "statefulsets", "daemonsets"]
        for kind in kinds:
            gathered.kind(why, kind, verbs, namespace)
        gathered.add(why, "", "pods", ("list",), str(namespace) if namespace else None)
    return needs


def _vip(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    if arguments.get("service"):
        gathered.add(why, "discovery.k8s.io", "endpointslices", ("list",), str(arguments.get("namespace") or "default"))


def _random(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    """Its caps: the share of nodes hit, and never every master (unless allowed)."""
    if arguments.get("max_node_percent") is not None:
        gathered.add(why, "", "nodes", ("list",))
    if not arguments.get("allow_all_masters"):
        _masters(gathered, f"{why}: never every master")


def _none(gathered: _Needs, why: str, arguments: dict, experiment: Experiment) -> None:
    """Reads nothing through the API (or only /readyz, which every client may read)."""


_ACTIVITIES: dict[str, _Rule] = {
    "chaosali.cluster.probes.get": _get,
    "chaosali.cluster.probes.api_ready": _none,
    "chaosali.cluster.probes.watch_api": _none,
    "chaosali.cluster.probes.nodes_ready": _nodes_read,
    "chaosali.cluster.probes.watch_nodes": _nodes_read,
    "chaosali.cluster.probes.master_hosts": lambda g, why, a, e: _masters(g, why),
    "chaosali.cluster.actions.apply": _manifests(SSA),
    "chaosali.cluster.actions.create": _manifests(("create",)),
    "chaosali.cluster.actions.delete": _manifests(("get", "delete")),
    "chaosali.cluster.actions.patch": _patch,
    "chaosali.cluster.actions.drain_node": _drain,
    "chaosali.cluster.actions.uncordon_node": _uncordon,
    "chaosali.lock.controls": _lock,
    "chaosali.lock.actions.lock_environment": _lock,
    "chaosali.lock.actions.unlock_environment": _unlock,
    "chaosali.lock.probes.environment_lock_holder": _lock_holder,
    "chaosali.impact.controls": _impact,
    "chaosali.spread.controls": _spread,
    "chaosali.safety.controls": _safety,
    "chaosali.plan.controls": _exposure,
    "chaosali.kubemonkey.actions.deploy_kube_monkey": _deploy_kube_monkey,
    "chaosali.kubemonkey.actions.remove_kube_monkey": _remove_kube_monkey,
    "chaosali.kubemonkey.actions.mark_victims": _victims(("get", "list", "patch")),
    "chaosali.kubemonkey.actions.unmark_victims": _victims(("get", "list", "patch")),
    "chaosali.kubemonkey.probes.kube_monkey_running": _kube_monkey_running,
    "chaosali.kubemonkey.probes.marked_victims": _victims(("list",)),
    "chaosali.kubemonkey.probes.victim_pods_deleted": _victims(("list",)),
    "chaosali.service.probes.vip_members": _vip,
    "chaosali.chaos.actions.inject_random_faults": _random,
    "chaosali.chaos.actions.restore_random_faults": _none,
}


def _merged(needs: list[Need]) -> list[dict]:
    """One rule per (namespace, group, resource, names), its verbs and reasons gathered."""
    rules: dict[tuple, dict] = {}
    for need in needs:
        key = (need.namespace or "", need.group, need.resource, need.names)
        rule = rules.setdefault(key, {"namespace": need.namespace, "apiGroups": [need.group],
                                      "resources": [need.resource], "verbs": set(), "why": []})
        if need.names:
            rule["resourceNames"] = list(need.names)
        rule["verbs"].update(need.verbs)
        if need.why not in rule["why"]:
            rule["why"].append(need.why)
    for key, rule in rules.items():  # named rules whose verbs an unnamed rule already grants add nothing
        unnamed = rules.get((*key[:3], ()))
        if key[3] and unnamed and rule["verbs"] <= unnamed["verbs"]:
            unnamed["why"] += [why for why in rule["why"] if why not in unnamed["why"]]
            rule["verbs"] = set()
    return [{**rule, "verbs": sorted(rule["verbs"])} for key, rule in sorted(rules.items()) if rule["verbs"]]


def role_documents(rules: list[dict], name: str, account: str | None = None, namespace: str | None = None,
                   labels: dict | None = None) -> list[dict]:
    """A ClusterRole with the cluster-wide rules and a Role per namespace with that namespace's, all
    named ``name``; with ``account``, each bound to that ServiceAccount of ``namespace``."""
    metadata: dict[str, Any] = {"name": name, **({"labels": labels} if labels else {})}
    scopes: dict[str | None, list[dict]] = {}
    for rule in rules:
        scopes.setdefault(rule["namespace"], []).append(
            {key: rule[key] for key in ("apiGroups", "resources", "resourceNames", "verbs") if key in rule})
    documents: list[dict[str, Any]] = []
    for scope, granted in sorted(scopes.items(), key=lambda item: item[0] or ""):
        where = {"namespace": scope} if scope else {}
        kind = "Role" if scope else "ClusterRole"
        documents.append({"apiVersion": f"{RBAC_GROUP}/v1", "kind": kind, "metadata": {**metadata, **where},
                          "rules": granted})
        if account:
            documents.append({
                "apiVersion": f"{RBAC_GROUP}/v1", "kind": f"{kind}Binding", "metadata": {**metadata, **where},
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": kind, "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]})
    return documents
