"""Secrets out of a journal before any report shows it.

A journal is the experiment as written plus what every activity returned or raised, and a
secret can surface anywhere: an inline password in the ``secrets`` block, a token echoed in an
exception, a key under ``"password"`` in some output. ``redact`` returns a copy where

- every value of the experiment's ``secrets`` block (inline values; for ``{"type": "env"}``
  secrets, the variable's value if it is set where the report runs) is replaced by ``***``,
  as a whole value and inside any string (keys included);
- any value under a key named like password, passphrase, token, key or secret is ``***``.

Reports compute their figures from the redacted copy only, so no renderer can leak.
"""

from __future__ import annotations

import os
import re
from typing import Any

__all__ = ["MASK", "redact"]

MASK = "***"
# Key names are compared word by word ("db_password", "apiKey", "private-key"), so that
# "kube_monkey_namespace" or "tolerance" are not taken for secrets.
_SECRET_WORDS = frozenset({"password", "passwd", "passphrase", "token", "secret", "key", "apikey"})
# Values shorter than this are masked as whole values only: masking "1" or "a" inside every
# string would hide the whole report, not the secret.
_MIN_SUBSTRING = 3


def redact(journal: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``journal`` with every secret replaced by ``***`` (see the module doc)."""
    values = _block_values((journal.get("experiment") or {}).get("secrets")) | _named_values(journal)
    inside = sorted((v for v in values if len(v) >= _MIN_SUBSTRING), key=len, reverse=True)
    # longest first, so a secret that contains another is masked whole
    pattern = re.compile("|".join(map(re.escape, inside))) if inside else None
    return _mask(journal, values, pattern)


def _words(name: str) -> set[str]:
    return {word.lower() for word in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)}


def _secret_name(name: Any) -> bool:
    return isinstance(name, str) and bool(_words(name) & _SECRET_WORDS)


def _scalars(value: Any) -> set[str]:
    """Every leaf of ``value`` as text (booleans and nulls are no secrets)."""
    if isinstance(value, dict):
        return set().union(*map(_scalars, value.values()))
    if isinstance(value, list):
        return set().union(*map(_scalars, value))
    if isinstance(value, bool) or value is None or value == "":
        return set()
    return {str(value)}


def _block_values(block: Any) -> set[str]:
    """The values of an experiment's ``secrets`` block: ``{scope: {name: value}}``."""
    values: set[str] = set()
    for scope in (block or {}).values() if isinstance(block, dict) else ():
        for value in (scope or {}).values() if isinstance(scope, dict) else ():
            if isinstance(value, dict) and value.get("type") == "env":
                # the journal holds the variable's name; its value may reach an exception text
                values |= _scalars(os.environ.get(str(value.get("key")), ""))
            elif isinstance(value, dict) and "type" in value:
                continue  # a reference (vault...): the journal holds no value
            else:
                values |= _scalars(value)
    return values


def _named_values(node: Any) -> set[str]:
    """Values under secret-named keys anywhere, to be masked inside other strings as well.

    A bare ``"key"`` is left out here (masked where it stands only): Kubernetes objects use it
    for label and taint keys ("app"), which would otherwise be masked in every string.
    """
    values: set[str] = set()
    if isinstance(node, dict):
        for name, value in node.items():
            if _secret_name(name) and not (isinstance(name, str) and name.lower() == "key"):
                values |= _scalars(value)
            else:
                values |= _named_values(value)
    elif isinstance(node, list):
        for value in node:
            values |= _named_values(value)
    return values


def _mask(node: Any, values: set[str], pattern: re.Pattern[str] | None) -> Any:
    if isinstance(node, dict):
        return {_mask(name, values, pattern): _mask_under(name, value, values, pattern) for name, value in node.items()}
    if isinstance(node, list):
        return [_mask(value, values, pattern) for value in node]
    if isinstance(node, str):
        if node in values:
            return MASK
        return pattern.sub(MASK, node) if pattern else node
    if isinstance(node, (int, float)) and not isinstance(node, bool) and str(node) in values:
        return MASK
    return node


def _mask_under(name: Any, value: Any, values: set[str], pattern: re.Pattern[str] | None) -> Any:
    if _secret_name(name) and value not in (None, "", [], {}):
        return MASK  # whatever its shape: a nested secret is still a secret
    return _mask(value, values, pattern)
