"""How `farm flower` starts Flower on the farm's Celery app: its arguments, and the environment that carries the
basic-auth credential (never the command line, where every local user can read it).

Flower reads ``FLOWER_BASIC_AUTH`` (and ``--basic_auth``) as a list split on commas, with no escape
(``flower/command.py`` ``apply_env_options``; tornado's ``_Option.parse`` for the flag). A password holding a comma
would not work, and worse, the text after the comma would become a credential of its own. So a credential with a
comma is refused, as is an empty user or password.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from pathlib import Path

from farm.errors import SpecError
from farm.settings import Settings

AUTH_VARIABLE = "FLOWER_BASIC_AUTH"


def flower_command(cfg: Settings, *, address: str, port: int, certfile: Path | None = None,
                   keyfile: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """Flower's arguments for the Celery app's command line, and the variables to set in its environment."""
    if cfg.broker_url is None:
        raise SpecError("FARM_BROKER_URL is not set; Flower watches the lab's broker")
    if not 1 <= port <= 65535:
        raise SpecError(f"--port {port}: a port is between 1 and 65535")
    loopback = listens_on_loopback_only(address)
    argv = ["flower", f"--address={address}", f"--port={port}", *tls_arguments(certfile, keyfile)]
    env: dict[str, str] = {}
    if cfg.flower_auth is not None:
        env[AUTH_VARIABLE] = basic_auth(cfg.flower_auth.get_secret_value())
    elif not loopback:
        raise SpecError(f"Flower would listen on {address} without a password; set FARM_FLOWER_AUTH=user:password")
    return argv, env


def basic_auth(credential: str) -> str:
    """``credential`` (``user:password``) checked for what Flower can use; the error never shows the password."""
    user, colon, password = credential.partition(":")
    if not colon:
        raise SpecError("FARM_FLOWER_AUTH must be user:password")
    if not user or not password:
        raise SpecError("FARM_FLOWER_AUTH: the user and the password must both be non-empty (user:password)")
    if "," in credential:
        raise SpecError("FARM_FLOWER_AUTH: Flower splits its basic-auth setting on commas, so the user and the "
                        "password cannot contain ','; choose a password without one")
    if not credential.isprintable():
        raise SpecError("FARM_FLOWER_AUTH: the user and the password cannot contain control characters")
    return credential


def listens_on_loopback_only(address: str) -> bool:
    """Whether every address that ``address`` (an IP address or a host name) resolves to is a loopback one."""
    if not address.strip():
        raise SpecError("--address is empty: give a host name or an IP address (0.0.0.0 for every interface)")
    try:
        found = socket.getaddrinfo(address, None, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:  # gaierror, or a name the resolver refuses (too long, NUL, …)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise SpecError(f"--address {_shown(address)}: cannot resolve it ({reason})") from exc
    ips = {str(info[4][0]).partition("%")[0] for info in found}  # drop an IPv6 zone (fe80::1%eth0)
    return bool(ips) and all(ipaddress.ip_address(ip).is_loopback for ip in ips)


def tls_arguments(certfile: Path | None, keyfile: Path | None) -> list[str]:
    """Flower's ``--certfile/--keyfile`` for HTTPS, after checking that the pair loads; none for plain HTTP."""
    if certfile is None and keyfile is None:
        return []
    if certfile is None or keyfile is None:
        raise SpecError("--certfile and --keyfile go together: give both to serve HTTPS, or neither")
    for flag, path in (("--certfile", certfile), ("--keyfile", keyfile)):
        if not path.is_file():
            raise SpecError(f"{flag} {_shown(str(path))}: no such file")
    try:
        # A key with a passphrase is refused here: Flower would stop to ask for it on the terminal.
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile, password=b"")
    except (ssl.SSLError, OSError) as exc:
        raise SpecError(f"--certfile/--keyfile: cannot use them as a certificate and its unencrypted private key "
                        f"({getattr(exc, 'reason', None) or exc.strerror or exc})") from exc
    return [f"--certfile={certfile.resolve()}", f"--keyfile={keyfile.resolve()}"]


def _shown(text: str, limit: int = 80) -> str:
    shown = repr(text)  # quoted, control characters escaped: one line whatever the user typed
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
