"""kube-monkey drills: deploy kube-monkey, enrol workloads as its victims, and undo both.

The cluster comes from the configuration (``kubeconfig_path``, ``kubernetes_context``...; see
``chaosali.cluster.api``). Arguments are checked before anything is sent: a wrong hour, time
zone, namespace or kill mode fails the activity with nothing applied.
"""

import datetime as dt
import logging
import time

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets
from kubernetes.dynamic import DynamicClient

from chaosali.cluster import resources, rollout
from chaosali.core import ledger, undo
from chaosali.core.args import boolean, dns_label, seconds
from chaosali.core.errors import InvalidArgument
from chaosali.core.markers import CREATED_BY_ANNOTATION, RUN_ANNOTATION
from chaosali.kubemonkey import manifests as km

__all__ = ["deploy_kube_monkey", "remove_kube_monkey", "mark_victims", "unmark_victims"]

logger = logging.getLogger("chaostoolkit")

# what remove_kube_monkey looks for, the Deployment first so that the killing stops first
_DEPLOYED_KINDS = (
    ("Deployment", "apps/v1", True),
    ("ConfigMap", "v1", True),
    ("ServiceAccount", "v1", True),
    ("ClusterRoleBinding", "rbac.authorization.k8s.io/v1", False),
    ("ClusterRole", "rbac.authorization.k8s.io/v1", False),
)


@ledger.fault_action("kube-monkey")
def deploy_kube_monkey(
    namespace: str = "kube-monkey",
    image: str = km.DEFAULT_IMAGE,
    dry_run: bool = False,
    whitelisted_namespaces: list = None,
    blacklisted_namespaces: list = None,
    run_hour: int = 8,
    start_hour: int = 10,
    end_hour: int = 16,
    time_zone: str = "UTC",
    graceperiod_sec: int = 5,
    debug: bool = True,
    schedule_delay: int = 30,
    force_should_kill: bool = True,
    schedule_immediate_kill: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Deploy kube-monkey into `namespace` (created if missing, and then
    deleted again by remove_kube_monkey) with server-side apply: its
    ConfigMap (config.toml, mounted at /etc/kube-monkey), ServiceAccount,
    ClusterRole (read workloads and namespaces, delete pods), ClusterRoleBinding
    and Deployment (`image`), all labelled app.kubernetes.io/managed-by=chaosali.

    The defaults are for a drill: kube-monkey really deletes pods (`dry_run`
    false: a dry run would make the drill prove nothing) of the workloads
    enrolled with mark_victims, and in debug mode it does so within minutes:
    it schedules `schedule_delay` seconds after it starts, then again and
    again, every enrolled workload is a victim each time
    (`force_should_kill`), killed within the next 60 s
    (`schedule_immediate_kill`). With `debug` false it follows its daily
    calendar instead: it schedules at `run_hour` kills between `start_hour`
    and `end_hour` (0 <= run_hour < start_hour < end_hour <= 23) in `time_zone`
    on weekdays, each workload with a chance of 1/mtbf.

    Victims are only the enrolled workloads in `whitelisted_namespaces`
    (default: all namespaces; give the drill's own to bound the blast radius)
    and not in `blacklisted_namespaces` (default ["kube-system"]). Workloads
    already enrolled in scope (by anyone) are listed in the output and logged.
    `graceperiod_sec` is the grace period of each pod it deletes.
    Refuses to take over kube-monkey objects that chaosali did not create.
    """
    settings = km.Settings.checked(
        dry_run=dry_run,
        run_hour=run_hour,
        start_hour=start_hour,
        end_hour=end_hour,
        time_zone=time_zone,
        blacklisted_namespaces=["kube-system"] if blacklisted_namespaces is None else blacklisted_namespaces,
        whitelisted_namespaces=[] if whitelisted_namespaces is None else whitelisted_namespaces,
        graceperiod_sec=graceperiod_sec,
        debug=debug,
        schedule_delay=schedule_delay,
        force_should_kill=force_should_kill,
        schedule_immediate_kill=schedule_immediate_kill,
    )
    namespace = dns_label(namespace, "namespace")
    if not isinstance(image, str) or not image or any(c.isspace() for c in image):
        raise InvalidArgument(f"image must be a container image reference such as {km.DEFAULT_IMAGE!r}, not {image!r}")
    documents = km.objects(namespace, image, settings)
    with resources.connect(configuration, secrets) as dyn, \
            ledger.injecting("kube-monkey", [f"namespace {namespace}"]) as record:
        _remember_deployment(record, namespace, dyn.client.configuration.host, configuration, secrets)
        for document in documents:
            _refuse_foreign(dyn, document, namespace)
            document["metadata"].setdefault("annotations", {})[RUN_ANNOTATION] = record.run
        created = rollout.ensure_namespace(dyn, km.namespace_object(namespace))
        applied = resources.apply(dyn, documents, None, force=False)
        record.started = _now()
        ledger.save()
        in_scope = [v.as_dict() for v in km.victims(dyn, None) if settings.covers(v.namespace)]
    fate = "would only log kills of" if settings.dry_run else "will kill"
    for victim in in_scope:
        where = f"{victim['kind']} {victim['namespace']}/{victim['name']}"
        logger.warning("kube-monkey in %s %s pods of %s", namespace, fate, where)
    return {
        "namespace": namespace,
        "namespace_created": created,
        "image": image,
        "config": settings.tables(),
        "objects": applied,
        "victims_in_scope": in_scope,
    }


def remove_kube_monkey(
    namespace: str = "kube-monkey",
    wait: bool = True,
    timeout: float = 120,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Delete what deploy_kube_monkey created for `namespace`: the objects
    labelled as its own (Deployment first, so that the killing stops first,
    then ConfigMap, ServiceAccount, ClusterRoleBinding, ClusterRole), and the
    namespace itself only if deploy_kube_monkey created it. Dependents (its
    pods) are deleted first. With `wait` (the default) it returns only once
    everything is gone, and fails after `timeout` seconds naming what is
    left. Removing twice, or removing what was never deployed, succeeds
    quietly. Enrolled workloads keep their labels: see unmark_victims.
    Returns the deleted objects.
    """
    namespace = dns_label(namespace, "namespace")
    wait_timeout = seconds(timeout, "timeout") if boolean(wait, "wait") else None
    with resources.connect(configuration, secrets) as dyn:
        targets = _deployed(dyn, namespace)
        existing = rollout.existing(dyn, km.namespace_object(namespace))
        annotations = (existing or {"metadata": {}})["metadata"].get("annotations") or {}
        ours = annotations.get(CREATED_BY_ANNOTATION) == km.CREATED_BY_VALUE
        if ours:
            targets.append(resources.target(dyn, km.namespace_object(namespace), None))
        # foreground: an object is gone only once its dependents are (the Deployment's pods)
        deleted = resources.delete(dyn, targets, None, "Foreground", True, wait_timeout)
    for record in _records("kube-monkey", namespace):
        ledger.closed(record.id)
    return {"namespace": namespace, "namespace_deleted": ours, "deleted": deleted}


@ledger.fault_action("kube-monkey victims")
def mark_victims(
    namespace: str,
    name: str = None,
    label_selector: str = None,
    kind: str = "Deployment",
    identifier: str = None,
    mtbf: int = 1,
    kill_mode: str = "fixed",
    kill_value: int = 1,
    wait: bool = True,
    timeout: float = 120,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> list:
    """
    Enrol workloads as kube-monkey's victims: the `kind` (Deployment,
    StatefulSet or DaemonSet) named `name`, or those matching
    `label_selector`, in `namespace`. Each workload and its pod template get
    the labels kube-monkey reads (merge patch): kube-monkey/enabled=enabled,
    kube-monkey/identifier (`identifier`, default the workload's name, as
    kube-monkey recommends; kube-monkey finds the pods to kill by this label,
    so it must be unique in the namespace), kube-monkey/mtbf (`mtbf`: mean
    weekdays between kills, 1 or more), kube-monkey/kill-mode and
    kube-monkey/kill-value: `kill_mode` "fixed" kills `kill_value` pods,
    "kill-all" all of them (no value), "random-max-percent" up to
    `kill_value` % of the running pods and "fixed-percent" exactly
    `kill_value` % (1 to 100). Those are the numbers of deletions: kube-monkey
    draws each pod at random among the running ones, a pod possibly twice, so
    a kill of more than one pod may delete fewer distinct pods (kill-all of 2
    pods deletes both only about half the time).

    Labelling the pod template rolls the workload's pods out. With `wait`
    (the default) the action returns once every pod carries the identifier
    and enough of them run, and fails after `timeout` seconds; it then
    records the next whole second on each workload (annotation
    chaosali/kube-monkey-marked-at), the baseline of victim_pods_deleted,
    and returns once that second has come.
    Returns the marked workloads, with the kube-monkey labels each had before.
    """
    namespace, kind, selection = _selection(namespace, kind, name, label_selector)
    labels = km.enrolment(mtbf, kill_mode, kill_value)
    if identifier is not None:
        identifier = km.label_value(identifier, "identifier")
    wait_timeout = seconds(timeout, "timeout") if boolean(wait, "wait") else None
    with resources.connect(configuration, secrets) as dyn:
        workloads = _workloads(dyn, kind, namespace, selection, missing_ok=False)
        if identifier and len(workloads) > 1:
            raise InvalidArgument(
                f"identifier {identifier!r} given for {len(workloads)} workloads: kube-monkey would kill the "
                "pods of all of them for each; leave identifier out (each gets its own name) or mark them one by one"
            )
        identifiers = {rollout.key(w): identifier or _default_identifier(w) for w in workloads}
        _refuse_shared_identifiers(dyn, namespace, identifiers)
        names = ["{} {}/{}".format(*rollout.key(w)) for w in workloads]
        with ledger.injecting("kube-monkey victims", names) as record:
            # the workloads someone else enrolled before keep their labels
            _remember_victims(record, namespace, kind, [w for w in workloads if not _kube_monkey_labels(w)],
                              dyn.client.configuration.host, configuration, secrets)
            for workload in workloads:
                _patch_labels(dyn, workload, {**labels, km.IDENTIFIER: identifiers[rollout.key(workload)]},
                              annotations={RUN_ANNOTATION: record.run})
                record.started = record.started or _now()
            ledger.save()

            def carries_identifier(pod: dict, workload: dict) -> bool:
                return _labels(pod).get(km.IDENTIFIER) == identifiers[rollout.key(workload)]

            try:
                rolled = rollout.await_pods(dyn, workloads, carries_identifier, wait_timeout) if wait_timeout else {}
            except ActivityFailed as error:
                raise ActivityFailed(f"{error} (the labels stay until unmarked)") from None
            # creationTimestamp counts whole seconds: the baseline is the next whole second, and the
            # action returns only once it has come, so that the pods of the rollout are stamped before
            # it and any pod created after this action returns is stamped at it or later
            marked = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=1)
            time.sleep(max(0.0, (marked - dt.datetime.now(dt.timezone.utc)).total_seconds()))
            marked_at = km.iso(marked)
            for workload in workloads:
                _patch(dyn, workload, {"metadata": {"annotations": {km.MARKED_AT: marked_at}}})
    return [
        {
            **_describe(workload),
            "identifier": identifiers[rollout.key(workload)],
            "labels": {
                key: value
                for key, value in {**labels, km.IDENTIFIER: identifiers[rollout.key(workload)]}.items()
                if value is not None
            },
            "previous_labels": _kube_monkey_labels(workload),
            "rolled_out": rolled.get(rollout.key(workload)),
            "marked_at": marked_at,
        }
        for workload in workloads
    ]


def unmark_victims(
    namespace: str,
    name: str = None,
    label_selector: str = None,
    kind: str = "Deployment",
    wait: bool = True,
    timeout: float = 120,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> list:
    """
    Withdraw workloads from kube-monkey: remove every kube-monkey/* label
    (enabled, identifier, mtbf, kill-mode, kill-value) from the `kind` named
    `name`, or matching `label_selector`, in `namespace`, and from its pod
    template (merge patch), and the mark_victims time annotation. kube-monkey
    checks enrolment again just before each kill, so it then spares them.
    Other labels stay. A missing workload, or one with no such label, is left
    alone quietly. With `wait` (the default) returns once no pod of theirs
    carries a kube-monkey label (the template change rolls them out), failing
    after `timeout` seconds. Returns each workload and the labels removed.
    """
    namespace, kind, selection = _selection(namespace, kind, name, label_selector)
    wait_timeout = seconds(timeout, "timeout") if boolean(wait, "wait") else None
    with resources.connect(configuration, secrets) as dyn:
        workloads = _workloads(dyn, kind, namespace, selection, missing_ok=True)
        for workload in workloads:
            _unmark(dyn, workload)
        if wait_timeout:
            rollout.await_pods(dyn, workloads, lambda pod, _: not _kube_monkey_labels(pod), wait_timeout)
    # withdrawn victims end the killing: their record closes, and kube-monkey's ends (it stays until removed)
    for record in _records("kube-monkey victims", namespace):
        if not set(record.undo.get("names", [])) - {w["metadata"]["name"] for w in workloads}:
            ledger.closed(record.id)
    if workloads:
        for record in ledger.faults():
            if record.kind == "kube-monkey" and not record.closed:
                ledger.ended(record.id)
    return [{**_describe(w), "removed_labels": _kube_monkey_labels(w)} for w in workloads]


def unmark_left(configuration: Configuration = None, secrets: Secrets = None) -> list[dict]:
    """What ``chaosali cleanup`` does for kube-monkey (no activity): remove the kube-monkey labels
    from every workload that mark_victims marked (its annotation says so), in every namespace,
    without waiting for the rollout. Workloads that someone else enrolled keep theirs."""
    with resources.connect(configuration, secrets) as dyn:
        marked = [{**item, "kind": kind}
                  for kind in dict.fromkeys(km.WORKLOAD_KINDS.values())
                  for item in resources.get(dyn, resources.locate(dyn, kind, rollout.WORKLOAD_API, None,
                                                                  all_namespaces=True), km.ENABLED)["items"]
                  if km.MARKED_AT in (item["metadata"].get("annotations") or {})]
        for workload in marked:
            _unmark(dyn, workload)
    return [_describe(workload) for workload in marked]


def _unmark(dyn: DynamicClient, workload: dict) -> None:
    # null in a merge patch: remove the label, and mark_victims' annotation with them
    _patch_labels(dyn, workload, dict.fromkeys(km.VICTIM_LABELS), annotations={km.MARKED_AT: None, RUN_ANNOTATION: None})


# -- kube-monkey's own objects ----------------------------------------------------------------


def _deployed(dyn: DynamicClient, namespace: str) -> list[resources.Target]:
    """The objects deploy_kube_monkey made for ``namespace`` that still exist, the Deployment first."""
    found = []
    for kind, api_version, namespaced in _DEPLOYED_KINDS:
        where = resources.locate(dyn, kind, api_version, namespace if namespaced else None)
        found.extend(resources.select(dyn, where, km.selector(namespace), None))
    return found


def _remember_deployment(record: ledger.Fault, namespace: str, server: str, configuration: Configuration,
                         secrets: Secrets) -> None:
    """A halt removes kube-monkey at once, ``chaosali cleanup`` later; the verified revert checks that
    nothing of it is left."""
    def left() -> list[dict]:
        with resources.connect(configuration, secrets) as dyn:
            found = _deployed(dyn, namespace)
        return [{"where": f"kube-monkey of namespace {namespace}", "cleanup": "the action remove_kube_monkey",
                 "left": [{"what": "object", "detail": str(target)} for target in found]}]

    record.heal = lambda: remove_kube_monkey(namespace, wait=False, configuration=configuration, secrets=secrets)
    record.undo = {"by": "kube-monkey", "namespace": namespace, "server": server}
    ledger.save()  # on disk before anything is applied: a run killed from here on is healed by cleanup
    undo.add_check(f"kube-monkey {namespace}", left)


def _remember_victims(record: ledger.Fault, namespace: str, kind: str, workloads: list[dict], server: str,
                      configuration: Configuration, secrets: Secrets) -> None:
    """A halt withdraws the workloads this run enrolled at once, ``chaosali cleanup`` later; the
    verified revert checks that they carry no kube-monkey label."""
    names = [workload["metadata"]["name"] for workload in workloads]

    def left() -> list[dict]:
        with resources.connect(configuration, secrets) as dyn:
            found = {w["metadata"]["name"]: _kube_monkey_labels(w) for name in names
                     for w in _workloads(dyn, kind, namespace, {"name": name}, missing_ok=True)}
        return [{"where": f"{kind} {namespace}/{name}", "cleanup": "chaosali cleanup --var-file VARS (its kubeconfig_path: the victims' labels)",
                 "left": [{"what": "label", "detail": f"{key}={value}"} for key, value in found.get(name, {}).items()]}
                for name in names]

    record.undo = {"by": "kube-monkey victims", "namespace": namespace, "kind": kind, "names": names, "server": server}
    record.heal = lambda: _heal_victims(record.undo, configuration, secrets)
    ledger.save()
    if names:
        undo.add_check(f"kube-monkey victims {kind} {namespace}/{','.join(names)}", left)


def _same_cluster(undo_spec: dict, configuration: Configuration, secrets: Secrets) -> None:
    ledger.same_cluster(undo_spec, configuration)
    with resources.connect(configuration, secrets) as dyn:
        ledger.same_cluster(undo_spec, configuration, dyn.client.configuration.host)


@ledger.healer("kube-monkey")
def _heal_deployment(undo_spec: dict, configuration: dict, secrets: dict) -> None:
    _same_cluster(undo_spec, configuration, secrets)
    remove_kube_monkey(undo_spec["namespace"], wait=False, configuration=configuration, secrets=secrets)


@ledger.healer("kube-monkey victims")
def _heal_victims(undo_spec: dict, configuration: Configuration, secrets: Secrets) -> None:
    _same_cluster(undo_spec, configuration, secrets)
    for name in undo_spec["names"]:
        unmark_victims(undo_spec["namespace"], name, kind=undo_spec["kind"], wait=False,
                       configuration=configuration, secrets=secrets)


def _records(kind: str, namespace: str) -> list[ledger.Fault]:
    """This run's open records of ``kind`` in ``namespace``."""
    return [r for r in ledger.faults() if r.kind == kind and r.undo.get("namespace") == namespace and not r.closed]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _refuse_foreign(dyn: DynamicClient, document: dict, namespace: str) -> None:
    """Never take over (and later delete) a kube-monkey that someone else installed."""
    existing = rollout.existing(dyn, document)
    if existing is None:
        return
    labels = existing["metadata"].get("labels") or {}
    if any(labels.get(key) != value for key, value in km.labels(namespace).items()):
        where = resources.target(dyn, document, None)
        raise ActivityFailed(
            f"{where} already exists and was not deployed by chaosali (it lacks the labels "
            f"{km.selector(namespace)}): another kube-monkey? Remove it, or deploy into another namespace"
        )


# -- workloads ---------------------------------------------------------------------------------


def _selection(namespace: str, kind: str, name: str | None, label_selector: str | None) -> tuple[str, str, dict]:
    namespace = dns_label(namespace, "namespace")
    kind = km.workload_kind(kind)
    if bool(name) == bool(label_selector):
        raise InvalidArgument(f"give either name or label_selector for the {kind}s to (un)mark, not both or none")
    if name and not isinstance(name, str):
        raise InvalidArgument(f"name must be the name of a {kind}, not {name!r}")
    if label_selector and not isinstance(label_selector, str):
        raise InvalidArgument(f"label_selector must be a label selector such as 'app=web', not {label_selector!r}")
    return namespace, kind, {"name": name} if name else {"label_selector": label_selector}


def _workloads(dyn: DynamicClient, kind: str, namespace: str, selection: dict, missing_ok: bool) -> list[dict]:
    where = resources.locate(dyn, kind, rollout.WORKLOAD_API, namespace)
    if "name" in selection:  # listed by field, not read by name: a missing one is an empty list, not a 404
        items = resources.get(dyn, where, field_selector=f"metadata.name={selection['name']}")["items"]
        what = f"{kind} {selection['name']!r}"
    else:
        items = resources.get(dyn, where, selection["label_selector"])["items"]
        what = f"{kind} matching {selection['label_selector']!r}"
    if not items:
        if not missing_ok:
            raise ActivityFailed(f"no {what} in namespace {namespace!r}")
        logger.info("chaosali: no %s in namespace %r, nothing to unmark", what, namespace)
    for item in items:
        item.setdefault("kind", kind)  # list items come without their kind
    return items


def _default_identifier(workload: dict) -> str:
    name = workload["metadata"]["name"]
    if len(name) > 63:  # object names may be longer than label values
        raise InvalidArgument(f"{workload['kind']} {name!r} has a name too long for a label value: give identifier")
    return name


def _refuse_shared_identifiers(dyn: DynamicClient, namespace: str, identifiers: dict[tuple, str]) -> None:
    """kube-monkey kills by identifier: one already used by another victim would widen the blast."""
    taken = {v.identifier: v for v in km.victims(dyn, namespace) if (v.kind, v.namespace, v.name) not in identifiers}
    for ident in identifiers.values():
        if ident in taken:
            raise InvalidArgument(
                f"identifier {ident!r} is already that of {taken[ident].kind} {taken[ident].name!r} in namespace "
                f"{namespace!r}: kube-monkey would kill the pods of both; give another identifier"
            )


def _patch_labels(dyn: DynamicClient, workload: dict, labels: dict, annotations: dict | None = None) -> None:
    metadata = {"labels": labels, **({"annotations": annotations} if annotations else {})}
    _patch(dyn, workload, {"metadata": metadata, "spec": {"template": {"metadata": {"labels": labels}}}})


def _patch(dyn: DynamicClient, workload: dict, body: dict) -> None:
    # a merge patch: null removes a label, and it needs no strategic-merge schema
    resources.patch(dyn, rollout.locate(dyn, workload), body, "merge")


def _describe(workload: dict) -> dict:
    return dict(zip(("kind", "namespace", "name"), rollout.key(workload)))


def _labels(obj: dict) -> dict:
    return obj["metadata"].get("labels") or {}


def _kube_monkey_labels(obj: dict) -> dict:
    return {key: value for key, value in _labels(obj).items() if key in km.VICTIM_LABELS}
