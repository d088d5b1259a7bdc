"""The `local` StackDriver: the stack's recipe run as processes on this host, on free loopback ports."""

from __future__ import annotations

import contextlib
import getpass
import http.client
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import psutil

from farm import files
from farm.environment import child_environment
from farm.errors import ProvisionError, ReadinessError, ResetError, SpecError, ToolMissingError
from farm.stacks import contract, templates
from farm.stacks.cache_spec import ResetAction
from farm.stacks.driver import TOKEN_ENV, Deployment, Endpoint, StackMetrics, check_deployment_name, new_token
from farm.stacks.manifest import ReadyCommand, Scalar, Service, SetupStep, StackManifest
from farm.stacks.owner import (
    dead_deployments,
    owner_record,
    process_identity,
    read_state,
    record_command_lines,
    same_process,
    write_state,
)
from farm.stacks.probe import free_port, http_ok, poll_ready, tcp_open
from farm.stacks.redis_stats import local_redis_hits, with_cache
from farm.stacks.scaling import replicas_for
from farm.text import tail_file

HOST = "127.0.0.1"
STATE_FILE = "processes.json"
INSTALL_HINTS = {"nginx": "apt-get install nginx-light", "redis-server": "apt-get install redis-server",
                 "mariadbd": "apt-get install mariadb-server", "mariadb": "apt-get install mariadb-client",
                 "mariadb-install-db": "apt-get install mariadb-server", "php": "apt-get install php-cli"}
SETUP_READY_TIMEOUT_S = 120.0  # the `start: before-setup` services' time to become ready


@dataclass(frozen=True)
class Rendered:
    """A local recipe rendered for one deployment: its replicas, each replica's and setup step's command, the
    readiness commands, and the deployment's token."""

    endpoints: list[Endpoint]
    plans: list[tuple[Service, Endpoint, list[str]]]
    steps: list[tuple[SetupStep, list[str]]]
    checks: dict[tuple[str, int], list[str]]
    token: str


class LocalDriver:
    """Runs each service replica as a process in its own session; records them so nothing outlives a crash.

    Each deployment's state file names its owner (the process that started it, with its start time). A worker's
    start-up cleanup (`clean_dead`) removes only deployments whose owner is gone, never another live worker's.
    ``owned=False`` (a stack started by hand with `farm stack up`) records no owner: only `farm stack down` or a
    new deployment of the same name stops it.
    """

    def __init__(self, root: Path, owned: bool = True) -> None:
        self.root = root
        self.owner = owner_record() if owned else None

    # ------------------------------------------------------------------------------------------ up
    def up(self, manifest: StackManifest, params: dict[str, Scalar], name: str) -> Deployment:
        """Render the recipe and start every replica (not yet ready).

        With setup steps, the ``start: before-setup`` services start first and must be ready within
        SETUP_READY_TIMEOUT_S; then each step runs in order; then the other services start.
        """
        check_deployment_name(name)
        recipe = manifest.local_recipe()
        self.clean(name)
        workdir = files.private_dir(files.private_dir(self.root) / name)
        rendered = self.render(manifest, params, workdir)
        plans, steps = rendered.plans, rendered.steps
        programs = [*recipe.requires, *(c[0] for _s, _e, c in plans), *(c[0] for _s, c in steps)]
        for program in dict.fromkeys(programs):
            if shutil.which(program) is None:
                hint = INSTALL_HINTS.get(program, "install it or put it on PATH")
                raise ToolMissingError(f"stack '{manifest.name}' needs '{program}', which is not installed",
                                       hint=hint)
        endpoints = rendered.endpoints
        entry = next(e for e in endpoints if e.service == recipe.entry)
        deployment = Deployment(name, manifest, params, entry, endpoints, workdir,
                                {"procs": [], "ready_commands": rendered.checks},
                                frozenset(s.name for s in recipe.services if s.instance), rendered.token)
        early = [p for p in plans if steps and p[0].start == "before-setup"]
        try:
            for service, endpoint, command in early:
                self._start(deployment, service, endpoint, command)
            if early:
                self._wait(deployment, [e for _s, e, _c in early], time.monotonic() + SETUP_READY_TIMEOUT_S)
            for step, command in steps:
                self._run_step(deployment, step, command)
            for service, endpoint, command in plans:
                if (service, endpoint, command) not in early:
                    self._start(deployment, service, endpoint, command)
        except BaseException:
            self.down(deployment)
            raise
        return deployment

    def render(self, manifest: StackManifest, params: dict[str, Scalar], workdir: Path) -> Rendered:
        """Give every replica its ports and render the recipe: commands, setup steps, readiness commands and
        files (written into ``workdir``); nothing starts."""
        recipe = manifest.local_recipe()
        services = [s for s in recipe.services if s.enabled(params)]
        context = self._context(manifest, params, workdir)
        endpoints = self._allocate(services, context, manifest.scalable)
        taken = {e.port for e in endpoints}
        extra = {(e.service, e.replica): {n: _distinct_port(taken) for n in s.ports} for s in services
                 for e in endpoints if e.service == s.name}
        context["services"] = {
            s.name: [{"host": e.host, "port": e.port, "url": e.url, "ports": extra[(e.service, e.replica)]}
                     for e in endpoints if e.service == s.name]
            for s in recipe.services
        }
        plans = [(s, e, self._render(s, e, {**context, "ports": extra[(e.service, e.replica)]}, workdir))
                 for s in services for e in endpoints if e.service == s.name]
        steps = [(step, self._render_step(step, context, workdir)) for step in recipe.setup
                 if step.enabled(params)]
        checks = {(e.service, e.replica): [_render_text(part, {**context, "port": e.port, "replica": e.replica})
                                           for part in s.ready.command]
                  for s, e, _c in plans if isinstance(s.ready, ReadyCommand)}
        return Rendered(endpoints, plans, steps, checks, context["token"])

    def _context(self, manifest: StackManifest, params: dict[str, Scalar], workdir: Path) -> dict[str, Any]:
        return {"params": params, "python": sys.executable, "stack_dir": str(manifest.folder.resolve()),
                "workdir": str(workdir.resolve()), "services": {}, "user": _user_name(), "token": new_token()}

    def _allocate(self, services: list[Service], context: dict[str, Any], scalable: Any) -> list[Endpoint]:
        endpoints: list[Endpoint] = []
        taken: set[int] = set()
        for service in services:
            try:  # a scalable service's count comes from the sweep (replicas.<name>, else instances)
                replicas = replicas_for(context["params"], service.name) if service.name in scalable else \
                    int(_render_text(str(service.replicas), context))
            except ValueError as exc:
                raise SpecError(f"service '{service.name}': replicas must render to a whole number") from exc
            endpoints += [Endpoint(service.name, i, HOST, _distinct_port(taken)) for i in range(max(1, replicas))]
        return endpoints

    def _render(self, service: Service, endpoint: Endpoint, context: dict[str, Any], workdir: Path) -> list[str]:
        local = {**context, "port": endpoint.port, "replica": endpoint.replica}
        local["files"] = _render_files(service.files, local, workdir, f"{service.name}-{endpoint.replica}",
                                       f"service '{service.name}'")
        return [_render_text(part, local) for part in service.command]

    def _render_step(self, step: SetupStep, context: dict[str, Any], workdir: Path) -> list[str]:
        local = dict(context)
        local["files"] = _render_files(step.files, local, workdir, f"setup-{step.name}", f"setup step '{step.name}'")
        return [_render_text(part, local) for part in step.command]

    def _run_step(self, deployment: Deployment, step: SetupStep, command: list[str]) -> None:
        """Run one setup step to its end; a non-zero exit or the step's timeout fails the provisioning."""
        log = deployment.workdir / f"setup-{step.name}.log"
        env = child_environment({**step.env, "PYTHONUNBUFFERED": "1", TOKEN_ENV: deployment.token})
        with files.open_log(log) as out:
            try:
                proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=deployment.workdir, env=env, start_new_session=True)
            except OSError as exc:
                raise ProvisionError(f"setup step '{step.name}' cannot start: {exc}") from exc
        record = {"service": f"setup:{step.name}", "replica": 0, **process_identity(proc.pid), "log": str(log),
                  "popen": proc}
        deployment.handles["procs"].append(record)  # so that a teardown (or a successor's clean-up) stops it
        self._save_state(deployment)
        try:
            code = proc.wait(step.timeout)
        except subprocess.TimeoutExpired:
            _terminate([record], grace=2.0)
            proc.wait()
            raise ProvisionError(f"setup step '{step.name}' did not finish within {step.timeout:g} s: "
                                 f"{tail_file(log, 3)}", hint=f"see {log}") from None
        finally:
            if proc.poll() is not None:
                deployment.handles["procs"].remove(record)
                self._save_state(deployment)
        if code != 0:
            raise ProvisionError(f"setup step '{step.name}' failed with exit code {code}: {tail_file(log, 3)}",
                                 hint=f"see {log}")

    def _start(self, deployment: Deployment, service: Service, endpoint: Endpoint, command: list[str]) -> None:
        log = deployment.workdir / f"{service.name}-{endpoint.replica}.log"
        env = child_environment({**service.env, "PYTHONUNBUFFERED": "1", TOKEN_ENV: deployment.token})
        with files.open_log(log) as out:
            try:
                proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=deployment.workdir, env=env, start_new_session=True)
            except OSError as exc:
                raise ProvisionError(f"cannot start {service.name}: {exc}") from exc
        deployment.handles["procs"].append({"service": service.name, "replica": endpoint.replica,
                                            **process_identity(proc.pid), "log": str(log), "popen": proc})
        self._save_state(deployment)

    def _save_state(self, deployment: Deployment) -> None:
        state = {"owner": self.owner,
                 "procs": [{k: v for k, v in p.items() if k != "popen"} for p in deployment.handles["procs"]]}
        write_state(deployment.workdir / STATE_FILE, state)

    # --------------------------------------------------------------------------------------- ready
    def ready(self, deployment: Deployment, deadline: float) -> None:
        """Poll every replica (TCP, HTTP health or a readiness command) until all answer; fail fast if a process
        exits."""
        self._wait(deployment, list(deployment.endpoints), deadline)
        if any("cmdline" not in p for p in deployment.handles["procs"]):
            record_command_lines(deployment.handles["procs"])
            self._save_state(deployment)

    def _wait(self, deployment: Deployment, endpoints: list[Endpoint], deadline: float) -> None:
        kinds = {s.name: s.ready for s in deployment.manifest.local_recipe().services}

        def still_waiting(waiting: list[Endpoint]) -> list[Endpoint]:
            self._check_alive(deployment)
            return [e for e in waiting if not self._answers(e, kinds[e.service], deployment)]

        def failure(waiting: list[Endpoint]) -> ReadinessError:
            names = ", ".join(f"{e.service}#{e.replica}" for e in waiting)
            return ReadinessError(f"not ready before the deadline: {names}",
                                  hint=f"see the logs in {deployment.workdir}")

        poll_ready(endpoints, still_waiting, deadline, failure, first_delay=0.02, max_delay=0.25)

    def _answers(self, endpoint: Endpoint, kind: str | ReadyCommand, deployment: Deployment) -> bool:
        if isinstance(kind, ReadyCommand):
            return self._command_ready(endpoint, kind, deployment)
        if kind == "tcp":
            return tcp_open(endpoint.host, endpoint.port)
        try:
            return http_ok(endpoint.url + deployment.manifest.health)
        except http.client.HTTPException:  # something that is not (yet) an HTTP server answered: not ready
            return False

    def _command_ready(self, endpoint: Endpoint, ready: ReadyCommand, deployment: Deployment) -> bool:
        command = deployment.handles["ready_commands"][(endpoint.service, endpoint.replica)]
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, cwd=deployment.workdir, timeout=ready.timeout,
                                  env=child_environment({}), start_new_session=True, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0

    def _check_alive(self, deployment: Deployment) -> None:
        for proc in deployment.handles["procs"]:
            code = proc["popen"].poll()
            if code is not None and proc["service"].startswith("setup:"):
                continue
            if code is not None:
                tail = tail_file(Path(proc["log"]), 3)
                raise ProvisionError(f"{proc['service']}#{proc['replica']} exited with code {code}: {tail}")

    def check_instances(self, deployment: Deployment) -> int:
        """The classic connectivity check: every instance answers its health URL; returns how many did."""
        return contract.check_instances(deployment)

    # ------------------------------------------------------------------------------- reset/metrics
    def reset(self, deployment: Deployment) -> None:
        """POST the manifest's reset path on every instance; any 2xx is success, the body is ignored."""
        if isinstance(deployment.manifest.reset, ResetAction):  # never a cell measured on an un-emptied cache
            raise ResetError("cache reset: `reset: {exec/restart}` runs in compose services, on a SUT host; the "
                             "process recipe resets through an HTTP path")
        contract.reset(deployment)

    def metrics(self, deployment: Deployment) -> StackMetrics:
        """Read every instance's metrics document and sum its cache hits, misses and requests; with ``cache:
        {redis: ...}`` the hits and misses are Redis' own, asked at its port."""
        return with_cache(contract.metrics(deployment), lambda: local_redis_hits(deployment))

    def logs(self, deployment: Deployment, lines: int = 20) -> str:
        """The tail of every process's log."""
        return "\n".join(f"--- {p['service']}#{p['replica']}\n{tail_file(Path(p['log']), lines)}"
                         for p in deployment.handles.get("procs", []))

    def fingerprint(self) -> dict[str, Any] | None:
        """None: the stack runs on this host, whose facts the worker records already."""
        return None

    def pids(self, deployment: Deployment) -> dict[str, list[int]]:
        """The process (group leader) of every replica and running setup step, by service."""
        found: dict[str, list[int]] = {}
        for proc in deployment.handles.get("procs", []):
            found.setdefault(str(proc["service"]), []).append(int(proc["pid"]))
        return found

    # ---------------------------------------------------------------------------------------- down
    def leave(self, deployment: Deployment) -> None:
        """Nothing to close: each replica runs in its own session and outlives this process."""

    def down(self, deployment: Deployment) -> None:
        """TERM every process group, then KILL what is left; forget the state file."""
        _terminate(deployment.handles.get("procs", []))
        for proc in deployment.handles.get("procs", []):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc["popen"].wait(1)
        (deployment.workdir / STATE_FILE).unlink(missing_ok=True)

    def clean_dead(self) -> int:
        """Tear down the deployments recorded here whose owner process is gone; returns processes stopped.

        A deployment whose owner still runs (another worker sharing this artefacts folder) is left alone, and so
        is one started by hand (no owner).
        """
        return sum(self.clean(name) for name, _state in dead_deployments(self.root, STATE_FILE))

    def clean(self, name: str) -> int:
        """Stop processes recorded under ``name`` by a run that died before its teardown."""
        check_deployment_name(name)
        state = self.root / name / STATE_FILE
        if not state.is_file():
            return 0
        stopped = _terminate(read_state(state).get("procs", []))
        state.unlink(missing_ok=True)
        return stopped


def _distinct_port(taken: set[int]) -> int:
    """A free port that no other listener of this deployment was given (the kernel may hand one out twice: a
    probe for an HTTP server would then reach, say, a FastCGI pool)."""
    while (port := free_port()) in taken:
        continue
    taken.add(port)
    return port


def _user_name() -> str:
    """Who runs the farm (templates pass it to servers that want a user, e.g. `mariadbd --user`)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (e.g. an arbitrary uid in a container)
        return str(os.getuid())


def _render_files(templates: dict[str, str], context: dict[str, Any], workdir: Path, prefix: str,
                  what: str) -> dict[str, str]:
    """Render each ``target: template`` into ``workdir/<prefix>-<target>``; target -> the file's absolute path.
    Templates see ``context`` (without ``files``)."""
    rendered: dict[str, str] = {}
    for target, template in templates.items():
        source = Path(context["stack_dir"]) / template
        path = workdir / f"{prefix}-{target}"
        try:
            files.write_text(path, _render_text(source.read_text(), {**context, "files": rendered}))
        except OSError as exc:
            raise SpecError(f"{what}: cannot render {source}: {exc}") from exc
        rendered[target] = str(path.resolve())
    return rendered

def _render_text(text: str, context: dict[str, Any]) -> str:
    try:
        return templates.render(text, context)
    except jinja2.TemplateError as exc:
        raise SpecError(f"stack template error in {text[:60]!r}: {exc}") from exc


def _terminate(procs: list[dict[str, Any]], grace: float = 5.0) -> int:
    """Stop each recorded process group whose pid still names the recorded process — TERM, then KILL."""
    groups = [int(p["pid"]) for p in procs if same_process(p)]
    for pgid in groups:
        _signal_group(pgid, signal.SIGTERM)
    end = time.monotonic() + grace
    while time.monotonic() < end and any(_group_alive(g) for g in groups):
        time.sleep(0.05)
    for pgid in groups:
        _signal_group(pgid, signal.SIGKILL)
    return len(groups)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False
