"""kube-monkey's contract in one place (private): its configuration file, the objects that run it,
the labels that enrol a victim, and reading victims back as kube-monkey sees them.

What kube-monkey reads (asobti/kube-monkey, internal/pkg/config and internal/pkg/victims):

- ``/etc/kube-monkey/config.toml``: a ``[kubemonkey]`` table (``dry_run``, ``run_hour`` <
  ``start_hour`` < ``end_hour`` in [0, 23], ``time_zone``, ``graceperiod_sec``,
  ``blacklisted_namespaces``, ``whitelisted_namespaces``; ``[""]`` means "none" / "all") and a
  ``[debug]`` table (``enabled``, ``schedule_delay``, ``force_should_kill``,
  ``schedule_immediate_kill``). It refuses to start when the hours are out of order.
- on a Deployment, StatefulSet or DaemonSet (``metadata.labels``): ``kube-monkey/enabled=enabled``
  (listed with that selector in each whitelisted namespace), ``kube-monkey/identifier``,
  ``kube-monkey/mtbf`` (a whole number > 0), ``kube-monkey/kill-mode`` and
  ``kube-monkey/kill-value`` (a whole number > 0, not needed by ``kill-all``);
- on pods: only ``kube-monkey/identifier``. At kill time it lists the pods of the victim's
  namespace with ``kube-monkey/identifier=<the workload's identifier>``, so the pod *template* must
  carry that label too.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

import tomli_w
from kubernetes.dynamic import DynamicClient

from chaosali.cluster import resources
from chaosali.cluster.rollout import WORKLOAD_API
from chaosali.core.args import boolean, dns_label, whole
from chaosali.core.errors import InvalidArgument
from chaosali.core.markers import CREATED_BY_ANNOTATION, MANAGED_BY, MANAGED_BY_LABEL

# -- what kube-monkey reads --------------------------------------------------------------------

NAME = "kube-monkey"
CONFIG_DIR = "/etc/kube-monkey"  # fixed in kube-monkey's code: config.toml must be there
DEFAULT_IMAGE = "ayushsobti/kube-monkey:v0.5.3"  # the upstream image, its last released tag

ENABLED = "kube-monkey/enabled"
IDENTIFIER = "kube-monkey/identifier"
MTBF = "kube-monkey/mtbf"
KILL_MODE = "kube-monkey/kill-mode"
KILL_VALUE = "kube-monkey/kill-value"
VICTIM_LABELS = (ENABLED, IDENTIFIER, MTBF, KILL_MODE, KILL_VALUE)
ENABLED_VALUE = "enabled"
KILL_ALL = "kill-all"
PERCENT_MODES = ("random-max-percent", "fixed-percent")
KILL_MODES = ("fixed", KILL_ALL, *PERCENT_MODES)

# the kinds kube-monkey enrols, by the names a user may give them
WORKLOAD_KINDS = {
    **dict.fromkeys(("deployment", "deployments", "deploy"), "Deployment"),
    **dict.fromkeys(("statefulset", "statefulsets", "sts"), "StatefulSet"),
    **dict.fromkeys(("daemonset", "daemonsets", "ds"), "DaemonSet"),
}

# -- chaosali's own marks ----------------------------------------------------------------------

# on a namespace that deploy_kube_monkey created (and so remove_kube_monkey may delete), the
# value of the created-by annotation
CREATED_BY_VALUE = "deploy_kube_monkey"
# on a victim: when its pods first all carried the identifier (the baseline for deleted pods)
MARKED_AT = "chaosali/kube-monkey-marked-at"
CONFIG_DIGEST = "chaosali/kube-monkey-config-sha256"

_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")


# -- argument checks ---------------------------------------------------------------------------


def label_value(value: Any, name: str) -> str:
    """A non-empty label value: at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends."""
    if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise InvalidArgument(
            f"{name} must be a label value (at most 63 letters, digits, '-', '_' or '.', starting and "
            f"ending with a letter or digit), not {value!r}"
        )
    return value


def workload_kind(kind: Any) -> str:
    """The canonical kind of a workload kube-monkey enrols."""
    canonical = WORKLOAD_KINDS.get(str(kind).strip().lower())
    if not canonical:
        raise InvalidArgument(
            f"kind must be Deployment, StatefulSet or DaemonSet (the kinds kube-monkey enrols), not {kind!r}"
        )
    return canonical


def namespaces(value: Any, name: str) -> tuple[str, ...]:
    """A list of namespace names; empty, or kube-monkey's own ``[""]``, means none given."""
    if isinstance(value, str):
        value = [value]  # a single name where a list was expected: unambiguous, take it
    if not isinstance(value, (list, tuple)):
        raise InvalidArgument(f"{name} must be a list of namespace names, not {value!r}")
    if list(value) == [""]:
        return ()
    return tuple(dict.fromkeys(dns_label(item, f"each of {name}") for item in value))


def time_zone(value: Any) -> str:
    """An IANA time zone name, as Go's time.LoadLocation reads it from the image's zoneinfo."""
    if isinstance(value, str) and value:
        try:
            zoneinfo.ZoneInfo(value)
            return value
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    close = difflib.get_close_matches(str(value), sorted(zoneinfo.available_timezones()), n=3)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    raise InvalidArgument(f"time_zone must be an IANA time zone such as 'UTC' or 'Asia/Shanghai', not {value!r}{hint}")


# -- the configuration file --------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """kube-monkey's configuration, checked as kube-monkey checks it at start."""

    dry_run: bool
    run_hour: int
    start_hour: int
    end_hour: int
    time_zone: str
    blacklisted_namespaces: tuple[str, ...]  # empty: none
    whitelisted_namespaces: tuple[str, ...]  # empty: all
    graceperiod_sec: int
    debug: bool
    schedule_delay: int
    force_should_kill: bool
    schedule_immediate_kill: bool

    @classmethod
    def checked(cls, **arguments: Any) -> Settings:
        """Settings from activity arguments, or InvalidArgument naming the first wrong one."""
        hours = {key: whole(arguments[key], key, 0, 23) for key in ("run_hour", "start_hour", "end_hour")}
        # kube-monkey refuses to start otherwise: it schedules at run_hour for the window that follows
        if not hours["run_hour"] < hours["start_hour"] < hours["end_hour"]:
            raise InvalidArgument(
                "kube-monkey needs 0 <= run_hour < start_hour < end_hour <= 23 (it schedules the day's "
                f"kills at run_hour, between start_hour and end_hour), not run_hour={hours['run_hour']}, "
                f"start_hour={hours['start_hour']}, end_hour={hours['end_hour']}"
            )
        return cls(
            dry_run=boolean(arguments["dry_run"], "dry_run"),
            **hours,
            time_zone=time_zone(arguments["time_zone"]),
            blacklisted_namespaces=namespaces(arguments["blacklisted_namespaces"], "blacklisted_namespaces"),
            whitelisted_namespaces=namespaces(arguments["whitelisted_namespaces"], "whitelisted_namespaces"),
            graceperiod_sec=whole(arguments["graceperiod_sec"], "graceperiod_sec", 0),
            debug=boolean(arguments["debug"], "debug"),
            # 0 would make a debug kube-monkey re-list the whole cluster in a tight loop
            schedule_delay=whole(arguments["schedule_delay"], "schedule_delay", 1),
            force_should_kill=boolean(arguments["force_should_kill"], "force_should_kill"),
            schedule_immediate_kill=boolean(arguments["schedule_immediate_kill"], "schedule_immediate_kill"),
        )

    def tables(self) -> dict[str, dict[str, Any]]:
        """The configuration as kube-monkey's TOML tables and keys."""
        return {
            "kubemonkey": {
                "dry_run": self.dry_run,
                "run_hour": self.run_hour,
                "start_hour": self.start_hour,
                "end_hour": self.end_hour,
                "time_zone": self.time_zone,
                "graceperiod_sec": self.graceperiod_sec,
                # kube-monkey's spelling of "none" and "all" is a list of one empty name
                "blacklisted_namespaces": list(self.blacklisted_namespaces) or [""],
                "whitelisted_namespaces": list(self.whitelisted_namespaces) or [""],
            },
            "debug": {
                "enabled": self.debug,
                "schedule_delay": self.schedule_delay,
                "force_should_kill": self.force_should_kill,
                "schedule_immediate_kill": self.schedule_immediate_kill,
            },
        }

    def covers(self, namespace: str) -> bool:
        """Whether kube-monkey would consider victims in ``namespace``."""
        if namespace in self.blacklisted_namespaces:
            return False
        return not self.whitelisted_namespaces or namespace in self.whitelisted_namespaces


# -- the objects that run it -------------------------------------------------------------------


def config_toml(settings: Settings) -> str:
    """kube-monkey's /etc/kube-monkey/config.toml."""
    return tomli_w.dumps(settings.tables())


def labels(namespace: str) -> dict[str, str]:
    """The labels of every object one deployment creates: how remove_kube_monkey finds them."""
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/instance": namespace, MANAGED_BY_LABEL: MANAGED_BY}


def selector(namespace: str) -> str:
    return ",".join(f"{key}={value}" for key, value in labels(namespace).items())


def cluster_name(namespace: str) -> str:
    # cluster-scoped names are per namespace: two kube-monkeys never share (or delete) a role
    return f"chaosali-{NAME}-{namespace}"


def namespace_object(namespace: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "labels": labels(namespace), "annotations": {CREATED_BY_ANNOTATION: CREATED_BY_VALUE}},
    }


#: kube-monkey's ClusterRole
RULES = [
    # what it reads: the enrolled workloads of every whitelisted namespace (or all), and namespaces
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"],
     "verbs": ["get", "list", "watch"]},
    # what it kills
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "delete"]},
]


def objects(namespace: str, image: str, settings: Settings) -> list[dict]:
    """ConfigMap, ServiceAccount, ClusterRole, ClusterRoleBinding and Deployment, in apply order."""
    config = config_toml(settings)

    def metadata(name: str = NAME, namespaced: bool = True) -> dict:
        return {"name": name, **({"namespace": namespace} if namespaced else {}), "labels": labels(namespace)}

    container = {
        "name": NAME,
        "image": image,
        "command": ["/kube-monkey"],
        "args": ["-v=5", "-log_dir=/var/log/kube-monkey"],
        "env": [{"name": "KUBE_MONKEY_ID", "value": f"chaosali-{namespace}"}],  # printed in its schedule
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            # glog exits when it cannot create its log file: give it a writable directory
            {"name": "logs", "mountPath": "/var/log/kube-monkey"},
        ],
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": {
            # the image is a static binary on scratch: it needs no root, no capability, no writable root
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    match = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/instance": namespace}
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(), "data": {"config.toml": config}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata()},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": metadata(cluster_name(namespace), namespaced=False), "rules": RULES},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": metadata(cluster_name(namespace), namespaced=False),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_name(namespace)},
         "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}]},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata(), "spec": {
            "replicas": 1,
            # never two at once (a rolling update would overlap them): each would kill on its own schedule
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": match},
            "template": {
                "metadata": {
                    "labels": labels(namespace),
                    # a changed ConfigMap reaches a running pod only after the kubelet's next sync
                    # (a minute or more); a drill wants the new settings now: a new digest restarts it
                    "annotations": {CONFIG_DIGEST: hashlib.sha256(config.encode()).hexdigest()},
                },
                "spec": {
                    "serviceAccountName": NAME,
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": NAME}},
                        {"name": "logs", "emptyDir": {}},
                    ],
                },
            },
        }},
    ]


# -- victims -----------------------------------------------------------------------------------


def enrolment(mtbf: Any, kill_mode: Any, kill_value: Any) -> dict[str, str | None]:
    """The labels that enrol a workload, but its identifier, checked as kube-monkey reads them;
    a None value removes the label (in a merge patch)."""
    mtbf = whole(mtbf, "mtbf (mean weekdays between kills)", 1)
    mode, value = kill(kill_mode, kill_value)
    return {
        ENABLED: ENABLED_VALUE,
        MTBF: str(mtbf),
        KILL_MODE: mode,
        # kill-all reads no value: drop one left from an earlier mode rather than leave it lying
        KILL_VALUE: None if value is None else str(value),
    }


def kill(kill_mode: Any, kill_value: Any) -> tuple[str, int | None]:
    """A kill mode and its value. kube-monkey parses the value as a whole number > 0 (0 is refused
    when it reads the label, although its README allows it for the percent modes)."""
    if kill_mode not in KILL_MODES:
        raise InvalidArgument(f"kill_mode must be one of {', '.join(KILL_MODES)}, not {kill_mode!r}")
    if kill_mode == KILL_ALL:
        return kill_mode, None
    if kill_value is None:
        raise InvalidArgument(f"kill_mode {kill_mode} needs a kill_value")
    if kill_mode in PERCENT_MODES:
        return kill_mode, whole(kill_value, f"kill_value (a percentage of running pods, for {kill_mode})", 1, 100)
    return kill_mode, whole(kill_value, "kill_value (a number of pods, for fixed)", 1)


@dataclass
class Victim:
    """An enrolled workload and the pods kube-monkey would find for it."""

    workload: dict
    pods: list[dict] = field(default_factory=list)  # the pods carrying its identifier, as listed
    problems: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.workload["kind"]

    @property
    def namespace(self) -> str:
        return self.workload["metadata"]["namespace"]

    @property
    def name(self) -> str:
        return self.workload["metadata"]["name"]

    @property
    def labels(self) -> dict[str, str]:
        return self.workload["metadata"].get("labels") or {}

    @property
    def template_labels(self) -> dict[str, str]:
        return ((self.workload.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}

    @property
    def identifier(self) -> str | None:
        return self.labels.get(IDENTIFIER)

    @property
    def marked_at(self) -> str | None:
        return (self.workload["metadata"].get("annotations") or {}).get(MARKED_AT)

    def check(self) -> None:
        """Record, in kube-monkey's terms, whatever would stop it from killing this victim's pods."""
        found = self.labels
        if not self.identifier:
            self.problems.append(f"no {IDENTIFIER} label: kube-monkey skips it")
        for what, test in (
            (f"{MTBF} label", lambda: whole(found.get(MTBF), MTBF, 1)),
            (f"{KILL_MODE}/{KILL_VALUE} labels", lambda: kill(found.get(KILL_MODE), found.get(KILL_VALUE))),
        ):
            try:
                test()
            except InvalidArgument as error:
                self.problems.append(f"bad {what} ({error}): kube-monkey skips it or fails its kill")
        template_identifier = self.template_labels.get(IDENTIFIER)
        if self.identifier and not template_identifier:
            # the frequent mistake: labels on the workload only, so no pod ever carries the identifier
            self.problems.append(
                f"its pod template has no {IDENTIFIER} label: kube-monkey finds no pod to kill "
                "(label the template too, as mark_victims does)"
            )
        elif self.identifier and template_identifier != self.identifier:
            self.problems.append(
                f"its pod template's {IDENTIFIER} is {template_identifier!r}, not {self.identifier!r}: "
                "kube-monkey looks for pods by the workload's"
            )

    def running_pods(self) -> list[dict]:
        return [p for p in self.pods if (p.get("status") or {}).get("phase") == "Running"]

    def as_dict(self) -> dict:
        found = self.labels
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "identifier": self.identifier,
            "mtbf": found.get(MTBF),
            "kill_mode": found.get(KILL_MODE),
            "kill_value": found.get(KILL_VALUE),
            "template_identifier": self.template_labels.get(IDENTIFIER),
            "template_lacks_identifier": IDENTIFIER not in self.template_labels,
            "running_pods": len(self.running_pods()),
            "marked_at": self.marked_at,
            "ok": not self.problems,
            "problems": list(self.problems),
        }


def victims(dyn: DynamicClient, namespace: str | None, name: str | None = None) -> list[Victim]:
    """The workloads enrolled in kube-monkey (``kube-monkey/enabled=enabled``) in ``namespace``, or
    in all namespaces when None; optionally only those named ``name``; each checked."""
    found: list[Victim] = []
    for kind in dict.fromkeys(WORKLOAD_KINDS.values()):
        where = resources.locate(dyn, kind, WORKLOAD_API, namespace, all_namespaces=namespace is None)
        for item in resources.get(dyn, where, f"{ENABLED}={ENABLED_VALUE}")["items"]:
            item.setdefault("kind", kind)  # list items come without their kind
            if name is None or item["metadata"]["name"] == name:
                found.append(Victim(item))
    for victim in found:
        victim.check()
        if victim.identifier:  # as kube-monkey lists them: by identifier, in the victim's namespace
            pods = resources.locate(dyn, "Pod", "v1", victim.namespace)
            victim.pods = resources.get(dyn, pods, f"{IDENTIFIER}={victim.identifier}")["items"]
    _flag_shared_identifiers(found)
    return found


def _flag_shared_identifiers(found: list[Victim]) -> None:
    owners: dict[tuple[str, str], list[Victim]] = {}
    for victim in found:
        if victim.identifier:
            owners.setdefault((victim.namespace, victim.identifier), []).append(victim)
    for sharing in owners.values():
        for victim in sharing if len(sharing) > 1 else ():
            others = ", ".join(f"{v.kind} {v.name}" for v in sharing if v is not victim)
            victim.problems.append(
                f"its {IDENTIFIER} {victim.identifier!r} is also {others}'s: kube-monkey kills pods of both"
            )


# -- times -------------------------------------------------------------------------------------


def timestamp(value: str, name: str) -> dt.datetime:
    """An ISO 8601 time as an aware UTC datetime; a time without offset is UTC (as in journals)."""
    try:
        parsed = dt.datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidArgument(f"{name} must be an ISO 8601 time such as 2024-05-01T10:00:00Z, not {value!r}") from None
    return parsed.replace(tzinfo=dt.timezone.utc) if parsed.tzinfo is None else parsed.astimezone(dt.timezone.utc)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
