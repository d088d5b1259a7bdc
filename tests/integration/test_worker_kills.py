"""Two workers on one host sharing an artefacts folder, kill -9 of either at random moments: nothing is lost,
nothing is run twice, and a restarted worker's clean-up never touches the other worker's live stack."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.integration.conftest import require
from tests.integration.lab import Host, Worker
from tests.integration.test_lab import Lab, all_done, controller, one_result_per_cell

pytestmark = [pytest.mark.integration]

SWEEP = """
name: {name}
stack: sleepy
matrix:
  delay_ms: [5, 10, 15, 20]
  users: [2, 4]
load: {{spawn_rate: 10, duration: 2s, warmup: 1s}}
"""


@pytest.fixture
def one_host_lab(tmp_path: Path) -> Iterator[Lab]:
    require("redis-server", "apt-get install redis-server")
    hosts = [Host("w1", None, "127.0.0.1"), Host("w2", None, "127.0.0.1")]
    yield from controller(tmp_path, hosts, [])


def stacks_under(folder: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cwd", "status"]):
        try:
            if (proc.info["cwd"] or "").startswith(str(folder)) and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_kill_9_of_either_worker_at_random_moments_loses_no_cell_and_kills_no_live_stack(one_host_lab: Lab) -> None:
    lab = one_host_lab
    shared = lab.root / "shared-artefacts"
    workers: list[Worker] = []
    for host in lab.hosts:
        worker = Worker(host, lab.env(), lab.root)
        worker.env["FARM_ARTEFACTS_DIR"] = str(shared)  # both workers record their stacks in one folder
        workers.append(worker.start())
        lab.workers.append(worker)
    rng = random.Random(int(os.environ.get("FARM_TEST_SEED", "7")))
    for trial in range(3):
        name = f"kills{trial}"
        sweep = lab.root / f"{name}.yaml"
        sweep.write_text(SWEEP.format(name=name))
        assert lab.farm("submit", str(sweep)).returncode == 0
        # Given both workers in the middle of a group
        lab.wait_for(name, lambda cells: {c["host"] for c in cells if c["status"] == "running"} == {"w1", "w2"}, 120)
        time.sleep(rng.uniform(0.2, 3.0))
        # When one of them dies at once, at a random moment, and comes back
        victim = rng.choice(workers)
        victim.kill9()
        victim.start()
        # Then the sweep completes: every cell done, once
        cells = lab.wait(name, all_done, 240)
        assert len(cells) == 8
        one_result_per_cell(lab)
        assert not any(c["error"] for c in cells), [c["error"] for c in cells if c["error"]]
    # And the restarted workers' start-up clean-up never stopped a live stack of the other one
    logs = "\n".join(w.log.read_text() for w in workers)
    assert "the stack stopped answering" not in logs
    # And nothing is left running once the work is over
    for worker in workers:
        worker.stop()
    assert not stacks_under(shared / "deployments")
