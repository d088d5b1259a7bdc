"""Executing a task's groups on this host: claim each by lease, keep the lease alive, stop on cancel."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from farm.errors import CancelledError, StoreError
from farm.execute import ExecutionContext, execute_group
from workers.runtime import Runtime

log = logging.getLogger("loadfarm.worker")


class Heartbeat:
    """Renews a group's lease and watches for a cancelled sweep; sets ``cancel`` when either says stop."""

    def __init__(self, rt: Runtime, sweep: str, group_id: str, cancel: threading.Event) -> None:
        self.rt, self.sweep, self.group_id, self.cancel = rt, sweep, group_id, cancel
        self.reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{group_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object | TracebackType) -> None:
        self._stop.set()
        self._thread.join(5)

    def _beat(self) -> None:
        lease_s = self.rt.settings.lease_s
        every = max(0.5, lease_s / 3)
        waited = 0.0
        while not self._stop.wait(1.0):
            waited += 1.0
            try:
                if self.rt.store.sweep_status(self.sweep) == "cancelled":
                    self._halt("sweep cancelled")
                    return
                if waited >= every:
                    waited = 0.0
                    if not self.rt.leases.renew(self.group_id, self.rt.name, lease_s):
                        self._halt("lease lost: another worker took the group over")
                        return
            except StoreError as exc:  # the database is away: keep working, results are retried
                log.warning("heartbeat could not reach the store: %s", exc)

    def _halt(self, reason: str) -> None:
        self.reason = reason
        self.cancel.set()


def run_groups(rt: Runtime, sweep: str, group_ids: list[str]) -> dict[str, int]:
    """Claim and execute each group in turn; returns counts of cell outcomes (skipped groups count as 'claimed')."""
    counts: dict[str, int] = {}
    loaded = rt.sweep(sweep)
    for group_id in group_ids:
        if rt.store.sweep_status(sweep) == "cancelled":
            break
        if not rt.leases.claim(group_id, rt.name, rt.settings.lease_s):
            counts["not claimed"] = counts.get("not claimed", 0) + 1
            continue
        cancel = threading.Event()
        ctx = ExecutionContext(store=rt.store, driver=rt.driver, runner=rt.runner, host=rt.host,
                               artefacts=rt.settings.artefacts_dir, ready_timeout_s=rt.settings.ready_timeout_s,
                               cancel=cancel, stop_when=loaded.spec.stop_when)
        with Heartbeat(rt, sweep, group_id, cancel) as beat:
            try:
                for status, n in execute_group(ctx, loaded, group_id).items():
                    counts[status] = counts.get(status, 0) + n
            except CancelledError:
                log.info("group %s stopped: %s", group_id, beat.reason)
                if beat.reason == "sweep cancelled":
                    rt.store.cancel(sweep)
            finally:
                rt.leases.release(group_id, rt.name)
    return counts
