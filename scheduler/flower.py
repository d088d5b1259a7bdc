"""How `farm flower` starts Flower on the farm's Celery app: its arguments, and the environment that carries the
basic-auth credential (never the command line, where every local user can read it).

Flower reads ``FLOWER_BASIC_AUTH`` (and ``--basic_auth``) as a list split on commas, with no escape
(``flower/command.py`` ``apply_env_options``; tornado's ``_Option.parse`` for the flag). A password holding a comma
would not work, and worse, the text after the comma would become a credential of its own. So a credential with a
comma is refused, as is an empty user or password.
"""

from __future__ import annotations

from pathlib import Path

from farm.access import check_port, credential, listens_on_loopback_only, tls_pair
from farm.errors import SpecError
from farm.settings import Settings

AUTH_VARIABLE = "FLOWER_BASIC_AUTH"
VARIABLE = "FARM_FLOWER_AUTH"
__all__ = ["AUTH_VARIABLE", "basic_auth", "flower_command", "listens_on_loopback_only", "tls_arguments"]


def flower_command(cfg: Settings, *, address: str, port: int, certfile: Path | None = None,
                   keyfile: Path | None = None) -> tuple[list[str], dict[str, str]]:
    """Flower's arguments for the Celery app's command line, and the variables to set in its environment."""
    if cfg.broker_url is None:
        raise SpecError("FARM_BROKER_URL is not set; Flower watches the lab's broker")
    check_port(port)
    loopback = listens_on_loopback_only(address)
    argv = ["flower", f"--address={address}", f"--port={port}", *tls_arguments(certfile, keyfile)]
    env: dict[str, str] = {}
    if cfg.flower_auth is not None:
        env[AUTH_VARIABLE] = basic_auth(cfg.flower_auth.get_secret_value())
    elif not loopback:
        raise SpecError(f"Flower would listen on {address} without a password; set FARM_FLOWER_AUTH=user:password")
    return argv, env


def basic_auth(value: str) -> str:
    """``value`` (``user:password``) checked for what Flower can use; the error never shows the password."""
    credential(VARIABLE, value)
    if "," in value:
        raise SpecError("FARM_FLOWER_AUTH: Flower splits its basic-auth setting on commas, so the user and the "
                        "password cannot contain ','; choose a password without one")
    return value


def tls_arguments(certfile: Path | None, keyfile: Path | None) -> list[str]:
    """Flower's ``--certfile/--keyfile`` for HTTPS, after checking that the pair loads; none for plain HTTP."""
    pair = tls_pair(certfile, keyfile)
    return [] if pair is None else [f"--certfile={pair[0]}", f"--keyfile={pair[1]}"]
