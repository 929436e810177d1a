"""The drill's pod: check its account, run ``chaos run``, keep the journal in the cluster.

``python3 -m chaosali.schedule.runner`` is the container's command (``chaosali schedule`` writes
it). Before any fault it asks the API server (SelfSubjectAccessReview) whether the pod's account
holds every rule of ``rbac.json``; a missing one stops the run, naming the verb and the resource.
Then ``chaos run`` plays the drill with ``--rollback-strategy always`` (a SIGTERM, as a deleted pod
gets, interrupts it and its rollbacks are played). At the end the journal (gzipped) and what the
runner saw go into a Secret ``<job>-journal`` owned by the Job, where ``chaosali runs`` reads them.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from kubernetes import client

from chaosali.cluster.api import ApiFailed, connect
from chaosali.schedule.manifests import DRILL_DIR, JOURNAL_DIR, SCHEDULE_LABEL, SSH_DIR

__all__ = ["main", "missing_permissions", "JOURNAL_KEY", "RECORD_KEY"]

logger = logging.getLogger("chaostoolkit")

JOURNAL_KEY = "journal.json.gz"
RECORD_KEY = "runner.json"
MAX_SECRET = 1_000_000  # bytes of a Secret's data the API server takes (1 MiB, less the object's own)
_IN_POD = {"kubernetes_in_cluster": True}


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    job = os.environ.get("CHAOSALI_JOB") or os.environ.get("CHAOSALI_RUNNER_POD", "drill")
    record: dict[str, Any] = {"schedule": os.environ.get("CHAOSALI_SCHEDULE"), "job": job,
                              "pod": os.environ.get("CHAOSALI_RUNNER_POD"),
                              "node": os.environ.get("CHAOSALI_RUNNER_NODE"), "started": _now()}
    journal = Path(JOURNAL_DIR) / f"{job}.json"
    try:
        missing = missing_permissions(json.loads((Path(DRILL_DIR) / "rbac.json").read_text()))
    except ApiFailed as error:
        missing = [f"cannot check the account's permissions: {error}"]
    if missing:
        record.update(refused=missing, exit_code=1)
        print("chaosali: the drill is refused before any fault: its ServiceAccount lacks "
              + "; ".join(missing) + " (grant what `chaosali plan --rbac` prints)", file=sys.stderr, flush=True)
    else:
        record["exit_code"] = _chaos_run(journal)
    record["ended"] = _now()
    _keep(record, journal)
    return int(record["exit_code"])


def missing_permissions(rules: list[dict]) -> list[str]:
    """Each verb of each rule the pod's account is not allowed, as "verb resource[/name] in namespace"."""
    missing = []
    with connect(_IN_POD) as cluster:
        reviews = client.AuthorizationV1Api(cluster.client)
        for rule in rules:
            group, resource = rule["apiGroups"][0], rule["resources"][0]
            resource, _, subresource = resource.partition("/")
            for name in rule.get("resourceNames") or [None]:
                for verb in rule["verbs"]:
                    attributes = client.V1ResourceAttributes(group=group, resource=resource, subresource=subresource or None,
                                                             verb=verb, name=name, namespace=rule["namespace"])
                    review = client.V1SelfSubjectAccessReview(
                        spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes))
                    answer = cluster.call(f"review access to {verb} {resource}",
                                          reviews.create_self_subject_access_review, review)
                    if not answer.status.allowed:
                        missing.append(_permission(verb, group, rule["resources"][0], name, rule["namespace"]))
    return missing


def _permission(verb: str, group: str, resource: str, name: str | None, namespace: str | None) -> str:
    what = f"{resource}.{group}" if group else resource
    return f"{verb} {what}{f'/{name}' if name else ''} " + (f"in namespace {namespace}" if namespace else "cluster-wide")


def _chaos_run(journal: Path) -> int:
    command = [shutil.which("chaos") or "chaos", "run", "--rollback-strategy", "always",
               "--var-file", f"{DRILL_DIR}/vars.json", "--var-file", f"{SSH_DIR}/secrets.json",
               "--journal-path", str(journal), f"{DRILL_DIR}/experiment.json"]
    process = subprocess.Popen(command)

    def forward(signum: int, frame: FrameType | None) -> None:  # the pod is being deleted: chaos rolls back
        process.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return process.wait()


def _keep(record: dict, journal: Path) -> None:
    """The journal and the record in the run's Secret, owned by its Job (removed with it)."""
    data: dict[str, bytes] = {}
    if journal.is_file():
        packed = gzip.compress(journal.read_bytes())
        if len(packed) <= MAX_SECRET:
            data[JOURNAL_KEY] = packed
        else:
            record["journal"] = f"too large for a Secret ({len(packed)} bytes gzipped): kept on the journals volume only"
    data[RECORD_KEY] = json.dumps(record).encode()
    namespace = os.environ.get("CHAOSALI_NAMESPACE", "default")
    labels = {SCHEDULE_LABEL: str(record["schedule"]), "chaosali/job": str(record["job"])}
    owner = ([client.V1OwnerReference(api_version="batch/v1", kind="Job", name=record["job"],
                                      uid=os.environ["CHAOSALI_JOB_UID"])]
             if os.environ.get("CHAOSALI_JOB_UID") else None)
    body = client.V1Secret(metadata=client.V1ObjectMeta(name=f"{record['job']}-journal", namespace=namespace,
                                                        labels=labels, owner_references=owner),
                           type="Opaque", data={k: base64.b64encode(v).decode() for k, v in data.items()})
    try:
        with connect(_IN_POD) as cluster:
            cluster.call("keep the run's journal", client.CoreV1Api(cluster.client).create_namespaced_secret,
                         namespace, body)
    except ApiFailed as error:
        print(f"chaosali: the journal could not be kept in the cluster: {error}", file=sys.stderr, flush=True)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


if __name__ == "__main__":
    sys.exit(main())
