"""The names by which chaosali recognises what it left behind, on hosts and in clusters.

Cleanup, restores and removals find their work by these names alone, so each is written once.
"""

import re
import uuid
from typing import Any

from chaosali.core.errors import InvalidArgument

__all__ = [
    "new_fault_id",
    "check_fault_ids",
    "FAULT_ID_PREFIX",
    "MARKER_ROOT",
    "FIELD_MANAGER",
    "MANAGED_BY_LABEL",
    "MANAGED_BY",
    "CREATED_BY_ANNOTATION",
    "CORDONED_BY_ANNOTATION",
    "RUN_ANNOTATION",
]

# A host fault's id (``chaosali-1a2b3c4d``) names its marker directory, chains and comments.
FAULT_ID_PREFIX = "chaosali-"
_FAULT_ID = re.compile(rf"{FAULT_ID_PREFIX}[0-9a-f]{{8}}", re.ASCII)
# Where a host keeps its faults' markers: a tmpfs on real hosts, so a reboot clears them together
# with the runtime state they describe.
MARKER_ROOT = "/run/chaosali"
# Kubernetes: the field manager of every write, the label of every object chaosali created, and
# the annotation that says which run created it.
FIELD_MANAGER = "chaosali"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "chaosali"
CREATED_BY_ANNOTATION = "chaosali/created-by"
# on a node a drain cordoned: its uncordon (the rollback) makes schedulable only what a drain cordoned
CORDONED_BY_ANNOTATION = "chaosali/cordoned-by"
# on every object a fault of a run changed: the run whose ledger holds its record
RUN_ANNOTATION = "chaosali/run"


def new_fault_id() -> str:
    """A new fault's id: the prefix and 8 random hex digits."""
    return FAULT_ID_PREFIX + uuid.uuid4().hex[:8]


def check_fault_ids(fault_id: Any) -> list[str] | None:
    """One fault id or a list of them as a list (None: every fault); anything else is refused."""
    if fault_id is None:
        return None
    ids = fault_id if isinstance(fault_id, list) else [fault_id]
    for one in ids:
        if not isinstance(one, str) or not _FAULT_ID.fullmatch(one):
            raise InvalidArgument(f"fault id {one!r} is not a chaosali fault id (like 'chaosali-1a2b3c4d')")
    return ids
