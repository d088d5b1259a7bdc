"""What a worker process needs, built once per process (after the pool forks): settings, store, driver, runner."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from farm.host import fingerprint
from farm.load.runner import LocustRunner
from farm.remote.hosts import SutHost, load_hosts
from farm.settings import Settings
from farm.spec import LoadedSweep
from farm.stacks import place
from farm.stacks.local import LocalDriver
from farm.store.leases import Leases, SutLeases
from farm.store.repository import Store
from farm.stored import stored_sweep


@dataclass
class Runtime:
    """A worker's settings, store, lease book, stack driver, load runner and host fingerprint."""

    settings: Settings
    store: Store
    leases: Leases
    sut_leases: SutLeases
    driver: LocalDriver
    runner: LocustRunner
    host: dict[str, Any]
    _sweeps: dict[str, LoadedSweep] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _hosts: dict[str, SutHost] | None = None

    def sut_hosts(self) -> dict[str, SutHost]:
        """The SUT hosts of this worker's hosts file (FARM_HOSTS_FILE), read when first needed."""
        with self._lock:
            if self._hosts is None:
                self._hosts = load_hosts(self.settings.hosts_file)
            return self._hosts

    @property
    def name(self) -> str:
        """This worker host's name, recorded with every cell it runs."""
        return str(self.host["name"])

    def sweep(self, name: str) -> LoadedSweep:
        """The sweep as submitted, re-validated here (its stack must exist on this host)."""
        with self._lock:
            if name not in self._sweeps:
                self._sweeps[name] = stored_sweep(self.store, name, self.settings.stacks_dir)
            return self._sweeps[name]


@cache
def runtime() -> Runtime:
    """The process's runtime, from FARM_* settings (built lazily, so each forked pool process has its own)."""
    settings = Settings()
    store = Store(settings.database_url, retry_s=120.0)
    return Runtime(settings=settings, store=store, leases=Leases(store, settings.max_attempts),
                   sut_leases=SutLeases(store),
                   driver=place.local_driver(settings),
                   runner=LocustRunner(saturation_cpu_pct=settings.saturation_cpu_pct),
                   host=fingerprint(settings.host_name))
