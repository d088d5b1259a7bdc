"""The `local` StackDriver: the stack's recipe run as processes on this host, on free loopback ports."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jinja2
import psutil

from farm.errors import ProvisionError, ReadinessError, SpecError, ToolMissingError
from farm.stacks.driver import Deployment, Endpoint, StackMetrics
from farm.stacks.manifest import Scalar, Service, StackManifest
from farm.stacks.probe import free_port, http_json, http_ok, tcp_open

HOST = "127.0.0.1"
STATE_FILE = "processes.json"
INSTALL_HINTS = {"nginx": "apt-get install nginx-light", "redis-server": "apt-get install redis-server"}
_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


class LocalDriver:
    """Runs each service replica as a process in its own session; records them so nothing outlives a crash."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # ------------------------------------------------------------------------------------------ up
    def up(self, manifest: StackManifest, params: dict[str, Scalar], name: str) -> Deployment:
        """Render the recipe, start every replica, and return the deployment (not yet ready)."""
        self.clean(name)
        workdir = self.root / name
        workdir.mkdir(parents=True, exist_ok=True)
        services = [s for s in manifest.local.services if s.enabled(params)]
        context = self._context(manifest, params, workdir)
        endpoints = self._allocate(services, context)
        context["services"] = {
            s.name: [{"host": e.host, "port": e.port, "url": e.url} for e in endpoints if e.service == s.name]
            for s in manifest.local.services
        }
        plans = [(s, e, self._render(s, e, context, workdir)) for s in services
                 for e in endpoints if e.service == s.name]
        for _service, _endpoint, command in plans:
            if shutil.which(command[0]) is None:
                hint = INSTALL_HINTS.get(command[0], "install it or put it on PATH")
                raise ToolMissingError(f"stack '{manifest.name}' needs '{command[0]}', which is not installed",
                                       hint=hint)
        entry = next(e for e in endpoints if e.service == manifest.local.entry)
        deployment = Deployment(name, manifest, params, entry, endpoints, workdir, {"procs": []})
        try:
            for service, endpoint, command in plans:
                self._start(deployment, service, endpoint, command)
        except BaseException:
            self.down(deployment)
            raise
        return deployment

    def _context(self, manifest: StackManifest, params: dict[str, Scalar], workdir: Path) -> dict[str, Any]:
        return {"params": params, "python": sys.executable, "stack_dir": str(manifest.folder),
                "workdir": str(workdir.resolve()), "services": {}}

    def _allocate(self, services: list[Service], context: dict[str, Any]) -> list[Endpoint]:
        endpoints = []
        for service in services:
            try:
                replicas = int(_render_text(str(service.replicas), context))
            except ValueError as exc:
                raise SpecError(f"service '{service.name}': replicas must render to a whole number") from exc
            endpoints += [Endpoint(service.name, i, HOST, free_port()) for i in range(max(1, replicas))]
        return endpoints

    def _render(self, service: Service, endpoint: Endpoint, context: dict[str, Any], workdir: Path) -> list[str]:
        local = {**context, "port": endpoint.port, "replica": endpoint.replica, "files": {}}
        for target, template in service.files.items():
            source = Path(local["stack_dir"]) / template
            path = workdir / f"{service.name}-{endpoint.replica}-{target}"
            try:
                path.write_text(_render_text(source.read_text(), local))
            except OSError as exc:
                raise SpecError(f"service '{service.name}': cannot render {source}: {exc}") from exc
            local["files"][target] = str(path.resolve())
        return [_render_text(part, local) for part in service.command]

    def _start(self, deployment: Deployment, service: Service, endpoint: Endpoint, command: list[str]) -> None:
        log = deployment.workdir / f"{service.name}-{endpoint.replica}.log"
        env = {**os.environ, **service.env, "PYTHONUNBUFFERED": "1"}
        with open(log, "wb") as out:
            try:
                proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=deployment.workdir, env=env, start_new_session=True)
            except OSError as exc:
                raise ProvisionError(f"cannot start {service.name}: {exc}") from exc
        created = psutil.Process(proc.pid).create_time()
        deployment.handles["procs"].append({"service": service.name, "replica": endpoint.replica,
                                            "pid": proc.pid, "created": created, "log": str(log),
                                            "popen": proc})
        self._save_state(deployment)

    def _save_state(self, deployment: Deployment) -> None:
        state = [{k: v for k, v in p.items() if k != "popen"} for p in deployment.handles["procs"]]
        tmp = deployment.workdir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(deployment.workdir / STATE_FILE)

    # --------------------------------------------------------------------------------------- ready
    def ready(self, deployment: Deployment, deadline: float) -> None:
        """Poll every replica (TCP or HTTP health) until all answer; fail fast if a process exits."""
        kinds = {s.name: s.ready for s in deployment.manifest.local.services}
        waiting = list(deployment.endpoints)
        delay = 0.02
        while waiting:
            self._check_alive(deployment)
            waiting = [e for e in waiting if not self._answers(e, kinds[e.service], deployment)]
            if not waiting:
                return
            if time.monotonic() > deadline:
                names = ", ".join(f"{e.service}#{e.replica}" for e in waiting)
                raise ReadinessError(f"not ready before the deadline: {names}",
                                     hint=f"see the logs in {deployment.workdir}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def _answers(self, endpoint: Endpoint, kind: str, deployment: Deployment) -> bool:
        if kind == "tcp":
            return tcp_open(endpoint.host, endpoint.port)
        return http_ok(endpoint.url + deployment.manifest.health)

    def _check_alive(self, deployment: Deployment) -> None:
        for proc in deployment.handles["procs"]:
            code = proc["popen"].poll()
            if code is not None:
                tail = _tail(Path(proc["log"]), 3)
                raise ProvisionError(f"{proc['service']}#{proc['replica']} exited with code {code}: {tail}")

    def check_instances(self, deployment: Deployment) -> int:
        """The classic connectivity check: every instance answers its health URL; returns how many did."""
        silent = [e for e in deployment.instances if not http_ok(e.url + deployment.manifest.health, 2.0)]
        if silent or not http_ok(deployment.entry_url + deployment.manifest.health, 2.0):
            names = ", ".join(f"{e.service}#{e.replica}" for e in silent) or "the entry point"
            raise ReadinessError(f"connectivity check failed: {names} did not answer")
        return len(deployment.instances)

    # ------------------------------------------------------------------------------- reset/metrics
    def reset(self, deployment: Deployment) -> None:
        """POST the manifest's reset path on every instance."""
        if deployment.manifest.reset is None:
            return
        for endpoint in deployment.instances:
            try:
                http_json(endpoint.url + deployment.manifest.reset, method="POST")
            except OSError as exc:
                raise ReadinessError(f"cache reset failed on {endpoint.service}#{endpoint.replica}: {exc}") from exc

    def metrics(self, deployment: Deployment) -> StackMetrics:
        """Sum cache hits and misses over every instance's metrics document."""
        if deployment.manifest.metrics is None:
            return StackMetrics(None, None, [])
        raw: list[dict[str, Any]] = []
        for endpoint in deployment.instances:
            try:
                doc = http_json(endpoint.url + deployment.manifest.metrics)
            except (OSError, ValueError):
                return StackMetrics(None, None, raw)
            raw.append({"service": endpoint.service, "replica": endpoint.replica, **doc})
        caches = [d["cache"] for d in raw if isinstance(d.get("cache"), dict) and d["cache"].get("mode") != "none"]
        if not caches:
            return StackMetrics(None, None, raw)
        return StackMetrics(sum(int(c.get("hits", 0)) for c in caches),
                            sum(int(c.get("misses", 0)) for c in caches), raw)

    def logs(self, deployment: Deployment, lines: int = 20) -> str:
        """The tail of every process's log."""
        return "\n".join(f"--- {p['service']}#{p['replica']}\n{_tail(Path(p['log']), lines)}"
                         for p in deployment.handles.get("procs", []))

    # ---------------------------------------------------------------------------------------- down
    def down(self, deployment: Deployment) -> None:
        """TERM every process group, then KILL what is left; forget the state file."""
        _terminate([(p["pid"], p["created"]) for p in deployment.handles.get("procs", [])])
        for proc in deployment.handles.get("procs", []):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc["popen"].wait(1)
        (deployment.workdir / STATE_FILE).unlink(missing_ok=True)

    def clean_all(self) -> int:
        """Tear down every deployment recorded here (a dead predecessor's); returns processes stopped."""
        if not self.root.is_dir():
            return 0
        return sum(self.clean(state.parent.name) for state in self.root.glob(f"*/{STATE_FILE}"))

    def clean(self, name: str) -> int:
        """Stop processes recorded under ``name`` by a run that died before its teardown."""
        state = self.root / name / STATE_FILE
        if not state.is_file():
            return 0
        try:
            procs = json.loads(state.read_text())
        except (OSError, ValueError):
            procs = []
        stopped = _terminate([(p["pid"], p["created"]) for p in procs])
        state.unlink(missing_ok=True)
        return stopped


def _render_text(text: str, context: dict[str, Any]) -> str:
    try:
        return _JINJA.from_string(text).render(**context)
    except jinja2.TemplateError as exc:
        raise SpecError(f"stack template error in {text[:60]!r}: {exc}") from exc


def _terminate(procs: list[tuple[int, float]], grace: float = 5.0) -> int:
    """Stop each recorded process group (if the pid still names the same process) — TERM, then KILL."""
    groups = []
    for pid, created in procs:
        try:
            if abs(psutil.Process(pid).create_time() - created) < 0.01:
                groups.append(pid)
        except psutil.Error:
            continue
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


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no output)"
    return " | ".join(text[-lines:]) if lines <= 3 else "\n".join(text[-lines:])
