"""What `farm run` says about a capacity search: why each probe was added, as it is, and where each load ended."""

from __future__ import annotations

from typing import Any

from farm.store.views import probes


class ProbeFeed:
    """The reasons of a search's probes stored since the last look (one line per step, not per repetition)."""

    def __init__(self, store: Any, sweep_id: int) -> None:
        self.store, self.sweep_id = store, sweep_id
        self.seen: set[str] = set()
        self.said: set[str] = set()
        self.new()  # what was there before this run is not news

    def new(self) -> list[str]:
        """The reasons of probes added since the previous call, in the order they were added."""
        lines = []
        for cid, probe in probes(self.store, self.sweep_id):
            if cid in self.seen:
                continue
            self.seen.add(cid)
            text = (probe or {}).get("why") if isinstance(probe, dict) else None
            if text and int(probe.get("step", 0)) > 0 and text not in self.said:
                self.said.add(text)
                lines.append(f"search step {probe['step']}: {text}")
        return lines
