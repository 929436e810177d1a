"""The run-long recording: pods, workloads, nodes, Warning events and the API itself, watched;
HTTP targets, sampled; the alerts of a Prometheus, polled.

One list per kind at the start, then watches that resume from their resourceVersion after an
error or a cut API (a 410 Gone lists again). Watches end every ``WATCH_SECONDS`` on the server's
side and a read that hears nothing for longer fails, so a silently cut API is noticed within
seconds; the API's own outage is sampled apart, on ``/readyz``, so that its from/to are exact.

One time base: every moment of the recording is ``t``, seconds since it started (its
``started_at``): the timeline's entries (which keep ``at``, their ISO time, too), the API's
outages, the HTTP targets' error windows and each alert's ``pending_at``, ``firing_at`` and
``resolved_at`` (its ``active_at`` is Prometheus's own ``activeAt``, as it gave it). A window is
as precise as its sampling: the API's within the second of /readyz, a workload's within the
fraction of a second its watch event takes to arrive. The timeline is capped; what does not fit is counted.
Only names, states and reasons are kept: never an object's spec, env, or a Secret, nor an
alert's annotations (free text that may quote one).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from chaosali.cluster.api import Connection, failing
from chaosali.cluster.health import readiness_problem
from chaosali.cluster.rollout import replicas
from chaosali.core import http
from chaosali.core.args import cause, display_url
from chaosali.core.windows import Windows

__all__ = ["Scope", "HttpTarget", "Recorder", "WATCH_SECONDS", "ALERT_POLL_SECONDS"]

logger = logging.getLogger("chaostoolkit")

WATCH_SECONDS = 10  # the server ends each watch after this; resuming costs one small request
_READ_TIMEOUT = WATCH_SECONDS + 5
_RETRY_SECONDS = 1.0
_STOP_SECONDS = 3.0  # what the samplers may still take once stopped: one check of each
ALERT_POLL_SECONDS = 1.0  # the alerts are asked for at most once a second
_PAGE = 500  # objects per list request: the first list of a large cluster, a page at a time
_WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
# Why a pod was deleted, from the DisruptionTarget condition the control plane sets first
_DISRUPTIONS = {
    "EvictionByEvictionAPI": "eviction",
    "DeletionByTaintManager": "taint-based eviction",
    "DeletionByPodGC": "node lifecycle (pod GC)",
    "TerminationByKubelet": "node lifecycle (kubelet)",
    "PreemptionByScheduler": "preemption",
}


SCALE_DOWN = "scale-down (a rollout or fewer replicas)"
# reasons told from labels and targets, which the ReplicaSet controller's own word overrides
_GUESSES = ("kube-monkey", "deleted on a node the drill targeted", "deleted by mistake")


@dataclass(frozen=True)
class Scope:
    """What is recorded: pods and workloads in ``namespaces``, matching ``label_selector``."""

    namespaces: tuple[str, ...]
    label_selector: str | None = None


@dataclass(frozen=True)
class HttpTarget:
    """A service sampled ``rate`` times a second with the checks of ``service_available``."""

    name: str
    request: http.Request
    expect: http.Expectation
    rate: float


@dataclass
class _Sampled:
    """What the samples of one HTTP target showed; latencies are kept up to the recorder's cap."""

    url: str
    samples: int = 0
    failures: int = 0
    streak: int = 0
    longest_streak: int = 0
    # the failures before its first answer: the target as the drill found it (a rollout's new pods
    # not yet behind their NodePort), not the drill's doing; 0 until it answers
    failing_at_start: int = 0
    latencies: list[float] = field(default_factory=list)
    latency_at: list[float] = field(default_factory=list)  # when each kept latency's attempt began
    errors: Windows = field(default_factory=Windows)  # failing stretches, each with its first reason

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "samples": self.samples, "failures": self.failures,
                "failing_at_start": self.failing_at_start, "longest_streak": self.longest_streak,
                "latencies": list(self.latencies), "latency_at": list(self.latency_at),
                "error_windows": [dict(window) for window in self.errors.spans]}


@dataclass
class _Pod:
    workload: str | None
    node: str | None
    ready: bool
    phase: str | None
    restarts: int
    deleting: bool = False
    containers: dict[str, tuple[str | None, dict]] = field(default_factory=dict)  # name -> (id, state)


@dataclass
class Recorder:
    """Records in background threads from :meth:`start` to :meth:`stop`; :meth:`recording` is
    the JSON of what was seen so far (safe to call while it runs)."""

    api_factory: Callable[[], client.ApiClient]
    scope: Scope
    cap: int = 5000
    http_targets: tuple[HttpTarget, ...] = ()
    targeted_nodes: Callable[[], set[str]] = set  # names or addresses of the hosts the drill faulted
    # the pending and firing alerts now (labels, state, activeAt of each), e.g. Prometheus.alerts
    alert_source: Callable[[], list[dict]] | None = None
    _timeline: list[dict] = field(default_factory=list)
    _dropped: int = 0
    _outages: Windows = field(default_factory=Windows)  # the API's, from /readyz once a second
    _errors: list[str] = field(default_factory=list)
    _pods: dict[str, _Pod] = field(default_factory=dict)
    _owners: dict[str, str] = field(default_factory=dict)  # "ns/ReplicaSet" -> "Deployment ns/name"
    _scale_downs: set[str] = field(default_factory=set)  # pods a ReplicaSet deleted on purpose
    _deletions: dict[str, dict] = field(default_factory=dict)  # pod -> its "deleted" entry
    _nodes: dict[str, dict] = field(default_factory=dict)
    _node_addresses: dict[str, set[str]] = field(default_factory=dict)
    _http: dict[str, _Sampled] = field(default_factory=dict)
    _workloads: dict[str, tuple[int, int]] = field(default_factory=dict)  # workload -> (desired, ready)
    _alerts: list[dict] = field(default_factory=list)  # every alert seen, in the order it was first seen
    _active_alerts: dict[str, dict] = field(default_factory=dict)  # alert key -> its entry in _alerts
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _started: float = 0.0
    _started_at: str = ""
    _ended_at: str | None = None

    # ---- life ---------------------------------------------------------------------------------

    def start(self) -> None:
        """List every kind once (failing here if the API cannot be read), then watch."""
        self._started, self._started_at = time.monotonic(), _now()
        api = self.api_factory()
        try:
            with failing("start the impact recording", api.configuration.host):
                streams = self._initial_state(api)
        finally:
            api.close()
        self._spawn("api", self._sample_api)
        if self.alert_source is not None:
            self._spawn("alerts", self._sample_alerts)
        for target in self.http_targets:
            self._http[target.name] = _Sampled(display_url(target.request.url))
            self._spawn(f"http-{target.name}", functools.partial(self._sample_http, target))
        for name, (list_call, resource_version, on_change) in streams.items():
            self._spawn(name, functools.partial(self._watch, list_call, resource_version, on_change))
        logger.info("chaosali: recording impact on %s", ", ".join(self.scope.namespaces) or "the nodes")

    def stop(self) -> None:
        self._stopping.set()
        # The samplers end within a poll; a watch blocked on a quiet stream ends only when its server
        # ends it (WATCH_SECONDS), with nothing more to record: it is left to end by itself, so that
        # each run does not wait for it.
        deadline = time.monotonic() + _STOP_SECONDS
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._ended_at = _now()
        with self._lock:
            self._outages.close(self._t())

    def recording(self) -> dict[str, Any]:
        with self._lock:
            return {
                "scope": {"namespaces": list(self.scope.namespaces), "label_selector": self.scope.label_selector},
                "started_at": self._started_at,
                "ended_at": self._ended_at,
                "seconds": self._t(),
                "api_outages": [dict(outage) for outage in self._outages.spans],
                "http": {name: sampled.as_dict() for name, sampled in self._http.items()},
                **({"alerts": [dict(alert) for alert in self._alerts]} if self.alert_source else {}),
                "timeline": list(self._timeline),
                "dropped": self._dropped,
                "errors": list(self._errors),
            }

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"chaosali-impact-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    # ---- the first list -------------------------------------------------------------------------

    def _initial_state(self, api: client.ApiClient) -> dict[str, tuple]:
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        streams: dict[str, tuple] = {}
        selector = self.scope.label_selector or ""

        def listed(name: str, call: Callable[..., Any], on_change: Callable[[str, dict], None], **kwargs: Any) -> None:
            bound = _bind(call, **kwargs)
            streams[name] = (bound, self._list(bound, on_change), on_change)

        listed("nodes", core.list_node, self._node)
        for namespace in self.scope.namespaces:
            listed(f"replicasets-{namespace}", apps.list_namespaced_replica_set, self._replica_set, namespace=namespace)
            listed(f"pods-{namespace}", core.list_namespaced_pod, self._pod, namespace=namespace, label_selector=selector)
            for kind, call in (("Deployment", apps.list_namespaced_deployment),
                               ("StatefulSet", apps.list_namespaced_stateful_set),
                               ("DaemonSet", apps.list_namespaced_daemon_set)):
                listed(f"{kind.lower()}s-{namespace}", call, self._workload(kind), namespace=namespace,
                       label_selector=selector)
            listed(f"events-{namespace}", core.list_namespaced_event, self._event, namespace=namespace,
                   field_selector="type=Warning")
        return streams

    # ---- watching -------------------------------------------------------------------------------

    def _watch(self, list_call: Callable[..., Any], resource_version: str | None,
               on_change: Callable[[str, dict], None]) -> None:
        while not self._stopping.is_set():
            try:
                if resource_version is None:  # lost: list again, as a client-go informer does
                    resource_version = self._list(list_call, on_change)
                for event in self._stream(list_call, resource_version):
                    obj = event["object"]
                    resource_version = (obj.get("metadata") or {}).get("resourceVersion") or resource_version
                    if event["type"] != "BOOKMARK":
                        on_change(event["type"], obj)
            except KeyError:  # watch.Watch(deserialize=False) trips on an ERROR event: 410 Gone, mostly
                resource_version = None
            except ApiException as error:
                if error.status == 410:
                    resource_version = None
                else:
                    self._stopping.wait(_RETRY_SECONDS)
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as error:
                logger.debug("chaosali: impact watch interrupted: %s", error)
                self._stopping.wait(_RETRY_SECONDS)

    def _stream(self, list_call: Callable[..., Any], resource_version: str | None) -> Iterator[dict]:
        stream = watch.Watch().stream(
            list_call, resource_version=resource_version, timeout_seconds=WATCH_SECONDS,
            allow_watch_bookmarks=True, deserialize=False, _request_timeout=(5, _READ_TIMEOUT),
        )
        for event in stream:
            if self._stopping.is_set():
                return
            yield event

    def _list(self, list_call: Callable[..., Any], on_change: Callable[[str, dict], None]) -> str | None:
        """Every object, a page at a time (memory bounded by the page, not the cluster); the
        resourceVersion to watch from. Pods gone since the last look are recorded as deleted."""
        listed: set[str] = set()
        resource_version, page = None, None
        while True:
            document = _json(list_call(limit=_PAGE, _continue=page, _preload_content=False,
                                       _request_timeout=_READ_TIMEOUT))
            for item in document.get("items") or []:
                on_change("LISTED", item)
                listed.add(str((item.get("metadata") or {}).get("name")))
            metadata = document.get("metadata") or {}
            resource_version = resource_version or metadata.get("resourceVersion")
            page = metadata.get("continue")
            if not page:
                break
        if on_change == self._pod:
            namespace = _bound_namespace(list_call)
            with self._lock:
                vanished = [key for key in self._pods
                            if key.startswith(f"{namespace}/") and key.partition("/")[2] not in listed]
            for key in vanished:
                on_change("DELETED", {"metadata": {"namespace": namespace, "name": key.partition("/")[2]}})
        return resource_version

    def _sample_api(self) -> None:
        """The API's outages, from /readyz once a second: a watch cannot tell a quiet API from a
        cut one until its read times out."""
        cluster = Connection(self.api_factory(), timeout=1.0)
        try:
            while not self._stopping.wait(1.0):
                began = self._t()
                up = readiness_problem(cluster) is None
                if not up:
                    # the reused connection may lead to a server that is gone while the API is not (an HA
                    # balancer's member cut): down means a new client fails too, as watch_api sees it
                    cluster.close()
                    cluster = Connection(self.api_factory(), timeout=1.0)
                    up = readiness_problem(cluster) is None
                with self._lock:
                    change = self._outages.sample(up, self._t() if up else began)  # down from the check's start
                    if change:
                        self._add({"kind": "api", "what": change})
        finally:
            cluster.close()

    def _sample_http(self, target: HttpTarget) -> None:
        """One attempt every 1/rate s, as ``service_available`` makes it; a failing stretch is an
        error window in the recording and two entries (failing, answering) in the timeline."""
        interval = 1 / target.rate
        while not self._stopping.is_set():
            began, at = time.monotonic(), self._t()
            _, failure = http.attempt(target.request, target.expect)
            latency = round(time.monotonic() - began, 4)
            with self._lock:
                sampled = self._http[target.name]
                sampled.samples += 1
                if len(sampled.latencies) < self.cap:
                    sampled.latencies.append(latency)
                    sampled.latency_at.append(at)
                change = sampled.errors.sample(failure is None, self._t(), reason=failure)
                if change == "back":
                    self._add({"kind": "http", "target": target.name, "what": "answering"})
                elif change == "down":
                    self._add({"kind": "http", "target": target.name, "what": "failing", "reason": failure})
                if failure is None:
                    if sampled.failures == sampled.samples - 1:  # its first answer: every sample before failed
                        sampled.failing_at_start, sampled.longest_streak = sampled.failures, 0
                    sampled.streak = 0
                else:
                    sampled.failures += 1
                    sampled.streak += 1
                    sampled.longest_streak = max(sampled.longest_streak, sampled.streak)
            self._stopping.wait(max(0.0, interval - (time.monotonic() - began)))

    def _sample_alerts(self) -> None:
        """Each alert's life, from the alerts polled once a second: when it was first seen pending,
        firing, and gone (resolved). Those active at the first poll are marked ``at_start``."""
        first, source = True, self.alert_source
        while source is not None and not self._stopping.is_set():
            try:
                alerts = source()
            except Exception as error:  # an unreachable Prometheus: say so once, and keep polling
                with self._lock:
                    reason = f"alerts: {cause(error)}"
                    if reason not in self._errors and len(self._errors) < 20:
                        self._errors.append(reason)
            else:
                with self._lock:
                    self._alerts_seen(alerts, first)
                first = False
            self._stopping.wait(ALERT_POLL_SECONDS)

    def _alerts_seen(self, alerts: list[dict], first: bool) -> None:
        now, current = self._t(), {}
        for alert in alerts:
            labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
            key = json.dumps(labels, sort_keys=True)
            current[key] = state = str(alert.get("state"))
            entry = self._active_alerts.get(key)
            if entry is None:
                if len(self._alerts) >= self.cap:
                    self._dropped += 1
                    continue
                entry = {"alert": labels.get("alertname"), "labels": labels, "active_at": alert.get("activeAt"),
                         "pending_at": None, "firing_at": None, "resolved_at": None, "at_start": first}
                self._alerts.append(entry)
                self._active_alerts[key] = entry
            moment = f"{state}_at"
            if moment in entry and entry[moment] is None:
                entry[moment] = now
                self._add({"t": now, "kind": "alert", "alert": entry["alert"], "what": state, "labels": labels})
        for key in [key for key in self._active_alerts if key not in current]:
            entry = self._active_alerts.pop(key)
            entry["resolved_at"] = now
            self._add({"t": now, "kind": "alert", "alert": entry["alert"], "what": "resolved", "labels": entry["labels"]})

    # ---- what each change means -----------------------------------------------------------------

    def _t(self) -> float:
        """Now, on the recording's clock: seconds since it started."""
        return round(time.monotonic() - self._started, 3)

    def _add(self, entry: dict) -> dict | None:
        """Append to the timeline (the caller holds the lock); the entry as kept, None if dropped.
        Its ``t`` is now, unless the entry gives the moment it tells of."""
        if len(self._timeline) >= self.cap:
            self._dropped += 1
            return None
        kept = {"at": _now(), "t": self._t(), **entry}
        self._timeline.append(kept)
        return kept

    def _pod(self, change: str, pod: dict) -> None:
        metadata, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
        key = f"{metadata.get('namespace')}/{metadata.get('name')}"
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        containers = status.get("containerStatuses") or []
        restarts = sum(int(c.get("restartCount") or 0) for c in containers)
        with self._lock:
            before = self._pods.get(key)
            now = _Pod(self._owner(metadata) or (before.workload if before else None),
                       spec.get("nodeName") or (before.node if before else None), ready, status.get("phase"), restarts,
                       deleting=bool(metadata.get("deletionTimestamp")) or change == "DELETED",
                       containers=_containers_of(containers, before.containers if before else {}))
            self._pods[key] = now
            if change == "DELETED":
                del self._pods[key]
            if change == "LISTED" and before is None:
                return  # the state at the start, not a change
            about = {"kind": "pod", "pod": key, "workload": now.workload, "node": now.node}
            if before is None and change == "ADDED":
                self._add({**about, "what": "created"})
            if now.deleting and not (before and before.deleting):
                deleted = self._add({**about, "what": "deleted",
                                     "reason": self._deletion_reason(key, metadata, status, now)})
                if deleted is not None:
                    self._deletions[key] = deleted
            if before is not None:
                if now.ready != before.ready:
                    self._add({**about, "what": "ready" if now.ready else "not-ready"})
                if now.restarts > before.restarts:
                    self._add({**about, "what": "restarted", "restarts": now.restarts})
                self._containers(about, before, now)
                if now.node and now.node != before.node:
                    self._add({**about, "what": "scheduled"})
            elif now.node and change == "ADDED":
                self._add({**about, "what": "scheduled"})
            if now.ready and (before is None or not before.ready) and change == "ADDED":
                self._add({**about, "what": "ready"})

    def _containers(self, about: dict, before: _Pod, now: _Pod) -> None:
        """What the node's kubelet reported of each container: one that stopped running (killed,
        exited, or no longer found by the kubelet), with its reason and exit code; another one running
        in its place (its ID changed: a restart, or the pod's containers created again after its
        node's outage)."""
        for name, (container_id, state) in now.containers.items():
            old_id, old_state = before.containers.get(name, (None, {}))
            if "running" in old_state and "running" not in state:
                ended = state.get("terminated") or state.get("waiting") or {}
                self._add({**about, "what": "container-ended", "container": name, "reason": ended.get("reason"),
                           "exit_code": ended.get("exitCode"), "finished_at": ended.get("finishedAt")})
            if "running" in state and old_id and container_id and container_id != old_id:
                self._add({**about, "what": "container-started", "container": name,
                           "started_at": state["running"].get("startedAt")})

    def _deletion_reason(self, key: str, metadata: dict, status: dict, pod: _Pod) -> str:
        for condition in status.get("conditions") or []:
            if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True":
                return _DISRUPTIONS.get(condition.get("reason"), str(condition.get("reason")))
        if key in self._scale_downs:
            return SCALE_DOWN
        if any(label.startswith("kube-monkey/") for label in metadata.get("labels") or {}):
            return "kube-monkey"
        if pod.node and ({pod.node} | self._node_addresses.get(pod.node, set())) & self.targeted_nodes():
            return "deleted on a node the drill targeted"
        return "deleted by mistake"

    def _owner(self, metadata: dict) -> str | None:
        namespace = metadata.get("namespace")
        for reference in metadata.get("ownerReferences") or []:
            if not reference.get("controller"):
                continue
            if reference.get("kind") == "ReplicaSet":
                return self._owners.get(f"{namespace}/{reference.get('name')}", f"ReplicaSet {namespace}/{reference.get('name')}")
            return f"{reference.get('kind')} {namespace}/{reference.get('name')}"
        return None

    def _replica_set(self, change: str, replica_set: dict) -> None:
        metadata = replica_set.get("metadata") or {}
        namespace, name = metadata.get("namespace"), metadata.get("name")
        owner = next((f"{r.get('kind')} {namespace}/{r.get('name')}"
                      for r in metadata.get("ownerReferences") or [] if r.get("controller")), None)
        with self._lock:
            self._owners[f"{namespace}/{name}"] = owner or f"ReplicaSet {namespace}/{name}"
        if not owner and change != "DELETED":  # a bare ReplicaSet is a workload of its own
            self._workload("ReplicaSet")(change, replica_set)

    def _workload(self, kind: str) -> Callable[[str, dict], None]:
        def changed(change: str, obj: dict) -> None:
            metadata = obj.get("metadata") or {}
            desired, ready = replicas(kind, obj)
            workload = f"{kind} {metadata.get('namespace')}/{metadata.get('name')}"
            state = (0, 0) if change == "DELETED" else (desired, ready)
            entry = {"kind": "workload", "workload": workload, "desired": state[0], "ready": state[1]}
            with self._lock:
                if self._workloads.get(workload) != state:
                    first = workload not in self._workloads
                    self._workloads[workload] = state
                    self._add({**entry, "what": "initial" if first else "changed"})

        return changed

    def _node(self, change: str, node: dict) -> None:
        metadata, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
        name = str(metadata.get("name"))
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        taints = sorted({t.get("key", "").rpartition("/")[2] for t in spec.get("taints") or []
                         if t.get("key") in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")})
        with self._lock:
            self._node_addresses[name] = {a.get("address") for a in status.get("addresses") or []}
            before = self._nodes.get(name)
            self._nodes[name] = {"ready": ready, "taints": taints}
            if change == "LISTED" and before is None:
                if not ready:  # Ready is every node's baseline: only the exceptions take an entry
                    self._add({"kind": "node", "node": name, "what": "initial", "ready": ready, "taints": taints})
                return
            if before is None or before["ready"] != ready:
                self._add({"kind": "node", "node": name, "what": "ready" if ready else "not-ready"})
            for taint in sorted(set(taints) - set(before["taints"] if before else [])):
                self._add({"kind": "node", "node": name, "what": "tainted", "taint": taint})
            for taint in sorted(set(before["taints"] if before else []) - set(taints)):
                self._add({"kind": "node", "node": name, "what": "untainted", "taint": taint})

    def _event(self, change: str, event: dict) -> None:
        if change not in ("ADDED", "MODIFIED"):
            return
        involved = event.get("involvedObject") or {}
        reason, message = event.get("reason"), str(event.get("message") or "")
        with self._lock:
            # the ReplicaSet controller says which pods it deleted on purpose (a scale-down)
            if reason == "SuccessfulDelete" and message.startswith("Deleted pod: "):
                pod = f"{involved.get('namespace')}/{message.removeprefix('Deleted pod: ')}"
                self._scale_downs.add(pod)
                # the event often comes after the pod's deletion was seen: correct its reason then
                if pod in self._deletions and self._deletions[pod]["reason"] in _GUESSES:
                    self._deletions[pod]["reason"] = SCALE_DOWN
            if change == "ADDED":
                self._add({"kind": "event", "what": reason, "object": f"{involved.get('kind')} "
                           f"{involved.get('namespace')}/{involved.get('name')}", "message": message[:300]})

def _containers_of(statuses: list[dict], before: dict[str, tuple[str | None, dict]]) -> dict[str, tuple[str | None, dict]]:
    """Each container's ID and state; one waiting to be created again has no ID: the last one known."""
    return {c["name"]: (c.get("containerID") or before.get(c["name"], (None, {}))[0], c.get("state") or {})
            for c in statuses}


def _bind(call: Callable[..., Any], **bound: Any) -> Callable[..., Any]:
    """``call`` with some arguments fixed; keeps ``__name__``-free watch.stream working (it reads
    the return type from the docstring of the function it is given)."""

    def bound_call(*args: Any, **kwargs: Any) -> Any:
        return call(*args, **bound, **kwargs)

    bound_call.__doc__ = call.__doc__
    bound_call.bound = bound  # type: ignore[attr-defined]
    return bound_call


def _bound_namespace(call: Callable[..., Any]) -> str | None:
    return (getattr(call, "bound", None) or {}).get("namespace")


def _json(response: Any) -> dict:
    return json.loads(response.data)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()
