"""What a random drill would inject, drawn and capped exactly as ``inject_random_faults`` draws and
caps it, with nothing injected: ``chaosali plan`` shows it before the run."""

from __future__ import annotations

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosali.chaos._plan import plan
from chaosali.chaos._radius import Caps

__all__ = ["preview_random_faults"]


def preview_random_faults(
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
    """The drill ``inject_random_faults`` would inject with these arguments: the seed, the entries
    drawn with their hosts, the blast radius, and ``refused`` (why a cap refuses it) or None."""
    caps = Caps.of(max_hosts, max_node_percent, allow_all_masters)
    drill = plan(pool, count, seed, mode, window, configuration, secrets)
    try:
        radius, refused = caps.enforce(drill.steps, configuration, secrets), None
    except ActivityFailed as error:
        radius, refused = None, str(error)
    return {
        "seed": drill.seed,
        "seeded": seed is not None,
        "why": drill.why,
        "mode": drill.mode,
        "steps": [{**step.record(), "hosts": [{"name": h.name, "address": h.address} for h in step.hosts]}
                  for step in drill.steps],
        "blast_radius": radius,
        "refused": refused,
    }
