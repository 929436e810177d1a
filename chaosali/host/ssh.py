"""SSH transport: connect to hosts from Chaos Toolkit secrets and run scripts on them.

Secrets (the scope listed in the provider's ``"secrets"``, e.g. ``"ssh"``):
``user`` (default root), ``key_path`` or ``key`` (private key text), ``passphrase``,
``password``, ``jump_host`` (``{"address", "port", "user"}``, same credentials).

Configuration (not secret): ``ssh_known_hosts`` (default ``~/.ssh/known_hosts``),
``ssh_accept_unknown_hosts`` (default false), ``ssh_connect_timeout`` (s, default 5),
``ssh_command_timeout`` (s, default 60), ``ssh_sudo`` (default: true unless the user is root).
"""

from __future__ import annotations

import io
import os
import re
import socket
from dataclasses import dataclass
from typing import Any

import paramiko
from chaoslib.types import Configuration, Secrets
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from chaosali.core.args import address, flag, port, seconds, setting, split_endpoint
from chaosali.core.errors import EndpointError, InvalidArgument
from chaosali.core.fanout import Endpoint

__all__ = ["Host", "SSHSettings", "NothingRan", "SudoRefused", "parse_hosts", "run_script"]

_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*", re.ASCII)


@dataclass(frozen=True)
class Host(Endpoint):
    """An SSH host; ``user`` overrides the user of the ssh secrets."""

    port: int = 22
    user: str | None = None

    @property
    def default_port(self) -> int:
        return 22


def parse_hosts(targets: Any) -> list[Host]:
    """Turn the ``targets`` argument (strings ``[user@]address[:port]`` or objects) into hosts."""
    if isinstance(targets, (str, dict)):
        targets = [targets]
    if not isinstance(targets, list) or not targets:
        raise InvalidArgument(
            "targets must be a non-empty list of hosts, e.g. ['10.0.0.5', "
            "{'address': '10.0.0.6', 'port': 2222}]"
        )
    return [_host(item) for item in targets]


def _host(item: Any) -> Host:
    if isinstance(item, str):
        user, where, number = split_endpoint(item)
        fields: dict[str, Any] = {"address": where, "port": number or 22, "user": user or None}
    elif isinstance(item, dict) and item.get("address"):
        fields = item
    else:
        raise InvalidArgument(f"target {item!r} is not a host: give 'address' or 'user@address:port'")
    user = fields.get("user")
    if user is not None and not (isinstance(user, str) and _USER.fullmatch(user)):
        raise InvalidArgument(f"target {item!r}: user {user!r} is not a user name (letters, digits, '_.-')")
    return Host(
        address(fields["address"], f"target {item!r}: address"),
        port(fields.get("port", 22), f"target {item!r}: port"),
        fields.get("name"),
        user,
    )


class NothingRan(EndpointError):
    """The script never started on the host: it was not reached, the login failed, or sudo refused.
    Nothing can be left there by it."""


class SudoRefused(NothingRan):
    """The user logged in, but ``sudo -n`` would not run the script: nothing ran on the host."""


class _UnknownHostKey(paramiko.SSHException):
    pass


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client, hostname, key) -> None:  # noqa: ANN001 (paramiko API)
        raise _UnknownHostKey(hostname)


@dataclass(frozen=True)
class SSHSettings:
    user: str = "root"
    key_path: str | None = None
    key: str | None = None
    passphrase: str | None = None
    password: str | None = None
    jump_host: Host | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    accept_unknown_hosts: bool = False
    connect_timeout: float = 5.0
    command_timeout: float = 60.0
    sudo: bool | None = None

    def __repr__(self) -> str:  # never show credentials, even in a traceback
        return f"SSHSettings(user={self.user!r}, known_hosts={self.known_hosts!r})"

    @classmethod
    def from_chaos(cls, configuration: Configuration = None, secrets: Secrets = None) -> SSHSettings:
        configuration, secrets = configuration or {}, secrets or {}
        jump = secrets.get("jump_host")
        return cls(
            user=secrets.get("user") or "root",
            key_path=secrets.get("key_path"),
            key=secrets.get("key"),
            passphrase=secrets.get("passphrase"),
            password=secrets.get("password"),
            jump_host=parse_hosts(jump)[0] if jump else None,
            known_hosts=configuration.get("ssh_known_hosts", cls.known_hosts),
            accept_unknown_hosts=flag(configuration, "ssh_accept_unknown_hosts") or False,
            connect_timeout=setting(configuration, "ssh_connect_timeout", cls.connect_timeout, seconds),
            command_timeout=setting(configuration, "ssh_command_timeout", cls.command_timeout, seconds),
            sudo=flag(configuration, "ssh_sudo"),
        )

    def _pkey(self) -> paramiko.PKey | None:
        if self.key_path:
            path = os.path.expanduser(self.key_path)
            with open(path, "rb") as stream:
                key = _private_key(stream.read(), self.passphrase)
            if os.path.exists(path + "-cert.pub"):  # as ssh(1) does: the key's certificate beside it
                key.load_certificate(path + "-cert.pub")
            return key
        return _private_key(self.key.encode(), self.passphrase) if self.key else None


_KEY_CLASSES = (
    (ed25519.Ed25519PrivateKey, paramiko.Ed25519Key),
    (ec.EllipticCurvePrivateKey, paramiko.ECDSAKey),
    (rsa.RSAPrivateKey, paramiko.RSAKey),
)


def _private_key(data: bytes, passphrase: str | None) -> paramiko.PKey:
    """A private key in any format OpenSSH or OpenSSL write (OpenSSH, PKCS#1, PKCS#8, SEC1),
    telling "not a key", "encrypted, no passphrase" and "wrong passphrase" apart: paramiko's own
    loaders read no PKCS#8 and fail every way with the same message."""
    loader = (serialization.load_ssh_private_key if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data
              else serialization.load_pem_private_key)
    try:
        loaded = loader(data, None)  # an unencrypted key ignores a passphrase, as ssh(1) does
    except TypeError:  # the key is encrypted
        if not passphrase:
            raise paramiko.SSHException("the private key is encrypted and no passphrase was given") from None
        try:
            loaded = loader(data, passphrase.encode())
        except (ValueError, TypeError):
            raise paramiko.SSHException("the passphrase does not decrypt the private key (wrong passphrase)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise paramiko.SSHException(
            "the key is not a private key in OpenSSH or PEM (PKCS#1, PKCS#8, SEC1) format"
        ) from None
    for kind, key_class in _KEY_CLASSES:
        if isinstance(loaded, kind):
            # handed over in the one format paramiko reads for every kind; it stays in memory
            text = loaded.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                        serialization.NoEncryption()).decode()
            return key_class.from_private_key(io.StringIO(text))
    raise paramiko.SSHException(f"the private key is of an unsupported kind ({type(loaded).__name__}): "
                                "use an Ed25519, ECDSA or RSA key")


def _connect(host: Host, settings: SSHSettings, sock: Any = None) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    known_hosts = os.path.expanduser(settings.known_hosts)
    if os.path.exists(known_hosts):
        client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(
        paramiko.AutoAddPolicy() if settings.accept_unknown_hosts else _RejectUnknown()
    )
    user = host.user or settings.user
    try:
        pkey = settings._pkey()
    except (paramiko.SSHException, OSError, ValueError, TypeError) as error:
        raise NothingRan(f"cannot load the SSH private key: {error}; check key_path/key and passphrase in secrets") from None
    try:
        client.connect(
            host.address,
            port=host.port,
            username=user,
            pkey=pkey,
            password=settings.password,
            timeout=settings.connect_timeout,
            banner_timeout=settings.connect_timeout,
            auth_timeout=settings.connect_timeout,
            allow_agent=False,
            look_for_keys=False,
            sock=sock,
        )
    except (OSError, paramiko.SSHException) as error:
        client.close()
        raise NothingRan(_connect_failure(error, host, user, known_hosts, settings)) from None
    return client


def _connect_failure(error: Exception, host: Host, user: str, known_hosts: str, settings: SSHSettings) -> str:
    if isinstance(error, _UnknownHostKey):
        return (f"unknown host key: {host.address} is not in {known_hosts}; add its key there "
                "(ssh-keyscan) or set configuration ssh_accept_unknown_hosts to true")
    if isinstance(error, paramiko.BadHostKeyException):
        return (f"host key mismatch: {host.address} presented a {error.key.get_name()} key that differs "
                f"from the one in {known_hosts}; if the host was reinstalled, update known_hosts, "
                "otherwise someone may be in the middle")
    if isinstance(error, paramiko.AuthenticationException):
        return f"authentication failed for user {user!r}: check the key or password in the ssh secrets"
    if isinstance(error, paramiko.ssh_exception.NoValidConnectionsError):
        return f"connection refused on port {host.port}: is sshd running there, and is that the right port?"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return f"unreachable: no answer on port {host.port} within {settings.connect_timeout:g} s"
    return f"SSH connection failed: {error}"


def _transport(client: paramiko.SSHClient) -> paramiko.Transport:
    transport = client.get_transport()
    if transport is None:  # connect() returned, yet the session is gone: the host hung up at once
        raise NothingRan("the SSH session closed as soon as it opened")
    return transport


def _open(host: Host, settings: SSHSettings) -> tuple[paramiko.SSHClient, paramiko.SSHClient | None]:
    if settings.jump_host is None:
        return _connect(host, settings), None
    try:
        jump = _connect(settings.jump_host, settings)
    except EndpointError as error:
        raise NothingRan(f"jump host {settings.jump_host}: {error}") from None
    try:
        channel = _transport(jump).open_channel(
            "direct-tcpip", (host.address, host.port), ("127.0.0.1", 0), timeout=settings.connect_timeout
        )
    except (paramiko.SSHException, OSError) as error:
        jump.close()
        raise NothingRan(f"jump host {settings.jump_host} cannot reach port {host.port}: {error}") from None
    return _connect(host, settings, sock=channel), jump


def run_script(host: Host, script: str, settings: SSHSettings) -> str:
    """Run a POSIX shell script (fed on stdin) as root on ``host``; return its stdout.

    The script sees the controller's address and the sshd port as CHAOSALI_SSH_PEER and
    CHAOSALI_SSH_PORT, so that a fault can keep the controller's own SSH path open.
    """
    user = host.user or settings.user
    sudo = settings.sudo if settings.sudo is not None else user != "root"
    command = (
        'set -- $SSH_CLIENT; export CHAOSALI_SSH_PEER="$1" CHAOSALI_SSH_PORT="$3"; '
        + ("exec sudo -n -E sh -s" if sudo else "exec sh -s")
    )
    client, jump = _open(host, settings)
    try:
        channel = _transport(client).open_session(timeout=settings.connect_timeout)
        channel.settimeout(settings.command_timeout)
        channel.exec_command(command)
        channel.sendall(script.encode())
        channel.shutdown_write()
        stdout = channel.makefile("rb").read().decode(errors="replace")
        stderr = channel.makefile_stderr("rb").read().decode(errors="replace")
        status = channel.recv_exit_status()
    except (socket.timeout, TimeoutError):
        raise EndpointError(f"the command did not finish within {settings.command_timeout:g} s") from None
    except (paramiko.SSHException, OSError, EOFError) as error:  # the host went away mid-session (a reboot)
        raise EndpointError(f"the SSH session was lost: {type(error).__name__}: {error}") from None
    finally:
        client.close()
        if jump:
            jump.close()
    if status != 0:
        reason = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit status {status}"
        if sudo and reason.startswith("sudo: "):  # sudo's own refusal: our scripts never call sudo
            raise SudoRefused(
                f"sudo refused user {user!r} ({reason[6:]}); nothing was run: allow {user} sudo without "
                f"a password (NOPASSWD, e.g. '{user} ALL=(ALL) NOPASSWD: ALL' in /etc/sudoers.d/), or log in as root"
            )
        raise EndpointError(reason)
    return stdout

