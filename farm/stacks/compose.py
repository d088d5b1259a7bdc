"""The `compose` StackDriver: the stack's compose recipe run as a Docker Compose project on a SUT host, over SSH.

Compose runs *on the host*, in one SSH command per step (upload by SFTP, `up -d --wait --scale`, `ps`,
`down -v --remove-orphans`), never through `DOCKER_HOST=ssh://` (an SSH session per request, MaxSessions, hangs).
One connection per deployment, opened in the process that uses it (never across a fork) and closed at teardown.
Every replica the farm reaches publishes its port on an ephemeral port of the host, so health, reset and metrics
reach each replica directly, from the generator, with the same HTTP contract as the local driver; a team's own
file's replicas that publish nothing are reached from the farm's probe container in their network instead.
The recipe's extra files are rendered when their name ends in `.j2` and uploaded as they are otherwise (code the
containers mount, such as a PHP drop-in); only the images the rendered compose file names are built.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import yaml

from farm import files
from farm.errors import FarmError, ProvisionError, ReadinessError, SSHUnreachableError
from farm.remote.baseimage import BASE_IMAGE
from farm.remote.hosts import SutHost
from farm.remote.shell import Connector, RemoteShell
from farm.remote.uploads import upload_root
from farm.stacks import compose_actions as actions
from farm.stacks import compose_limits as guard
from farm.stacks import compose_override as override
from farm.stacks import contract
from farm.stacks.compose_probe import ProbeHttp
from farm.stacks.compose_ps import ps_rows, replica_endpoints
from farm.stacks.compose_render import compose_recipe, image_tags, render_project, used_images
from farm.stacks.driver import Deployment, Endpoint, StackMetrics, check_deployment_name, new_token
from farm.stacks.manifest import ComposeRecipe, Scalar, StackManifest
from farm.stacks.owner import dead_deployments, owner_record, write_state
from farm.stacks.probe import poll_ready
from farm.stacks.redis_stats import with_cache
from farm.stacks.resources import SAMPLE_SCRIPT, parse_sample
from farm.stacks.scaling import compose_replicas
from farm.text import tail

log = logging.getLogger("loadfarm.compose")
T = TypeVar("T")
STATE_FILE = "compose-state.json"
PROJECT_LABEL = "com.docker.compose.project"
BUILD_TIMEOUT_S = 900.0
PROBE_TIMEOUT_S = 10.0  # one health GET during `ready` (a cold WordPress page on a busy host: seconds)
# A constant script (no value of ours is interpolated into it): the host's facts, one key=value per line.
_FINGERPRINT = (
    'echo "cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2-)"; echo "cores=$(nproc)"; '
    'echo "memory_kb=$(awk \'/MemTotal/ {print $2}\' /proc/meminfo)"; echo "kernel=$(uname -r)"; '
    'echo "docker=$(docker version --format "{{.Server.Version}}" 2>/dev/null)"; '
    'echo "compose=$(docker compose version --short 2>/dev/null || docker-compose version --short 2>/dev/null)"')


class ComposeDriver:
    """Runs a stack's compose recipe on one SUT host; records each deployment locally with its owner."""

    def __init__(self, host: SutHost, root: Path, connect: Connector, *, owned: bool = True,
                 up_timeout_s: float = 120.0) -> None:
        self.host = host
        self.root = root
        self.connect = connect
        self.up_timeout_s = up_timeout_s
        self.owner = owner_record() if owned else None

    # ------------------------------------------------------------------------------------------ up
    def up(self, manifest: StackManifest, params: dict[str, Scalar], name: str) -> Deployment:
        """Build missing images, upload the rendered project, `up --wait --scale`, and find every replica."""
        check_deployment_name(name)
        recipe = compose_recipe(manifest)
        workdir = files.private_dir(files.private_dir(self.root) / name)
        conn = self.connect(self.host)
        handles: dict[str, Any] = {"conn": conn, "remote": ""}
        token = new_token()
        try:
            handles["compose"] = compose = self._compose_command(conn)
            root = upload_root(conn, self.host)
            handles["remote"] = remote = f"{root}/{name}"
            self._remove(conn, compose, name, remote)  # what a crashed predecessor left under this name
            self._record(workdir, name)
            images = image_tags(manifest, recipe)
            bind = self.host.bind or guard.lab_address(conn, self.host)
            rendered = render_project(manifest, recipe, params, name, images, bind=bind, token=token)
            theirs = not override.is_template(recipe.file)
            if theirs:  # the team's own file: the farm's needs go beside it, never into it
                added = override.farm_override(
                    rendered["compose.yaml"], recipe.file, project=name, bind=bind, port=recipe.port,
                    entry=recipe.entry, reached=set(recipe.instances),
                    scaled=compose_replicas(manifest, params, recipe.scale), token=token)
                rendered[override.OVERRIDE_FILE] = added.text
                for note in added.notes:
                    log.warning("%s: %s", name, note)
                if added.probe and not self._has_image(conn, BASE_IMAGE):
                    raise ProvisionError(f"{self.host.name} lacks {BASE_IMAGE}, the image of the probe the farm "
                                         "reaches replicas that publish nothing from",
                                         hint=f"run `farm hosts prepare {self.host.name}` first")
            else:
                guard.check_published(rendered["compose.yaml"], bind)
            self._build(conn, manifest, recipe, used_images(rendered["compose.yaml"], images), root)
            for target, text in rendered.items():
                folder = workdir
                for part in Path(target).parts[:-1]:
                    folder = files.private_dir(folder / part)
                files.write_text(folder / Path(target).name, text)
            folders = {f"{remote}/{Path(target).parent}" for target in rendered if Path(target).parent != Path(".")}
            conn.run(["mkdir", "-p", "--", remote, *sorted(folders)], timeout=30)
            if theirs:  # what their file mounts (`./nginx.conf`) sits beside it, as in their repository
                conn.put_tree((manifest.folder / recipe.file).parent, remote)
            for target, text in rendered.items():
                conn.put_text(f"{remote}/{target}", text)
            services = set((yaml.safe_load(rendered["compose.yaml"]) or {}).get("services") or {})
            counts = compose_replicas(manifest, params, recipe.scale)  # per service: replicas.<name>, or instances
            scale = [f"--scale={s}={counts[s]}" for s in recipe.scale if s in services]
            wait = max(30, int(self.up_timeout_s))
            extra = ["-f", f"{remote}/{override.OVERRIDE_FILE}"] if theirs else []
            conn.run([*compose, "-p", name, "-f", f"{remote}/compose.yaml", "-f", f"{remote}/{guard.LIMITS_FILE}",
                      *extra, "--project-directory", remote,
                      "up", "-d", "--wait", "--wait-timeout", str(wait), "--no-build", "--remove-orphans", *scale],
                     timeout=wait + 60, env=self._env())
            endpoints = self._endpoints(conn, compose, name, recipe)
        except BaseException as exc:
            logs = self._logs(conn, handles.get("compose"), name, 30)
            (workdir / "compose-logs.txt").write_text(logs)
            self._teardown(handles, name)
            if isinstance(exc, FarmError):
                raise ProvisionError(f"compose up of {name} on {self.host.name} failed: {exc}",
                                     hint=f"last logs: {tail(logs, 5, 300)}") from exc
            raise
        entry = next((e for e in endpoints if e.service == recipe.entry and not e.via), None)
        if entry is None:
            self._teardown(handles, name)
            raise ProvisionError(f"{name} on {self.host.name}: the entry service '{recipe.entry}' publishes no "
                                 f"port {recipe.port}", hint="publish it in the compose file: ports: [\"PORT\"]")
        return Deployment(name, manifest, params, entry, endpoints, workdir, handles, frozenset(recipe.instances),
                          token)

    def _env(self) -> dict[str, str]:
        return {"DOCKER_HOST": self.host.docker_host} if self.host.docker_host else {}

    def _compose_command(self, conn: RemoteShell) -> list[str]:
        """`docker compose` (the v2 plugin) where it exists, else the standalone `docker-compose` binary; the
        daemon must answer."""
        daemon = conn.run(["docker", "version", "--format", "{{.Server.Version}}"], timeout=30, check=False,
                          env=self._env())
        if daemon.code != 0:
            raise ProvisionError(f"Docker on {self.host.name} does not answer: {tail(daemon.stderr, 5, 300)}",
                                 hint=f"is dockerd running there? check with `farm hosts check {self.host.name}`")
        for command in (["docker", "compose"], ["docker-compose"]):
            if conn.run([*command, "version", "--short"], timeout=30, check=False, env=self._env()).code == 0:
                return command
        raise ProvisionError(f"{self.host.name}: neither `docker compose` nor `docker-compose` works there",
                             hint=f"install Docker and the Compose v2 plugin; check with `farm hosts check "
                                  f"{self.host.name}`")

    def _build(self, conn: RemoteShell, manifest: StackManifest, recipe: ComposeRecipe,
               used: dict[str, str], root: str) -> None:
        """Build on the host the recipe's images this project uses, each from its context unless its tag (the
        context's hash) is already there; an image the parameters leave out is never built."""
        base: str | None = None
        for image, tag in used.items():
            if self._has_image(conn, tag):
                continue
            if base is None:
                base = BASE_IMAGE if self._has_image(conn, BASE_IMAGE) else ""
            folder = manifest.folder / recipe.images[image]
            build_dir = f"{root}/build/{manifest.name}-{image}-{tag.rsplit(':', 1)[1]}"
            conn.run(["mkdir", "-p", "--", build_dir], timeout=30)
            try:
                conn.put_tree(folder, build_dir)
                argv = ["docker", "build", "--quiet", "-t", tag, *(["--build-arg", f"BASE={base}"] if base else []),
                        build_dir]
                result = conn.run(argv, timeout=BUILD_TIMEOUT_S, check=False, env=self._env())
            finally:
                conn.run(["rm", "-rf", "--", build_dir], timeout=60, check=False)
            if result.code != 0:
                hint = "" if base else f"; without a registry, run `farm hosts prepare {self.host.name}` first"
                raise ProvisionError(f"building image {tag} on {self.host.name} failed: "
                                     f"{tail(result.stderr or result.stdout, 5, 400)}{hint}")

    def _has_image(self, conn: RemoteShell, tag: str) -> bool:
        return conn.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag], timeout=30, check=False,
                        env=self._env()).code == 0

    def _endpoints(self, conn: RemoteShell, compose: list[str], name: str, recipe: ComposeRecipe) -> list[Endpoint]:
        """Every running replica of the reached services, at the host port that publishes its container port."""
        result = conn.run([*compose, "-p", name, "ps", "--format", "json"], timeout=60, env=self._env())
        return replica_endpoints(ps_rows(result.stdout), name, {recipe.entry, *recipe.instances}, recipe.port,
                                 self.host.bind or self.host.address)

    def fingerprint(self) -> dict[str, Any]:
        """The SUT host's CPU model, cores, memory, kernel, Docker and Compose versions (recorded with cells)."""
        conn = self.connect(self.host)
        try:
            result = conn.run(["sh", "-c", _FINGERPRINT], timeout=60, check=False, env=self._env())
        finally:
            conn.close()
        facts: dict[str, Any] = {"name": self.host.name, "address": self.host.address}
        for line in result.stdout.splitlines():
            key, _, value = line.partition("=")
            if key in ("cpu", "cores", "memory_kb", "kernel", "docker", "compose") and value.strip():
                facts[key] = int(value) if key in ("cores", "memory_kb") and value.strip().isdigit() else value.strip()
        return facts

    # --------------------------------------------------------------------------------------- ready
    def ready(self, deployment: Deployment, deadline: float) -> None:
        """Poll every replica's health from here (the generator) until all answer: the network path works."""
        def still_waiting(waiting: list[Endpoint]) -> list[Endpoint]:
            # a health URL may be a real page (WordPress's `/`): a cold one on a busy host takes seconds, so a
            # probe waits up to PROBE_TIMEOUT_S, never past the deadline
            probe = min(PROBE_TIMEOUT_S, max(0.5, deadline - time.monotonic()))
            answered = self._http(deployment).answering(waiting, deployment.manifest.health, probe)
            return [e for e in waiting if e not in answered]

        def failure(waiting: list[Endpoint]) -> ReadinessError:
            names = ", ".join(f"{e.service}#{e.replica} ({e.url}{f' from {e.via}' if e.via else ''})" for e in waiting)
            return ReadinessError(f"not reachable from this generator before the deadline, or slower than "
                                  f"{PROBE_TIMEOUT_S:.0f} s to answer: {names}",
                                  hint=f"is the SUT host {self.host.name} reachable on its published ports?")

        poll_ready(deployment.endpoints, still_waiting, deadline, failure, first_delay=0.05, max_delay=0.5)

    def check_instances(self, deployment: Deployment) -> int:
        """The classic connectivity check, on each replica."""
        return contract.check_instances(deployment, self._http(deployment))

    def reset(self, deployment: Deployment) -> None:
        """Reset caches on each replica (the HTTP contract), or run the manifest's reset action on the host."""
        action = actions.reset_action(deployment.manifest)
        if action is None:
            contract.reset(deployment, self._http(deployment))
            return
        conn: RemoteShell = deployment.handles["conn"]
        actions.run_reset(conn, deployment.handles["compose"], deployment.name, action, self._env())
        if action.restart:  # restarted containers may publish on new ephemeral ports: find them, wait for them
            recipe = compose_recipe(deployment.manifest)
            deployment.endpoints = self._endpoints(conn, deployment.handles["compose"], deployment.name, recipe)
            deployment.entry = next(e for e in deployment.endpoints if e.service == recipe.entry)
            self.ready(deployment, time.monotonic() + self.up_timeout_s)

    def metrics(self, deployment: Deployment) -> StackMetrics:
        """Read each replica's metrics, the cache's own counters and the SUT's CPU and memory on the host (cgroup
        files), all three at once: each is an SSH round trip (seconds on a loaded host), and one after the other
        the last would be read well past the window's edge. After a dropped SSH connection, once more on a new one."""
        return self._reconnecting(deployment.handles, lambda conn: self._read(deployment, conn))

    def _read(self, deployment: Deployment, conn: RemoteShell) -> StackMetrics:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="reading") as pool:
            cache = pool.submit(actions.redis_hits, conn, deployment.handles["compose"], deployment.name,
                                deployment.manifest, self._env())
            sampled = pool.submit(conn.run, ["sh", "-c", SAMPLE_SCRIPT, "sh", deployment.name], timeout=30,
                                  check=False, env=self._env())
            counters = with_cache(contract.metrics(deployment, self._http(deployment)), cache.result)
            result = sampled.result()
        sample = parse_sample(result.stdout) if result.code == 0 else None
        return dataclasses.replace(counters, resources=sample)

    def _http(self, deployment: Deployment) -> ProbeHttp:
        """The contract's requests: from here, or from the probe container for a replica that publishes nothing."""
        return ProbeHttp(deployment.handles["conn"], self._env())

    def logs(self, deployment: Deployment, lines: int = 20) -> str:
        """The tail of `docker compose logs`."""
        return self._logs(deployment.handles.get("conn"), deployment.handles.get("compose"), deployment.name, lines)

    def _logs(self, conn: RemoteShell | None, compose: list[str] | None, name: str, lines: int) -> str:
        if conn is None or compose is None:
            return "(no logs: the host was not reached)"
        try:
            result = conn.run([*compose, "-p", name, "logs", "--no-color", "--tail", str(lines)], timeout=60,
                              check=False, env=self._env())
            return (result.stdout + result.stderr).strip() or "(no output)"
        except Exception as exc:  # logs are a courtesy of a failure report; never mask the failure
            return f"(logs unavailable: {tail(str(exc), 5, 200)})"

    def pids(self, deployment: Deployment) -> dict[str, list[int]]:
        """None here: the stack's processes run on the SUT host (its CPU is sampled there, by cgroup)."""
        return {}

    # ---------------------------------------------------------------------------------------- down
    def leave(self, deployment: Deployment) -> None:
        """Close this process's connection; the project keeps running on the host."""
        conn: RemoteShell | None = deployment.handles.get("conn")
        if conn is not None:
            conn.close()
            deployment.handles["conn"] = None

    def down(self, deployment: Deployment) -> None:
        """`down -v --remove-orphans`, remove the uploaded folder, close the connection; always."""
        self._teardown(deployment.handles, deployment.name)

    def _teardown(self, handles: dict[str, Any], name: str) -> None:
        if handles.get("conn") is None:
            return
        try:
            compose = handles.get("compose") or ["docker", "compose"]
            self._reconnecting(handles, lambda conn: self._remove(conn, compose, name, handles["remote"]))
        except FarmError as exc:
            raise ProvisionError(f"teardown of {name} on {self.host.name} failed: {exc}; it is removed when the "
                                 f"host is next claimed") from exc
        finally:
            if handles.get("conn") is not None:
                handles["conn"].close()
            handles["conn"] = None
        (self.root / name / STATE_FILE).unlink(missing_ok=True)

    def _reconnecting(self, handles: dict[str, Any], step: Callable[[RemoteShell], T]) -> T:
        """``step`` on the deployment's connection; after a dropped connection, once more on a new one."""
        try:
            return step(handles["conn"])
        except SSHUnreachableError as exc:
            log.warning("%s: %s; reconnecting once", self.host.name, exc)
            handles["conn"].close()
            handles["conn"] = self.connect(self.host)
            return step(handles["conn"])

    def _remove(self, conn: RemoteShell, compose: list[str], name: str, remote: str) -> int:
        """Remove a project's containers, networks and volumes by its name, and its uploaded folder."""
        listed = conn.run(["docker", "ps", "-aq", "--filter", f"label={PROJECT_LABEL}={name}"], timeout=60,
                          check=False, env=self._env())
        count = len(listed.stdout.split())
        conn.run([*compose, "-p", name, "down", "-v", "--remove-orphans", "--timeout", "5"], timeout=180,
                 check=count > 0, env=self._env())
        if remote:  # empty before the upload folder was checked: nothing was uploaded
            conn.run(["rm", "-rf", "--", remote], timeout=60, check=False)
        return count

    def clean(self, name: str) -> int:
        """Remove what a crashed run left of deployment ``name`` on this host; returns containers removed."""
        check_deployment_name(name)
        conn = self.connect(self.host)
        try:
            count = self._remove(conn, self._compose_command(conn), name, f"{upload_root(conn, self.host)}/{name}")
        finally:
            conn.close()
        (self.root / name / STATE_FILE).unlink(missing_ok=True)
        return count

    def clean_dead(self) -> int:
        """Remove this host's deployments recorded here whose owner process is gone; returns how many."""
        removed = 0
        for name, state in dead_deployments(self.root, STATE_FILE):
            if state.get("host") != self.host.name:
                continue
            try:
                self.clean(name)
                removed += 1
            except FarmError as exc:
                log.warning("could not remove %s on %s: %s", name, self.host.name, exc)
        return removed

    def clean_strays(self) -> list[str]:
        """Remove every farm deployment on the host (its containers carry the farm's label): called by the holder
        of the host's lease, which no other deployment may share. Returns the names removed."""
        conn = self.connect(self.host)
        try:
            listed = conn.run(["docker", "ps", "-a", "--filter", f"label={guard.DEPLOYMENT_LABEL}", "--format",
                               f'{{{{.Label "{guard.DEPLOYMENT_LABEL}"}}}}'], timeout=60, env=self._env())
            names = sorted({n for n in listed.stdout.split() if n})
            if names:
                compose, root = self._compose_command(conn), upload_root(conn, self.host)
                for name in names:
                    check_deployment_name(name)
                    self._remove(conn, compose, name, f"{root}/{name}")
        finally:
            conn.close()
        return names

    def _record(self, workdir: Path, name: str) -> None:
        """Note the deployment here (owner and host), so a crashed worker's successor can remove it remotely."""
        write_state(workdir / STATE_FILE, {"owner": self.owner, "host": self.host.name, "name": name})

