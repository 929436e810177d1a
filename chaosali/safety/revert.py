"""The verified revert: after the rollbacks (and after a halt), prove that the run left nothing.

Every domain that injected something in this run checks what of it is left (``chaosali.core.undo``):
the host faults on each host they touched, in one SSH session per host, all hosts at once (markers,
iptables and nftables rules, tc qdiscs, load, paused and fill processes and files, the kubelet
configuration's backup, pending dead-man timers); a drain, its nodes' cordons. A place that could
not be checked counts as left: the revert is not proven there.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chaosali.core import undo

__all__ = ["verify", "NOTHING"]

logger = logging.getLogger("chaostoolkit")

NOTHING = "nothing"


def verify() -> dict[str, Any]:
    """What the run left, per place checked: ``left_behind`` is "nothing" or the places with
    what is left there and the command that removes it; ``checked``: every place looked at."""
    began = time.monotonic()
    checked, unchecked = undo.leftovers()
    checked += [{"where": name, "left": [{"what": "unchecked", "detail": f"the check could not run: {reason}"}],
                 "cleanup": None} for name, reason in unchecked.items()]
    left = [place for place in checked if place["left"]]
    seconds = round(time.monotonic() - began, 3)
    if left:
        logger.warning("chaosali: the revert left something behind: %s; remove it with: %s",
                       "; ".join(f"{place['where']}: " + ", ".join(f"{item['what']} {item['detail']}" for item in place["left"])
                                 for place in left),
                       "; ".join(place["cleanup"] for place in left if place["cleanup"]))
    else:
        logger.info("chaosali: verified revert: left behind: nothing (%d place(s) checked in %.2f s)",
                    len(checked), seconds)
    return {"left_behind": left or NOTHING, "checked": [place["where"] for place in checked], "seconds": seconds}
