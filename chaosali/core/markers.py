"""The names by which chaosali recognises what it left behind, on hosts and in clusters.

Cleanup, restores and removals find their work by these names alone, so each is written once.
"""

__all__ = [
    "FAULT_ID_PREFIX",
    "MARKER_ROOT",
    "FIELD_MANAGER",
    "MANAGED_BY_LABEL",
    "MANAGED_BY",
    "CREATED_BY_ANNOTATION",
    "CORDONED_BY_ANNOTATION",
]

# A host fault's id (``chaosali-1a2b3c4d``) names its marker directory, chains and comments.
FAULT_ID_PREFIX = "chaosali-"
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
