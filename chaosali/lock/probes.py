"""Who holds the drill environment's lock."""

from chaoslib.types import Configuration, Secrets

from chaosali.cluster.api import connect
from chaosali.lock import lease

__all__ = ["environment_lock_holder"]


def environment_lock_holder(
    name: str = lease.DEFAULT_NAME,
    namespace: str = lease.DEFAULT_NAMESPACE,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Tell who holds the environment lock, the Lease `name` in `namespace`:
    {"held": bool, "holder", "since", "renewed", "expires", "transitions",
    "namespace", "name"}. `held` is true only while the holder's lease has
    not expired; an expired holder is still named, with its expiry in the
    past. A missing Lease is a free lock.
    """
    lock = lease.Lock.of(name, namespace)
    with connect(configuration, secrets) as cluster:
        return lease.read(cluster, lock).as_dict(lock)
