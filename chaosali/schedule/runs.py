"""The runs of scheduled drills, read back from the cluster with a kubeconfig (``chaosali runs``).

Each run is a Job of a schedule (label ``chaosali/schedule``); its journal is in the Secret
``<job>-journal`` the runner writes at its end (``chaosali.schedule.runner``). A run whose pod
was killed before that (deleted with ``--force``, or past its deadline) has no journal: its Job
says how it ended.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
from typing import Any

from chaoslib.types import Configuration, Secrets
from kubernetes import client

from chaosali.cluster.api import connect
from chaosali.core import extensions
from chaosali.core.errors import InvalidArgument
from chaosali.core.tables import text_table
from chaosali.report.figures import read_run
from chaosali.report.safety import safety_checks
from chaosali.report.words import impact_verdict, run_verdict
from chaosali.schedule.manifests import EXPERIMENT_ANNOTATION, SCHEDULE_LABEL
from chaosali.schedule.runner import JOURNAL_KEY, RECORD_KEY

__all__ = ["runs", "journal_of", "table", "COLUMNS"]

COLUMNS = ("run", "started", "seconds", "job", "status", "verdict", "proven", "impact", "stop_condition",
           "left_behind", "journal")


def runs(namespace: str, configuration: Configuration, secrets: Secrets, schedule: str | None = None) -> list[dict]:
    """Every run of the namespace's schedules (or of ``schedule``), newest first."""
    selector = f"{SCHEDULE_LABEL}={schedule}" if schedule else SCHEDULE_LABEL
    with connect(configuration, secrets) as cluster:
        jobs = cluster.call(f"list the drills' Jobs in namespace {namespace}",
                            client.BatchV1Api(cluster.client).list_namespaced_job, namespace,
                            label_selector=selector).items
        kept = cluster.call(f"list the drills' journals in namespace {namespace}",
                            client.CoreV1Api(cluster.client).list_namespaced_secret, namespace,
                            label_selector=f"{SCHEDULE_LABEL},chaosali/job").items
    journals = {secret.metadata.labels["chaosali/job"]: secret for secret in kept}
    found = [_run(job, journals.get(job.metadata.name), namespace) for job in jobs]
    return sorted(found, key=lambda run: run["started"] or "", reverse=True)


def journal_of(name: str, namespace: str, configuration: Configuration, secrets: Secrets) -> dict:
    """The journal of run ``name`` (a Job's name, as ``chaosali runs`` lists it)."""
    with connect(configuration, secrets) as cluster:
        kept = cluster.call(f"list the journals of run {name}", client.CoreV1Api(cluster.client).list_namespaced_secret,
                            namespace, label_selector=f"chaosali/job={name}").items
    journal = _unpacked(kept[0]).get("journal") if kept else None
    if journal is None:
        raise InvalidArgument(f"run {name!r} has no journal in namespace {namespace}: it is running, or its pod "
                              f"died before keeping it; `chaosali runs --namespace {namespace}` lists the runs")
    return journal


def _unpacked(secret: client.V1Secret) -> dict[str, Any]:
    data = secret.data or {}
    unpacked: dict[str, Any] = {}
    if RECORD_KEY in data:
        unpacked["record"] = json.loads(base64.b64decode(data[RECORD_KEY]))
    if JOURNAL_KEY in data:
        unpacked["journal"] = json.loads(gzip.decompress(base64.b64decode(data[JOURNAL_KEY])))
    return unpacked


def _run(job: client.V1Job, secret: client.V1Secret | None, namespace: str) -> dict:
    status = job.status
    started, ended = status.start_time, status.completion_time or _failed_at(job)
    end = ended or dt.datetime.now(dt.timezone.utc)
    kept = _unpacked(secret) if secret is not None else {}
    found: dict[str, Any] = {
        "run": job.metadata.name,
        "schedule": job.metadata.labels.get(SCHEDULE_LABEL),
        "experiment": (job.metadata.annotations or {}).get(EXPERIMENT_ANNOTATION),
        "started": started.isoformat() if started else None,
        "seconds": round((end - started).total_seconds()) if started else None,
        "job": _job_state(job),
        "journal": f"Secret {namespace}/{job.metadata.name}-journal" if "journal" in kept else None,
    }
    record = kept.get("record") or {}
    if record.get("refused"):
        found["verdict"] = "REFUSED: the account lacks " + "; ".join(record["refused"])
    if "journal" in kept:
        found.update(_verdict(kept["journal"]))
    elif "verdict" not in found and ended:  # killed: deleted, or past its deadline
        found["status"] = "interrupted"
        found["verdict"] = f"INTERRUPTED: its pod ended ({found['job']}) before it could keep a journal"
    return found


def _failed_at(job: client.V1Job) -> dt.datetime | None:
    return next((c.last_transition_time for c in job.status.conditions or [] if c.type == "Failed" and c.status == "True"),
                None)


def _job_state(job: client.V1Job) -> str:
    status = job.status
    if status.succeeded:
        return "succeeded"
    failed = next((c for c in status.conditions or [] if c.type == "Failed" and c.status == "True"), None)
    if failed is not None:
        return f"failed ({failed.reason})" if failed.reason else "failed"
    return "running" if status.active else "pending"


def _verdict(journal: dict) -> dict:
    """The journal in the report's words: chaos run's status, the verdict, the proof, the impact vs
    the FMEA, the stop conditions and what was left behind."""
    try:
        run = read_run(journal)
    except InvalidArgument as error:
        return {"verdict": f"UNREADABLE journal: {error}"}
    safety = {kind: met for kind, _, met in safety_checks(run.journal)}
    refused = [entry["refused"] for entry in extensions.entries(journal, extensions.LOCK) if "refused" in entry]
    verdict = _refused(refused[0]) if refused else run_verdict(run)
    return {"status": run.status, "verdict": verdict, "proven": run.fault_proven,
            "impact": impact_verdict(run),
            "stop_condition": None if "halt" not in safety else ("none broke" if safety["halt"] else "HALTED"),
            "left_behind": None if "revert" not in safety else ("nothing" if safety["revert"] else "SOMETHING")}


def _refused(refused: dict) -> str:
    """A run the lock refused: held by another run, or not taken at all (the API did not answer)."""
    why = (f"held by {refused.get('holder')} since {refused.get('since')}" if refused.get("holder")
           else refused.get("why") or "not taken")
    return f"REFUSED by the lock: {refused.get('namespace')}/{refused.get('name')} {why}"


def table(found: list[dict]) -> str:
    """The runs as a text table."""
    if not found:
        return "no run of a scheduled drill in this namespace\n"
    rows = [["-" if run.get(column) is None else str(run[column]) for column in COLUMNS] for run in found]
    return "\n".join(text_table(list(COLUMNS), rows)) + "\n"
