"""YAML text read with errors that tell where, never what: YAML's own message quotes the
offending line, which may hold a token or a key, and the message reaches the journal."""

from __future__ import annotations

from typing import IO, Any

import yaml

from chaosali.core.errors import InvalidArgument

__all__ = ["load"]


def load(text: str | bytes | IO[str], refusal: str, many: bool = False,
         error: type[Exception] = InvalidArgument) -> Any:
    """The YAML document (with ``many``, the list of them); invalid YAML (or YAML nested too deep
    to parse) raises ``error`` with ``refusal`` and the position of the fault only."""
    try:
        return list(yaml.safe_load_all(text)) if many else yaml.safe_load(text)
    except yaml.YAMLError as invalid:
        mark = getattr(invalid, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{refusal}{where}") from None
    except RecursionError:  # the parser's own recursion, on a document nested thousands deep
        raise error(f"{refusal}: nested too deep") from None
