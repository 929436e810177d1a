"""Fetch a kubeconfig by URL and prove it before anything uses it (private).

The original practice downloads the cluster's credentials from an ops URL and checks their md5
before a drill. Here the body is streamed under a size cap and a deadline, its md5 (required)
and sha256 (optional) are compared with the expected ones, it is parsed as a kubeconfig, written
0600 (a private file lives in its own 0700 directory) and loaded once as an API client
configuration, so a broken certificate fails here and not in the middle of a drill.

The download (``core.http.download``) is not trusted: ``timeout`` bounds all of it (connect, TLS, headers, body, every
redirect), however slowly the server trickles; a redirect is followed only to the same host and
port, never from https to http (the request's headers may carry a token); and a kubeconfig whose
users have credential plugins (``exec``, ``auth-provider``), which the kubernetes client runs
when it loads them, is refused unless ``allow_exec`` is true; one that names files of this machine
(``tokenFile``, ``client-certificate``, ``client-key``, ``certificate-authority``), which the client
would read and send, unless ``allow_local_files`` is true.

The body never reaches a log, a journal or an exception message: YAML errors give a position
only, URLs are shown without userinfo and query string, and nothing returns the body.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from chaosali.cluster.api import load_kubeconfig
from chaosali.core import http, private, yamltext
from chaosali.core.args import boolean, display_url, http_headers, http_url, seconds, tls_verify, whole
from chaosali.core.errors import InvalidArgument

__all__ = [
    "MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "FetchFailed",
    "Source",
    "Fetched",
    "fetch_private",
    "remove_private",
    "fetch_to_path",
]

logger = logging.getLogger("chaostoolkit")

MAX_BYTES = 1024 * 1024  # a kubeconfig is a few KiB; anything near 1 MiB is the wrong URL
DEFAULT_TIMEOUT = 30.0
_DIGEST_LENGTHS = {"md5": 32, "sha256": 64}
# what a kubeconfig's users and clusters may name on the local disk, which the client reads
_LOCAL_FILES = {"user": ("tokenFile", "client-certificate", "client-key"), "cluster": ("certificate-authority",)}


class FetchFailed(ActivityFailed):
    """The kubeconfig could not be fetched, did not match its digests, or is no usable kubeconfig."""


@dataclass(frozen=True)
class Source:
    """Where a kubeconfig comes from and what it must match; build it with :meth:`of`."""

    url: str
    md5: str
    sha256: str | None
    verify: bool | str  # a CA bundle's path, or whether to check certificates
    max_bytes: int
    timeout: float
    headers: dict[str, str]
    allow_exec: bool = False
    allow_local_files: bool = False

    @classmethod
    def of(
        cls,
        url: Any,
        md5: Any,
        sha256: Any = None,
        verify_tls: Any = True,
        ca_bundle: Any = None,
        max_bytes: Any = MAX_BYTES,
        timeout: Any = DEFAULT_TIMEOUT,
        headers: Any = None,
        allow_exec: Any = False,
        allow_local_files: Any = False,
    ) -> Source:
        """Check the arguments as an experiment gives them; refuse with a message naming the fix."""
        return cls(
            url=http_url(url),
            md5=_digest(md5, "md5"),
            sha256=None if sha256 is None else _digest(sha256, "sha256"),
            verify=tls_verify(verify_tls, ca_bundle),
            max_bytes=whole(max_bytes, "max_bytes", 1),
            timeout=seconds(timeout, "timeout"),
            headers=http_headers(headers),
            allow_exec=boolean(allow_exec, "allow_exec"),
            allow_local_files=boolean(allow_local_files, "allow_local_files"),
        )

    @property
    def public(self) -> str:
        return display_url(self.url)


def _digest(value: Any, kind: str) -> str:
    length = _DIGEST_LENGTHS[kind]
    text = value.strip().lower() if isinstance(value, str) else ""
    if not re.fullmatch(f"[0-9a-f]{{{length}}}", text):
        shown = "nothing" if value is None else repr(value)
        raise InvalidArgument(f"{kind} must be the {length} hex digits of the kubeconfig's {kind}, not {shown}")
    return text


@dataclass(frozen=True)
class Fetched:
    """A fetched, checked kubeconfig on disk; never the body itself."""

    url: str  # public form
    path: str
    context: str
    server: str
    md5: str
    sha256: str
    size: int

    def summary(self) -> dict[str, Any]:
        """What may be shown of it: in a journal, a log, an activity's output."""
        return {
            "url": self.url,
            "path": self.path,
            "context": self.context,
            "server": self.server,
            "md5": self.md5,
            "sha256": self.sha256,
            "bytes": self.size,
        }


def fetch_private(source: Source, context: str | None = None) -> Fetched:
    """Fetch and check the kubeconfig into a new private file (0600 in a 0700 directory of its
    own, which ``chaosali cleanup`` finds if the run dies); remove it with :func:`remove_private`."""
    directory = private.make()
    try:
        return _fetch(source, context, directory)
    except BaseException:
        private.remove(directory)
        raise


def remove_private(fetched: Fetched) -> None:
    """Remove a file made by :func:`fetch_private`, and its directory; quietly if already gone."""
    private.remove(os.path.dirname(fetched.path))


def fetch_to_path(path: str, source: Source, context: str | None = None) -> dict[str, Any]:
    """The body of a ``fetch_kubeconfig`` action: fetch and check the kubeconfig, then put it at
    ``path`` (0600) in one rename, so a reader never sees a half-written or unchecked file.
    Returns what may be shown of it (no body)."""
    if not isinstance(path, str) or not path:
        raise InvalidArgument("path must name the file to write the kubeconfig to")
    target = os.path.abspath(os.path.expanduser(path))
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise InvalidArgument(f"cannot write the kubeconfig to {target}: directory {directory} does not exist")
    fetched = _fetch(source, context, directory)
    try:
        os.replace(fetched.path, target)
    except OSError as error:
        os.unlink(fetched.path)
        raise FetchFailed(f"cannot write the kubeconfig to {target}: {error.strerror}") from None
    logger.info("chaosali: kubeconfig from %s written to %s", fetched.url, target)
    return {**fetched.summary(), "path": target}


def _fetch(source: Source, context: str | None, directory: str) -> Fetched:
    body = _download(source)
    md5, sha256 = hashlib.md5(body).hexdigest(), hashlib.sha256(body).hexdigest()
    for kind, expected, got in (("md5", source.md5, md5), ("sha256", source.sha256, sha256)):
        if expected is not None and not hmac.compare_digest(expected, got):
            raise FetchFailed(
                f"the kubeconfig from {source.public} does not match its {kind}: expected {expected}, "
                f"got {got} ({len(body)} bytes); the file changed or the expected {kind} is stale"
            )
    document, context = _check_kubeconfig(body, source.public, context, source.allow_exec, source.allow_local_files)
    fd, path = tempfile.mkstemp(dir=directory, prefix="kubeconfig-")  # 0600
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(body)
        server = _load(path, document, context, source.public)
    except BaseException:
        os.unlink(path)
        raise
    logger.info(
        "chaosali: fetched the kubeconfig from %s (%d bytes, md5 %s%s): context %r, API %s",
        source.public, len(body), md5, ", sha256 checked" if source.sha256 else "", context, server,
    )
    return Fetched(source.public, path, context, server, md5, sha256, len(body))


def _download(source: Source) -> bytes:
    if urlsplit(source.url).scheme == "http":
        logger.warning("chaosali: fetching the kubeconfig over plain http from %s: its credentials cross the "
                       "network unencrypted (the md5 only proves it was not altered)", source.public)
    if source.verify is False:
        logger.warning("chaosali: TLS verification of %s is OFF (verify_tls false): anyone on the path "
                       "could read the kubeconfig's credentials", source.public)
    request = http.Request("GET", source.url, source.timeout, source.verify, headers=source.headers)
    return http.download(request, source.max_bytes, "the kubeconfig", FetchFailed)


def _check_kubeconfig(
    body: bytes, where: str, context: str | None, allow_exec: bool = False, allow_local_files: bool = False
) -> tuple[dict[str, Any], str]:
    """The kubeconfig parsed (the one parse of it) and the context to use, once the body proves to
    be a kubeconfig that has it and, unless allowed, no credential plugin (``allow_exec``) and
    no reference to a file of this machine (``allow_local_files``)."""
    document = yamltext.load(body, f"the body at {where} matches its digests but is not a kubeconfig: invalid YAML",
                             error=FetchFailed)
    missing = [
        key
        for key in ("clusters", "contexts", "users")
        if not isinstance(document, dict) or not isinstance(document.get(key), list) or not document[key]
    ]
    if missing:
        raise FetchFailed(
            f"the body at {where} matches its digests but is not a kubeconfig: it has no {', '.join(missing)} "
            "(is the expected md5 that of the right file?)"
        )
    plugins = [
        f"{user.get('name')!r} ({', '.join(k for k in ('exec', 'auth-provider') if k in user['user'])})"
        for user in document["users"]
        if isinstance(user, dict) and isinstance(user.get("user"), dict)
        and ("exec" in user["user"] or "auth-provider" in user["user"])
    ]
    if plugins and not allow_exec:
        raise FetchFailed(
            f"the kubeconfig from {where} has credential plugins, which the kubernetes client runs on this "
            f"machine when it loads them: user(s) {', '.join(plugins)}; refused, since a downloaded kubeconfig "
            "is not trusted to run commands here. Set allow_exec to true if its source is"
        )
    files = [
        f"{kind} {entry.get('name')!r} ({', '.join(found)})"
        for kind, keys in _LOCAL_FILES.items()
        for entry in document[f"{kind}s"]
        if isinstance(entry, dict) and isinstance(entry.get(kind), dict)
        and (found := [key for key in keys if key in entry[kind]])
    ]
    if files and not allow_local_files:
        raise FetchFailed(
            f"the kubeconfig from {where} names files of this machine, which the kubernetes client would read "
            f"and send (a tokenFile as the Bearer token) or use: {', '.join(files)}; refused, since a downloaded "
            "kubeconfig is not trusted to pick files here. Embed them (token, client-certificate-data, "
            "client-key-data, certificate-authority-data), or set allow_local_files to true if its source is trusted"
        )
    names = [str(c["name"]) for c in document["contexts"] if isinstance(c, dict) and c.get("name")]
    chosen = context or document.get("current-context")
    if not chosen or chosen not in names:
        problem = f"has no context {chosen!r}" if chosen else "has no current-context"
        raise FetchFailed(
            f"the kubeconfig from {where} {problem}: set kubernetes_context to one of its contexts "
            f"({', '.join(names) or 'none'})"
        )
    return document, str(chosen)


def _load(path: str, document: dict[str, Any], context: str, where: str) -> str:
    """Load the kubeconfig written at ``path`` as every activity will (certificates decoded,
    cluster and user resolved); the API server's address, as it may be shown (no userinfo).
    Nothing is sent to the API server, but loading runs the user's credential plugin, if any
    (hence ``allow_exec``)."""
    settings = client.Configuration()
    try:
        load_kubeconfig(settings, [(path, document)], context)
    except InvalidArgument as error:
        raise FetchFailed(f"the kubeconfig from {where} cannot be used: {error}") from None
    return display_url(settings.host)
