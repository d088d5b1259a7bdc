"""Setup steps in the local driver, with real processes: order, failure, timeout, and nothing left behind."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil
import pytest

from farm.errors import ProvisionError, ToolMissingError
from farm.stacks.local import LocalDriver
from farm.stacks.manifest import load_manifest
from tests.conftest import stray_processes

pytestmark = pytest.mark.integration

# A step that records, in order, whether the database and the app accept connections while it runs.
PROBE = ("import socket, sys\n"
         "def up(port):\n"
         "    try:\n"
         "        socket.create_connection(('127.0.0.1', port), 1).close(); return 'up'\n"
         "    except OSError: return 'down'\n"
         "with open(sys.argv[1], 'a') as out:\n"
         "    out.write(f'{sys.argv[2]} db={up(int(sys.argv[3]))} app={up(int(sys.argv[4]))}\\n')\n")
STACK = """\
name: steps
locustfile: scenario.py
health: /
local:
  entry: app
  services:
    - name: db
      start: before-setup
      ready:
        command: [{python}, -c, "import socket; socket.create_connection(('127.0.0.1', {{{{ port }}}}), 1)"]
      command: [{python}, -m, http.server, --bind, 127.0.0.1, "{{{{ port }}}}"]
    - name: app
      command: [{python}, -m, http.server, --bind, 127.0.0.1, "{{{{ port }}}}"]
      instance: true
  setup:
{steps}
"""


def stack(tmp_path: Path, steps: str) -> Path:
    folder = tmp_path / "stack"
    folder.mkdir()
    (folder / "probe.py").write_text(PROBE)
    (folder / "stack.yaml").write_text(STACK.format(python=sys.executable, steps=steps))
    return folder


def probe_step(name: str) -> str:
    return (f'    - name: {name}\n      command: ["{{{{ python }}}}", "{{{{ stack_dir }}}}/probe.py", '
            f'"{{{{ workdir }}}}/order.txt", {name}, "{{{{ services.db[0].port }}}}", '
            f'"{{{{ services.app[0].port }}}}"]\n')


def test_steps_run_in_order_between_the_early_services_and_the_others(tmp_path: Path) -> None:
    # Given a stack whose database starts before two setup steps, and an app after them
    manifest = load_manifest(stack(tmp_path, probe_step("schema") + probe_step("seed")))
    driver = LocalDriver(tmp_path / "deployments")
    # When it is brought up and made ready
    deployment = driver.up(manifest, {"instances": 1}, "d")
    try:
        driver.ready(deployment, time.monotonic() + 20)
        # Then each step ran once, in order, with the database up and the app not yet started
        order = (deployment.workdir / "order.txt").read_text().splitlines()
        assert order == ["schema db=up app=down", "seed db=up app=down"]
        # And the steps' processes are no longer recorded; the two services are
        assert sorted(driver.pids(deployment)) == ["app", "db"]
        # And a second readiness check (the farm's alive check) runs no step again
        driver.ready(deployment, time.monotonic() + 5)
        assert len((deployment.workdir / "order.txt").read_text().splitlines()) == 2
    finally:
        driver.down(deployment)
    assert stray_processes(str(tmp_path)) == []


def test_a_failing_step_fails_the_provisioning_naming_it_and_its_output(tmp_path: Path) -> None:
    failing = ('    - name: migrate\n      command: [sh, -c, "echo applying 0001; echo no such table: posts >&2; '
               'exit 3"]\n')
    manifest = load_manifest(stack(tmp_path, probe_step("schema") + failing + probe_step("seed")))
    driver = LocalDriver(tmp_path / "deployments")
    # When it is brought up, then one line names the step, its exit code and the tail of its output
    with pytest.raises(ProvisionError) as caught:
        driver.up(manifest, {"instances": 1}, "d")
    assert caught.value.message == ("setup step 'migrate' failed with exit code 3: applying 0001 | "
                                 "no such table: posts")
    # And the later step never ran, and the database started for setup is stopped
    assert (tmp_path / "deployments" / "d" / "order.txt").read_text() == "schema db=up app=down\n"
    assert stray_processes(str(tmp_path)) == []


def test_a_step_past_its_timeout_is_stopped_and_named(tmp_path: Path) -> None:
    # Given a step that would run for an hour (and says which process it is)
    pid_file = tmp_path / "seed.pid"
    slow = ('    - name: seed\n      timeout: 0.5\n'
            f'      command: [sh, -c, "echo $$ > {pid_file}; echo seeding; exec sleep 3600"]\n')
    manifest = load_manifest(stack(tmp_path, slow))
    driver = LocalDriver(tmp_path / "deployments")
    # When the stack is brought up, Then the step is named as past its timeout
    with pytest.raises(ProvisionError) as caught:
        driver.up(manifest, {"instances": 1}, "d")
    assert caught.value.message == "setup step 'seed' did not finish within 0.5 s: seeding"
    # And its process was stopped (not left to run, nor waited for)
    assert not psutil.pid_exists(int(pid_file.read_text())) or \
        psutil.Process(int(pid_file.read_text())).status() == psutil.STATUS_ZOMBIE
    assert stray_processes(str(tmp_path)) == []


def test_a_required_program_that_is_missing_is_named_before_anything_starts(tmp_path: Path) -> None:
    folder = stack(tmp_path, probe_step("schema"))
    text = (folder / "stack.yaml").read_text().replace("  entry: app\n", "  entry: app\n  requires: [no-such-db-xyz]\n")
    (folder / "stack.yaml").write_text(text)
    with pytest.raises(ToolMissingError) as caught:
        LocalDriver(tmp_path / "deployments").up(load_manifest(folder), {"instances": 1}, "d")
    assert caught.value.message == "stack 'steps' needs 'no-such-db-xyz', which is not installed"
    assert not (tmp_path / "deployments" / "d" / "order.txt").exists()
