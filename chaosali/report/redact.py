"""Secrets out of a journal before any report shows it.

A journal is the experiment as written plus what every activity returned or raised, and a
secret can surface anywhere: an inline password in the ``secrets`` block, a token echoed in an
exception, a Kubernetes Secret read by a probe. ``redact`` returns a copy where

- the ``data`` / ``stringData`` of every Kubernetes Secret object (and kubectl's
  last-applied annotation on it, which repeats them) is ``***``;
- any value under a credential-like key name (authorization, credential(s), token, password,
  passphrase, secret, cookie, bearer, private key, kubeconfig, username, api key...) is ``***``,
  whatever its shape; names of paths, files and references (``kubeconfig_path``,
  ``secret_name``) are not credentials;
- every known secret value is ``***`` as a whole value and inside any string (keys included),
  also in its encoded forms (URL-encoded, JSON and Python escapes, base64). Known values are the
  inline values of the experiment's ``secrets`` block; the values of ``{"type": "env"}``
  secrets, from the journal itself where chaoslib copied them (a dynamic configuration entry's
  ``provider.secrets``: every resolved secret, env ones included), else from the variable if it
  is set where the report runs; the values found under credential-like names and in Secret
  objects (decoded from base64 too);
- in free text, what follows ``Authorization:``, ``Cookie:``, ``Bearer``/``Basic`` and
  ``password=``-like assignments is ``***``, so that a value no one told the report about is
  still hidden where it is introduced as a credential.

What cannot be masked: a value the journal holds nowhere as a secret (an env secret whose
variable is unset where the report runs, echoed by a process in a form none of the above
catches). Vault and ``--var-file`` secrets never reach the journal's experiment copy.

Reports compute their figures from the redacted copy only, so no renderer can leak.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from typing import Any
from urllib.parse import quote, quote_plus

from chaosali.core.secrets import MASK, is_secret_object, masked_secret

__all__ = ["MASK", "redact"]

# Key names are compared word by word ("db_password", "apiKey", "private-key"), so that
# "kube_monkey_namespace" or "tolerance" are not taken for secrets.
_SECRET_WORDS = frozenset({
    "password", "passwords", "passwd", "passphrase", "token", "tokens", "secret", "key", "apikey", "authorization",
    "credential", "credentials", "cookie", "cookies", "bearer", "kubeconfig", "username",
})
# ...unless the name says it is where a secret is, or which one: not the secret itself
_POINTER_WORDS = frozenset({"path", "file", "name", "names", "ref", "namespace", "url", "type"})
# Values shorter than this are masked as whole values only: masking "1" or "a" inside every
# string would hide the whole report, not the secret.
_MIN_SUBSTRING = 3
# Credentials introduced in free text (an exception, a process's stderr): the value that follows
_IN_TEXT = re.compile(
    r"(?i)(?P<head>\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*|\b(?:set-)?cookie\b[\"']?\s*[:=]\s*)[^\r\n\"']+"
    r"|(?P<scheme>\b(?-i:Bearer|bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}"  # as in a header, not "basic checks"
    r"|(?P<name>\b(?:password|passwd|passphrase|token|secret|credentials?|username|api[-_]?key|private[-_]?key)\b"
    r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}]+"
)


def redact(journal: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``journal`` with every secret replaced by ``***`` (see the module doc)."""
    values = _found_values(journal)
    forms = sorted({form for value in values if len(value) >= _MIN_SUBSTRING for form in _encoded(value)},
                   key=len, reverse=True)
    # longest first, so a secret that contains another is masked whole
    pattern = re.compile("|".join(map(re.escape, forms))) if forms else None
    return _mask(journal, values, pattern)


def _words(name: str) -> set[str]:
    return {word.lower() for word in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)}


def _secret_name(name: Any) -> bool:
    if not isinstance(name, str):
        return False
    words = _words(name)
    return bool(words & _SECRET_WORDS) and not words & _POINTER_WORDS


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
    """The values of a ``secrets`` block, walked as chaoslib loads it: ``{"type": "env"}`` is the
    variable's value (if set here), other references (vault) hold none, other objects nest."""
    values: set[str] = set()
    for value in block.values() if isinstance(block, dict) else ():
        if isinstance(value, dict) and value.get("type") == "env":
            values |= _scalars(os.environ.get(str(value.get("key")), ""))
        elif isinstance(value, dict) and value.get("type") == "vault":
            continue
        elif isinstance(value, dict):
            values |= _block_values(value)
        else:
            values |= _scalars(value)
    return values


def _found_values(node: Any) -> set[str]:
    """Values the journal itself marks as secret, to be masked inside other strings as well:
    under credential-like names, in a resolved ``secrets`` object (chaoslib writes every secret,
    resolved, into a dynamic configuration's ``provider.secrets``; an activity's own
    ``secrets`` is a list of scope names), and in Secret objects, decoded.

    A bare ``"key"`` is left out here (masked where it stands only): Kubernetes objects use it
    for label and taint keys ("app"), which would otherwise be masked in every string.
    """
    values: set[str] = set()
    if is_secret_object(node):
        for name in ("data", "stringData"):
            for value in _scalars(node.get(name)):
                values |= {value, *_decoded(value)} if name == "data" else {value}
        return values
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "secrets" and isinstance(value, dict):
                values |= _block_values(value)
            elif _secret_name(name) and not (isinstance(name, str) and name.lower() == "key"):
                values |= _scalars(value)
            else:
                values |= _found_values(value)
    elif isinstance(node, list):
        for value in node:
            values |= _found_values(value)
    return values


def _decoded(value: str) -> set[str]:
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return set()
    return {text} if text.isprintable() else set()


def _encoded(value: str) -> set[str]:
    """The forms a secret takes once it went through a URL, a JSON or Python string, or base64."""
    raw = value.encode("utf-8")
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value), json.dumps(value)[1:-1],
             json.dumps(value, ensure_ascii=False)[1:-1], repr(value)[1:-1],
             value.encode("unicode_escape").decode("ascii")}
    if len(value) >= 4:  # a few bytes of base64 are a common word
        for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
            forms |= {encoded.decode("ascii"), encoded.decode("ascii").rstrip("=")}
    return forms


def _mask(node: Any, values: set[str], pattern: re.Pattern[str] | None) -> Any:
    if is_secret_object(node):
        node = masked_secret(node)
    if isinstance(node, dict):
        return {_mask(name, values, pattern): _mask_under(name, value, values, pattern) for name, value in node.items()}
    if isinstance(node, list):
        return [_mask(value, values, pattern) for value in node]
    if isinstance(node, str):
        if node in values:
            return MASK
        return _IN_TEXT.sub(_keep_head, pattern.sub(MASK, node) if pattern else node)
    if isinstance(node, (int, float)) and not isinstance(node, bool) and str(node) in values:
        return MASK
    return node


def _keep_head(match: re.Match[str]) -> str:
    return (match["head"] or match["scheme"] or match["name"]) + MASK


def _mask_under(name: Any, value: Any, values: set[str], pattern: re.Pattern[str] | None) -> Any:
    if _secret_name(name) and value not in (None, "", [], {}, MASK):
        return MASK  # whatever its shape: a nested secret is still a secret
    return _mask(value, values, pattern)
