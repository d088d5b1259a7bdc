"""A stored sweep loaded again: rebuilt from its stored model dump (its YAML text is not read again), with its
stack and locustfile resolved here."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from farm.spec import LoadedSweep, rebuild_sweep


class StoredSweeps(Protocol):
    """What loading a stored sweep reads from the store."""

    def sweep_spec(self, name: str) -> tuple[dict[str, object], str]:
        """The stored spec, as a model dump and as text."""
        ...

    def sweep_source(self, name: str) -> Path | None:
        """The sweep file as submitted (absolute)."""
        ...


def stored_sweep(store: StoredSweeps, name: str, stacks_dir: Path | None = None) -> LoadedSweep:
    """The sweep as submitted, rebuilt here from its stored spec (its stack must exist on this host; SpecError if
    not).

    Relative stack and locustfile paths resolve from the submitted file's folder when this host has it (one
    machine, a shared folder), else from the working folder."""
    dump, text = store.sweep_spec(name)
    source = store.sweep_source(name)
    here = source is not None and source.is_file()
    return rebuild_sweep(dict(dump), text, source=str(source) if here else f"sweep '{name}'",
                         base=source.parent if source is not None and here else Path.cwd(), stacks_dir=stacks_dir)
