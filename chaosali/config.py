"""Reading the values experiments give (JSON, or the text a substitution makes of them), in one
way for every domain: true/false and bounded numbers."""

from typing import Any

from chaoslib.types import Configuration

from chaosali.errors import InvalidArgument

__all__ = ["flag", "boolean", "number"]


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


def number(value: Any, name: str, low: float, high: float | None = None, kind: type = float) -> Any:
    """A number (``kind`` int: a whole one) from ``low`` to ``high`` (no upper bound if None)."""
    try:
        converted = kind(value)
    except (TypeError, ValueError, OverflowError):
        converted = None
    if (
        isinstance(value, bool)
        or converted is None
        or (kind is int and converted != float(value))
        or converted < low
        or (high is not None and converted > high)
    ):
        what = "a whole number" if kind is int else "a number"
        span = f"from {low:g} to {high:g}" if high is not None else f"{low:g} or more"
        raise InvalidArgument(f"{name} {value!r} must be {what} {span}")
    return converted
