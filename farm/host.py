"""The fingerprint of the host a cell ran on: compare like with like."""

from __future__ import annotations

import platform
import socket
from functools import cache
from importlib import metadata
from typing import Any


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


@cache
def fingerprint(name: str | None = None) -> dict[str, Any]:
    """Name, CPU model, cores, memory, OS and software versions of this host."""
    import psutil  # here: readers of the store (`farm report`) use host_class alone

    return {
        "name": name or socket.gethostname(),
        "cpu_model": _cpu_model(),
        "cores": psutil.cpu_count(logical=True),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "loadfarm": _version("loadfarm"),
        "locust": _version("locust"),
    }


def host_class(info: dict[str, Any]) -> str:
    """The hardware class two hosts must share for their cells to be compared point by point."""
    return f"{info.get('cpu_model')}/{info.get('cores')}c/{info.get('memory_gib')}GiB"
