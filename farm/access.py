"""Who may connect to a farm web service (`farm flower`, `farm serve`): loopback or not, a basic-auth credential,
and a TLS certificate with its key; each checked before the service starts, each refusal one line."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from pathlib import Path

from farm.errors import SpecError


def listens_on_loopback_only(address: str) -> bool:
    """Whether every address that ``address`` (an IP address or a host name) resolves to is a loopback one."""
    if not address.strip():
        raise SpecError("--address is empty: give a host name or an IP address (0.0.0.0 for every interface)")
    try:
        found = socket.getaddrinfo(address, None, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:  # gaierror, or a name the resolver refuses (too long, NUL, …)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise SpecError(f"--address {shown(address)}: cannot resolve it ({reason})") from exc
    ips = {str(info[4][0]).partition("%")[0] for info in found}  # drop an IPv6 zone (fe80::1%eth0)
    return bool(ips) and all(ipaddress.ip_address(ip).is_loopback for ip in ips)


def check_port(port: int) -> int:
    """``port`` when it is a TCP port number."""
    if not 1 <= port <= 65535:
        raise SpecError(f"--port {port}: a port is between 1 and 65535")
    return port


def credential(variable: str, value: str) -> tuple[str, str]:
    """``user:password`` from ``variable`` split in two; the error never shows the password."""
    user, colon, password = value.partition(":")
    if not colon:
        raise SpecError(f"{variable} must be user:password")
    if not user or not password:
        raise SpecError(f"{variable}: the user and the password must both be non-empty (user:password)")
    if not value.isprintable():
        raise SpecError(f"{variable}: the user and the password cannot contain control characters")
    return user, password


def tls_pair(certfile: Path | None, keyfile: Path | None) -> tuple[Path, Path] | None:
    """The certificate and its key, resolved, after checking that they load together; None for plain HTTP."""
    if certfile is None and keyfile is None:
        return None
    if certfile is None or keyfile is None:
        raise SpecError("--certfile and --keyfile go together: give both to serve HTTPS, or neither")
    for flag, path in (("--certfile", certfile), ("--keyfile", keyfile)):
        if not path.is_file():
            raise SpecError(f"{flag} {shown(str(path))}: no such file")
    try:
        # A key with a passphrase is refused here: the server would stop to ask for it on the terminal.
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile, password=b"")
    except (ssl.SSLError, OSError) as exc:
        raise SpecError(f"--certfile/--keyfile: cannot use them as a certificate and its unencrypted private key "
                        f"({getattr(exc, 'reason', None) or exc.strerror or exc})") from exc
    return certfile.resolve(), keyfile.resolve()


def shown(text: str, limit: int = 80) -> str:
    """``text`` quoted, control characters escaped, clipped: one line whatever the user typed."""
    quoted = repr(text)
    return quoted if len(quoted) <= limit else quoted[: limit - 1] + "…"
