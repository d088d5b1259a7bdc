"""ansible/site.yml for real: lint and syntax, then a lab provisioned over SSH, run twice, that completes a sweep.

The lab: the controller is this box (an sshd on loopback; Redis, PostgreSQL and Flower run here as the controller
role's services), two generators are network namespaces with their own sshd, and the SUT host is a namespace with
its own dockerd and sshd (tests/integration/sut.py). Ansible reaches every host over SSH with strict host keys.

What this machine cannot exercise, and what stands in for it:
- systemd is not PID 1 here, so the roles' systemd units (unit files, `systemctl enable/restart`, stopping
  Debian's own redis-server/postgresql units, starting docker.service) stay unexercised; the documented fallback,
  a start-stop-daemon supervisor per service that restarts its process on exit, is what runs and is checked
  (a worker killed with SIGKILL comes back).
- Debian packages: the namespaces share the box's filesystem, so the apt tasks find the box's packages installed
  and change nothing; installing them on a bare machine is not exercised. The SUT host's dockerd and Compose
  plugin are the fixture's; the role checks that both answer.
- The SUT host's farm user is root (the fixture's sshd logs root in, and creating a user would change the box's
  /etc/passwd): the `user` task is skipped; the farm's own key is what logs the generators in. Flower, farm serve
  and the workers run as root here too (farm_service_account): the venvs' Python is this test's, under /root, which
  no other user may read. Their systemd units (User=, the account the roles create) are rendered and checked by
  `systemd-analyze verify` in a test of their own.
- The three hosts share one venv (farm_venv) to keep the file within its time budget (one 40 s install instead of
  three); everything host-specific (env files, pidfiles, logs, keys, known_hosts, hosts files) is per farm_root.
  That venv is kept between runs on one machine (`cached_venv`, keyed by pyproject.toml's dependencies and the
  Python): the dependencies are installed once, and every run's playbook reinstalls Loadfarm itself from its new
  wheelhouse (the role's "Reinstall Loadfarm itself when the wheelhouse changed"), so the lab runs the code under
  test. With the venv warm, that wheelhouse holds Loadfarm's wheel alone (farm_wheelhouse_dependencies: false);
  a cold run builds, copies and installs the whole ~130 MB one, as a new lab does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import jinja2
import psutil
import pytest
import yaml

from farm.stacks.probe import free_port
from tests.conftest import stray_processes
from tests.integration.ansible_lab import (
    ANSIBLE_DIR,
    SUBNET,
    ansible_env,
    close_ssh_masters,
    generator_namespaces,
    guest_address,
    parse_recap,
    program,
    read_env_file,
    run_playbook,
)
from tests.integration.conftest import require
from tests.integration.lab import Host
from tests.integration.sshd import Sshd, sshd
from tests.integration.sut import SutHost, SutHostFixture, base_image_cache, base_image_tarball, require_sut_host

pytestmark = [pytest.mark.integration]
T = TypeVar("T")
__all__ = ["base_image_tarball"]

SWEEP = """
name: ansible-lab
stack: shop
matrix:
  architecture: [monolith]
  cache: [none, local]
  users: [2]
load: {spawn_rate: 10, duration: 2s, warmup: 1s}
sut: {hosts: [sutA], driver: compose}
targets: [lab1, lab2]
"""


def require_ansible() -> None:
    """ansible-playbook and ansible-lint (the dev extras): skip on a laptop without them, fail in CI."""
    for name in ("ansible-playbook", "ansible-lint"):
        if not Path(program(name)).exists():
            message = f"{name} is not installed (pip install -e '.[dev]')"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)


def test_every_playbook_passes_ansible_lint_and_the_syntax_check(tmp_path: Path) -> None:
    require_ansible()
    # Given the playbooks in ansible/ and the example inventory
    playbooks = sorted(p.name for p in ANSIBLE_DIR.glob("*.yml"))
    assert "site.yml" in playbooks
    env = ansible_env(tmp_path)
    # When ansible-lint (the production profile, .ansible-lint) runs on the folder, and --syntax-check on each (the
    # timeouts only catch a hang: lint takes ~10 s on a quiet machine, 3 min was seen under a load of 70)
    lint = subprocess.run([program("ansible-lint"), "--nocolor"], cwd=ANSIBLE_DIR, env=env,
                          capture_output=True, text=True, timeout=900)
    checks = [subprocess.run([program("ansible-playbook"), "-i", "inventory.example", "--syntax-check", name],
                             cwd=ANSIBLE_DIR, env=env, capture_output=True, text=True, timeout=300)
              for name in playbooks]
    # Then both pass
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-2000:]
    assert "Profile 'production' was required, and it passed" in lint.stdout + lint.stderr
    for name, check in zip(playbooks, checks, strict=True):
        assert check.returncode == 0, f"{name}: {check.stdout[-2000:]}{check.stderr[-2000:]}"


def test_flower_serve_and_the_worker_run_unprivileged_under_systemd(tmp_path: Path) -> None:
    require_ansible()
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    # Given the roles' service definitions and their default account
    defaults = yaml.safe_load((ANSIBLE_DIR / "roles/farm_common/defaults/main.yml").read_text())
    service_defaults = yaml.safe_load((ANSIBLE_DIR / "roles/farm_service/defaults/main.yml").read_text())
    assert defaults["farm_service_account"] not in ("", "root")
    services = {}
    for tasks in ("controller/tasks/flower.yml", "controller/tasks/serve.yml", "generators/tasks/main.yml"):
        for task in yaml.safe_load((ANSIBLE_DIR / "roles" / tasks).read_text()):
            if task.get("ansible.builtin.include_role", {}).get("name") == "farm_service":
                services[task["vars"]["farm_service_name"]] = task["vars"]
    assert set(services) == {"flower", "serve", "worker"}
    template = jinja2.Environment(undefined=jinja2.StrictUndefined, trim_blocks=True)
    template.filters["quote"] = shlex.quote
    unit = template.from_string((ANSIBLE_DIR / "roles/farm_service/templates/unit.service.j2").read_text())
    for name, service in services.items():
        # When its systemd unit is rendered (the account and paths resolved as the roles resolve them)
        assert service["farm_service_user"] == "{{ farm_service_account }}", name
        path = tmp_path / f"loadfarm-{name}.service"
        env_file = tmp_path / f"{name}.env"
        env_file.write_text("")
        path.write_text(unit.render(
            ansible_managed="test", farm_service_description=name, farm_service_name=name,
            farm_service_user=defaults["farm_service_account"], farm_service_chdir=str(tmp_path),
            farm_service_env_file=str(env_file), farm_service_command=["/bin/true", name],
            **{k: service_defaults[k] for k in ("farm_service_stop_signal", "farm_service_stop_timeout",
                                                  "farm_service_respawn_delay_s", "farm_service_nofile")}))
        verified = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True,
                                  timeout=60)
        # Then systemd accepts it as it is, and it runs as the account, never gaining privileges
        assert verified.returncode == 0 and verified.stderr.strip() == "", verified.stderr
        lines = path.read_text().splitlines()
        assert f"User={defaults['farm_service_account']}" in lines and "NoNewPrivileges=yes" in lines, lines


@pytest.fixture
def lab_root() -> Iterator[Path]:
    """The lab's folder, readable by the postgres user (pytest's tmp_path is not), removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="farm-ansible-"))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        if not os.environ.get("LOADFARM_KEEP_LAB"):  # keep the logs to debug the roles
            shutil.rmtree(root, ignore_errors=True)


class LabVenv(NamedTuple):
    """The lab's shared venv, and whether it holds Loadfarm's dependencies already (a warm cache)."""

    path: Path
    warm: bool


@pytest.fixture
def cached_venv(lab_root: Path) -> Iterator[LabVenv]:
    """The lab's shared venv, kept between runs on this machine below the test cache (next to the base image),
    one per set of dependencies (pyproject.toml's) and Python; a run that holds its lock uses it, a second run at
    the same time gets a fresh one in the lab. The venv is kept once the playbook that installed into it ended
    without a failure on any host; any other ending (a failure, a timeout, a kill) leaves it to be made again."""
    python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    project = tomllib.loads((ANSIBLE_DIR.parent / "pyproject.toml").read_text())["project"]  # its dependencies only
    wanted = json.dumps([python, project.get("dependencies"), project.get("optional-dependencies")], sort_keys=True)
    key = hashlib.sha256(wanted.encode()).hexdigest()[:16]
    cache = base_image_cache() / f"ansible-venv-{key}"
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / "lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another run of this file on this machine uses it now
            yield LabVenv(lab_root / "venv", warm=False)
            return
        venv, complete = cache / "venv", cache / "complete"
        warm = complete.exists()
        if not warm:
            shutil.rmtree(venv, ignore_errors=True)
        complete.unlink(missing_ok=True)
        yield LabVenv(venv, warm)
        first = lab_root / "ansible-1.log"
        recap = parse_recap(first.read_text()) if first.exists() else {}
        if recap and all(c.get("failed", 0) == 0 and c.get("unreachable", 0) == 0 for c in recap.values()):
            complete.touch()


def stop_services(root: Path) -> None:
    """Stop every service the roles started (workers first), through their own supervisor scripts."""
    for service in ("worker", "serve", "flower", "postgres", "redis"):
        for script in sorted(root.glob(f"hosts/*/bin/{service}")):
            subprocess.run([str(script), "stop"], capture_output=True, timeout=180)


def http_status(url: str, auth: str | None = None) -> int:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str) -> T:
    """The predicate's first truthy value, polled every 0.5 s; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def worker_pids(farm_root: Path) -> list[int]:
    """The `farm worker` processes this lab's supervisor at FARM_ROOT started (not Celery's pool children, nor the
    workers of another lab or test on this machine that share the host's name)."""
    supervisor = str(farm_root / "bin" / "worker")
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if (proc.info["cmdline"] or [])[-2:] == [supervisor, "run"]:
                found += [child.pid for child in proc.children() if "worker" in child.cmdline()]
    return found


def write_inventory(root: Path, *, controller: Sshd, generators: list[tuple[Host, Sshd, str]], sut: SutHost,
                    secrets_: dict[str, str], ports: dict[str, int], venv: LabVenv) -> Path:
    """The lab's inventory (YAML): every host over SSH with its key and one strict known_hosts."""
    known_hosts = root / "known_hosts"
    controller.write_known_hosts(known_hosts)
    known_hosts.write_text(known_hosts.read_text() + sut.known_hosts.read_text())
    lab_addresses = [host.address for host, _server, _sut_address in generators]
    sshd_root = Path((sut.root / "sshd-root").read_text())  # the SUT host's sshd: its host key, authorized_keys

    def over_ssh(address: str, server: Sshd | SutHost) -> dict[str, object]:
        port, user = (server.port, server.user) if isinstance(server, Sshd) else (server.ssh_port, server.ssh_user)
        return {"ansible_host": address, "ansible_port": port, "ansible_user": user,
                "ansible_ssh_private_key_file": str(server.client_key)}

    hosts: dict[str, dict[str, dict[str, object]]] = {
        "controller": {"ctl": {
            **over_ssh("127.0.0.1", controller), "farm_lab_address": lab_addresses[0],
            "farm_listen_addresses": lab_addresses, "farm_postgres_clients": [f"{SUBNET}.0.0/16"],
            "farm_image_cache_dir": str(base_image_cache())}},
        "sut_hosts": {"sutA": {
            **over_ssh(sut.address, sut), "farm_sut_user": sut.ssh_user, "farm_sut_workdir": str(sut.root / "work"),
            "farm_sut_docker_host": sut.docker_host,
            "farm_sut_host_key_file": str(sshd_root / "ssh_host_ed25519_key.pub"),
            "farm_sut_authorized_keys_file": str(sshd_root / "authorized_keys")}},
        "generators": {},
    }
    for host, server, sut_address in generators:
        server.write_known_hosts(known_hosts)
        hosts["generators"][host.name] = {**over_ssh(guest_address(host), server),
                                          "farm_controller_address": host.address,
                                          "farm_sut_addresses": {"sutA": sut_address}}
    inventory = {"all": {
        "hosts": {"localhost": {"ansible_connection": "local",
                                "ansible_python_interpreter": "{{ ansible_playbook_python }}"}},
        "vars": {"ansible_ssh_common_args": f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes "
                                            "-o IdentitiesOnly=yes",
                 "farm_apt_update_cache": False,
                 "farm_root": str(root / "hosts" / "{{ inventory_hostname }}"), "farm_venv": str(venv.path),
                 # a warm venv has the dependencies: the wheelhouse carries Loadfarm's wheel alone (not ~130 MB
                 # copied to three hosts and unpacked there); a cold one gets them all, as on a new lab
                 "farm_wheelhouse_dependencies": not venv.warm,
                 # the venvs' Python is the one that builds the wheelhouse (python_full_version markers must agree)
                 "farm_python": os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
                 "farm_wheelhouse_archive": str(root / "build" / "wheelhouse.tar.gz"),
                 "farm_ssh_key_local": str(root / "build" / "farm_id_ed25519"),
                 "farm_pip_wheel_args": ["--no-build-isolation"], "farm_pip_install_args": ["--no-compile"],
                 "farm_redis_port": ports["redis"], "farm_postgres_port": ports["postgres"],
                 "farm_flower_port": ports["flower"], "farm_serve_port": ports["serve"],
                 "farm_service_account": "root",  # the venv's Python (this test's) lives under /root
                 # the addresses the SUT host sees the controller and each generator log in from
                 "farm_sut_ssh_from": [sut.box_address] + [f"{a.rsplit('.', 1)[0]}.2" for _h, _s, a in generators],
                 **secrets_},
        "children": {group: {"hosts": members} for group, members in hosts.items()}}}
    path = root / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory, sort_keys=False))
    return path


@pytest.mark.timeout(1200)  # a shared 2-core machine under load; alone it takes a few minutes
def test_site_yml_provisions_a_lab_idempotently_and_a_sweep_completes_there(
        lab_root: Path, cached_venv: LabVenv, base_image_tarball: Path) -> None:
    require_ansible()
    require_sut_host()
    require("redis-server", "apt-get install redis-server")
    root = lab_root
    secrets_ = {f"farm_{name}_password": secrets.token_hex(16) for name in ("redis", "postgres", "flower", "serve")}
    ports = {"redis": free_port(), "postgres": free_port(), "flower": free_port(), "serve": free_port()}
    with contextlib.ExitStack() as stack:
        # Given a controller (this box over SSH), a SUT host and two generators linked to both, each with its sshd
        sut = stack.enter_context(SutHostFixture(None))  # no base image yet: the playbook prepares it
        gens = stack.enter_context(generator_namespaces(["lab1", "lab2"]))
        controller = stack.enter_context(sshd())
        generators = []
        for host in gens:
            server = stack.enter_context(sshd(listen_address=guest_address(host),
                                              wrap=["ip", "netns", "exec", str(host.netns)]))
            generators.append((host, server, sut.connect(str(host.netns))))
        stack.callback(close_ssh_masters, root)
        stack.callback(stop_services, root)
        inventory = write_inventory(root, controller=controller, generators=generators, sut=sut,
                                    secrets_=secrets_, ports=ports, venv=cached_venv)

        # When site.yml runs, as the README says
        first = run_playbook(root, inventory)
        # Then every host is provisioned without a failure
        assert first.returncode == 0, first.output[-6000:]
        assert set(first.recap) == {"localhost", "ctl", "sutA", "lab1", "lab2"}, first.output[-3000:]
        assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in first.recap.values()), first.recap
        ctl_root, lab1_root = root / "hosts" / "ctl", root / "hosts" / "lab1"

        # And the services run under the supervisor, with their secrets in files of mode 0600, never on a command line
        for service_root, service in ((ctl_root, "redis"), (ctl_root, "postgres"), (ctl_root, "flower"),
                                      (ctl_root, "serve"),
                                      (lab1_root, "worker"), (root / "hosts" / "lab2", "worker")):
            status = subprocess.run([str(service_root / "bin" / service), "status"], capture_output=True, text=True)
            assert status.returncode == 0 and "running" in status.stdout, (service, status.stdout)
        for secret_file in (ctl_root / "redis" / "redis.conf", ctl_root / "farm.env", ctl_root / "flower.env",
                            ctl_root / "serve.env",
                            lab1_root / "worker.env", lab1_root / "ssh" / "id_ed25519"):
            assert secret_file.stat().st_mode & 0o777 == 0o600, secret_file
        command_lines = " ".join(" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"]))
        assert not any(password in command_lines for password in secrets_.values())

        # And Redis wants its password and keeps an append-only file; Flower wants basic auth off loopback
        import redis as redis_client

        lab_address = generators[0][0].address
        with pytest.raises(redis_client.AuthenticationError):
            redis_client.Redis(host=lab_address, port=ports["redis"]).ping()
        broker = redis_client.Redis(host=lab_address, port=ports["redis"], password=secrets_["farm_redis_password"])
        assert broker.config_get("appendonly") == {"appendonly": "yes"}
        broker.close()
        flower = f"http://{lab_address}:{ports['flower']}/"
        wait_for(lambda: http_status(flower) == 401, 60, "Flower to answer")
        assert http_status(flower, f"admin:{secrets_['farm_flower_password']}") == 200
        assert http_status(flower, "admin:wrong") == 401
        served = f"http://{lab_address}:{ports['serve']}/"
        serve_auth = f"admin:{secrets_['farm_serve_password']}"
        wait_for(lambda: http_status(served) == 401, 60, "farm serve to answer")
        assert http_status(served, serve_auth) == 200
        assert http_status(served, f"admin:{secrets_['farm_flower_password']}") == 401

        # And the farm-hosts.yaml each generator got names the SUT host as that generator reaches it
        hosts_file = yaml.safe_load((lab1_root / "farm-hosts.yaml").read_text())
        assert hosts_file["sut_hosts"]["sutA"]["ssh"] == f"{sut.ssh_user}@{generators[0][2]}:22"

        # And the farm's key logs in to the SUT host only from the lab's addresses, with no forwarding
        farm_key = ["ssh", "-F", "/dev/null", "-i", str(root / "build" / "farm_id_ed25519"), "-o", "IdentitiesOnly=yes",
                    "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
        [entry] = [line for line in (Path((sut.root / "sshd-root").read_text()) / "authorized_keys").read_text()
                   .splitlines() if line.endswith(" loadfarm")]
        assert entry.startswith(f'restrict,from="{sut.box_address},'), entry
        as_controller = [*farm_key, "-o", f"UserKnownHostsFile={sut.known_hosts}", f"{sut.ssh_user}@{sut.address}"]
        assert subprocess.run([*as_controller, "true"], capture_output=True, timeout=30).returncode == 0
        forwarded = subprocess.run([*as_controller, "-W", f"127.0.0.1:{sut.ssh_port}"], capture_output=True,
                                   text=True, timeout=30, input="")
        assert forwarded.returncode != 0 and "prohibited" in forwarded.stderr, forwarded.stderr
        from_elsewhere = subprocess.run(["ip", "netns", "exec", sut.netns, *farm_key, "-o", "StrictHostKeyChecking=no",
                                         "-o", "UserKnownHostsFile=/dev/null", f"{sut.ssh_user}@127.0.0.1", "true"],
                                        capture_output=True, text=True, timeout=30)
        assert from_elsewhere.returncode == 255 and "Permission denied" in from_elsewhere.stderr, from_elsewhere.stderr

        # And a worker killed with SIGKILL is started again by its supervisor
        [before] = wait_for(lambda: worker_pids(lab1_root), 60, "lab1's worker")
        os.kill(before, 9)
        [after] = wait_for(lambda: [p for p in worker_pids(lab1_root) if p != before], 60, "lab1's worker to restart")
        assert after != before

        # When site.yml runs again
        second = run_playbook(root, inventory)
        # Then nothing changes anywhere (idempotence)
        assert second.returncode == 0, second.output[-6000:]
        assert second.changed() == dict.fromkeys(first.recap, 0), "\n".join(second.changed_tasks())

        # When, from the controller, the hosts are checked and a sweep is submitted (the README's first steps)
        farm = str(cached_venv.path / "bin" / "farm")
        env = {**os.environ, **read_env_file(ctl_root / "farm.env")}
        check = subprocess.run([farm, "hosts", "check"], cwd=ctl_root, env=env, capture_output=True, text=True,
                               timeout=120)
        assert check.returncode == 0, check.stdout + check.stderr
        sweep = root / "sweep.yaml"
        sweep.write_text(SWEEP)
        submitted = subprocess.run([farm, "submit", str(sweep)], cwd=ctl_root, env=env, capture_output=True,
                                   text=True, timeout=120)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr

        def finished() -> list[dict[str, Any]] | None:
            done = subprocess.run([farm, "results", "ansible-lab", "-f", "json"], cwd=ctl_root, env=env,
                                  capture_output=True, text=True, timeout=60)
            cells = json.loads(done.stdout) if done.returncode == 0 else []
            return cells if cells and all(c["status"] in ("done", "failed") for c in cells) else None

        try:
            cells = wait_for(finished, 300, "the sweep")
        except AssertionError:
            logs = "\n".join(p.read_text()[-3000:] for p in root.glob("hosts/lab*/log/worker.log"))
            raise AssertionError(f"the sweep did not finish:\n{logs}") from None
        # Then every cell is done, the load came from both generators and the stack ran on the SUT host
        assert [c["status"] for c in cells] == ["done", "done"], [c.get("error") for c in cells]
        assert {c["host"] for c in cells} == {"lab1", "lab2"}
        assert {c["sut_host"] for c in cells} == {"sutA"}
        # And farm serve, beside Flower, shows the sweep from the lab's PostgreSQL store
        assert http_status(f"{served}sweeps/ansible-lab", serve_auth) == 200
        # And no password reached the workers' logs
        logs = " ".join(p.read_text() for p in root.glob("hosts/*/log/*.log"))
        assert not any(password in logs for password in secrets_.values())
    # And once the lab is taken down, nothing of it keeps running: its processes name the lab's folder or run in it
    # (the services' working folder is their farm_root); the cached venv is not this lab's alone (what a killed
    # earlier run left running from it would be reported here as this run's)
    deadline = time.monotonic() + 30
    while stray_processes(str(root)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stray_processes(str(root)) == []
