"""Secrets out of a journal before any report shows it.

A journal is the experiment as written plus what every activity returned or raised, and a
secret can surface anywhere: an inline password in the ``secrets`` block, a token echoed in an
exception, a Kubernetes Secret read by a probe. ``redact`` returns a copy where

- the ``data`` / ``stringData`` of every Kubernetes Secret object (and kubectl's
  last-applied annotation on it, which repeats them) is ``***``;
- any value under a credential-like key name (authorization, auth, credential(s), token,
  password, passphrase, pwd, secret, cookie, bearer, private key, kubeconfig, username, api key,
  session id, signature, oauth, jwt, and names ending in one: ``PGPASSWORD``, ``authtoken``...)
  is ``***``, whatever its shape, and so is the ``value`` of a Kubernetes env entry whose
  ``name`` is one, and the second item of a ``[name, value]`` pair (a header as a list); names of paths, files and
  references (``kubeconfig_path``, ``secret_name``) are not credentials;
- every known secret value is ``***`` as a whole value and inside any string (keys included),
  also in its encoded forms (URL-encoded, JSON and Python escapes, base64). Known values are the
  inline values of the experiment's ``secrets`` block; the values of ``{"type": "env"}``
  secrets *from the journal only*, where chaoslib copied them resolved (a dynamic configuration
  entry's ``provider.secrets``), never from the environment where the report runs (a hostile
  journal naming any variable would read it out); the values found under credential-like names
  and in Secret objects (decoded from base64 too), those printed by a process as a Secret's YAML
  or JSON included (among other lines, or several back to back);
- in free text (an exception, a process's output), a value introduced as a credential, even one
  no one told the report about (``_IN_TEXT``): ``Authorization:``/``Cookie:`` headers (also in a
  dict repr), ``Bearer`` tokens, ``password=``-like assignments (``DB_PASSWORD=``,
  ``export API_TOKEN=``, ``x_api_key:``, ``client-key-data:``, docker's ``"auth":``),
  ``--password X`` options, ``-pX`` after mysql/mariadb/sshpass, the password of a URL's
  userinfo, PEM private-key blocks and JWTs.

What cannot be masked: a value the journal holds nowhere as a secret, echoed in a form none of
the above catches (e.g. an env secret no dynamic configuration copied, printed bare); a known
value shorter than 3 characters inside other text. Vault and ``--var-file`` secrets never reach
the journal's experiment copy.

Many secret values are masked in one pass over each string (an Aho-Corasick automaton), so
masking grows with the journal's size, not with its size times the number of secrets.

Reports compute their figures from the redacted copy only, so no renderer can leak.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from functools import lru_cache
from typing import Any, Iterator
from urllib.parse import quote, quote_plus

import ahocorasick
import yaml

from chaosali.core.secrets import MASK, is_secret_object, masked_secret
from chaosali.report.journal import kept

__all__ = ["MASK", "redact"]

# Key names are compared word by word ("db_password", "apiKey", "private-key"), so that
# "kube_monkey_namespace" or "tolerance" are not taken for secrets.
_SECRET_WORDS = frozenset({
    "password", "passwords", "passwd", "passphrase", "token", "tokens", "secret", "key", "apikey", "authorization",
    "credential", "credentials", "cookie", "cookies", "bearer", "kubeconfig", "username", "auth", "auths",
    "pwd", "sessionid", "signature", "oauth", "jwt",
})
# one-word names ending in one of these are credentials too ("pgpassword", "authtoken", "privatekey"),
# not those ending in "key" ("monkey")
_SECRET_ENDINGS = ("password", "passwd", "passphrase", "token", "secret", "apikey", "privatekey", "credentials",
                   "sessionid", "signature")
# ...unless the name says it is where a secret is, or which one: not the secret itself
_POINTER_WORDS = frozenset({"path", "file", "name", "names", "ref", "namespace", "url", "type"})
# Values shorter than this are masked as whole values only: masking "1" or "a" inside every
# string would hide the whole report, not the secret.
_MIN_SUBSTRING = 3
# A value shorter than this made of word characters (a user name, "root") is no secret where it
# is part of a longer name: a module (chaosali.host.actions), a fault id, a path.
_SHORT_WORD = 12
_WORD = re.compile(r"[\w-]+")
# short strings (key names, statuses, kinds) repeat thousands of times in a journal: masked once
_CACHED, _CACHE_MAX = 64, 1 << 17
# a process's output parsed for Secret objects up to this size (kubectl get secret -o yaml)
_PARSED_MAX = 1 << 20
# Credentials introduced in free text (an exception, a process's output): the value that follows
# a head group is masked, a match without one is masked whole. A credential's name may have any
# prefix (DB_PASSWORD, PGPASSWORD, x_api_key): the text matches from its last word on. Every
# part is bounded or stops at a character it cannot cross, so a long run of one character
# costs one pass, not one pass per character.
_KEYWORD = (r"(?:password|passwd|passphrase|token|secret|credentials?|username|auth"
            r"|(?:api|private|secret|access|client)[-_]?key(?:[-_]?data)?)")
_IN_TEXT = re.compile(
    r"(?i)(?P<head>(?<![A-Za-z0-9-])(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?"
    r"|(?<![A-Za-z0-9-])(?:set-)?cookie[\"']?\s*[:=]\s*[\"']?)[^\r\n\"']+"
    r"|(?P<scheme>(?<![A-Za-z0-9])(?-i:Bearer|bearer)\s+)[A-Za-z0-9._~+/=-]+"
    r"|(?P<basic>(?<![A-Za-z0-9])(?-i:Basic)\s+)[A-Za-z0-9+/=]{8,}"  # as in a header, not "basic checks"
    rf"|(?P<name>{_KEYWORD}[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}}]+"
    rf"|(?P<option>(?<![\w-])--(?:[A-Za-z0-9]+-)*{_KEYWORD}(?:=|\s+)[\"']?)[^\s\"',;]+"
    r"|(?P<userinfo>(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@\"'<>]*:)[^\s/@\"'<>]+(?=@)"
    # a PEM private key: to its END line (a key is a few KiB), or its lines of base64 when cut short
    r"|(?P<pem>-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)(?:(?:[^-]|-(?!----)){0,16384}?-----END [A-Z0-9 ]*PRIVATE KEY-----"
    r"|(?:(?:\r?\n|\\n)[A-Za-z0-9+/=]+)+)"
    r"|(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"  # a JWT
)
_HEADS = ("head", "scheme", "basic", "name", "option", "userinfo", "pem")
# `-pSECRET`: mysql's, mariadb's and sshpass's password option (elsewhere -p is a port, a path...)
_P_COMMANDS = re.compile(r"(?<![\w-])(?:mysql\w*|mariadb\w*|sshpass)\b")
_P_OPTION = re.compile(r"(?<=\s)-p(?=[^\s\"'])[^\s\"',;]+|^-p[^\s\"',;]+$")
_OPTIONS = re.compile(rf"(?i)--(?:[A-Za-z0-9]+-)*{_KEYWORD}")  # an argv item whose next item is the secret
# where a JSON document may start in a process's output: at a line's start, or right after another;
# failed attempts may read the output this many times over in all
_JSON_SCANS = 8
# YAML nesting a printed document may have (the journal's own reading keeps 100 levels)
_YAML_DEPTH = 1000
_JSON_START = re.compile(r"(?m)(?:^|\})[ \t]*\{")
# a line of a YAML document: a key, an item, an indented line, a document marker
_YAML_LINE = re.compile(r"[ \t]|-(?: |$)|---|\.\.\.|[\w.\"'/-]+:(?:\s|$)")


def redact(journal: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``journal`` with every secret replaced by ``***`` (see the module doc)."""
    values = _found_values(journal)
    return _Masker(values).mask(journal)


class _Masker:
    """Masks the known values (whole, and inside strings in one pass) and the credentials in text."""

    def __init__(self, values: set[str]) -> None:
        self.values = values
        self.cache: dict[str, str] = {}
        self.automaton: Any = None
        forms = {form for value in values if len(value) >= _MIN_SUBSTRING for form in _encoded(value)}
        if forms:
            self.automaton = ahocorasick.Automaton()
            for form in forms:
                self.automaton.add_word(form, (len(form), len(form) < _SHORT_WORD and bool(_WORD.fullmatch(form))))
            self.automaton.make_automaton()

    def mask(self, node: Any) -> Any:
        if is_secret_object(node):
            node = masked_secret(node)
        if isinstance(node, dict):
            env = _secret_env_entry(node)
            masked = {self.mask(name): MASK if env and name == "value" else self._under(name, value)
                      for name, value in node.items()}
            return kept(node, masked)
        if isinstance(node, list):
            if _secret_pair(node):
                return [node[0], MASK]
            return kept(node, self._argv([self.mask(value) for value in node], node))
        if isinstance(node, str):
            return MASK if node in self.values else self.text(node)
        if isinstance(node, (int, float)) and not isinstance(node, bool) and str(node) in self.values:
            return MASK
        return node

    def text(self, text: str) -> str:
        """Free text with every known value (longest first where two overlap) and credential masked."""
        if len(text) > _CACHED:
            return self._text(text)
        masked = self.cache.get(text)
        if masked is None:
            masked = self._text(text)
            if len(self.cache) < _CACHE_MAX:
                self.cache[text] = masked
        return masked

    def _text(self, text: str) -> str:
        if self.automaton is not None:
            pieces, at = [], 0
            for end, (length, word) in self.automaton.iter_long(text):
                if word and _in_a_name(text, end + 1 - length, end + 1):
                    continue
                pieces += [text[at:end + 1 - length], MASK]
                at = end + 1
            text = "".join(pieces) + text[at:] if pieces else text
        text = _IN_TEXT.sub(_keep_head, text)
        if _P_COMMANDS.search(text):
            text = _P_OPTION.sub(lambda m: m[0][:2] + MASK, text)
        return text

    def _under(self, name: Any, value: Any) -> Any:
        if _secret_name(name) and value not in (None, "", [], {}, MASK):
            return MASK  # whatever its shape: a nested secret is still a secret
        return self.mask(value)

    @staticmethod
    def _argv(masked: list[Any], raw: list[Any]) -> list[Any]:
        """A command line as a list: the item after ``--password`` (and ``-pX`` of mysql) is a secret."""
        if not any(isinstance(item, str) and item.startswith("-") for item in raw):
            return masked
        command = any(isinstance(item, str) and _P_COMMANDS.search(item) for item in raw)
        for index, item in enumerate(raw):
            if not isinstance(item, str):
                continue
            if _OPTIONS.fullmatch(item) and index + 1 < len(masked):
                masked[index + 1] = MASK
            elif command and _P_OPTION.fullmatch(item):
                masked[index] = "-p" + MASK
        return masked


def _in_a_name(text: str, start: int, stop: int) -> bool:
    """``text[start:stop]`` is part of a longer name: a letter, digit, ``_``, ``-`` or ``/`` next
    to it, or a dot between it and one (``chaosali.host``, but not ``chaosali.`` ending a sentence)."""
    def joins(char: str, beyond: str) -> bool:
        return char.isalnum() or char in "_-/" or char == "." and beyond.isalnum()

    return (start > 0 and joins(text[start - 1], text[start - 2:start - 1])
            or stop < len(text) and joins(text[stop], text[stop + 1:stop + 2]))


def _keep_head(match: re.Match[str]) -> str:
    return next((match[head] for head in _HEADS if match[head] is not None), "") + MASK


def _words(name: str) -> list[str]:
    return [word.lower() for word in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)]


def _secret_name(name: Any) -> bool:
    return isinstance(name, str) and _secret_text(name)


@lru_cache(maxsize=1 << 16)  # a journal repeats its key names thousands of times
def _secret_text(name: str) -> bool:
    words = _words(name)
    secret = (any(word in _SECRET_WORDS or word.endswith(_SECRET_ENDINGS) for word in words)
              or "".join(words).endswith(_SECRET_ENDINGS))  # session_id, X-Session-Id
    return secret and not _POINTER_WORDS.intersection(words)


def _secret_env_entry(node: dict[str, Any]) -> bool:
    """A Kubernetes env entry (``{"name": "DB_PASSWORD", "value": ...}``) of a credential."""
    return "value" in node and _secret_name(node.get("name"))


def _secret_pair(node: list[Any]) -> bool:
    """A ``[name, value]`` pair of a credential: a header as a list (``["Authorization", "Bearer …"]``)."""
    return len(node) == 2 and _secret_name(node[0]) and node[1] not in (None, "", [], {}, MASK)


def _scalars(value: Any) -> set[str]:
    """Every leaf of ``value`` as text (booleans and nulls are no secrets)."""
    if isinstance(value, dict):
        return set().union(*map(_scalars, value.values()))
    if isinstance(value, list):
        return set().union(*map(_scalars, value))
    if isinstance(value, bool) or value is None or value == "":
        return set()
    return {str(value)}


def _nested(value: Any) -> set[str]:
    """The text nested in an object or a list under a credential's name, to be masked elsewhere:
    not its numbers nor what a pointer's name holds (a pod's projected ``serviceAccountToken`` is
    ``{"expirationSeconds": 3607, "path": "token"}``: no secret, and common words and figures)."""
    if isinstance(value, dict):
        return set().union(*(_nested(item) for name, item in value.items()
                             if not (isinstance(name, str) and _POINTER_WORDS.intersection(_words(name)))))
    if isinstance(value, list):
        return set().union(*map(_nested, value))
    return {value} if isinstance(value, str) and value else set()


def _block_values(block: Any) -> set[str]:
    """The values of a ``secrets`` block, walked as chaoslib loads it. A reference (``{"type":
    "env"}``, vault) holds none: the journal's resolved copy holds its value, if anything does."""
    values: set[str] = set()
    for value in block.values() if isinstance(block, dict) else ():
        if isinstance(value, dict) and value.get("type") in ("env", "vault"):
            continue
        values |= _block_values(value) if isinstance(value, dict) else _scalars(value)
    return values


def _found_values(node: Any, values: set[str] | None = None) -> set[str]:
    """Values the journal itself marks as secret, to be masked inside other strings as well:
    under credential-like names, in a resolved ``secrets`` object (chaoslib writes every secret,
    resolved, into a dynamic configuration's ``provider.secrets``; an activity's own
    ``secrets`` is a list of scope names), in Kubernetes env entries, and in Secret objects,
    decoded, also those a process printed as YAML or JSON. Gathered into one set (``values``).

    A bare ``"key"`` is left out here (masked where it stands only): Kubernetes objects use it
    for label and taint keys ("app"), which would otherwise be masked in every string.
    """
    values = set() if values is None else values
    if is_secret_object(node):
        for name in ("data", "stringData"):
            for value in _scalars(node.get(name)):
                values |= {value, *_decoded(value)} if name == "data" else {value}
    elif isinstance(node, dict):
        if _secret_env_entry(node):
            values |= _scalars(node["value"])
        for name, value in node.items():
            if name == "secrets" and isinstance(value, dict):
                values |= _block_values(value)
            elif _secret_name(name) and not (isinstance(name, str) and name.lower() == "key"):
                if isinstance(value, (dict, list)):
                    values |= _nested(value)
                    _found_values(value, values)  # a resolved secrets object, a Secret, in it
                else:
                    values |= _scalars(value)
            else:
                _found_values(value, values)
    elif isinstance(node, list):
        if _secret_pair(node):
            values |= _scalars(node[1])
        for value in node:
            _found_values(value, values)
    elif isinstance(node, str) and "Secret" in node and "data" in node.lower() and len(node) <= _PARSED_MAX:
        for secret in _printed_secrets(node):
            _found_values(secret, values)
    return values


def _printed_secrets(text: str) -> Iterator[dict[str, Any]]:
    """The Secret objects of a process's output: ``kubectl get secret -o yaml``, a YAML stream, or
    JSON and YAML documents among other lines (``secret/x created``, ``done.``) or back to back.
    Only their string values are taken, so an alias bomb costs nothing."""
    for document in _printed_documents(text):
        items = document.get("items") if isinstance(document, dict) else None
        for node in [document, *(items if isinstance(items, list) else [])]:
            if is_secret_object(node):
                yield {"kind": "Secret", **{name: {k: v for k, v in node[name].items() if isinstance(v, str)}
                                            for name in ("data", "stringData") if isinstance(node.get(name), dict)}}


def _printed_documents(text: str) -> Iterator[Any]:
    """The documents of ``text``: all of it as one YAML stream if it is one; else each JSON object
    that starts a line or follows another, then each run of YAML-like lines between the rest."""
    try:
        yield from _yaml_documents(text)
        return
    except (yaml.YAMLError, ValueError, RecursionError):
        pass
    decoder, at, rest = json.JSONDecoder(), 0, []
    budget = _JSON_SCANS * len(text)  # what failed attempts may read: nested openings cannot make it a square
    for found in _JSON_START.finditer(text):
        start = found.end() - 1
        if start < at:
            continue
        if budget <= 0:
            break
        try:
            document, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError as error:
            budget -= error.pos - start + 1
            continue
        except (ValueError, RecursionError):
            budget -= len(text) - start
            continue
        yield document
        rest.append(text[at:start])
        at = end
    rest.append(text[at:])
    block: list[str] = []
    for line in [*"\n".join(rest).splitlines(), ""]:
        if line and _YAML_LINE.match(line):
            block.append(line)
            continue
        try:
            yield from _yaml_documents("\n".join(block))
        except (yaml.YAMLError, ValueError, RecursionError):
            pass
        block = []


def _yaml_documents(text: str) -> list[Any]:
    """The YAML documents of ``text``; ``ValueError`` if they nest deeper than the C loader can
    build (it recurses without a limit: ``- - - …`` or ``{"a": {"a": …`` 100,000 deep is a
    segfault, not an error). Only a text with that many openings is walked to tell."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    if sum(map(text.count, "[{-?")) > _YAML_DEPTH and _deeper(text, loader):
        raise ValueError("nested too deep")
    return list(yaml.load_all(text, Loader=loader))


def _deeper(text: str, loader: Any) -> bool:
    """Whether the YAML ``text`` nests deeper than ``_YAML_DEPTH``: its parser's events, no nodes built."""
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > _YAML_DEPTH:
                return True
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
    return False


def _decoded(value: str) -> set[str]:
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return set()
    return {text} if text.isprintable() else set()


def _encoded(value: str) -> set[str]:
    """The forms a secret takes once it went through a URL, a JSON or Python string, or base64."""
    raw = value.encode("utf-8", "surrogatepass")
    forms = {value, quote(raw, safe=""), quote(raw), quote_plus(raw), json.dumps(value)[1:-1],
             json.dumps(value, ensure_ascii=False)[1:-1], repr(value)[1:-1],
             value.encode("unicode_escape").decode("ascii")}
    if len(value) >= 4:  # a few bytes of base64 are a common word
        for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
            forms |= {encoded.decode("ascii"), encoded.decode("ascii").rstrip("=")}
    return forms
