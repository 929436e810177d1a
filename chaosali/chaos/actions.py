"""Random chaos: host faults drawn from a pool with a seed, under a cap on their blast radius.

A drill draws ``count`` entries from a ``pool`` of chaosali host faults, resolves their targets,
refuses to start if the faults together would exceed its caps, then injects them together or
staggered over a window, through the host actions themselves. The same seed, pool and cluster
replay the same drill. What a drill injected is kept in the run's memory, so that its rollback
restores exactly that."""

import dataclasses
import datetime as dt
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

import urllib3
from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosali.chaos._plan import Step, check_pool, plan
from chaosali.chaos._radius import Caps
from chaosali.core import ledger, memory
from chaosali.host import actions as host_actions
from chaosali.host import faults
from chaosali.host.catalogue import fault_kind
from chaosali.host.ssh import Host, SSHSettings
from chaosali.host.targets import resolve_targets

__all__ = ["inject_random_faults", "restore_random_faults"]

logger = logging.getLogger("chaostoolkit")


@dataclasses.dataclass(frozen=True)
class _Injected:
    fault_id: str
    kind: str
    hosts: tuple[Host, ...]

    def __str__(self) -> str:
        return f"{self.fault_id} ({self.kind} on {', '.join(map(str, self.hosts))})"


_lock = threading.Lock()  # faults started together are recorded from several threads


def _injected() -> dict[str, list[_Injected]]:
    """The faults drills injected in this run, by pool (and cluster), for their rollback:
    restoring exactly these ids leaves alone the faults other activities put on the same hosts."""
    return memory.section("random faults injected")


@ledger.fault_action("random faults")
def inject_random_faults(
    pool: list,
    count: int = 1,
    seed: int = None,
    mode: str = "together",
    window: float = 0,
    max_hosts: int = None,
    max_node_percent: float = None,
    allow_all_masters: bool = False,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Inject `count` host faults drawn at random from `pool`, under caps on
    their blast radius. A pool entry is {"action": ..., "arguments": {...}}:
    a host action of chaosali.host.actions that leaves a fault which heals by
    itself (cut_network, stress_cpu...), with its arguments; `targets` may be
    hosts or a cluster query. The same `seed` (a whole number, or any text)
    on the same pool and cluster draws the same drill (without a seed one is
    drawn, and recorded).

    The chosen entries' targets are resolved and the caps checked before
    anything is injected: at most `max_hosts` hosts, at most
    `max_node_percent` % of the cluster's nodes, never every master at once
    unless `allow_all_masters` (checked when the cluster tells its masters;
    otherwise a warning is logged). The faults start "together" (`mode`:
    each takes effect at one instant on all its hosts, see start_together,
    and the output's `skew_seconds` says how far apart they all did), or
    "staggered" evenly over `window` seconds. If one fails, the faults this
    call injected are restored and the activity fails. The output records
    the seed, the entries drawn, their hosts and why, fault ids and start
    times. Roll back with restore_random_faults and the same pool.
    """
    key = _key(pool, configuration)
    with _lock:
        # from here on the rollback knows this run ran the drill, even if it injects nothing
        _injected().setdefault(key, [])
    caps = Caps.of(max_hosts, max_node_percent, allow_all_masters)
    drill = plan(pool, count, seed, mode, window, configuration, secrets)
    radius = caps.enforce(drill.steps, configuration, secrets)
    logger.info("chaosali: random faults, %s", drill.why)
    started = dt.datetime.now(dt.timezone.utc)
    outputs = _inject(drill.steps, key, configuration, secrets, together=drill.mode == "together")
    instants = [entry["effective_at"] for output in outputs for entry in output["hosts"] if "effective_at" in entry]
    return {
        "seed": drill.seed,
        "why": drill.why,
        "mode": drill.mode,
        "window": drill.window,
        "started_at": started.isoformat(),
        "blast_radius": radius,
        "faults": [{**step.record(), **output} for step, output in zip(drill.steps, outputs)],
        # together: how far apart the faults took effect, over every host of every fault
        **({"skew_seconds": round(_epoch(max(instants)) - _epoch(min(instants)), 6)} if instants else {}),
    }


def restore_random_faults(
    pool: list,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """
    Restore at once the faults inject_random_faults injected from `pool` in
    this run, and only those. Called in a run that recorded nothing of the
    pool (the drill ran in another one), it restores every chaosali fault of the kinds the pool can
    inject, on every host the pool's targets can choose. Safe to call twice,
    or when nothing was injected. Returns the fault ids restored per host.
    """
    check_pool(pool)
    key = _key(pool, configuration)
    settings = SSHSettings.from_chaos(configuration, secrets)
    with _lock:
        recorded = list(_injected()[key]) if key in _injected() else None
    if recorded is None:
        return _restore_pool_kinds(pool, settings, configuration, secrets)
    if not recorded:
        logger.info("chaosali: the random faults of this pool left nothing to restore in this run")
    return {**_restore_and_forget(recorded, key, settings), "scope": "the faults this run injected"}


def _key(pool: list, configuration: Configuration) -> str:
    # the same pool may be aimed at another cluster by another kubeconfig
    return json.dumps([pool, (configuration or {}).get("kubeconfig_path")], sort_keys=True, default=str)


def _epoch(instant: str) -> float:
    return dt.datetime.fromisoformat(instant).timestamp()


def _inject(
    steps: list[Step], key: str, configuration: Configuration, secrets: Secrets, together: bool = False
) -> list[dict]:
    """Start each step at its offset through its host action; ``together``, each to take effect at
    one instant on all its hosts (start_together). All or nothing: once one fails, the steps still
    waiting never start and the ones that started are restored."""
    injected: list[_Injected] = []  # by this call, unlike _injected()[key]
    abort = threading.Event()
    start = time.monotonic()

    def run(step: Step) -> dict | None:
        if abort.wait(max(0.0, start + step.offset - time.monotonic())):
            return None
        # the hosts resolved for the caps, as literal targets: the action must not draw others
        arguments = {**step.arguments, "targets": [_target(host) for host in step.hosts],
                     **({"start_together": True} if together else {})}
        try:
            output = getattr(host_actions, step.action)(**arguments, configuration=configuration, secrets=secrets)
        except BaseException:
            abort.set()
            raise
        with _lock:
            fault = _Injected(output["fault_id"], output["kind"], tuple(step.hosts))
            injected.append(fault)
            _injected()[key].append(fault)
        return output

    with ThreadPoolExecutor(max_workers=len(steps), thread_name_prefix="chaosali-chaos") as executor:
        futures = [executor.submit(run, step) for step in steps]
        try:
            wait(futures)
        except BaseException:  # interrupted: start nothing more; what is in place stays recorded
            abort.set()
            raise
    failures = [f"{step.action} (pool entry {step.entry}): {future.exception()}"
                for step, future in zip(steps, futures) if future.exception()]
    if failures:
        undone = _undo(injected, key, configuration, secrets)
        raise ActivityFailed(f"random faults failed: {'; '.join(failures)}; {undone}")
    return [output for future in futures if (output := future.result()) is not None]  # none aborted: none None


def _undo(injected: list[_Injected], key: str, configuration: Configuration, secrets: Secrets) -> str:
    """Restore what a failed drill had injected; say what became of it."""
    if not injected:
        return "nothing had been injected"
    what = ", ".join(map(str, injected))
    try:
        _restore_and_forget(injected, key, SSHSettings.from_chaos(configuration, secrets))
    except ActivityFailed as error:
        return f"the faults it had injected ({what}) could not all be restored: {error}"
    return f"the faults it had injected were restored: {what}"


def _restore_and_forget(injected: list[_Injected], key: str, settings: SSHSettings) -> dict:
    """Restore exactly these faults and forget them. Fault ids are unique, so every id is sent to
    every host of the lot in one parallel round: a host restores only the ids it holds."""
    if not injected:
        return {"restored": {}}
    hosts = list(dict.fromkeys(host for fault in injected for host in fault.hosts))
    output = faults.restore(hosts, settings, [fault.fault_id for fault in injected])
    with _lock:
        _injected()[key] = [fault for fault in _injected().get(key, []) if fault not in injected]
    return output


def _restore_pool_kinds(
    pool: list, settings: SSHSettings, configuration: Configuration, secrets: Secrets
) -> dict:
    """Restore every fault of the kinds the pool can inject on every host it can choose: what a
    rollback can do when the drill ran in another run and left no record in this one."""
    kinds: dict[str, dict[Host, None]] = {}  # kind -> hosts, in order, without repeats
    problems = []
    for index, entry in enumerate(pool):
        try:
            hosts, _ = resolve_targets(entry["arguments"]["targets"], configuration, secrets, sample=False)
        except (ActivityFailed, urllib3.exceptions.HTTPError) as error:
            problems.append(f"the hosts of pool entry {index} are unknown ({error})")
            continue
        kind = fault_kind(entry["action"])
        assert kind is not None, "the pool was checked: every entry is a lasting fault"
        kinds.setdefault(kind.kind, {}).update(dict.fromkeys(hosts))
    logger.info(
        "chaosali: no random faults of this pool were recorded in this run (did the drill run in "
        "another one?): restoring every chaosali fault of kind %s on the pool's hosts",
        ", ".join(kinds) or "(none found)",
    )
    restored: dict[str, list[str]] = {}
    for kind_name, on_hosts in kinds.items():
        try:
            for host, ids in faults.restore(list(on_hosts), settings, None, kind_name)["restored"].items():
                restored.setdefault(host, []).extend(ids)
        except ActivityFailed as error:
            problems.append(str(error))
    if problems:
        raise ActivityFailed(
            f"restored {restored or 'nothing'}, but {'; '.join(problems)}; faults heal by themselves at the "
            "end of their duration, or run `chaosali cleanup` on those hosts"
        )
    return {"restored": restored, "scope": f"every chaosali fault of kind {', '.join(kinds)} on the pool's hosts"}


def _target(host: Host) -> dict:
    return {name: value for name, value in dataclasses.asdict(host).items() if value is not None}
