"""Executing a task's groups on this host: claim them all by lease, keep the leases alive, stop on cancel.

All groups of a task are claimed up front and their leases renewed together, so that if this worker dies,
every group it held (the running one and those still waiting in its task) expires and is handed back.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from farm.errors import CancelledError, FarmError, SpecError, StoreError
from farm.execute import ExecutionContext, describe, execute_group
from farm.life import SweepStatus
from farm.remote.hosts import SutHost
from farm.spec import LoadedSweep
from farm.stacks import place
from farm.stacks.compose import ComposeDriver
from farm.stacks.driver import StackDriver
from farm.store.repository import Holder
from workers.runtime import Runtime

log = logging.getLogger("loadfarm.worker")
STOPPING = threading.Event()  # set when this worker is asked to stop (SIGTERM): running groups hand their cells back
WORKER_STOPPING = "worker stopping"
SWEEP_CANCELLED = "sweep cancelled"


class Heartbeat:
    """Renews the leases of the groups still held and watches for a cancelled sweep; sets ``cancel`` on stop."""

    def __init__(self, rt: Runtime, sweep: str, held: set[str], cancel: threading.Event) -> None:
        self.rt, self.sweep, self.held, self.cancel = rt, sweep, held, cancel
        self.sut: dict[str, str] = {}  # SUT host -> the owner of its lease (this worker, the group's attempt)
        self.reason: str | None = None
        self.renewed = time.monotonic()  # when the last round of renewals that all succeeded began
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
        self._watch = threading.Thread(target=self._watchdog, name="lease-watchdog", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        self._watch.start()
        return self

    def __exit__(self, *_exc: object | TracebackType) -> None:
        self._stop.set()
        self._thread.join(5)
        self._watch.join(5)

    def _watchdog(self) -> None:
        """Stop once our leases have expired unrenewed (the store is away, or slow beyond the lease): another
        worker may then take the groups and their SUT hosts over, and nothing of ours may run beside them. Apart
        from the renewals, which may hang on a lost connection."""
        lease_s = self.rt.settings.lease_s
        while not self._stop.wait(0.5):
            silent = time.monotonic() - self.renewed
            if silent > lease_s and not self.cancel.is_set():
                self._halt(f"leases expired: the store did not answer for {silent:.0f} s")
                return

    def _beat(self) -> None:
        lease_s = self.rt.settings.lease_s
        every = max(0.5, lease_s / 3)
        waited = 0.0
        while not self._stop.wait(1.0):
            waited += 1.0
            if STOPPING.is_set():
                self._halt(WORKER_STOPPING)
                return
            try:
                if self.rt.store.sweep_status(self.sweep) == SweepStatus.CANCELLED:
                    self._halt(SWEEP_CANCELLED)
                    return
                if waited >= every:
                    waited = 0.0
                    began = time.monotonic()
                    for group_id in list(self.held):
                        if not self.rt.leases.renew(group_id, self.rt.name, lease_s):
                            self._halt(f"lease of group {group_id} lost: another worker took it over")
                            return
                    for host, owner in list(self.sut.items()):
                        if not self.rt.sut_leases.renew(host, owner, lease_s):
                            self._halt(f"lease of SUT host {host} lost: another worker took it over")
                            return
                    self.renewed = began
            except StoreError as exc:  # the database is away: keep working, results are retried
                log.warning("heartbeat could not reach the store: %s", exc)

    def _halt(self, reason: str) -> None:
        self.reason = reason
        self.cancel.set()


def run_groups(rt: Runtime, sweep: str, group_ids: list[str],
               after_group: Callable[[LoadedSweep], object] | None = None) -> dict[str, int]:
    """Claim the groups, then execute each in turn; returns counts of cell outcomes. ``after_group`` runs after
    each group is released (a capacity search adds its next probes there).

    Whatever happens to one group, the others still run, and every group is released with its cells' state:
    finished, failed, or handed back (with the reason) for another attempt within FARM_MAX_ATTEMPTS.
    """
    counts: dict[str, int] = {}
    if rt.store.sweep_status(sweep) == SweepStatus.CANCELLED:
        return counts
    held = {g for g in group_ids if rt.leases.claim(g, rt.name, rt.settings.lease_s)}
    if not held:
        return {"not claimed": len(group_ids)}
    cancel = threading.Event()
    with Heartbeat(rt, sweep, held, cancel) as beat:
        try:
            loaded = rt.sweep(sweep)
            ctx = ExecutionContext(store=rt.store, driver=rt.driver, runner=rt.runner, host=rt.host,
                                   artefacts=rt.settings.artefacts_dir, ready_timeout_s=rt.settings.ready_timeout_s,
                                   cancel=cancel, stop_when=loaded.spec.stop_when)
            for group_id in [g for g in group_ids if g in held]:
                error: str | None = None
                holder: Holder | None = None
                try:
                    attempt = rt.leases.begin_attempt(group_id, rt.name)
                    if not attempt:
                        log.error("group %s: no attempt left; its unfinished cells failed", group_id)
                        continue
                    holder = Holder(rt.name, attempt)
                    with _stack_place(rt, loaded, group_id, beat, attempt) as (driver, host):
                        outcome = execute_group(dataclasses.replace(ctx, driver=driver, host=host, holder=holder),
                                                loaded, group_id)
                    error = outcome.retry
                    for status, n in outcome.counts.items():
                        counts[status] = counts.get(status, 0) + n
                except CancelledError:
                    if beat.reason != SWEEP_CANCELLED:  # not the user's cancel: its cells run again elsewhere
                        rt.store.requeue_cancelled(group_id, holder)
                        error = "its worker was stopped" if beat.reason == WORKER_STOPPING else beat.reason
                    raise
                except Exception as exc:  # the store is away, or worse: this attempt ends, the next may work
                    error = describe(exc)[1]
                    log.error("group %s: %s", group_id, error)
                finally:
                    rt.leases.release(group_id, rt.name, error)
                    held.discard(group_id)
                _after(after_group, loaded)
        except CancelledError:
            log.info("stopped: %s", beat.reason)
            if beat.reason == SWEEP_CANCELLED:
                rt.store.cancel(sweep)
        except Exception as exc:  # e.g. the sweep's stack is not on this host: each held group uses an attempt
            error = describe(exc)[1]
            log.error("sweep %s: %s", sweep, error)
            for group_id in list(held):
                if rt.leases.begin_attempt(group_id, rt.name):
                    rt.leases.release(group_id, rt.name, error)
                held.discard(group_id)
        finally:
            for group_id in list(held):  # never started: hand back at once
                rt.leases.release(group_id, rt.name)
    rt.store.settle(sweep)
    return counts


def _after(hook: Callable[[LoadedSweep], object] | None, loaded: LoadedSweep) -> None:
    """Run the after-group hook; its failure is logged, never the group's (the next caller retries the step)."""
    if hook is None:
        return
    try:
        hook(loaded)
    except Exception as exc:
        log.error("after group of %s: %s", loaded.spec.name, describe(exc)[1])


@contextmanager
def _stack_place(rt: Runtime, loaded: LoadedSweep, group_id: str, beat: Heartbeat,
                 attempt: int = 1) -> Iterator[tuple[StackDriver, dict[str, Any]]]:
    """Where the group's stack runs (`farm.stacks.place`): here as processes, or on a free SUT host of the sweep
    (leased meanwhile, and cleared first of every farm deployment no live lease owns)."""
    with _sut_lease(rt, loaded, group_id, beat, attempt) as sut:
        driver = place.choose(rt.settings, sut, rt.driver)
        if sut is not None and isinstance(driver, ComposeDriver):
            _clean_strays(driver, sut)
        yield driver, place.host_facts(driver, rt.host)


def _clean_strays(driver: ComposeDriver, sut: SutHost) -> None:
    """Remove every farm deployment no live lease owns from the SUT host just leased (a lost worker's, or one whose
    teardown failed). When that fails (Docker or SSH not answering), the group's provisioning on the host fails
    next with its own message, as a provision failure of its cells."""
    try:
        for stray in driver.clean_strays():
            log.warning("removed deployment %s from %s: no live lease owned it", stray, sut.name)
    except FarmError as exc:
        log.warning("could not clear %s of stray deployments: %s", sut.name, describe(exc)[1])


@contextmanager
def _sut_lease(rt: Runtime, loaded: LoadedSweep, group_id: str, beat: Heartbeat,
               attempt: int = 1) -> Iterator[SutHost | None]:
    """A free SUT host of the sweep's `sut:`, leased to this attempt of the group until the block ends (None
    without `sut:`)."""
    if loaded.spec.sut is None:
        yield None
        return
    hosts = rt.sut_hosts()
    missing = [h for h in loaded.spec.sut.hosts if h not in hosts]
    if missing:
        raise SpecError(f"SUT host(s) {', '.join(missing)} not in {rt.settings.hosts_file} on worker {rt.name}",
                        hint="add them to the hosts file (FARM_HOSTS_FILE) on every generator")
    lease_s = rt.settings.lease_s
    owner = f"{rt.name} attempt {attempt}"
    waited_since = time.monotonic()
    while (name := rt.sut_leases.claim(loaded.spec.sut.hosts, group_id, owner, lease_s)) is None:
        if beat.cancel.is_set():
            raise CancelledError("cancelled while waiting for a free SUT host")
        if time.monotonic() - waited_since > 5:
            log.info("group %s waits for a free SUT host among %s", group_id, ", ".join(loaded.spec.sut.hosts))
            waited_since = time.monotonic()
        time.sleep(1.0)
    beat.sut[name] = owner
    try:
        yield hosts[name]
    finally:
        beat.sut.pop(name, None)
        rt.sut_leases.release(name, owner)
