"""What a random drill would inject, drawn and capped exactly as ``inject_random_faults`` draws and
caps it, with nothing injected: ``chaosali plan`` shows it before the run."""

from __future__ import annotations

import inspect

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosali.chaos._plan import plan
from chaosali.chaos._radius import Caps
from chaosali.chaos.actions import inject_random_faults
from chaosali.core.errors import InvalidArgument

__all__ = ["preview_random_faults"]


def preview_random_faults(arguments: dict, configuration: Configuration, secrets: Secrets) -> dict:
    """The drill ``inject_random_faults(**arguments)`` would inject: the seed, the entries drawn
    with their hosts, the blast radius, and ``refused`` (why a cap refuses it) or None."""
    try:
        bound = inspect.signature(inject_random_faults).bind(**arguments)
    except TypeError as error:
        raise InvalidArgument(f"inject_random_faults: {error}; see `chaos discover` for its arguments") from None
    bound.apply_defaults()
    given = bound.arguments
    caps = Caps.of(given["max_hosts"], given["max_node_percent"], given["allow_all_masters"])
    drill = plan(given["pool"], given["count"], given["seed"], given["mode"], given["window"], configuration, secrets)
    try:
        radius, refused = caps.enforce(drill.steps, configuration, secrets), None
    except ActivityFailed as error:
        radius, refused = None, str(error)
    return {
        "seed": drill.seed,
        "seeded": given["seed"] is not None,
        "why": drill.why,
        "mode": drill.mode,
        "steps": [{**step.record(), "hosts": [{"name": h.name, "address": h.address} for h in step.hosts]}
                  for step in drill.steps],
        "blast_radius": radius,
        "refused": refused,
    }
