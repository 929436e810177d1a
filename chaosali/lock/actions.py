"""Lock and unlock the drill environment explicitly (the ``lock`` control does it for a whole run).

The lock is a Lease (default ``default/chaosali-drill-lock``) in the cluster of the run's
kubeconfig. An action's failure does not stop a run: to keep a drill from starting while
another one runs, use the control ``chaosali.lock.controls``.
"""

from chaoslib.types import Configuration, Secrets

from chaosali.cluster.api import connect
from chaosali.core.args import boolean, whole
from chaosali.lock import lease

__all__ = ["lock_environment", "unlock_environment"]


def lock_environment(
    name: str = lease.DEFAULT_NAME,
    namespace: str = lease.DEFAULT_NAMESPACE,
    duration: int = 3600,
    holder: str = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Take the environment lock, the Lease `name` in `namespace`, for
    `duration` seconds, at most a day (86400; nothing renews it: give the
    length of the whole drill). `holder` names who holds it (default "user@host/pid", which only
    this chaos run can unlock). Taking a lock this holder already has
    renews it. Fails, naming the holder and since when, if someone else
    holds it. Returns held, holder, since, expires and the Lease's name.
    """
    lock = lease.Lock.of(name, namespace)
    duration = whole(duration, "duration (seconds)", 1, lease.MAX_DURATION)
    identity = lease.identity_of(holder)
    with connect(configuration, secrets, timeout=lease.request_timeout(configuration, duration)) as cluster:
        holding, _ = lease.acquire(cluster, lock, identity, duration)
    return holding.as_dict(lock)


def unlock_environment(
    name: str = lease.DEFAULT_NAME,
    namespace: str = lease.DEFAULT_NAMESPACE,
    holder: str = None,
    force: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Release the environment lock held by `holder` (default "user@host/pid"
    of this chaos run). A lock held by someone else is refused, and left as
    it is, unless `force` is true (for a holder that is gone for good).
    Releasing a free lock succeeds quietly. Returns released (true when this
    call freed it) and the lock as it was before.
    """
    lock = lease.Lock.of(name, namespace)
    identity = lease.identity_of(holder)
    force = boolean(force, "force")
    with connect(configuration, secrets) as cluster:
        before, released = lease.release(cluster, lock, identity, force)
    return {"released": released, "before": before.as_dict(lock)}
