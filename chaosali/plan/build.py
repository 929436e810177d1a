"""A drill's plan: what each chaosali activity of its method and rollbacks would hit, now.

The experiment is read as ``chaos run`` reads it (chaoslib's loader, configuration, secrets and
var files), each activity's arguments are substituted and its secrets scoped as chaoslib does,
and its targets are resolved by the very functions the activity calls (``planned_targets`` of
the host actions, ``preview_random_faults`` of random chaos, ``select_hosts`` of a drain), so a
plan and the run that follows resolve the same queries the same way. Nothing is injected: the
cluster is only listed and read, the hosts only checked by the read-only preflight.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chaoslib import convert_vars, merge_vars, substitute
from chaoslib.configuration import load_configuration, load_dynamic_configuration
from chaoslib.exceptions import ActivityFailed
from chaoslib.loader import load_experiment
from chaoslib.secret import load_secrets
from chaoslib.types import Configuration, Experiment, Secrets

from chaosali.cluster.api import ApiFailed
from chaosali.cluster.nodes import RUNNER_NODE_ENV
from chaosali.core import extensions, memory
from chaosali.core.args import percent as read_percent, whole
from chaosali.core.errors import InvalidArgument
from chaosali.host.ssh import Host, SSHSettings

__all__ = ["load", "make_plan", "CAPS"]

logger = logging.getLogger("chaostoolkit")

EXTENSION = extensions.FMEA
# max_blast_radius in the experiment's chaosali extension: cap -> how it is read
CAPS = {
    "hosts": lambda value: whole(value, "max_blast_radius hosts", 0, 1_000_000),
    "nodes": lambda value: whole(value, "max_blast_radius nodes", 0, 1_000_000),
    "node_percent": lambda value: read_percent(value, "max_blast_radius node_percent", zero=True),
    "replica_percent": lambda value: read_percent(value, "max_blast_radius replica_percent", zero=True),
}


def load(source: str, var_files: list[str], variables: list[str]) -> tuple[Experiment, Configuration, Secrets]:
    """The experiment, its configuration and its secrets, as ``chaos run`` loads them."""
    missing = [path for path in var_files if not Path(path).is_file()]
    if missing:  # chaoslib only logs a missing var file and goes on
        raise InvalidArgument(f"var file {', '.join(missing)} does not exist: give the path of a JSON or YAML var file")
    experiment = load_experiment(source)
    _well_formed(experiment)
    config_vars, secret_vars = merge_vars(convert_vars(variables), var_files)
    configuration = load_configuration(experiment.get("configuration", {}), config_vars)
    secrets = load_secrets(experiment.get("secrets", {}), configuration, secret_vars)
    return experiment, load_dynamic_configuration(configuration, secrets), secrets


def _well_formed(experiment: Experiment) -> None:
    """Refuse, naming where, the parts the plan reads that are not of their shape (chaoslib's own
    validation fails on them with a bare AttributeError): activities, providers, controls, extensions."""
    if not isinstance(experiment, dict):
        raise InvalidArgument(f"the experiment must be an object (title, method...), not {_a(experiment)}")
    for key in ("method", "rollbacks", "controls", "extensions"):
        listed = experiment.get(key)
        if listed is not None and not isinstance(listed, list):
            raise InvalidArgument(f"the experiment's {key} must be a list, not {_a(listed)}")
        for index, item in enumerate(listed or []):
            where = f"{key}[{index}]"
            if not isinstance(item, dict):
                raise InvalidArgument(f"{where} must be an object, not {_a(item)}")
            where += f" {item['name']!r}" if isinstance(item.get("name"), str) else ""
            if key in ("extensions",) or "ref" in item and "provider" not in item:
                continue
            _well_formed_provider(item.get("provider"), where, ("module",) if key == "controls" else ("module", "func"))
    fmea = _extension(experiment).get("fmea")
    if fmea is not None and not isinstance(fmea, dict):
        raise InvalidArgument(f"the chaosali extension's fmea must be an object (category, severity, impact, "
                              f"recovery...), not {_a(fmea)}")


def _well_formed_provider(provider: Any, where: str, needs: tuple[str, ...]) -> None:
    if not isinstance(provider, dict):
        raise InvalidArgument(f"{where}: its provider must be an object, not {_a(provider)}")
    if provider.get("type") == "python" and not all(isinstance(provider.get(k), str) and provider[k] for k in needs):
        raise InvalidArgument(f"{where}: its python provider needs {' and '.join(needs)} (text), e.g. "
                              '{"type": "python", "module": "chaosali.host.actions", "func": "cut_network"}')
    if not isinstance(provider.get("arguments", {}), dict):
        raise InvalidArgument(f"{where}: its arguments must be an object of named arguments, not {_a(provider['arguments'])}")
    scopes = provider.get("secrets", [])
    if not (isinstance(scopes, list) and all(isinstance(scope, str) for scope in scopes)):
        raise InvalidArgument(f"{where}: its secrets must be a list of secrets scope names, e.g. [\"ssh\"]")


def _a(value: Any) -> str:
    return {str: "a string", list: "a list", dict: "an object", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def make_plan(experiment: Experiment, configuration: Configuration, secrets: Secrets, preflight: bool = True) -> dict:
    """The plan (JSON-able); ``reasons`` is empty when the drill may run as planned. The run's
    memory is left as it was: a plan made inside a run (the plan control) chooses nothing for it."""
    with memory.aside():
        return _make(experiment, configuration, secrets, preflight)


def _make(experiment: Experiment, configuration: Configuration, secrets: Secrets, preflight: bool) -> dict:
    reasons: list[str] = []
    hosts: dict[str, dict] = {}  # address -> the host, what hits it, with what secrets
    previews: dict[str, dict] = {}  # pool -> the random drill previewed for it (its rollback's hosts)
    activities = [_activity(phase, activity, configuration, secrets, reasons, hosts, previews)
                  for phase, activity in _chaosali_activities(experiment, configuration, secrets)]
    hit = {address: host for address, host in hosts.items() if host["faults"] is not None}
    plan: dict[str, Any] = {
        "experiment": experiment.get("title"),
        "made_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "activities": activities,
        "lock": _lock(experiment, configuration, secrets, reasons),
        "spread": _spread(experiment, configuration, reasons),
        "hosts": [_shown(host) for host in hit.values()],
    }
    plan.update(_cluster(list(hit), activities, configuration, secrets, reasons))
    plan["blast_radius"] = _radius(plan, _caps(experiment), reasons)
    _runner_node(plan, reasons)
    plan["fmea"] = _fmea(experiment, plan, configuration, secrets)
    if preflight:
        _preflight(hit, plan["hosts"], configuration, reasons)
    plan["reasons"] = reasons
    return plan


def _chaosali_activities(
    experiment: Experiment, configuration: Configuration, secrets: Secrets
) -> Iterator[tuple[str, dict]]:
    for phase, listed in (("method", experiment.get("method")), ("rollback", experiment.get("rollbacks"))):
        for activity in listed or []:
            provider = activity.get("provider") or {}
            if provider.get("type") == "python" and str(provider.get("module", "")).startswith("chaosali."):
                yield phase, activity


def _call(provider: dict, configuration: Configuration, secrets: Secrets) -> tuple[dict, Secrets]:
    """The arguments and secrets chaoslib's python provider passes the function."""
    arguments = substitute(dict(provider.get("arguments") or {}), configuration, secrets)
    scoped: dict = {}
    for scope in provider.get("secrets") or []:
        scoped.update((secrets or {}).get(scope) or {})
    return arguments, scoped


def _activity(
    phase: str, activity: dict, configuration: Configuration, secrets: Secrets, reasons: list[str],
    hosts: dict[str, dict], previews: dict[str, dict],
) -> dict:
    provider = activity["provider"]
    where = f"{provider['module']}.{provider['func']}"
    entry: dict[str, Any] = {"phase": phase, "name": activity.get("name"), "activity": where}
    arguments, scoped = _call(provider, configuration, secrets)
    try:
        found = _targets(provider["module"], provider["func"], arguments, configuration, scoped, previews)
    except ActivityFailed as error:
        reasons.append(f"{_kind(error)}: {phase} {entry['name']!r}: {error}")
        return {**entry, "error": str(error)}
    if found is None:
        return entry
    resolved, extra = found
    entry.update(extra)
    entry["hosts"] = [{"name": host.name, "address": host.address} for host, _ in resolved]
    for host, fault in resolved:
        known = hosts.setdefault(host.address, {"host": host, "activities": [], "faults": None,
                                                "settings": SSHSettings.from_chaos(configuration, scoped)})
        known["activities"].append(f"{phase} {entry['name']}")
        if phase == "method":  # a rollback heals: it is no part of the blast radius
            known["faults"] = (known["faults"] or []) + ([fault] if fault else [])
    if extra.get("random", {}).get("refused"):
        reasons.append(f"cap exceeded: {phase} {entry['name']!r}: {extra['random']['refused']}")
    return entry


def _kind(error: ActivityFailed) -> str:
    if isinstance(error, ApiFailed) and error.status is None:
        return "API unreachable"
    return "no match" if "no host to act on" in str(error) else "cannot resolve"


def _targets(
    module: str, func: str, arguments: dict, configuration: Configuration, secrets: Secrets, previews: dict[str, dict]
) -> tuple[list[tuple[Host, str | None]], dict] | None:
    """The hosts an activity would act on, each with the host fault it would inject there (None: a
    rollback or a fault of the API), and what else the plan shows of it; None: no targets."""
    from chaosali.host import actions as host_actions
    from chaosali.host.preflight import FAULTS

    if module == "chaosali.host.actions" and "targets" in arguments:
        found = host_actions.planned_targets(func, arguments, configuration, secrets)
        fault = func if func in FAULTS else None
        extra = {"query": found["selection"]} if found["selection"] else {}
        return [(host, fault) for host in found["hosts"]], {**extra, **({"peers": found["peers"]} if found["peers"] else {})}
    if module == "chaosali.chaos.actions" and func == "inject_random_faults":
        from chaosali.chaos.preview import preview_random_faults

        drill = preview_random_faults(arguments, configuration, secrets)
        previews[_pool_key(arguments.get("pool"))] = drill
        steps = [(Host(h["address"], name=h["name"]), step["action"]) for step in drill["steps"] for h in step["hosts"]]
        return steps, {"random": drill}
    if module == "chaosali.chaos.actions" and func == "restore_random_faults":
        drill = previews.get(_pool_key(arguments.get("pool")), {"steps": []})
        why = "the faults inject_random_faults injected from this pool" if drill["steps"] else \
            "nothing planned from this pool: it restores the pool's kinds on every host the pool may choose"
        return [(Host(h["address"], name=h["name"]), None) for step in drill["steps"] for h in step["hosts"]], {"why": why}
    if module == "chaosali.cluster.actions" and func == "drain_node":
        from chaosali.cluster.nodes import select_hosts

        selection = {"query": arguments.get("targets"), **select_hosts(arguments.get("targets") or {}, configuration, secrets)}
        return [(Host(h["address"], name=h["name"]), None) for h in selection["hosts"]], {"query": selection}
    return None


def _pool_key(pool: Any) -> str:
    return json.dumps(pool, sort_keys=True, default=str)


def _shown(host: dict) -> dict:
    return {"name": host["host"].name, "address": host["host"].address, "activities": host["activities"],
            "faults": list(dict.fromkeys(host["faults"]))}


def _lock(experiment: Experiment, configuration: Configuration, secrets: Secrets, reasons: list[str]) -> dict | None:
    """The Lease the run would take (its lock control, or a lock_environment action), and who holds it."""
    from chaosali.lock import lease
    from chaosali.lock.probes import environment_lock_holder

    declared = [c.get("provider") or {} for c in experiment.get("controls") or []
                if (c.get("provider") or {}).get("module") == "chaosali.lock.controls"]
    declared += [a["provider"] for phase, a in _chaosali_activities(experiment, configuration, secrets)
                 if a["provider"].get("module") == "chaosali.lock.actions" and a["provider"].get("func") == "lock_environment"]
    if not declared:
        return None
    arguments, scoped = _call(declared[0], configuration, secrets)
    name, namespace = arguments.get("name", lease.DEFAULT_NAME), arguments.get("namespace", lease.DEFAULT_NAMESPACE)
    try:
        holding = environment_lock_holder(name, namespace, configuration, scoped)
    except ActivityFailed as error:
        reasons.append(f"{_kind(error)}: the lock Lease {namespace}/{name}: {error}")
        return {"lease": f"{namespace}/{name}", "error": str(error)}
    if holding["held"]:
        reasons.append(f"lock held: Lease {namespace}/{name} is held by {holding['holder']!r} until "
                       f"{holding['expires']}: the run would stop before any activity")
    return {"lease": f"{namespace}/{name}", **holding}


def _spread(experiment: Experiment, configuration: Configuration, reasons: list[str]) -> list[dict]:
    """The Deployments the spread control puts back before the drill, as they stand now: a placement
    that does not hold is restarted first, so the pods the plan sees on the targets will move."""
    from chaosali.cluster.api import connect
    from chaosali.cluster.spread import misplacement, placement_now

    found: list[dict[str, Any]] = []
    for control in experiment.get("controls") or []:
        provider = control.get("provider") or {}
        if provider.get("module") != "chaosali.spread.controls":
            continue
        arguments, scoped = _call(provider, configuration, {})
        deployment = f"{arguments.get('namespace')}/{arguments.get('name')}"
        try:
            with connect(configuration, scoped) as cluster:
                now = placement_now(cluster, str(arguments.get("namespace")), str(arguments.get("name")))
        except ActivityFailed as error:  # the control would stop the run before any activity
            reasons.append(f"{_kind(error)}: the spread of Deployment {deployment}: {error}")
            found.append({"deployment": deployment, "error": str(error)})
            continue
        found.append({"deployment": deployment, "holds": now["holds"], "misplaced": misplacement(now),
                      "domains": {c["topology_key"]: c["domains"] for c in now["constraints"]}})
    return found


def _cluster(
    addresses: list[str], activities: list[dict], configuration: Configuration, secrets: Secrets, reasons: list[str]
) -> dict:
    """The nodes, workloads and budgets the hosts at ``addresses`` carry; a budget with no room
    left is a reason. Without a cluster, hosts that no query chose are plain hosts."""
    from chaosali.plan._exposure import exposure

    if not addresses:
        return {"nodes": None, "workloads": [], "budgets": []}
    try:
        found = exposure(addresses, configuration, secrets)
    except ActivityFailed as error:
        if any("query" in a or "random" in a for a in activities):
            reasons.append(f"{_kind(error)}: the workloads on the targets: {error}")
        else:
            logger.info("chaosali: plain hosts, no cluster to read (%s)", error)
        return {"nodes": None, "workloads": [], "budgets": [], "cluster": f"unknown: {error}"}
    for budget in found["budgets"]:
        if budget["violated"]:
            reasons.append(
                f"PDB violated: PodDisruptionBudget {budget['budget']} allows {budget['allowed']} more pod(s) "
                f"lost now, and the targets run {len(budget['touched'])} of its ready pods "
                f"({', '.join(budget['touched'])})")
    return found


def _runner_node(plan: dict, reasons: list[str]) -> None:
    """A drill run from a pod (``chaosali schedule``) never hits the node its own pod runs on."""
    runner = os.environ.get(RUNNER_NODE_ENV)
    if runner and plan["nodes"] and runner in plan["nodes"]["hit"]:
        reasons.append(f"runner's node: the method hits node {runner}, where this drill's own pod runs, and would "
                       "cut or stop the drill itself: target the hosts by a query (it leaves that node out) or keep "
                       "the runner off them")


def _extension(experiment: Experiment) -> dict:
    """The experiment's chaosali extension (its FMEA, its caps), or nothing."""
    return next((e for e in experiment.get("extensions") or [] if isinstance(e, dict) and e.get("name") == EXTENSION), {})


def _caps(experiment: Experiment) -> dict:
    extension = _extension(experiment)
    caps = extension.get("max_blast_radius") or {}
    if not isinstance(caps, dict) or set(caps) - set(CAPS):
        raise InvalidArgument(f"max_blast_radius {caps!r} in the chaosali extension: give an object of "
                              f"{', '.join(CAPS)}, e.g. {{\"nodes\": 1, \"replica_percent\": 50}}")
    return {name: CAPS[name](value) for name, value in caps.items()}


def _radius(plan: dict, caps: dict, reasons: list[str]) -> dict:
    """The shares the method hits, against the experiment's caps (max_blast_radius)."""
    nodes = plan["nodes"]
    radius: dict[str, Any] = {"hosts": len(plan["hosts"]), "caps": caps}
    if nodes:
        radius["nodes"] = len(nodes["hit"])
        radius["node_percent"] = round(100 * len(nodes["hit"]) / nodes["of"], 1) if nodes["of"] else 0.0
        radius["replica_percent"] = {w["workload"]: w["percent"] for w in plan["workloads"] if w["kind"] != "Pod"}
    measured = {"hosts": radius["hosts"], "nodes": radius.get("nodes"), "node_percent": radius.get("node_percent"),
                "replica_percent": max(radius.get("replica_percent", {}).values(), default=None)}
    for name, cap in caps.items():
        if measured[name] is not None and measured[name] > cap:
            worst = (f" ({max(radius['replica_percent'], key=radius['replica_percent'].get)})"
                     if name == "replica_percent" else "")
            reasons.append(f"cap exceeded: the method hits {name.replace('_', ' ')} {measured[name]:g}{worst}, "
                           f"more than max_blast_radius {name} {cap:g}")
    return radius


def _fmea(experiment: Experiment, plan: dict, configuration: Configuration, secrets: Secrets) -> dict | None:
    """What the drill expects (its FMEA) beside what the plan predicts it could touch."""
    extension = _extension(experiment)
    expected = extension.get("fmea")
    if not expected:
        return None
    watched = _watched_namespaces(experiment, configuration, secrets)
    at_risk = [w for w in plan["workloads"] if w["touched"] and (watched is None or w["namespace"] in watched)]
    pods = sum(w["touched"] for w in at_risk)
    words = ", ".join(f"{w['workload']}: {w['touched']} of {w['ready']}" for w in at_risk)
    notes = [f"the spread control restarts Deployment {moved['deployment']}'s rollout before the drill "
             f"({moved['misplaced']}): its pods on the targets are today's, not the run's"
             for moved in plan["spread"] if moved.get("holds") is False]
    limit = expected.get("max_pods_lost")
    if isinstance(limit, int) and pods > limit:
        notes.append(f"max_pods_lost {limit}, but the targets run {pods} ready pod(s) ({words})")
    whole_ones = [w["workload"] for w in at_risk if w["touched"] >= w["ready"] > 0 and w["kind"] != "Pod"]
    if whole_ones and expected.get("impact") in ("none", "partial"):
        notes.append(f"impact {expected['impact']}, but every ready replica of {', '.join(whole_ones)} is on the targets")
    return {"expected": expected, "predicted": {"pods_at_risk": pods, "workloads": words or "none",
                                                "namespaces": watched}, "notes": notes}


def _watched_namespaces(experiment: Experiment, configuration: Configuration, secrets: Secrets) -> list[str] | None:
    """The namespaces the impact control records (its FMEA limits are judged on them); None: all."""
    for control in experiment.get("controls") or []:
        provider = control.get("provider") or {}
        if provider.get("module") == "chaosali.impact.controls":
            return _call(provider, configuration, secrets)[0].get("namespaces")
    return None


def _preflight(hit: dict[str, dict], shown: list[dict], configuration: Configuration, reasons: list[str]) -> None:
    """hosts_ready's checks on each host, for the faults the method puts there (read-only)."""
    from chaosali.host.preflight import check_hosts

    groups: dict[tuple, list[Host]] = {}
    for host in hit.values():
        if host["faults"]:
            groups.setdefault((tuple(dict.fromkeys(host["faults"])), host["settings"]), []).append(host["host"])
    by_address = {entry["address"]: entry for entry in shown}
    for (faults, settings), hosts in groups.items():
        for report in check_hosts(hosts, list(faults), configuration, settings)["hosts"]:
            entry = by_address[report["address"]]
            entry["preflight"] = {"ready": report["ready"], "faults": report["faults"], "checks": report["checks"]}
            for verdict in report["faults"]:
                if not verdict["ready"]:
                    reasons.append(f"preflight failed: host {report['host']}: {verdict['fault']}: {verdict['reason']}")
