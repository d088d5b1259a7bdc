"""A lab for ansible/site.yml on one box: hosts reached over SSH, an inventory, and ansible-playbook runs.

The generators are network namespaces (10.216.N.0/30 links to the box, N chosen free so that other tests' labs on
10.213.N and SUT hosts on 10.214/10.215 never collide) with their own sshd; the controller is this box, reached
through an sshd on loopback; the SUT host is tests/integration/sut.py's namespace with dockerd and sshd.
Every host's `farm_root` is its own folder below one lab folder: the namespaces share the box's filesystem.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.lab import Host, namespaces

ANSIBLE_DIR = Path(__file__).resolve().parents[2] / "ansible"
BIN = Path(sys.executable).parent  # ansible-playbook and ansible-lint come with the dev extras
SUBNET = "10.216"
_RECAP = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$", re.MULTILINE)


def program(name: str) -> str:
    """The path of an Ansible program installed beside this Python."""
    return str(BIN / name)


def _sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def generator_namespaces(names: list[str]) -> contextlib.AbstractContextManager[list[Host]]:
    """One network namespace per name, each linked to the box on a free 10.216.N.0/30; `Host.address` is the
    box's side of the link."""
    return namespaces(len(names), names=names, prefix=SUBNET)


def guest_address(host: Host) -> str:
    """The namespace's own address on its link to the box."""
    return host.address.rsplit(".", 1)[0] + ".2"


@dataclass
class PlaybookRun:
    """One ansible-playbook run: its exit status, its output, and the PLAY RECAP's counts per host."""

    returncode: int
    output: str
    recap: dict[str, dict[str, int]] = field(default_factory=dict)

    def changed(self) -> dict[str, int]:
        """Tasks reported changed, per host."""
        return {host: counts.get("changed", 0) for host, counts in self.recap.items()}

    def changed_tasks(self) -> list[str]:
        """The `changed: [host]` lines with the task they follow (to say which task was not idempotent)."""
        lines, task = [], ""
        for line in self.output.splitlines():
            if line.startswith("TASK ["):
                task = line
            elif line.startswith("changed:"):
                lines.append(f"{task} {line}")
        return lines


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """``{host: {"ok": n, "changed": n, ...}}`` from ansible-playbook's PLAY RECAP."""
    tail = output.rsplit("PLAY RECAP", 1)[-1] if "PLAY RECAP" in output else ""
    return {m["host"]: {k: int(v) for k, v in (pair.split("=") for pair in m["counts"].split())}
            for m in _RECAP.finditer(tail)}


def ansible_env(root: Path) -> dict[str, str]:
    """Environment for Ansible's programs: the repo's ansible.cfg, state and SSH sockets in the lab folder."""
    return {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"), "ANSIBLE_HOME": str(root / ".ansible"),
            "ANSIBLE_LOCAL_TEMP": str(root / ".ansible" / "tmp"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(root / ".ansible" / "cp"), "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1", "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}


def run_playbook(root: Path, inventory: Path, playbook: str = "site.yml", *extra: str,
                 timeout: float = 900) -> PlaybookRun:
    """``ansible-playbook -i INVENTORY PLAYBOOK`` from ansible/, as the README says (output in root/ansible-N.log)."""
    log = root / f"ansible-{len(list(root.glob('ansible-*.log'))) + 1}.log"
    with log.open("w") as handle:
        done = subprocess.run([program("ansible-playbook"), "-i", str(inventory), playbook, *extra],
                              cwd=ANSIBLE_DIR, env=ansible_env(root), stdout=handle, stderr=subprocess.STDOUT,
                              timeout=timeout)
    output = log.read_text()
    return PlaybookRun(done.returncode, output, parse_recap(output))


def close_ssh_masters(root: Path) -> None:
    """End the SSH connections Ansible keeps open (ControlPersist) to the lab's hosts."""
    for socket in (root / ".ansible" / "cp").glob("*"):
        subprocess.run(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "lab"], capture_output=True, timeout=30)


def read_env_file(path: Path) -> dict[str, str]:
    """The KEY=value lines of an env file the roles wrote (values shell-quoted)."""
    env = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env
