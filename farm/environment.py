"""The environment of every process the farm starts: the farm's own settings and secrets stay in the farm.

A stack's services, nginx, Redis, Locust and the user's locustfile must not read the broker, database or Flower
passwords from ``/proc/<pid>/environ``: every child gets the parent's environment minus ``FARM_*`` and
``FLOWER_*`` variables.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

PRIVATE_PREFIXES = ("FARM_", "FLOWER_")


def is_private(name: str) -> bool:
    """Whether an environment variable belongs to the farm (and may hold a secret)."""
    return name.upper().startswith(PRIVATE_PREFIXES)


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the farm's variables, plus ``extra`` (which may not add them back)."""
    env = {k: v for k, v in os.environ.items() if not is_private(k)}
    env.update({k: v for k, v in (extra or {}).items() if not is_private(k)})
    return env


@contextmanager
def scrubbed_environ() -> Iterator[None]:
    """Remove the farm's variables from ``os.environ`` while a library starts a child we cannot pass env to."""
    saved = {k: v for k, v in os.environ.items() if is_private(k)}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(saved)
