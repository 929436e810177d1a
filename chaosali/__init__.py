"""chaosali: Kubernetes and host-level failure drills for Chaos Toolkit."""

import json
import logging
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from chaoslib.discovery.discover import initialize_discovery_result
from chaoslib.types import Discovery

__all__ = ["discover", "ACTIVITIES", "__version__"]

try:
    __version__ = version("chaostoolkit-ali")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "unknown"

logger = logging.getLogger("chaostoolkit")

# What chaoslib's discovery finds in the activity modules, written by `python -m chaosali.docs` (a test
# fails when it is out of date). Reading it takes milliseconds; importing the modules would load
# kubernetes, paramiko and every domain, most of a second on each `chaos discover`.
ACTIVITIES = Path(__file__).with_name("activities.json")


def discover(discover_system: bool = True) -> Discovery:
    """Describe chaosali's actions and probes for `chaos discover`."""
    logger.info("Discovering capabilities from chaostoolkit-ali")
    discovery = initialize_discovery_result("chaostoolkit-ali", __version__, "chaosali")
    discovery["activities"].extend(json.loads(ACTIVITIES.read_text()))
    return discovery
