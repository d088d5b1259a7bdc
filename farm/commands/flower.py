"""`farm flower`: Flower on the farm's Celery app, with basic auth off loopback."""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated

import typer

from farm.commands.common import settings
from farm.errors import SpecError


def flower(
    address: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 5555,
) -> None:
    """Start Flower on the farm's Celery app; basic auth (FARM_FLOWER_AUTH=user:password) is required off
    loopback."""
    from scheduler.app import make_app

    cfg = settings()
    if cfg.broker_url is None:
        raise SpecError("FARM_BROKER_URL is not set; Flower watches the lab's broker")
    loopback = address == "localhost" or ipaddress.ip_address(address).is_loopback
    argv = ["flower", f"--address={address}", f"--port={port}"]
    if cfg.flower_auth is not None:
        if ":" not in cfg.flower_auth.get_secret_value():
            raise SpecError("FARM_FLOWER_AUTH must be user:password")
        os.environ["FLOWER_BASIC_AUTH"] = cfg.flower_auth.get_secret_value()  # not on the command line
    elif not loopback:
        raise SpecError(f"Flower would listen on {address} without a password; set FARM_FLOWER_AUTH=user:password")
    make_app(cfg).start(argv)
