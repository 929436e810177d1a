"""The environment lock as a coordination.k8s.io/v1 Lease, taken with optimistic concurrency (private).

The Lease's spec tells who holds the environment (``holderIdentity``), since when
(``acquireTime``), until when unless renewed (``renewTime`` + ``leaseDurationSeconds``) and how
often it changed hands (``leaseTransitions``). Every write sends the ``resourceVersion`` it read:
of two contenders that read the same free Lease, the API server accepts one write and answers
the other 409 Conflict, and that one reads again and finds the winner.

A holder that dies stops renewing: the lock is free once renewTime + leaseDurationSeconds has
passed. Expiry is judged with this machine's clock against the renewTime the holder wrote, so
holders' clocks must agree within a few seconds (NTP), as for any Lease.

Leases are read and written as plain JSON (``_preload_content=False``): times stay in the exact
MicroTime form the API server writes and expects, with no model conversion in between.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any, Callable

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration
from kubernetes import client

from chaosali.cluster.api import ApiFailed, Connection, request_timeout as configured_timeout
from chaosali.core.errors import InvalidArgument
from chaosali.core.markers import MANAGED_BY, MANAGED_BY_LABEL, RUN_ANNOTATION

__all__ = [
    "DEFAULT_NAME",
    "MAX_DURATION",
    "DEFAULT_NAMESPACE",
    "Lock",
    "Holding",
    "Held",
    "Lost",
    "NotYours",
    "identity_of",
    "request_timeout",
    "read",
    "acquire",
    "release",
]

logger = logging.getLogger("chaostoolkit")

DEFAULT_NAME = "chaosali-drill-lock"
DEFAULT_NAMESPACE = "default"
# A crashed run's lock is free after its duration: a day at most, so that a typo (1e9 s, 31
# years) cannot take the environment away for good.
MAX_DURATION = 86400
_ATTEMPTS = 3  # conflicting writes in a row before giving up: a contended lock, not a lost race
_MICROTIME = "%Y-%m-%dT%H:%M:%S.%fZ"  # metav1.MicroTime, which wants exactly six fraction digits


@dataclass(frozen=True)
class Lock:
    """Where the lock lives: a Lease by namespace and name."""

    namespace: str
    name: str

    @classmethod
    def of(cls, name: Any, namespace: Any) -> Lock:
        for what, value in (("name", name), ("namespace", namespace)):
            if not isinstance(value, str) or not value:
                raise InvalidArgument(f"the lock's {what} must be a non-empty string, not {value!r}")
        return cls(namespace, name)

    def __str__(self) -> str:
        return f"Lease {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Holding:
    """What the Lease says, as read: who holds it, since when, until when."""

    holder: str | None
    acquired: dt.datetime | None
    renewed: dt.datetime | None
    duration: int | None
    transitions: int
    raw: dict[str, Any] | None  # the Lease as the API server sent it; None: there is no Lease

    @classmethod
    def of(cls, lease: dict[str, Any] | None) -> Holding:
        spec = (lease or {}).get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or None,
            acquired=_parse_time(spec.get("acquireTime")),
            renewed=_parse_time(spec.get("renewTime")),
            duration=spec.get("leaseDurationSeconds"),
            transitions=int(spec.get("leaseTransitions") or 0),
            raw=lease,
        )

    @property
    def run(self) -> str | None:
        """The run whose ledger holds what the holder changed (see :mod:`chaosali.core.ledger`)."""
        annotations = ((self.raw or {}).get("metadata") or {}).get("annotations") or {}
        return annotations.get(RUN_ANNOTATION) if isinstance(annotations, dict) else None

    @property
    def expires(self) -> dt.datetime | None:
        # a holder without times has never renewed: expired, as client-go's leader election sees it
        last = self.renewed or self.acquired
        return last + dt.timedelta(seconds=self.duration) if last and self.duration else None

    def live(self, now: dt.datetime | None = None) -> bool:
        """Held by someone whose lease has not expired."""
        return bool(self.holder) and self.expires is not None and (now or _now()) < self.expires

    def as_dict(self, lock: Lock) -> dict[str, Any]:
        """JSON for a journal: held (a live holder), holder, since, expires, and the Lease."""
        return {
            "held": self.live(),
            "holder": self.holder,
            "since": _show(self.acquired) if self.holder else None,
            "renewed": _show(self.renewed) if self.holder else None,
            "expires": _show(self.expires) if self.holder else None,
            "transitions": self.transitions,
            "namespace": lock.namespace,
            "name": lock.name,
        }

    def describe(self) -> str:
        """Who holds it, in words."""
        since = f" since {_show(self.acquired)}" if self.acquired else ""
        until = f", free at {_show(self.expires)} unless renewed" if self.expires else ""
        return f"{self.holder!r}{since}{until}"


class Held(ActivityFailed):
    """Another live holder has the lock."""

    def __init__(self, lock: Lock, holding: Holding) -> None:
        self.holding = holding
        super().__init__(
            f"the environment is locked by {holding.describe()} ({lock}): another drill runs on it. Wait for it "
            "to end; if its holder is gone for good, release the lock with unlock_environment and force true"
        )


class Lost(ActivityFailed):
    """The lock changed hands since this holder last renewed it (its renewals failed meanwhile):
    another drill may have run on the environment, even if the lock is free again now."""

    def __init__(self, lock: Lock, identity: str, before: Holding, now: Holding) -> None:
        self.holding = now
        state = f"is held by {now.describe()}" if now.holder else "is free"
        super().__init__(
            f"{lock} changed hands while {identity!r} could not renew it: at its last renewal "
            f"({_show(before.renewed)}) it had changed hands {before.transitions} time(s), now {now.transitions} "
            f"time(s), and it {state}; another drill may have run on the environment meanwhile"
        )


class NotYours(ActivityFailed):
    """The lock is held by someone else: it was left as it is."""


def identity_of(holder: Any = None, title: str | None = None) -> str:
    """``holder`` when given; else ``user@host/pid``, then ``/title`` when given: who holds the
    lock, for a human to read, and unique to this process."""
    if holder is not None:
        if not isinstance(holder, str) or not holder.strip():
            raise InvalidArgument(f"holder must be a non-empty string naming who holds the lock, not {holder!r}")
        return holder
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (a container)
        user = str(os.getuid())
    parts = [f"{user}@{socket.gethostname()}", str(os.getpid())]
    return "/".join(parts + [title] if title else parts)


def request_timeout(configuration: Configuration, duration: int) -> float:
    """Seconds per API request that keeps a lease of ``duration``: the configured request
    timeout, but never longer than a renewal interval, or one slow request would let it lapse."""
    return min(configured_timeout(configuration), max(1.0, duration / 3))


def read(cluster: Connection, lock: Lock) -> Holding:
    """The Lease as it is now (``raw`` None when there is none)."""
    leases = client.CoordinationV1Api(cluster.client)
    return Holding.of(
        _call(cluster, f"read {lock}", leases.read_namespaced_lease, lock.name, lock.namespace, absent_ok=True)
    )


def acquire(
    cluster: Connection, lock: Lock, identity: str, duration: int, renewing: Holding | None = None,
    run: str | None = None,
) -> tuple[Holding, bool]:
    """Take the lock, or renew it when ``identity`` holds it already.

    Returns the Lease now and whether ``identity`` held it (live) before this call. Raises
    :class:`Held` when another live holder has it. ``renewing``: the Lease as this holder last
    wrote it; if it changed hands since (another holder, a release, any transition), even if
    it is free again now, :class:`Lost` is raised instead of taking it again. ``run``: the
    holder's run, noted on the Lease, so that whoever takes the lock after it died knows whose
    ledger to heal.
    """
    leases = client.CoordinationV1Api(cluster.client)
    for _ in range(_ATTEMPTS):
        current = read(cluster, lock)
        body, already = claim(lock, current, identity, duration, _now(), renewing)
        if run:
            metadata = body["metadata"] = dict(body.get("metadata") or {})
            metadata["annotations"] = {**(metadata.get("annotations") or {}), RUN_ANNOTATION: run}
        try:
            if current.raw is None:
                written = _call(cluster, f"create {lock}", leases.create_namespaced_lease, lock.namespace, body)
            else:
                replace = leases.replace_namespaced_lease
                written = _call(cluster, f"update {lock}", replace, lock.name, lock.namespace, body)
        except _Conflict:
            continue  # written by someone else since our read: read again, and see who
        if not already:
            logger.info("chaosali: %s taken by %r for %d s", lock, identity, duration)
        return Holding.of(written), already
    raise ActivityFailed(f"cannot take {lock}: it changed under every one of {_ATTEMPTS} attempts; try again")


def claim(lock: Lock, current: Holding, identity: str, duration: int, now: dt.datetime,
          renewing: Holding | None = None) -> tuple[dict[str, Any], bool]:
    """The Lease to write for ``identity`` to take or renew the lock ``current`` describes at
    ``now``, and whether it held it (live) already; raises :class:`Lost` or :class:`Held` as
    :func:`acquire` says. Pure: the API calls are acquire's."""
    if renewing is not None and (current.holder != identity or current.transitions != renewing.transitions):
        raise Lost(lock, identity, renewing, current)
    if current.live(now) and current.holder != identity:
        raise Held(lock, current)
    already = current.live(now)  # and so ours
    body = dict(current.raw or {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": lock.name, "namespace": lock.namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
    })
    body["spec"] = {
        **(body.get("spec") or {}),
        "holderIdentity": identity,
        "leaseDurationSeconds": duration,
        "acquireTime": _stamp(current.acquired if already and current.acquired else now),
        "renewTime": _stamp(now),
        # as client-go counts them: each change of holder, a release included, not the creation
        "leaseTransitions": current.transitions + (1 if current.raw and current.holder != identity else 0),
    }
    return body, already


def release(cluster: Connection, lock: Lock, identity: str, force: bool) -> tuple[Holding, bool]:
    """Free the lock held by ``identity`` (by anyone with ``force``).

    Returns the Lease as it was and whether it was released. A free lock, or one whose other
    holder's lease has expired, is left as it is (without ``force``). Raises :class:`NotYours`
    when someone else holds it live and ``force`` is false.
    """
    leases = client.CoordinationV1Api(cluster.client)
    for _ in range(_ATTEMPTS):
        current = read(cluster, lock)
        if not current.holder or (current.holder != identity and not current.live() and not force):
            return current, False
        if current.holder != identity and not force:
            raise NotYours(
                f"{lock} is held by {current.describe()}, not by {identity!r}: it was left as it is "
                "(force true releases someone else's lock)"
            )
        body = dict(current.raw or {})
        # the record of who held it last goes with the holder; duration and transitions stay
        body["spec"] = {
            k: v for k, v in (body.get("spec") or {}).items() if k not in ("holderIdentity", "acquireTime", "renewTime")
        }
        try:
            _call(cluster, f"release {lock}", leases.replace_namespaced_lease, lock.name, lock.namespace, body)
        except _Conflict:
            continue
        forced = " (forced)" if current.holder != identity else ""
        logger.info("chaosali: %s released%s; it was held by %s", lock, forced, current.describe())
        return current, True
    raise ActivityFailed(f"cannot release {lock}: it changed under every one of {_ATTEMPTS} attempts; try again")


class _Conflict(Exception):
    """409: the Lease changed (or appeared) since it was read."""


def _call(
    cluster: Connection, what: str, request: Callable[..., Any], *args: Any, absent_ok: bool = False
) -> dict[str, Any] | None:
    try:
        response = cluster.call(what, request, *args, _preload_content=False)
    except ApiFailed as error:
        if error.status == 409:
            raise _Conflict() from None
        if error.status == 404 and absent_ok:
            return None
        raise
    return json.loads(response.data)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime(_MICROTIME)


def _parse_time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None  # an unreadable time counts as none: the lease is judged expired
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _show(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds") if moment else None
