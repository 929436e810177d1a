"""Reading Chaos Toolkit configuration values that every domain shares."""

from chaoslib.types import Configuration

from chaosali.errors import InvalidArgument

__all__ = ["flag"]


def flag(configuration: Configuration, key: str) -> bool | None:
    """A true/false configuration value (JSON booleans or the strings experiments substitute), or None."""
    value = (configuration or {}).get(key)
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise InvalidArgument(f"configuration {key} must be true or false, not {value!r}")
