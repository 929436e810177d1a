"""Kubernetes Secret objects with their values hidden: what a `get` probe returns and what a
report shows (a journal may hold a Secret that another tool read)."""

from __future__ import annotations

from typing import Any

__all__ = ["MASK", "is_secret_object", "masked_secret"]

MASK = "***"
_VALUES = ("data", "stringData")
# kubectl keeps the whole applied manifest, values included, in this annotation
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def is_secret_object(node: Any) -> bool:
    """A Secret, or an item of a Secret list: the API leaves ``kind`` out of list items, but
    every Secret has a ``type`` ("Opaque", "kubernetes.io/dockerconfigjson"...)."""
    if not isinstance(node, dict) or not any(isinstance(node.get(name), dict) for name in _VALUES):
        return False
    return node.get("kind") == "Secret" or ("kind" not in node and isinstance(node.get("type"), str)
                                            and isinstance(node.get("metadata"), dict))


def masked_secret(secret: dict[str, Any]) -> dict[str, Any]:
    """A copy of a Secret whose ``data`` / ``stringData`` are masked whole (their keys too:
    ``.dockerconfigjson`` says what kind of credential it is, nothing more is needed)."""
    masked = {name: MASK if name in _VALUES and value else value for name, value in secret.items()}
    metadata = secret.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if isinstance(metadata, dict) and isinstance(annotations, dict) and _LAST_APPLIED in annotations:
        masked["metadata"] = {**metadata, "annotations": {**annotations, _LAST_APPLIED: MASK}}
    return masked
