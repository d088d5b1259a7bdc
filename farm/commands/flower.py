"""`farm flower`: Flower on the farm's Celery app, with basic auth off loopback and HTTPS when given a certificate."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from farm.commands.common import settings


def flower(
    address: Annotated[str, typer.Option(metavar="HOST", help="host name or IP address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="port to listen on")] = 5555,
    certfile: Annotated[Path | None, typer.Option(metavar="FILE", show_default=False,
                                                  help="TLS certificate (PEM): serve HTTPS; needs --keyfile")] = None,
    keyfile: Annotated[Path | None, typer.Option(metavar="FILE", show_default=False,
                                                 help="its unencrypted private key (PEM)")] = None,
) -> None:
    """Start Flower on the farm's Celery app; basic auth (FARM_FLOWER_AUTH=user:password) is required off
    loopback."""
    from scheduler.app import make_app
    from scheduler.flower import flower_command

    cfg = settings()
    argv, env = flower_command(cfg, address=address, port=port, certfile=certfile, keyfile=keyfile)
    os.environ.update(env)  # the password reaches Flower here, never on its command line
    make_app(cfg).start(argv)
