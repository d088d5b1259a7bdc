"""Who owns a deployment, and whether it still lives: the record both drivers keep beside each deployment.

Each deployment's state file (in ``<root>/<name>/``) names its owner: the process that started it, with its start
time and command line (a pid alone is reused by the kernel). A worker's start-up clean-up removes only the
deployments whose owner is gone, never another live worker's; a deployment started by hand (`farm stack up`)
records no owner and is left to `farm stack down`.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from farm import files


def process_identity(pid: int) -> dict[str, Any]:
    """What identifies a process beyond its pid (which the kernel reuses): its start time.

    A stack process's command line is added once the stack is ready (`record_command_lines`): right after the
    fork it is still the parent's, and programs such as nginx retitle themselves while they start.
    """
    return {"pid": pid, "created": psutil.Process(pid).create_time()}


def owner_record() -> dict[str, Any]:
    """This process, as the owner of the deployments it starts."""
    return {**process_identity(os.getpid()), "cmdline": psutil.Process().cmdline()}


def record_command_lines(procs: list[dict[str, Any]]) -> None:
    """Add each running process's command line to its record."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc["cmdline"] = psutil.Process(proc["pid"]).cmdline()


def same_process(recorded: dict[str, Any], *, leader: bool = True) -> bool:
    """Whether the recorded process still runs: same pid and start time, and the same command line if one was
    recorded; a process we started (``leader``) leads its own session, so it must still."""
    try:
        pid = int(recorded["pid"])
        proc = psutil.Process(pid)
        if abs(proc.create_time() - float(recorded["created"])) >= 0.01:
            return False
        if proc.status() == psutil.STATUS_ZOMBIE:  # its pid cannot be reused while it is one
            # A killed owner nobody reaped is dead; an exited group leader is not: its group may live on.
            return leader
        if "cmdline" in recorded and proc.cmdline() != list(recorded["cmdline"]):
            return False
        return not leader or os.getsid(pid) == pid
    except (psutil.Error, OSError, KeyError, TypeError, ValueError):
        return False


def owner_alive(owner: dict[str, Any]) -> bool:
    """Whether a deployment's recorded owner still runs."""
    return same_process(owner, leader=False)


def read_state(path: Path) -> dict[str, Any]:
    """A deployment's state file ({} when unreadable; the old local format, a bare list of processes, is read
    too)."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if isinstance(state, list):
        return {"owner": None, "procs": state}
    return state if isinstance(state, dict) else {}


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace a deployment's state file at once (a crash leaves the old one or the new one, never half)."""
    tmp = path.with_name(path.name + ".tmp")
    files.write_text(tmp, json.dumps(state))
    tmp.replace(path)


def dead_deployments(root: Path, state_file: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The deployments recorded under ``root`` whose owner is gone, each (name, state); those without an owner
    (started by hand) are not among them."""
    if not root.is_dir():
        return
    for path in sorted(root.glob(f"*/{state_file}")):
        state = read_state(path)
        owner = state.get("owner")
        if isinstance(owner, dict) and owner and not owner_alive(owner):
            yield path.parent.name, state
