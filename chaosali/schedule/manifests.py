"""The manifests of a scheduled drill (``chaosali schedule``): its ServiceAccount and the RBAC
``chaosali plan --rbac`` derives, the experiment and its configuration in a ConfigMap, the SSH
credentials in a Secret, and a CronJob (or a Job, to run now) whose pod runs the drill with
``chaosali.schedule.runner``.

The var files are split: their configuration goes to the ConfigMap, with the kubeconfig left to
the pod's account (``kubeconfig_path`` emptied: the experiment's own would win); their secrets,
every ``key_path``'s key and the ``ssh_known_hosts`` file go to the Secret, mounted read-only, so
no credential is in the ConfigMap or the pod spec. The runner stays off the nodes the drill's
unsampled host queries target (node and pod anti-affinity); a sampled query leaves out the
runner's own node when it is resolved (``RUNNER_NODE_ENV``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from chaoslib import substitute
from chaoslib.types import Configuration, Experiment, Secrets

from chaosali import __version__
from chaosali.cluster.nodes import RUNNER_NODE_ENV
from chaosali.core.args import label_selector
from chaosali.core.errors import InvalidArgument
from chaosali.plan.rbac import host_queries, role_documents

__all__ = ["Bundle", "Options", "drill_name", "render", "deadline_seconds", "runner_affinity", "job_name",
           "DEFAULT_IMAGE", "SCHEDULE_LABEL", "DRILL_DIR", "SSH_DIR", "JOURNAL_DIR"]

PREFIX = "chaosali-"
MAX_NAME = 52  # a CronJob's name: its Jobs add 11 characters, within the 63 of a name and a label value
#: the image the Containerfile builds, as it tags it (``chaostoolkit-ali:VERSION``)
DEFAULT_IMAGE = f"chaostoolkit-ali:{__version__}"
SCHEDULE_LABEL = "chaosali/schedule"
EXPERIMENT_ANNOTATION = "chaosali/experiment"
DRILL_DIR = "/etc/chaosali/drill"  # the ConfigMap: experiment.json, vars.json, rbac.json
SSH_DIR = "/var/run/chaosali/ssh"  # the Secret: secrets.json, known_hosts, <scope>.key
JOURNAL_DIR = "/var/lib/chaosali/journals"
RUNNER_UID = 10001  # the images' user "chaosali"
# seconds a run may take beyond its activities' own durations: the pod's start, the SSH logins,
# the API's answers; and a share of the durations for what they do not count (rollbacks waiting)
START_SECONDS = 300
SLACK = 1.5
_DURATION_KEYS = ("duration", "seconds", "timeout", "wait", "wait_timeout")
_CONTROL_PLANE = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
_FAULT_MODULES = ("chaosali.host.actions", "chaosali.chaos.actions", "chaosali.cluster.actions")


@dataclass(frozen=True)
class Options:
    """How to schedule: ``cron`` (None: a Job that runs now), where, with which image, and the
    PersistentVolumeClaim that keeps the journals besides the cluster's own copy (None: none)."""

    namespace: str = "chaos"
    image: str = DEFAULT_IMAGE
    cron: str | None = None
    journal_claim: str | None = None
    now: dt.datetime | None = None  # the Job's time stamp (default: the current time)


@dataclass(frozen=True)
class Bundle:
    """What the drill's pod is given: the experiment (as written), the var files' configuration
    (kubeconfig dropped) and secrets, and the files of the Secret (known_hosts, keys) by name."""

    experiment_text: str
    configuration: dict
    secrets: dict
    files: dict[str, bytes]

    @classmethod
    def of(cls, experiment_text: str, configuration: dict, secrets: dict) -> Bundle:
        """The bundle of the var files' merged ``configuration`` and ``secrets`` (as chaoslib's
        ``merge_vars`` gives them): the files they name are read now, and named as the pod sees them."""
        # an experiment's own kubeconfig_path would win over the pod's account (CHAOSTOOLKIT_IN_POD)
        configuration = {**configuration, "kubeconfig_path": "", "kubernetes_in_cluster": True}
        files: dict[str, bytes] = {}
        if configuration.get("ssh_known_hosts"):
            files["known_hosts"] = _read(configuration["ssh_known_hosts"], "configuration ssh_known_hosts")
            configuration["ssh_known_hosts"] = f"{SSH_DIR}/known_hosts"
        kept: dict[str, Any] = {}
        for scope, values in secrets.items():
            kept[scope] = dict(values) if isinstance(values, dict) else values
            if isinstance(values, dict) and values.get("key_path"):
                files[f"{scope}.key"] = _read(values["key_path"], f"secrets {scope} key_path")
                kept[scope]["key_path"] = f"{SSH_DIR}/{scope}.key"
        return cls(experiment_text, configuration, kept, files)


def _read(path: Any, what: str) -> bytes:
    try:
        return Path(str(path)).expanduser().read_bytes()
    except OSError as error:
        raise InvalidArgument(f"{what} {path!r} cannot be read ({error.strerror}): the drill's pod gets a copy of "
                              "it in its Secret; give a file that exists") from None


def drill_name(experiment: str) -> str:
    """The name of everything scheduled for the experiment file: ``chaosali-<its stem>``."""
    stem = re.sub(r"[^a-z0-9-]+", "-", Path(experiment).stem.lower()).strip("-")
    name = (PREFIX + stem)[:MAX_NAME].rstrip("-")
    if name == PREFIX.rstrip("-"):
        raise InvalidArgument(f"experiment {experiment!r}: its file name gives no name to schedule it under: "
                              "rename it with letters or digits, e.g. master-netcut.json")
    return name


def job_name(name: str, now: dt.datetime) -> str:
    """A Job's name for a run started at ``now`` (as a CronJob's are named: ``NAME-<minutes>``,
    here to the second, so that two runs of the same minute differ)."""
    return f"{name}-{int(now.timestamp())}"[:63]


def render(name: str, experiment: Experiment, configuration: Configuration, secrets: Secrets, bundle: Bundle,
           rbac: dict, options: Options) -> list[dict]:
    """Every object of the schedule, in the order to apply them."""
    if rbac["unknown"]:
        raise InvalidArgument("the drill needs permissions chaosali cannot derive: " + "; ".join(rbac["unknown"])
                              + ": grant them by hand, or drop those activities from a scheduled drill")
    namespace = options.namespace
    labels = {"app.kubernetes.io/name": "chaosali", "app.kubernetes.io/managed-by": "chaosali", SCHEDULE_LABEL: name}
    metadata = {"name": name, "namespace": namespace, "labels": labels}
    runner = [{"namespace": namespace, "apiGroups": [""], "resources": ["secrets"], "verbs": ["create"],
               "why": ["the runner keeps the run's journal in a Secret"]}]
    rules = rbac["rules"] + runner
    drill = {
        "experiment.json": bundle.experiment_text,
        "vars.json": json.dumps({"configuration": bundle.configuration}, indent=2),
        "rbac.json": json.dumps(rules, indent=2),
    }
    credentials = {"secrets.json": json.dumps({"secrets": bundle.secrets}).encode(), **bundle.files}
    pod = _pod(name, experiment, configuration, secrets, options)
    documents = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata},
        *role_documents(rules, name, name, namespace, labels),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": drill},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {**metadata, "name": f"{name}-ssh"}, "type": "Opaque",
         "data": {key: base64.b64encode(value).decode() for key, value in credentials.items()}},
    ]
    job = {"backoffLimit": 0, "activeDeadlineSeconds": deadline_seconds(experiment, configuration, secrets),
           "template": {"metadata": {"labels": labels}, "spec": pod}}
    annotations = {EXPERIMENT_ANNOTATION: str(experiment.get("title", ""))}
    if options.cron is None:
        started = options.now or dt.datetime.now(dt.timezone.utc)
        documents.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": {
            **metadata, "name": job_name(name, started), "annotations": annotations}, "spec": job})
    else:
        documents.append({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {**metadata, "annotations": annotations},
                          "spec": {"schedule": options.cron, "concurrencyPolicy": "Forbid",
                                   "startingDeadlineSeconds": 300, "successfulJobsHistoryLimit": 10,
                                   "failedJobsHistoryLimit": 10,
                                   "jobTemplate": {"metadata": {"labels": labels, "annotations": annotations},
                                                   "spec": job}}})
    return json.loads(json.dumps(documents))  # no object shared between documents (YAML would alias it)


def _pod(name: str, experiment: Experiment, configuration: Configuration, secrets: Secrets, options: Options) -> dict:
    def field(path: str) -> dict:
        return {"valueFrom": {"fieldRef": {"fieldPath": path}}}

    env = [
        {"name": "CHAOSTOOLKIT_IN_POD", "value": "true"},
        {"name": "HOME", "value": "/tmp"},
        # the run's fault ledger beside its journals: on a --journal-claim it outlives a killed pod
        {"name": "CHAOSALI_STATE_DIR", "value": f"{JOURNAL_DIR}/state"},
        {"name": "CHAOSALI_SCHEDULE", "value": name},
        {"name": RUNNER_NODE_ENV, **field("spec.nodeName")},
        {"name": "CHAOSALI_RUNNER_POD", **field("metadata.name")},
        {"name": "CHAOSALI_NAMESPACE", **field("metadata.namespace")},
        {"name": "CHAOSALI_JOB", **field("metadata.labels['job-name']")},
        {"name": "CHAOSALI_JOB_UID", **field("metadata.labels['batch.kubernetes.io/controller-uid']")},
    ]
    journals = ({"persistentVolumeClaim": {"claimName": options.journal_claim}} if options.journal_claim
                else {"emptyDir": {}})
    return {
        "serviceAccountName": name,
        "restartPolicy": "Never",
        # SIGTERM interrupts `chaos run`, which then plays the rollbacks: give them time
        "terminationGracePeriodSeconds": 120,
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUNNER_UID, "runAsGroup": RUNNER_UID,
                            "fsGroup": RUNNER_UID, "seccompProfile": {"type": "RuntimeDefault"}},
        **({"affinity": affinity} if (affinity := runner_affinity(experiment, configuration, secrets)) else {}),
        "containers": [{
            "name": "drill",
            "image": options.image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["python3", "-m", "chaosali.schedule.runner"],
            "workingDir": "/tmp",
            "env": env,
            "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
            "volumeMounts": [
                {"name": "drill", "mountPath": DRILL_DIR, "readOnly": True},
                {"name": "ssh", "mountPath": SSH_DIR, "readOnly": True},
                {"name": "journals", "mountPath": JOURNAL_DIR},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        }],
        "volumes": [
            {"name": "drill", "configMap": {"name": name}},
            {"name": "ssh", "secret": {"secretName": f"{name}-ssh", "defaultMode": 0o440}},
            {"name": "journals", **journals},
            {"name": "tmp", "emptyDir": {}},
        ],
    }


def deadline_seconds(experiment: Experiment, configuration: Configuration, secrets: Secrets) -> int:
    """The Job's ``activeDeadlineSeconds``: the experiment's own durations (each activity's longest
    duration, seconds, timeout or wait argument and its pauses; the steady state twice; the
    controls' settle time), ``SLACK`` times, plus ``START_SECONDS``."""
    hypothesis = (experiment.get("steady-state-hypothesis") or {}).get("probes") or []
    activities = [*hypothesis, *hypothesis, *(experiment.get("method") or []), *(experiment.get("rollbacks") or [])]
    total = 0.0
    for activity in activities:
        arguments = _arguments(activity.get("provider") or {}, configuration, secrets)
        total += max((_number(arguments.get(key)) for key in arguments if _is_duration(key)), default=0.0)
        pauses = substitute(activity.get("pauses") or {}, configuration, secrets)
        total += _number(pauses.get("before")) + _number(pauses.get("after"))
    for control in experiment.get("controls") or []:
        total += _number(_arguments(control.get("provider") or {}, configuration, secrets).get("settle_seconds"))
    return math.ceil(SLACK * total) + START_SECONDS


def _is_duration(key: str) -> bool:
    """A time the activity takes; not a limit it judges (``max_recovery_seconds``)."""
    return key in _DURATION_KEYS or (key.endswith("_seconds") and not key.startswith(("max_", "min_")))


def _number(value: Any) -> float:
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return 0.0


def _arguments(provider: dict, configuration: Configuration, secrets: Secrets) -> dict:
    arguments = provider.get("arguments")
    return substitute(dict(arguments), configuration, secrets) if isinstance(arguments, dict) else {}


def runner_affinity(experiment: Experiment, configuration: Configuration, secrets: Secrets) -> dict:
    """Node and pod anti-affinity that keep the runner off every node the method's unsampled host
    queries hit (masters, nodes by label, nodes of pods by label); a sampled query's choice is made
    at run time without the runner's node."""
    avoid: list[list[dict]] = []  # each: the node matches one of these requirements (an OR)
    pods: list[dict] = []
    for query in _fault_queries(experiment, configuration, secrets):
        if any(key in query for key in ("count", "percent")):
            continue
        if "masters" in query:
            avoid += [[{"key": label, "operator": "DoesNotExist"}] for label in _CONTROL_PLANE]
        elif "nodes" in query:
            avoid.append(_not_matching(str(query["nodes"])))
        elif isinstance(query.get("pods"), dict):
            spec = query["pods"]
            pods.append({"labelSelector": {"matchExpressions": _requirements(str(spec.get("label_selector") or ""))},
                         "namespaces": [str(spec.get("namespace") or "default")],
                         "topologyKey": "kubernetes.io/hostname"})
    affinity: dict[str, Any] = {}
    if avoid:
        terms: list[list[dict]] = [[]]  # every way to fail each query: one requirement from each, ANDed
        for options in avoid:
            terms = [term + [option] for term in terms for option in options]
        affinity["nodeAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": _unique(term)} for term in terms]}}
    if pods:
        affinity["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": pods}
    return affinity


def _fault_queries(experiment: Experiment, configuration: Configuration, secrets: Secrets) -> Iterator[dict]:
    for activity in experiment.get("method") or []:
        provider = activity.get("provider") or {}
        if provider.get("module") in _FAULT_MODULES:
            yield from host_queries(_arguments(provider, configuration, secrets))


def _requirements(selector: str) -> list[dict]:
    """A label selector ("a=b,c!=d,e,!f,g in (h,i)") as matchExpressions."""
    found = []
    for term in re.findall(r"[^,(]+(?:\([^)]*\))?", label_selector(selector)):
        term = term.strip()
        listed = re.fullmatch(r"(\S+)\s+(in|notin)\s+\(([^)]*)\)", term)
        if listed:
            operator = "In" if listed[2] == "in" else "NotIn"
            found.append({"key": listed[1], "operator": operator, "values": [v.strip() for v in listed[3].split(",")]})
        elif "!=" in term:
            key, value = term.split("!=", 1)
            found.append({"key": key.strip(), "operator": "NotIn", "values": [value.strip()]})
        elif "=" in term:
            key, value = re.split("==?", term, maxsplit=1)
            found.append({"key": key.strip(), "operator": "In", "values": [value.strip()]})
        elif term.startswith("!"):
            found.append({"key": term[1:].strip(), "operator": "DoesNotExist"})
        else:
            found.append({"key": term, "operator": "Exists"})
    return found


_OPPOSITE = {"In": "NotIn", "NotIn": "In", "Exists": "DoesNotExist", "DoesNotExist": "Exists"}


def _not_matching(selector: str) -> list[dict]:
    """The node requirements of a node that the selector does not match: it fails one of its terms."""
    return [{**requirement, "operator": _OPPOSITE[requirement["operator"]]} for requirement in _requirements(selector)]


def _unique(requirements: list[dict]) -> list[dict]:
    return list({json.dumps(r, sort_keys=True): r for r in requirements}.values())
