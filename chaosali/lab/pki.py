"""The lab cluster's certificates, made with `cryptography`: one CA signs every leaf.

Leaves are named as kubeadm names them; identities are those the apiserver's bootstrap RBAC
expects (``system:kube-controller-manager``, ``system:kube-scheduler``, ``system:masters``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chaosali.core import private

__all__ = ["make_pki", "server_certificate", "CLIENTS"]

# leaf name -> (common name, organisations)
CLIENTS = {
    "admin": ("kubernetes-admin", ["system:masters"]),
    "controller-manager": ("system:kube-controller-manager", []),
    "scheduler": ("system:kube-scheduler", []),
    "kubelet": ("kwok-kubelet", ["system:masters"]),
    "front-proxy-client": ("front-proxy-client", []),
    # the API server's to the kubelets (logs, exec, port-forward), as kubeadm's apiserver-kubelet-client
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ["kubeadm:cluster-admins"]),
}
_SERVICE_DNS = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local"]
_USAGE = dict(content_commitment=False, data_encipherment=False, key_agreement=False,
              crl_sign=False, encipher_only=False, decipher_only=False)


def make_pki(directory: Path, server_addresses: list[str]) -> None:
    """Write ca, apiserver (valid for ``server_addresses``), client leaves and sa keys; keep existing ones."""
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / "ca.crt").exists():
        return
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("chaosali-lab-ca", [])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, key_encipherment=False,
                                     **{**_USAGE, "crl_sign": True}), critical=True)
        # Python 3.13's strict X.509 checks want the key identifiers that tie a leaf to its CA
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(directory, "ca", ca, ca_key)

    def leaf(stem: str, common_name: str, organisations: list[str], sans: list[x509.GeneralName]) -> None:
        _leaf(directory, stem, _name(common_name, organisations), sans, (ca, ca_key), now)

    ips = ["127.0.0.1", "10.96.0.1", *server_addresses]
    leaf("apiserver", "kube-apiserver", [],
         [x509.DNSName(n) for n in _SERVICE_DNS] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips])
    for stem, (common_name, organisations) in CLIENTS.items():
        leaf(stem, common_name, organisations, [])
    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private.write(directory / "sa.key", sa.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.TraditionalOpenSSL,
                                                         serialization.NoEncryption()))
    (directory / "sa.pub").write_bytes(
        sa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def server_certificate(directory: Path, stem: str, common_name: str, addresses: list[str]) -> None:
    """Write ``<stem>.crt``/``.key``, a serving certificate for ``addresses`` signed by the CA of
    ``directory`` (made by ``make_pki``); keep an existing one."""
    if (directory / f"{stem}.crt").exists():
        return
    ca = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    _leaf(directory, stem, _name(common_name, []), sans, (ca, ca_key), now)


def _leaf(directory: Path, stem: str, subject: x509.Name, sans: list[x509.GeneralName],
          issuer: tuple[x509.Certificate, Any], now: dt.datetime) -> None:
    """A leaf signed by ``issuer`` (its certificate and key): a server's with ``sans``, else a client's."""
    ca, ca_key = issuer
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if sans else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(subject, ca.subject, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, key_encipherment=True,
                                     **_USAGE), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    _write(directory, stem, builder.sign(ca_key, hashes.SHA256()), key)


def _name(common_name: str, organisations: list[str]) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organisations]
        + [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def _builder(subject: x509.Name, issuer: x509.Name, public_key, now: dt.datetime) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365))
    )


def _write(directory: Path, stem: str, certificate: x509.Certificate, key) -> None:
    (directory / f"{stem}.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    private.write(directory / f"{stem}.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
