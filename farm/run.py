"""`farm run`: validate, plan, store, then execute every unfinished group on this machine."""

from __future__ import annotations

from dataclasses import dataclass

from farm.execute import ExecutionContext, execute_group
from farm.plan import expand
from farm.spec import LoadedSweep
from farm.store.repository import Store, SweepInfo


@dataclass(frozen=True)
class RunSummary:
    """How a run ended: the sweep and its cells by status."""

    sweep: SweepInfo
    ran: int

    @property
    def failed(self) -> int:
        """Cells that ended failed."""
        return self.sweep.counts.get("failed", 0)


def prepare(store: Store, loaded: LoadedSweep) -> SweepInfo:
    """Store the sweep and its planned cells, or find it again when the same spec was stored before."""
    return store.create_or_resume(loaded, expand(loaded.spec, loaded.manifest))


def run_sweep(ctx: ExecutionContext, loaded: LoadedSweep, sweep: SweepInfo) -> RunSummary:
    """Execute every group that has unfinished cells, in plan order, and record the sweep's status."""
    ran = 0
    ctx.store.set_sweep_status(sweep.id, "running")
    try:
        for group_id in ctx.store.unfinished_groups(sweep.id):
            ran += sum(execute_group(ctx, loaded, group_id).values())
    except BaseException:
        ctx.store.set_sweep_status(sweep.id, "interrupted")
        raise
    final = ctx.store.sweep(sweep.name)
    ctx.store.set_sweep_status(sweep.id, "failed" if final.counts.get("failed") else "done")
    return RunSummary(ctx.store.sweep(sweep.name), ran)
