"""What `farm serve` reads beside the store (whose reads are `farm.store.views`): a cell's Locust report from
this machine's artefacts folder."""

from __future__ import annotations

from pathlib import Path


def locust_report(artefacts_dir: Path, name: str, cell_id: str) -> Path | None:
    """The cell's Locust HTML report under this machine's artefacts folder, where the farm writes it; never a path
    taken from the store (a cell that ran elsewhere has its report on its own host)."""
    root = artefacts_dir.resolve()
    path = (root / name / cell_id / "locust.html").resolve()  # symlinks resolved: it must stay inside the root
    return path if path.is_relative_to(root) and path.is_file() else None
