"""TLS for `ferkit serve --https`: phones give the camera only to https pages (or localhost), so a phone on the
same network can play only over TLS. A self-signed certificate is made for this machine's addresses (the
`cryptography` package, in the `serve` extra), or your own is used (`--cert/--key`). No torch."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
from pathlib import Path

from ferkit.errors import require


def machine_addresses() -> list[str]:
    """This machine's own names and IP addresses (read locally: nothing is sent anywhere)."""
    names = {"localhost", "127.0.0.1", socket.gethostname()}
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            names.add(info[4][0])
    except OSError:
        pass
    return sorted(names)


def _san(names: list[str]):
    x509 = require("cryptography.x509", "serve")
    entries = []
    for n in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(n.split("%")[0])))
        except ValueError:
            entries.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(entries)


def self_signed(folder: Path, names: list[str], days: int = 365) -> tuple[Path, Path]:
    """(certificate, key) PEM files in folder for `names`; the key is readable by its owner only."""
    x509 = require("cryptography.x509", "serve")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ferkit serve (self-signed)")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(_san(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def phone_urls(host: str, port: int) -> list[str]:
    """The addresses a phone on the same network can open (loopback only when listening on loopback)."""
    if host in ("0.0.0.0", "::"):
        hosts = [a for a in machine_addresses() if a[0].isdigit() and not a.startswith("127.")]
    else:
        hosts = [host]
    return [f"https://{h}:{port}/" for h in hosts or ["127.0.0.1"]]
