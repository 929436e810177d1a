"""The ``lock`` control: one drill at a time on a cluster, held for the whole run.

::

    {"name": "lock", "provider": {"type": "python", "module": "chaosali.lock.controls",
      "arguments": {"duration": 60}}}

Before the experiment it takes the lock, a Lease (default ``default/chaosali-drill-lock``) in
the cluster of the run's kubeconfig, or stops the run before any activity naming who holds it
and since when. The Lease names the run's ledger (``chaosali/run``): a run that takes the lock
from a holder that died heals first what that run's ledger on this machine holds open. While
the run lasts a background thread renews the Lease every duration/3 seconds. After the
experiment it releases the Lease, if it is still this run's.

A run killed outright stops renewing: the lock is free ``duration`` seconds after its last
renewal. A run whose renewals fail (its drill cut the API, say) keeps the lock as long as
nobody else takes it; if someone does, two drills now share the environment, and the run is
stopped as soon as a renewal gets through, even if the other has released the lock by then
(any change of hands since the last renewal counts), as ``chaoslib.exit.exit_gracefully``
does (status "interrupted"; rollbacks are played if the rollback strategy says so, e.g.
``chaos run --rollback-strategy always``).

Declare it after the ``kubeconfig`` control (``chaosali.cluster.controls``) when both are used:
controls run in the order they are declared.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from typing import Any

from chaoslib.exceptions import ChaosException
from chaoslib.exit import exit_gracefully
from chaoslib.types import Configuration, Control, Experiment, Journal, Secrets

from chaosali.cluster.api import Connection, connect
from chaosali.core import extensions, ledger, memory
from chaosali.core.args import whole
from chaosali.core.controls import check_arguments, fail_closed
from chaosali.lock import lease

__all__ = ["validate_control", "before_experiment_control", "after_experiment_control", "cleanup_control"]

logger = logging.getLogger("chaostoolkit")

DEFAULT_DURATION = 60
_MEMORY = "lock"  # the run memory's section: the locks this run took, by Lock
_REFUSED = "lock refused"  # the lock this run did not get


class _Renewer(threading.Thread):
    """Renews the Lease every duration/3 seconds until stopped, or until it changed hands since
    the last renewal (someone else has it, or had it while the renewals failed)."""

    def __init__(self, cluster: Connection, lock: lease.Lock, identity: str, duration: int,
                 holding: lease.Holding) -> None:
        super().__init__(name=f"chaosali-lock-renewer-{lock.name}", daemon=True)
        self._cluster, self._lock, self._identity, self._duration = cluster, lock, identity, duration
        self._holding = holding  # the Lease as this run last wrote it
        self._stopping = threading.Event()
        self.lost: lease.Held | lease.Lost | None = None

    def run(self) -> None:
        interval = self._duration / 3
        while not self._stopping.wait(interval):
            try:
                # taking it again is renewing it: still ours, or expired with nobody else in it since
                self._holding, _ = lease.acquire(self._cluster, self._lock, self._identity, self._duration,
                                                 renewing=self._holding)
            except (lease.Held, lease.Lost) as error:
                self.lost = error
                logger.error("chaosali: this run lost the environment lock: %s; stopping the run", error)
                _stop_the_run()
                return
            except Exception as error:  # noqa: BLE001 - the thread must go on renewing whatever happened
                # the API may be unreachable (a drill on the masters): another may take the lock once
                # it expires; the next renewal that gets through tells (Lost), or keeps it if nobody did
                logger.warning("chaosali: could not renew %s (%s); trying again in %g s", self._lock, error, interval)

    def stop(self) -> None:
        self._stopping.set()
        self.join()


def _stop_the_run() -> None:
    # `chaos run` turns SIGUSR1 into a graceful stop (status interrupted, rollbacks played);
    # where nobody handles it (chaoslib used as a library) it would kill the process: log only
    if signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN, None):
        exit_gracefully()


@dataclass
class _Taken:
    cluster: Connection  # one client for the whole run: the kubeconfig control may remove its file first
    lock: lease.Lock
    identity: str
    renewer: _Renewer
    release: bool  # False when this identity held the lock before the run: not the run's to free
    given_back: bool = False

    def give_back(self) -> None:
        """Stop renewing; release the lock if it is still the run's. Once: later calls do nothing."""
        if self.given_back:
            return
        self.given_back = True
        self.renewer.stop()
        try:
            if self.renewer.lost:
                logger.warning("chaosali: %s not released: it changed hands during the run", self.lock)
            elif self.release:
                lease.release(self.cluster, self.lock, self.identity, False)
            else:
                logger.info("chaosali: %s stays held by %r, who held it before this run", self.lock, self.identity)
        except ChaosException as error:
            # raising would change nothing (chaoslib swallows after-control errors): tell the user
            logger.warning(
                "chaosali: could not release %s (%s); it frees itself when its lease expires", self.lock, error
            )
        finally:
            self.cluster.close()


def validate_control(control: Control) -> None:
    """Check the control's arguments when the experiment is validated."""
    check_arguments(control, before_experiment_control)


@fail_closed("lock")
def before_experiment_control(
    context: Experiment,
    name: str = lease.DEFAULT_NAME,
    namespace: str = lease.DEFAULT_NAMESPACE,
    duration: int = DEFAULT_DURATION,
    holder: str = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> None:
    """
    Take the environment lock, the Lease `name` in `namespace`, for the
    whole run, or interrupt the run naming who holds it. `holder` names this
    run (default "user@host/pid/experiment title"); a lock this holder
    already has is kept and left held after the run. The lease lasts
    `duration` seconds (at most a day, 86400) and is renewed every
    duration/3 seconds.
    """
    lock = lease.Lock.of(name, namespace)
    duration = whole(duration, "duration (seconds)", 1, lease.MAX_DURATION)
    identity = lease.identity_of(holder, (context or {}).get("title"))
    taken = memory.section(_MEMORY)
    if lock in taken:  # declared twice: the first declaration holds it already
        return
    # retries=0: the renewer retries on its own schedule
    cluster = connect(configuration, secrets, retries=0, timeout=lease.request_timeout(configuration, duration))
    try:
        before = lease.read(cluster, lock)
        holding, already = lease.acquire(cluster, lock, identity, duration, run=ledger.run_id())
    except lease.Held as held:  # the journal says so (a scheduled drill is read from its journal)
        memory.section(_REFUSED)["refused"] = {**held.holding.as_dict(lock), "why": str(held)}
        cluster.close()
        raise
    except Exception as error:  # fail closed, and say why: an API another drill has cut cannot give the lock
        memory.section(_REFUSED)["refused"] = {"namespace": lock.namespace, "name": lock.name, "holder": None,
                                               "why": f"could not be taken: {error}"}
        cluster.close()
        raise
    except BaseException:
        cluster.close()
        raise
    if not already and before.holder and before.run and before.run != ledger.run_id():
        _heal_the_dead_holder(before, configuration, secrets)
    renewer = _Renewer(cluster, lock, identity, duration, holding)
    renewer.start()
    taken[lock] = _Taken(cluster, lock, identity, renewer, release=not already)
    memory.on_forget(taken[lock].give_back)  # the last resort: a run that never reached its controls' end
    logger.info("chaosali: this run holds %s as %r, renewed every %g s", lock, identity, duration / 3)


def _heal_the_dead_holder(before: lease.Holding, configuration: Configuration, secrets: Secrets) -> None:
    """The lock was taken from a holder whose lease ran out: a run that died. Heal first what its
    ledger (on this machine) holds open, with this run's credentials."""
    dead = [found for found in ledger.ledgers() if found.run == before.run and not found.alive and found.open]
    for found in dead:
        for record, outcome in found.heal(dict(configuration or {}), dict((secrets or {}).get("ssh") or {})):
            logger.warning("chaosali: the lock's last holder %r died: %s: %s", before.holder, record.summary(), outcome)


def after_experiment_control(
    context: Experiment, name: str = lease.DEFAULT_NAME, namespace: str = lease.DEFAULT_NAMESPACE,
    state: Journal = None, **arguments: Any
) -> None:
    """Stop renewing the lock and release it if it is still this run's; a run the lock refused
    says so in its journal (extension ``chaosali-lock``)."""
    refused = memory.section(_REFUSED).pop("refused", None)
    if refused is not None and state is not None:
        state["extensions"] = [*(state.get("extensions") or []), {"name": extensions.LOCK, "refused": refused}]
    taken = memory.section(_MEMORY).pop(lease.Lock(str(namespace), str(name)), None)
    if taken:  # none when before_experiment_control did not take it (held elsewhere, or never ran)
        taken.give_back()


def cleanup_control() -> None:
    """Last resort when the run ended without its after-control: release every lock still held."""
    taken = memory.section(_MEMORY)
    while taken:
        taken.popitem()[1].give_back()
