"""chaosali: Kubernetes and host-level failure drills for Chaos Toolkit."""

import logging
from importlib.metadata import PackageNotFoundError, version

from chaoslib.discovery.discover import (
    discover_actions,
    discover_probes,
    initialize_discovery_result,
)
from chaoslib.types import DiscoveredActivities, Discovery

__all__ = ["discover", "CONTROL_MODULES", "__version__"]

try:
    __version__ = version("chaostoolkit-ali")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "unknown"

logger = logging.getLogger("chaostoolkit")

# Every module whose public functions experiments may call, by kind.
_ACTION_MODULES = [
    "chaosali.host.actions", "chaosali.cluster.actions", "chaosali.lock.actions", "chaosali.kubemonkey.actions",
    "chaosali.chaos.actions",
]
_PROBE_MODULES = [
    "chaosali.host.probes", "chaosali.cluster.probes", "chaosali.service.probes", "chaosali.lock.probes",
    "chaosali.kubemonkey.probes", "chaosali.impact.probes",
]
# Controls are not part of Chaos Toolkit's discovery; the reference lists them from here.
CONTROL_MODULES = ["chaosali.cluster.controls", "chaosali.lock.controls", "chaosali.impact.controls"]


def discover(discover_system: bool = True) -> Discovery:
    """Describe chaosali's actions and probes for `chaos discover`."""
    logger.info("Discovering capabilities from chaostoolkit-ali")
    discovery = initialize_discovery_result("chaostoolkit-ali", __version__, "chaosali")
    discovery["activities"].extend(_load_exported_activities())
    return discovery


def _load_exported_activities() -> list[DiscoveredActivities]:
    activities: list[DiscoveredActivities] = []
    for module in _ACTION_MODULES:
        activities.extend(discover_actions(module))
    for module in _PROBE_MODULES:
        activities.extend(discover_probes(module))
    return activities
