"""Reading true/false values that every domain shares: from configuration or from arguments."""

from typing import Any

from chaoslib.types import Configuration

from chaosali.errors import InvalidArgument

__all__ = ["flag", "boolean"]


def boolean(value: Any, name: str) -> bool:
    """True or false, from a JSON boolean or the text an experiment's substitution gives."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise InvalidArgument(f"{name} must be true or false, not {value!r}")


def flag(configuration: Configuration, key: str) -> bool | None:
    """A true/false configuration value, or None when it is not set."""
    value = (configuration or {}).get(key)
    return None if value is None else boolean(value, f"configuration {key}")
