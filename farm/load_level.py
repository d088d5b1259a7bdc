"""The load axis of a sweep: closed-loop users, or an open-loop rate of requests per second offered.

`load_kind` is the one rule that decides which (the sweep's matrix holds ``users`` or ``rate``, never both); the
spec and the plan apply it, and everything else reads the `LoadLevel` they give. Free of pydantic: the lean
report path reads it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

LoadKind = Literal["users", "rate"]
USERS: LoadKind = "users"
RATE: LoadKind = "rate"
KINDS: tuple[LoadKind, ...] = (USERS, RATE)
UNITS: dict[LoadKind, str] = {USERS: "users", RATE: "req/s offered"}


def load_kind(keys: Collection[str] | None) -> LoadKind:
    """The load axis of a matrix (or of a cell's parameters, or a frame's columns): ``rate`` where a rate is
    offered and no users are given, else ``users``."""
    if keys is None:
        return USERS
    return RATE if RATE in keys and USERS not in keys else USERS


@dataclass(frozen=True)
class LoadLevel:
    """One load level: ``kind`` users (closed loop) or rate (open loop, requests/s offered), its ``value``."""

    kind: LoadKind
    value: float

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> LoadLevel:
        """The load level of a cell's parameters."""
        kind = load_kind(params)
        return cls(kind, float(params[kind]))

    @property
    def unit(self) -> str:
        """``users``, or ``req/s offered``."""
        return UNITS[self.kind]

    @property
    def open_loop(self) -> bool:
        """Whether the load is a rate offered, whatever the response times (open loop)."""
        return self.kind == RATE

    @property
    def offered_rps(self) -> float | None:
        """The requests/s offered (open loop), or None for users."""
        return self.value if self.open_loop else None

    @property
    def users(self) -> int:
        """The users of a closed-loop level; 0 for a rate (the runner derives the users a rate needs)."""
        return 0 if self.open_loop else int(self.value)

    def __str__(self) -> str:
        """``40 users`` or ``200 req/s offered``."""
        return f"{self.value:g} {self.unit}"


class AtLoadLevel:
    """What a cell's parameters say of its load, for the plan's `Cell` and the store's `StoredCell` alike (each
    holds ``params``)."""

    params: Mapping[str, Any]

    @property
    def level(self) -> LoadLevel:
        """The cell's load level: its users, or the requests/s it offers."""
        return LoadLevel.of(self.params)

    @property
    def users(self) -> int:
        """Simulated users; 0 with open-loop load (the runner derives them from the rate)."""
        return self.level.users

    @property
    def load(self) -> float:
        """The value of the cell's load level: its users, or the requests/s it offers."""
        return self.level.value

    @property
    def instances(self) -> int:
        """App instances of the cell's configuration."""
        return int(self.params.get("instances", 1))
