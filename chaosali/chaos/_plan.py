"""How a random drill is planned: the pool checked, entries drawn with a seed, targets resolved.

Everything random about a drill comes from one ``random.Random(seed)`` and the seeds derived from
it, so that the same seed, pool and cluster plan the same drill: the same entries, in the same
order, on the same hosts, at the same offsets.
"""

from __future__ import annotations

import inspect
import logging
import random
import re
from dataclasses import dataclass
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaosali.core.args import MAX_DURATION, choice, number, whole
from chaosali.core.errors import InvalidArgument
from chaosali.host import actions as host_actions
from chaosali.host.catalogue import CATALOGUE, fault_kind
from chaosali.host.ssh import Host
from chaosali.host.targets import resolve_targets

__all__ = ["MODES", "Drill", "Step", "check_pool", "plan"]

logger = logging.getLogger("chaostoolkit")

MODES = ("together", "staggered")
_SAMPLING_KEYS = ("count", "percent")
_INTEGER = re.compile(r"-?\d+", re.ASCII)
_POOL_EXAMPLE = (
    "{'action': 'stress_cpu', 'arguments': {'targets': {'nodes': 'node-role.kubernetes.io/worker', "
    "'count': 1}, 'duration': 30}}"
)


@dataclass
class Step:
    """One chosen fault: its pool entry, the hosts its targets resolved to, when it starts."""

    entry: int
    action: str
    arguments: dict
    hosts: list[Host]
    selection: dict | None  # how a cluster query chose the hosts; None for literal hosts
    offset: float  # seconds after the drill's start

    def record(self) -> dict:
        """What the journal tells about the choice, before the fault's own output."""
        return {
            "entry": self.entry,
            "action": self.action,
            "arguments": self.arguments,
            "offset": self.offset,
            **({"targets": self.selection} if self.selection else {}),
        }


@dataclass
class Drill:
    seed: int | str
    mode: str
    window: float
    pool_size: int
    steps: list[Step]

    @property
    def why(self) -> str:
        chosen = ", ".join(f"{s.entry} ({s.action})" for s in self.steps)
        return f"{len(self.steps)} of {self.pool_size} pool entries drawn with seed {self.seed!r}: {chosen}"


def check_pool(pool: Any) -> list[dict]:
    """The pool, each entry checked against its host action's signature, before any host is touched."""
    if not isinstance(pool, list) or not pool:
        raise InvalidArgument(f"pool must be a non-empty list of faults such as {_POOL_EXAMPLE}")
    for index, entry in enumerate(pool):
        where = f"pool entry {index}"
        if not isinstance(entry, dict) or set(entry) - {"action", "arguments"} or not isinstance(
            entry.get("arguments", {}), dict
        ):
            raise InvalidArgument(
                f"{where} {entry!r} is not a fault: give {{'action', 'arguments'}}, e.g. {_POOL_EXAMPLE}"
            )
        action, arguments = entry.get("action"), entry.get("arguments") or {}
        if fault_kind(action) is None:
            raise InvalidArgument(
                f"{where}: {action!r} is not a host fault a drill can pick; use one of "
                + ", ".join(known.action for known in CATALOGUE)
            )
        if {"configuration", "secrets"} & set(arguments):
            raise InvalidArgument(f"{where}: leave configuration and secrets out, the drill passes its own")
        # a wrong argument name must fail now, not after other faults are already in place
        try:
            inspect.signature(getattr(host_actions, str(action))).bind(**arguments)
        except TypeError as error:
            raise InvalidArgument(f"{where} ({action}): {error}; see `chaos discover` for its arguments") from None
    return pool


def plan(
    pool: list,
    count: Any,
    seed: Any,
    mode: str,
    window: Any,
    configuration: Configuration,
    secrets: Secrets,
) -> Drill:
    """Draw ``count`` entries of the pool with ``seed``, resolve their targets, time their starts."""
    pool = check_pool(pool)
    count = whole(count, "count", 1, len(pool))
    mode = choice(mode, "mode", MODES)
    window = number(window, "window", 0, MAX_DURATION)
    if mode == "staggered" and window == 0:
        raise InvalidArgument("mode 'staggered' spreads the faults over window seconds: give a window above 0")
    seed = _seed(seed)

    rng = random.Random(seed)
    drawn = rng.sample(range(len(pool)), count)
    # evenly over the window: the first at once, the last `window` seconds later
    gap = window / (count - 1) if mode == "staggered" and count > 1 else 0.0
    steps = []
    for order, index in enumerate(drawn):
        arguments = pool[index].get("arguments") or {}
        hosts, selection = resolve_targets(_seeded(arguments["targets"], f"{seed}/{index}"), configuration, secrets)
        steps.append(Step(index, pool[index]["action"], arguments, hosts, selection, round(order * gap, 3)))
    return Drill(seed, mode, window, len(pool), steps)


def _seed(seed: Any) -> int | str:
    if seed is None:
        seed = random.SystemRandom().randrange(1_000_000)
        logger.info("chaosali: no seed given, drew seed %d: give it as the seed to replay this drill", seed)
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, str)):
        raise InvalidArgument(f"seed {seed!r} must be a whole number or a string")
    # `chaos run --var seed=7` substitutes the string "7": it must replay the drill of seed 7
    return int(seed) if isinstance(seed, str) and _INTEGER.fullmatch(seed.strip()) else seed


def _seeded(targets: Any, seed: str) -> Any:
    """A sampling query without a seed of its own samples with one derived from the drill's seed;
    otherwise the same drill seed would choose different hosts at each run."""
    if isinstance(targets, dict) and any(k in targets for k in _SAMPLING_KEYS) and "seed" not in targets:
        return {**targets, "seed": seed}
    return targets


