"""Make a development certificate authority and a certificate for each service and caller.

    python tools/dev_certs.py deploy/certs [--client NAME ...] [--days 365]

Writes, under the folder given:

* ``ca.crt`` and ``ca.key``: the CA (``ca.key`` also suits a cert-manager CA Issuer:
  ``kubectl -n mediagen create secret tls mediagen-ca --cert=ca.crt --key=ca.key``);
* ``gateway/``, ``generator/``, ``storage/``, ``nats/``: ``tls.crt``, ``tls.key`` and ``ca.crt``, the
  layout of a cert-manager Secret, so the compose override and the Kubernetes component
  mount them alike. Each certificate serves (names: the service, ``<service>-headless``,
  ``localhost``, ``127.0.0.1``, so peers and the health check verify it) and is also the
  service's client certificate (its common name is the caller name its peers see);
* ``clients/<NAME>/`` for each ``--client``: a client certificate whose common name is the
  caller name the gateway knows it by (list admins in ``MEDIAGEN_GATEWAY_ADMIN_CALLERS``).

For development and tests only: keys are written unencrypted. ``ca.key`` is readable by its
owner only; the issued keys are readable by all (mode 0644), since the containers of the
compose override run as their own user and read them through a bind mount. An existing CA
in the folder is reused, so new callers can be added later without re-issuing everything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICES = ("gateway", "generator", "storage", "nats")
KeyType = ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mediagen development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def _key_pem(key: KeyType) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificate_authority(folder: Path, days: int) -> tuple[x509.Certificate, KeyType]:
    cert_path, key_path = folder / "ca.crt", folder / "ca.key"
    if cert_path.exists() and key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey), "ca.key is not the EC key this tool makes"
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("mediagen development CA"))
        .issuer_name(_name("mediagen development CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days * 5))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    _write(key_path, _key_pem(key), mode=0o600)
    return cert, key


def issue(
    folder: Path,
    common_name: str,
    ca: tuple[x509.Certificate, KeyType],
    days: int,
    hosts: tuple[str, ...] = (),
) -> None:
    """``tls.crt``, ``tls.key`` and ``ca.crt`` in ``folder``: a client certificate, and a server
    one too when ``hosts`` names it."""
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if hosts else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write(folder / "tls.crt", cert.public_bytes(serialization.Encoding.PEM))
    _write(folder / "tls.key", _key_pem(key))
    _write(folder / "ca.crt", ca_cert.public_bytes(serialization.Encoding.PEM))


def service_hosts(service: str) -> tuple[str, ...]:
    """The names a service is reached by: compose's service name, Kubernetes' headless Service, and
    the loopback the health check uses."""
    return (service, f"{service}-headless", "localhost", "127.0.0.1")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python tools/dev_certs.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where the CA and certificates are written")
    parser.add_argument(
        "--client", action="append", default=[], metavar="NAME", help="a caller's certificate"
    )
    parser.add_argument("--days", type=int, default=365, help="validity of the issued certificates")
    args = parser.parse_args(argv)
    ca = _certificate_authority(args.folder, args.days)
    for service in SERVICES:
        issue(args.folder / service, service, ca, args.days, service_hosts(service))
    for client in args.client:
        issue(args.folder / "clients" / client, client, ca, args.days)
    print(f"CA and certificates for {', '.join([*SERVICES, *args.client])} in {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
