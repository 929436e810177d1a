"""The manifests of a scheduled drill (``chaosali schedule``)."""

from __future__ import annotations

import re
from pathlib import Path

from chaosali.core.errors import InvalidArgument

__all__ = ["drill_name"]

PREFIX = "chaosali-"
MAX_NAME = 52  # a CronJob's name: its Jobs add 11 characters, within the 63 of a label value


def drill_name(experiment: str) -> str:
    """The name of everything scheduled for the experiment file: ``chaosali-<its stem>``."""
    stem = re.sub(r"[^a-z0-9-]+", "-", Path(experiment).stem.lower()).strip("-")
    name = (PREFIX + stem)[:MAX_NAME].rstrip("-")
    if name == PREFIX.rstrip("-"):
        raise InvalidArgument(f"experiment {experiment!r}: its file name gives no name to schedule it under: "
                              "rename it with letters or digits, e.g. master-netcut.json")
    return name
